package server_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/callwatch/callwatch/client"
	"github.com/callwatch/callwatch/server"
)

// TestConcurrentSegmentsOfOneCall: many clients send the next segment of
// one call at the same moment, with different texts. Exactly one is applied;
// the others get 409 out_of_order (or, for the same text, the same answer
// again); nothing hangs, and the call goes on at the next sequence number.
func TestConcurrentSegmentsOfOneCall(t *testing.T) {
	ts := newTestServer(t, testConfig(), true)
	call := samples(t)["sample-prosecutor"]
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	first, err := ts.C.Segment(ctx, "race", withSeq(segReq(call, 0), 0, ""))
	if err != nil {
		t.Fatal(err)
	}
	const n = 16
	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		ok, clash int
	)
	for k := range n {
		wg.Go(func() {
			r := withSeq(segReq(call, 1), 1, first.Handle)
			r.Text = segReq(call, 1+k%(len(call.Segments)-1)).Text
			_, err := ts.C.Segment(ctx, "race", r)
			mu.Lock()
			defer mu.Unlock()
			var e *client.Error
			switch {
			case err == nil:
				ok++
			case errors.As(err, &e) && e.Status == 409 && e.Code == server.CodeOutOfOrder:
				clash++
			default:
				t.Errorf("concurrent segment %d: %v", k, err)
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatal("concurrent segments of one call hung")
	}
	if ok < 1 || ok+clash != n {
		t.Fatalf("%d applied or answered again, %d out_of_order, of %d", ok, clash, n)
	}
	// The call continues at seq 2, whichever segment won.
	if _, err := ts.C.Segment(ctx, "race", withSeq(segReq(call, 2), 2, first.Handle)); err != nil {
		t.Fatalf("next segment after the race: %v", err)
	}
}
