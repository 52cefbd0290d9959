package main

import (
	"bufio"
	"bytes"
	"container/list"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/callwatch/callwatch"
	"github.com/callwatch/callwatch/api"
)

// segmentIn is one input line of `stream`: a segment, or with "end": true
// the end of a call.
type segmentIn struct {
	CallID *string         `json:"call_id"`
	Start  *float64        `json:"start"`
	End    json.RawMessage `json:"end"` // a time in seconds, or true: the call has ended
	Text   *string         `json:"text"`
}

// Output shapes of stream, shared with the server and client (package api).
type (
	scoreEvent   = api.ScoreEvent
	alertEvent   = api.AlertEvent
	segmentError = api.SegmentError
)

// policy reads stream.* settings: flags > CALLWATCH_STREAM_* > file > the
// model's defaults.
func (e *env) policy(fs *pflag.FlagSet, d *callwatch.Detector) (callwatch.Policy, error) {
	return e.policyFrom(fs, d.DefaultPolicy())
}

func (e *env) policyFrom(fs *pflag.FlagSet, p callwatch.Policy) (callwatch.Policy, error) {
	if s := e.lookup(fs, "stream.smooth"); s.set {
		n, err := s.integer(1, 100)
		if err != nil {
			return p, err
		}
		p.Smooth = n
	}
	if s := e.lookup(fs, "stream.hysteresis"); s.set {
		f, err := s.float()
		if err != nil {
			return p, err
		}
		if f < 0 || f >= 1 {
			return p, s.errorf("must be in [0, 1), got %g", f)
		}
		p.Hysteresis = f
	}
	if s := e.lookup(fs, "stream.reasons"); s.set {
		n, err := s.integer(0, 100)
		if err != nil {
			return p, err
		}
		p.Reasons = n
	}
	if err := p.Validate(); err != nil {
		return p, usagef("%v", err)
	}
	return p, nil
}

func (e *env) streamCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "stream [--input FILE|-] [--idle DURATION]",
		Short: "Score calls segment by segment as they happen (JSONL segments in, events out)",
		Long: `stream scores calls segment by segment as they arrive; calls may interleave.

Input: JSONL segments {"call_id","start","end","text"} in arrival order;
{"call_id","end":true} ends a call and frees what it held.
Output: one {"call_id","t","score","level"} per segment, plus
{"call_id","alert","t","score","reasons"} when a call's level first rises. A line
that is no segment yields {"call_id","line","error"} and the stream goes on (exit 1
at the end, with how many of the segments failed).`,
		Example: `  printf '%s\n' '{"call_id":"c1","start":0,"end":3.1,"text":"서울중앙지검 수사관입니다"}' | callwatch stream`,
		Args:    noArgs,
	}
	fs := cmd.Flags()
	input := fs.String("input", "-", "segments JSONL file, '-' for stdin")
	idle := fs.Duration("idle", 0, "forget a call after this long without a segment (0: only at its end marker); a later segment starts it afresh")
	addKeyFlags(fs, modelKeys...)
	addKeyFlags(fs, policyKeys...)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if *idle < 0 {
			return cmdlinef("--idle must be >= 0, got %s", *idle)
		}
		return e.stream(fs, *input, *idle)
	}
	return cmd
}

// stream scores calls segment by segment. Segments of different calls may
// interleave; each call's events are exactly those it would get alone.
func (e *env) stream(fs *pflag.FlagSet, input string, idle time.Duration) error {
	c, err := e.loadConfig(fs)
	if err != nil {
		return err
	}
	var r io.Reader = e.stdin
	if input != "-" {
		f, err := os.Open(input)
		if err != nil {
			return usagef("cannot open input: %v", err)
		}
		defer f.Close()
		r = f
	}
	d, err := e.openDetector(c)
	if err != nil {
		return err
	}
	defer d.Close()
	pol, err := e.policy(fs, d)
	if err != nil {
		return err
	}
	out := newJSONLWriter(e.stdout)
	calls := newCallTable(idle, time.Now)
	// Every segment line counts, end markers aside: the summary says how
	// many of them failed.
	failed, total := 0, 0

	lines := make(chan lineItem, 256)
	ctx, cancel := context.WithCancel(e.ctx)
	defer cancel()
	go readLines(ctx, r, lines)

	// pending is one input line of a batch: a segment to score, or a line
	// that is none (err), answered in its place so output keeps input order.
	type pending struct {
		line int
		id   string
		seg  callwatch.Segment
		err  error
	}
	var held *lineItem // a segment that closed the previous batch
	next := func(block bool) (lineItem, bool) {
		if held != nil {
			it := *held
			held = nil
			return it, true
		}
		if block {
			select {
			case it, ok := <-lines:
				return it, ok
			case <-e.ctx.Done():
				return lineItem{err: e.ctx.Err()}, true
			}
		}
		select {
		case it, ok := <-lines:
			return it, ok
		default:
			return lineItem{}, false
		}
	}
	for done := false; !done; {
		// Block for one segment, then take whatever else is already waiting
		// (up to the batch size, stopping at a call seen twice) so that live
		// input is answered at once and files are batched across calls.
		var batch []pending
		inBatch := map[string]bool{}
		var stop error
		for len(batch) < c.Batch {
			it, ok := next(len(batch) == 0)
			if !ok {
				if len(batch) == 0 {
					stop = io.EOF
				}
				break
			}
			if it.err != nil {
				stop = it.err
				break
			}
			id, seg, end, perr := parseSegment(it.b, it.n)
			if perr != nil {
				total++
				batch = append(batch, pending{line: it.n, id: id, err: perr})
				continue
			}
			if inBatch[id] {
				cp := it
				held = &cp // keeps order: it starts the next batch
				break
			}
			if end {
				calls.end(id)
				continue
			}
			inBatch[id] = true
			total++
			batch = append(batch, pending{line: it.n, id: id, seg: seg})
		}
		calls.expire()
		var ss []*callwatch.Session
		var segs []callwatch.Segment
		for _, p := range batch {
			if p.err != nil {
				continue
			}
			s, err := calls.session(p.id, func() (*callwatch.Session, error) { return d.NewSession(pol) })
			if err != nil {
				return err
			}
			ss, segs = append(ss, s), append(segs, p.seg)
		}
		var ups []callwatch.Update
		if len(ss) > 0 {
			if ups, err = d.FeedBatch(e.ctx, ss, segs); err != nil {
				out.Flush()
				return err
			}
		}
		for _, p := range batch {
			if p.err != nil {
				failed++
				if err := out.Write(segmentError{CallID: p.id, Line: p.line, Error: p.err.Error()}); err != nil {
					return err
				}
				continue
			}
			u := ups[0]
			ups = ups[1:]
			if u.Err != nil {
				failed++
				if err := out.Write(segmentError{CallID: p.id, Line: p.line, Error: u.Err.Error()}); err != nil {
					return err
				}
				continue
			}
			if err := out.Write(scoreEvent{CallID: p.id, T: p.seg.End, Score: round6(u.Score), Level: u.Level,
				Family: u.Family, FamilyProb: round6(u.FamilyProb)}); err != nil {
				return err
			}
			if u.Alert != "" {
				if err := out.Write(alertEvent{CallID: p.id, Alert: u.Alert, T: p.seg.End, Score: round6(u.Score),
					Family: u.Family, FamilyProb: round6(u.FamilyProb), Reasons: u.Reasons}); err != nil {
					return err
				}
			}
		}
		if err := out.Flush(); err != nil {
			return err
		}
		if stop != nil {
			if !errors.Is(stop, io.EOF) {
				return stop
			}
			done = true
		}
	}
	if failed > 0 {
		return &errRecords{failed: failed, total: total, unit: "segments"}
	}
	return nil
}

type lineItem struct {
	b   []byte
	n   int
	err error
}

// readLines sends input lines (without terminators) and finally an item
// carrying io.EOF or the read error.
func readLines(ctx context.Context, r io.Reader, ch chan<- lineItem) {
	defer close(ch)
	br := bufio.NewReaderSize(r, 64<<10)
	n := 0
	for {
		b, err := br.ReadBytes('\n')
		if len(b) > 0 {
			n++
			b = bytes.TrimRight(b, "\r\n")
			if n == 1 {
				b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
			}
			if len(bytes.TrimSpace(b)) > 0 {
				select {
				case ch <- lineItem{b: b, n: n}:
				case <-ctx.Done():
					return
				}
			}
		}
		if err != nil {
			select {
			case ch <- lineItem{err: err, n: n}:
			case <-ctx.Done():
			}
			return
		}
	}
}

// parseSegment reads one input line: a segment, or (end true) the end
// marker {"call_id","end":true}.
func parseSegment(b []byte, line int) (id string, seg callwatch.Segment, end bool, err error) {
	var in segmentIn
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&in); err != nil {
		return "", seg, false, fmt.Errorf("line %d is not a segment object: %v", line, err)
	}
	if in.CallID == nil || *in.CallID == "" {
		return "", seg, false, fmt.Errorf("line %d has no \"call_id\"", line)
	}
	id = *in.CallID
	if endRaw := bytes.TrimSpace(in.End); len(endRaw) > 0 && !bytes.Equal(endRaw, []byte("null")) {
		switch {
		case bytes.Equal(endRaw, []byte("true")):
			if in.Text != nil {
				return id, seg, false, fmt.Errorf("line %d: \"end\": true ends the call and carries no \"text\"", line)
			}
			return id, seg, true, nil
		case json.Unmarshal(endRaw, &seg.End) != nil:
			return id, seg, false, fmt.Errorf("line %d: \"end\" must be a time in seconds, or true to end the call", line)
		}
	}
	if in.Text == nil {
		return id, seg, false, fmt.Errorf("line %d has no \"text\"", line)
	}
	seg.Text = *in.Text
	if in.Start != nil {
		seg.Start = *in.Start
	}
	if seg.End < seg.Start {
		return id, seg, false, fmt.Errorf("line %d: end %g is before start %g", line, seg.End, seg.Start)
	}
	return id, seg, false, nil
}

// callTable holds the calls `stream` is following, in order of their last
// segment, and forgets them at their end marker or after idle without one,
// so a stream that runs for months holds only its live calls.
type callTable struct {
	idle  time.Duration // 0: only at the end marker
	now   func() time.Time
	calls map[string]*list.Element
	order *list.List // *tableCall, least recently fed first
}

type tableCall struct {
	id   string
	sess *callwatch.Session
	last time.Time
}

func newCallTable(idle time.Duration, now func() time.Time) *callTable {
	return &callTable{idle: idle, now: now, calls: map[string]*list.Element{}, order: list.New()}
}

// session returns the call's session, starting it with start when new.
func (t *callTable) session(id string, start func() (*callwatch.Session, error)) (*callwatch.Session, error) {
	if e, ok := t.calls[id]; ok {
		c := e.Value.(*tableCall)
		c.last = t.now()
		t.order.MoveToBack(e)
		return c.sess, nil
	}
	s, err := start()
	if err != nil {
		return nil, err
	}
	t.calls[id] = t.order.PushBack(&tableCall{id: id, sess: s, last: t.now()})
	return s, nil
}

// end forgets a call.
func (t *callTable) end(id string) {
	if e, ok := t.calls[id]; ok {
		t.order.Remove(e)
		delete(t.calls, id)
	}
}

// expire forgets the calls idle for longer than idle.
func (t *callTable) expire() {
	if t.idle <= 0 {
		return
	}
	cut := t.now().Add(-t.idle)
	for e := t.order.Front(); e != nil && e.Value.(*tableCall).last.Before(cut); e = t.order.Front() {
		t.end(e.Value.(*tableCall).id)
	}
}

func (t *callTable) len() int { return len(t.calls) }
