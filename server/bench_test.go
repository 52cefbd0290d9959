package server_test

import (
	"context"
	"fmt"
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
