package server_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/callwatch/callwatch/server"
)

// BenchmarkSegment is one streamed segment over HTTP with the state token
// (verify, resume, score, snapshot, sign), sequentially.
func BenchmarkSegment(b *testing.B) {
	cfg := testConfig()
	cfg.Sessions = false
	ts := newTestServer(b, cfg, true)
	call := samples(b)["sample-prosecutor"]
	ctx := context.Background()
	b.ResetTimer()
	state, seg, n := "", 0, 0
	for b.Loop() {
		if seg == len(call.Segments) {
			state, seg, n = "", 0, n+1
		}
		s := call.Segments[seg]
		r, err := ts.C.Segment(ctx, fmt.Sprint("bench-", n), server.SegmentRequest{Text: s.Text, Start: s.Start, End: s.End, State: state, Seq: new(seg)})
		if err != nil {
			b.Fatal(err)
		}
		state, seg = r.State, seg+1
	}
}

// BenchmarkClassify is one whole sample call classified over HTTP.
func BenchmarkClassify(b *testing.B) {
	ts := newTestServer(b, testConfig(), true)
	text := samples(b)["sample-prosecutor"].text()
	ctx := context.Background()
	for b.Loop() {
		if _, err := ts.C.Classify(ctx, text); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSegmentParallel streams sample calls from many goroutines at
// once, as the load test does, so that batches form: the profile of the
// streaming path under load (go test -bench SegmentParallel -cpuprofile).
// Sub-benchmarks per server.state_precision.
func BenchmarkSegmentParallel(b *testing.B) {
	for _, prec := range []string{server.PrecisionFloat32, server.PrecisionFloat16} {
		b.Run(prec, func(b *testing.B) { benchSegmentParallel(b, prec) })
	}
}

func benchSegmentParallel(b *testing.B, precision string) {
	cfg := testConfig()
	cfg.Sessions = false
	cfg.StatePrecision = precision
	ts := newTestServer(b, cfg, true)
	all := samples(b)
	var calls []sampleCall
	for _, id := range slices.Sorted(maps.Keys(all)) {
		calls = append(calls, all[id])
	}
	ctx := context.Background()
	var next atomic.Int64
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		w := next.Add(1)
		state, seg, n := "", 0, 0
		call := calls[int(w)%len(calls)]
		for pb.Next() {
			if seg == len(call.Segments) {
				state, seg, n = "", 0, n+1
				call = calls[(int(w)+n)%len(calls)]
			}
			s := call.Segments[seg]
			r, err := ts.C.Segment(ctx, fmt.Sprint("bench-", w, "-", n), server.SegmentRequest{Text: s.Text, Start: s.Start, End: s.End, State: state, Seq: new(seg)})
			if err != nil {
				b.Fatal(err)
			}
			state, seg = r.State, seg+1
		}
	})
}
