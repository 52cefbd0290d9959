package server

import (
	"context"
	"sync"
	"time"
)

// batcher coalesces concurrent requests into one backend call. A single
// collector goroutine takes the first waiting job, then keeps taking jobs
// until the batch holds maxBatch units (texts or segments) or maxWait has
// passed since the first; the batch then runs on one of `workers` executor
// slots. While every slot is busy the collector waits, so the queue fills
// and the next batch leaves full: batching grows with load by itself.
//
// The queue is a bounded channel: a request that finds it full is refused
// at once (429 with Retry-After) instead of waiting in an ever longer line.
type batcher[J, R any] struct {
	kind     string
	maxBatch int
	maxWait  time.Duration
	size     func(J) int
	exec     func(ctx context.Context, jobs []*job[J, R])
	m        *metrics

	queue   chan *job[J, R]
	slots   chan struct{}
	stop    chan struct{} // closed by close: drain and exit
	exited  chan struct{} // closed when the collector and all batches are done
	base    context.Context
	running sync.WaitGroup
}

type job[J, R any] struct {
	ctx  context.Context
	in   J
	out  R
	err  error
	done chan struct{}
}

func newBatcher[J, R any](base context.Context, kind string, maxBatch int, maxWait time.Duration, maxQueue, workers int,
	m *metrics, size func(J) int, exec func(context.Context, []*job[J, R])) *batcher[J, R] {
	b := &batcher[J, R]{kind: kind, maxBatch: maxBatch, maxWait: maxWait, size: size, exec: exec, m: m,
		queue: make(chan *job[J, R], maxQueue), slots: make(chan struct{}, workers),
		stop: make(chan struct{}), exited: make(chan struct{}), base: base}
	go b.collect()
	return b
}

// submit queues in and waits for its result or for ctx.
func (b *batcher[J, R]) submit(ctx context.Context, in J) (R, error) {
	var zero R
	j := &job[J, R]{ctx: ctx, in: in, done: make(chan struct{})}
	select {
	case <-b.stop:
		return zero, errorf(CodeShuttingDown, "server is shutting down")
	default:
	}
	select {
	case b.queue <- j:
		b.m.queueDepth.WithLabelValues(b.kind).Set(float64(len(b.queue)))
	default:
		b.m.rejected.WithLabelValues(string(CodeOverloaded)).Inc()
		return zero, errorf(CodeOverloaded, "%s queue is full (%d waiting); retry later", b.kind, cap(b.queue))
	}
	select {
	case <-j.done:
		return j.out, j.err
	case <-ctx.Done():
		// The job may still run; its result is dropped.
		return zero, ctx.Err()
	case <-b.exited:
		select {
		case <-j.done:
			return j.out, j.err
		default:
			return zero, errorf(CodeShuttingDown, "server shut down before the request ran")
		}
	}
}

func (b *batcher[J, R]) collect() {
	defer close(b.exited)
	defer b.running.Wait()
	var carry *job[J, R] // a job that did not fit the previous batch
	for {
		var first *job[J, R]
		if carry != nil {
			first, carry = carry, nil
		} else {
			select {
			case first = <-b.queue:
			case <-b.stop:
				b.drain()
				return
			}
		}
		batch := []*job[J, R]{first}
		n := b.size(first.in)
		timer := time.NewTimer(b.maxWait)
	gather:
		for n < b.maxBatch {
			select {
			case j := <-b.queue:
				if n+b.size(j.in) > b.maxBatch {
					carry = j
					break gather
				}
				batch = append(batch, j)
				n += b.size(j.in)
			case <-timer.C:
				break gather
			case <-b.stop:
				break gather
			}
		}
		timer.Stop()
		b.m.queueDepth.WithLabelValues(b.kind).Set(float64(len(b.queue)))
		b.slots <- struct{}{}
		b.running.Add(1)
		go b.runBatch(batch)
	}
}

// drain runs what is still queued at shutdown, so accepted requests finish.
func (b *batcher[J, R]) drain() {
	for {
		var batch []*job[J, R]
		n := 0
	fill:
		for n < b.maxBatch {
			select {
			case j := <-b.queue:
				batch = append(batch, j)
				n += b.size(j.in)
			default:
				break fill
			}
		}
		if len(batch) == 0 {
			return
		}
		b.slots <- struct{}{}
		b.running.Add(1)
		b.runBatch(batch)
	}
}

func (b *batcher[J, R]) runBatch(batch []*job[J, R]) {
	defer func() { <-b.slots; b.running.Done() }()
	live := batch[:0:0]
	for _, j := range batch {
		if err := j.ctx.Err(); err != nil {
			j.err = err // gave up while queued: not worth a backend row
			close(j.done)
			continue
		}
		live = append(live, j)
	}
	if len(live) == 0 {
		return
	}
	units := 0
	for _, j := range live {
		units += b.size(j.in)
	}
	b.m.batchSize.WithLabelValues(b.kind).Observe(float64(units))
	t0 := time.Now()
	// The batch runs to completion on the server's context: one client
	// leaving must not fail the others sharing its backend call.
	func() {
		defer func() {
			if r := recover(); r != nil {
				for _, j := range live {
					j.err = errorf(CodeInternal, "batch panicked: %v", r)
				}
			}
		}()
		b.exec(b.base, live)
	}()
	b.m.inferSeconds.WithLabelValues(b.kind).Observe(time.Since(t0).Seconds())
	for _, j := range live {
		close(j.done)
	}
}

// close stops taking jobs, runs those queued, and waits for running batches.
func (b *batcher[J, R]) close() {
	select {
	case <-b.stop:
	default:
		close(b.stop)
	}
	<-b.exited
}
