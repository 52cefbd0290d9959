package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callwatch/callwatch/client"
	"github.com/callwatch/callwatch/server"
)

// segReq is segment i of a sample call as a request.
func segReq(c sampleCall, i int) server.SegmentRequest {
	sg := c.Segments[i]
	return server.SegmentRequest{Text: sg.Text, Start: sg.Start, End: sg.End}
}

// withState sets the token (and no seq: the token carries it).
func withState(r server.SegmentRequest, tok string) server.SegmentRequest { r.State = tok; return r }

// withSeq sets seq and the handle (the store's way to continue a call).
func withSeq(r server.SegmentRequest, seq int, handle string) server.SegmentRequest {
	r.Seq, r.Handle = new(seq), handle
	return r
}

// wantErr checks that err is an API error with status and code.
func wantErr(t testing.TB, err error, status int, code server.Code, what string) *client.Error {
	t.Helper()
	var e *client.Error
	if !errors.As(err, &e) || e.Status != status || e.Code != code {
		t.Fatalf("%s: %v; want %d %s", what, err, status, code)
	}
	return e
}

func wantExpected(t testing.TB, e *client.Error, seq int) {
	t.Helper()
	if e.ExpectedSeq == nil || *e.ExpectedSeq != seq {
		t.Fatalf("out_of_order %q: expected_seq %v, want %d", e.Message, e.ExpectedSeq, seq)
	}
}

// TestSequenceToken: on one replica, a call carried by its token is applied
// exactly once per segment: a retried segment answers again without being
// applied twice, an old token replayed or continued another way is 409
// out_of_order with the expected seq, and a segment whose request timed out
// (504) was not applied.
func TestSequenceToken(t *testing.T) {
	cfg := testConfig()
	cfg.Sessions = false
	cfg.RequestTimeout = time.Second
	ts := newTestServer(t, cfg, true)
	call := samples(t)["sample-prosecutor"]
	want := feedLocal(t, ts.D, call)
	ctx := context.Background()
	toks := []string{""} // toks[i]: the token to send with segment i
	check := func(r server.SegmentResponse, err error, i int) {
		t.Helper()
		if err != nil {
			t.Fatalf("segment %d: %v", i, err)
		}
		if r.Segment != i || r.Score != round6(want[i].Score) || r.Level != want[i].Level {
			t.Fatalf("segment %d: got %d %v %s, in-process %v %s", i, r.Segment, r.Score, r.Level, want[i].Score, want[i].Level)
		}
	}
	for i := range 4 {
		req := withState(segReq(call, i), toks[i])
		if i == 0 {
			req.Seq = new(0)
		}
		r, err := ts.C.Segment(ctx, "seq", req)
		check(r, err, i)
		toks = append(toks, r.State)
	}
	// Segment 3 again with the same token: the same answer, applied once.
	r, err := ts.C.Segment(ctx, "seq", withState(segReq(call, 3), toks[3]))
	check(r, err, 3)
	r, err = ts.C.Segment(ctx, "seq", withState(segReq(call, 4), toks[4]))
	check(r, err, 4)
	toks = append(toks, r.State)
	// An old token replayed.
	_, err = ts.C.Segment(ctx, "seq", withState(segReq(call, 1), toks[1]))
	wantExpected(t, wantErr(t, err, 409, server.CodeOutOfOrder, "old token replayed"), 5)
	// The last token continued with another segment: a fork.
	other := segReq(call, 9)
	_, err = ts.C.Segment(ctx, "seq", withState(other, toks[4]))
	wantExpected(t, wantErr(t, err, 409, server.CodeOutOfOrder, "token sent twice with other text"), 5)
	// seq and token disagree.
	req := withState(segReq(call, 5), toks[5])
	req.Seq = new(9)
	_, err = ts.C.Segment(ctx, "seq", req)
	wantExpected(t, wantErr(t, err, 409, server.CodeOutOfOrder, "seq 9 with the token of segment 5"), 5)
	// A segment that times out is not applied: the retry is segment 5, once.
	ts.B.delay.Store(int64(1500 * time.Millisecond))
	_, err = ts.C.Segment(ctx, "seq", withState(segReq(call, 5), toks[5]))
	ts.B.delay.Store(0)
	wantErr(t, err, 504, server.CodeTimeout, "segment 5 with the backend stalled")
	r, err = ts.C.Segment(ctx, "seq", withState(segReq(call, 5), toks[5]))
	check(r, err, 5)
	r, err = ts.C.Segment(ctx, "seq", withState(segReq(call, 6), r.State))
	check(r, err, 6)
}

// TestSequenceStore: the same guarantees for a call kept in the store (no
// token): the 504'd segment is applied once when retried, a retried segment
// is answered from the store, out-of-order seqs are 409, and after a retry
// the call ends exactly where the in-process session ends.
func TestSequenceStore(t *testing.T) {
	cfg := testConfig()
	cfg.RequestTimeout = time.Second
	ts := newTestServer(t, cfg, true)
	call := samples(t)["sample-loan"]
	want := feedLocal(t, ts.D, call)
	ctx := context.Background()
	h := ""
	feed := func(i int) (server.SegmentResponse, error) {
		return ts.C.Segment(ctx, "store-seq", withSeq(segReq(call, i), i, h))
	}
	for i := range 3 {
		r, err := feed(i)
		if err != nil || r.Segment != i || r.Score != round6(want[i].Score) {
			t.Fatalf("segment %d: %+v %v", i, r, err)
		}
		h = r.Handle
	}
	ts.B.delay.Store(int64(1500 * time.Millisecond))
	_, err := feed(3)
	ts.B.delay.Store(0)
	wantErr(t, err, 504, server.CodeTimeout, "segment 3 with the backend stalled")
	for i := 3; i < len(call.Segments); i++ {
		r, err := feed(i)
		if err != nil || r.Segment != i || r.Score != round6(want[i].Score) || r.Level != want[i].Level || r.Alert != want[i].Alert {
			t.Fatalf("segment %d after the 504: %+v %v; in-process %v %s", i, r, err, want[i].Score, want[i].Level)
		}
		again, err := feed(i) // the answer lost, the segment sent again
		if err != nil || again.Segment != i || again.Score != r.Score || again.State != r.State || again.Alert != r.Alert {
			t.Fatalf("segment %d sent again: %+v %v; first answer %+v", i, again, err, r)
		}
	}
	n := len(call.Segments)
	_, err = ts.C.Segment(ctx, "store-seq", withSeq(segReq(call, 0), n+2, h))
	wantExpected(t, wantErr(t, err, 409, server.CodeOutOfOrder, "a skipped segment"), n)
	_, err = ts.C.Segment(ctx, "store-seq", withSeq(segReq(call, 1), 1, h))
	wantExpected(t, wantErr(t, err, 409, server.CodeOutOfOrder, "an old seq"), n)
	_, err = ts.C.Segment(ctx, "store-seq", withSeq(segReq(call, 0), n-1, h))
	wantExpected(t, wantErr(t, err, 409, server.CodeOutOfOrder, "the last seq with other text"), n)
}

// TestSequenceAcrossReplicas: a call alternating between two replicas that
// share the key (no shared store). Retried segments answer the same on
// either; a replayed token is refused by a replica that saw the call go
// further; a fork is refused where the two branches meet; a stored call is
// 410 on the replica that does not hold it, and on a restarted one; the
// token continues on a restarted one.
func TestSequenceAcrossReplicas(t *testing.T) {
	cfg := testConfig()
	a := newTestServer(t, cfg, true)
	b := newTestServer(t, cfg, true)
	call := samples(t)["sample-prosecutor"]
	want := feedLocal(t, a.D, call)
	ctx := context.Background()
	r0, err := a.C.Segment(ctx, "x", withSeq(segReq(call, 0), 0, ""))
	if err != nil {
		t.Fatal(err)
	}
	r1, err := b.C.Segment(ctx, "x", withState(segReq(call, 1), r0.State))
	if err != nil || r1.Segment != 1 {
		t.Fatalf("segment 1 on b: %+v %v", r1, err)
	}
	r2, err := a.C.Segment(ctx, "x", withState(segReq(call, 2), r1.State))
	if err != nil || r2.Segment != 2 {
		t.Fatalf("segment 2 on a: %+v %v", r2, err)
	}
	// Segment 3 on b, its answer lost, sent again to a: the same answer.
	r3b, err := b.C.Segment(ctx, "x", withState(segReq(call, 3), r2.State))
	if err != nil {
		t.Fatal(err)
	}
	r3a, err := a.C.Segment(ctx, "x", withState(segReq(call, 3), r2.State))
	if err != nil || r3a.Segment != 3 || r3a.Score != r3b.Score || r3a.Level != r3b.Level || r3a.Score != round6(want[3].Score) {
		t.Fatalf("segment 3 retried on the other replica: %+v %v; first %+v", r3a, err, r3b)
	}
	// Old tokens replayed where the call went further.
	_, err = b.C.Segment(ctx, "x", withState(segReq(call, 1), r0.State))
	wantExpected(t, wantErr(t, err, 409, server.CodeOutOfOrder, "old token on b"), 4)
	_, err = a.C.Segment(ctx, "x", withState(segReq(call, 2), r1.State))
	wantExpected(t, wantErr(t, err, 409, server.CodeOutOfOrder, "old token on a"), 4)
	// A fork: segment 4 one way on a, another way on b; b's branch is
	// refused when it comes back to a.
	r4a, err := a.C.Segment(ctx, "x", withState(segReq(call, 4), r3a.State))
	if err != nil {
		t.Fatal(err)
	}
	r4b, err := b.C.Segment(ctx, "x", withState(segReq(call, 9), r3a.State))
	if err != nil {
		t.Fatal(err)
	}
	_, err = a.C.Segment(ctx, "x", withState(segReq(call, 5), r4b.State))
	e := wantErr(t, err, 409, server.CodeOutOfOrder, "a forked token back at a")
	wantExpected(t, e, 5)
	if !strings.Contains(e.Message, "fork") {
		t.Errorf("fork message: %q", e.Message)
	}
	// The call was stored on a: b does not hold it.
	if r0.Handle == "" {
		t.Fatal("a call started without a token on a replica with a store has no handle")
	}
	_, err = b.C.Segment(ctx, "x", withSeq(segReq(call, 5), 5, r0.Handle))
	wantErr(t, err, 410, server.CodeCallExpired, "stored call on the other replica")
	// A restarted replica: the store is gone (410), the token goes on.
	c := newTestServer(t, cfg, true)
	_, err = c.C.Segment(ctx, "x", withSeq(segReq(call, 5), 5, r0.Handle))
	wantErr(t, err, 410, server.CodeCallExpired, "stored call after a restart")
	r5, err := c.C.Segment(ctx, "x", withState(segReq(call, 5), r4a.State))
	if err != nil || r5.Segment != 5 || r5.Score != round6(want[5].Score) {
		t.Fatalf("token after a restart: %+v %v; want segment 5 at %v", r5, err, want[5].Score)
	}
}

// TestStoreServesCalls: a flood of new stored calls evicts the least
// recently used ones instead of refusing everyone with 503; calls with a
// token never need a slot; a per-client quota evicts the client's own
// calls.
func TestStoreServesCalls(t *testing.T) {
	cfg := testConfig()
	cfg.MaxSessions = 20
	ts := newTestServer(t, cfg, true)
	ctx := context.Background()
	tokCall, err := ts.C.Segment(ctx, "victim", server.SegmentRequest{Text: "여보세요 고객님", Seq: new(0)})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 200 {
		if _, err := ts.C.Segment(ctx, fmt.Sprint("flood-", i), server.SegmentRequest{Text: "네", Seq: new(0)}); err != nil {
			t.Fatalf("flood call %d: %v", i, err)
		}
	}
	if r, err := ts.C.Segment(ctx, "victim", server.SegmentRequest{Text: "계좌번호 확인하겠습니다", State: tokCall.State}); err != nil || r.Segment != 1 {
		t.Fatalf("a token call after the flood: %+v %v", r, err)
	}
	_, err = ts.C.Segment(ctx, "victim", server.SegmentRequest{Text: "네", Seq: new(1), Handle: tokCall.Handle})
	wantErr(t, err, 410, server.CodeCallExpired, "the evicted stored copy")
	_, _, body := do(t, "GET", ts.URL+"/metrics", "")
	for _, w := range []string{"callwatch_active_calls 20", `callwatch_calls_dropped_total{reason="lru"} 181`} {
		if !strings.Contains(body, w) {
			t.Errorf("/metrics lacks %s", w)
		}
	}

	cfg.MaxSessions, cfg.MaxSessionsPerClient = 100, 5
	q := newTestServer(t, cfg, true)
	var handles []string
	for i := range 8 {
		r, err := q.C.Segment(ctx, fmt.Sprint("q-", i), server.SegmentRequest{Text: "네", Seq: new(0)})
		if err != nil {
			t.Fatal(err)
		}
		handles = append(handles, r.Handle)
	}
	for i, h := range handles {
		_, err := q.C.Segment(ctx, fmt.Sprint("q-", i), server.SegmentRequest{Text: "네 네", Seq: new(1), Handle: h})
		if i < 3 {
			wantErr(t, err, 410, server.CodeCallExpired, fmt.Sprintf("call %d, over the client's quota of 5", i))
		} else if err != nil {
			t.Fatalf("call %d within the quota: %v", i, err)
		}
	}
	_, _, body = do(t, "GET", q.URL+"/metrics", "")
	if !strings.Contains(body, `callwatch_calls_dropped_total{reason="quota"} 3`) {
		t.Error("/metrics lacks 3 quota evictions")
	}
}

// TestForgedTokens: tokens signed with the key but holding states no call
// reaches are 400 invalid_state, always with a JSON body.
func TestForgedTokens(t *testing.T) {
	ts := newTestServer(t, testConfig(), true)
	ctx := context.Background()
	r, err := ts.C.Segment(ctx, "f", server.SegmentRequest{Text: "서울중앙지검 수사관입니다 본인 명의 통장이 사건에 연루됐습니다", Seq: new(0)})
	if err != nil {
		t.Fatal(err)
	}
	top := make([]any, 5000)
	for i := range top {
		top[i] = map[string]any{"text": "안전계좌", "index": 0, "delta": 0.1, "prior": 0.5}
	}
	for _, c := range []struct {
		name string
		edit func(st map[string]any)
		text string
	}{
		{"score 1e308", func(st map[string]any) { st["score"] = 1e308 }, "네"},
		{"5,000 reasons", func(st map[string]any) { st["top"] = top }, "네"},
		{"segment -1", func(st map[string]any) { st["segments"] = -1 }, "네"},
		{"state 1e30", func(st map[string]any) { st["state"].([]any)[0].([]any)[0] = 1e30 }, "네"},
	} {
		t.Run(c.name, func(t *testing.T) {
			tok := resign(t, r.State, testKey, func(p map[string]any) { c.edit(p["state"].(map[string]any)) })
			body, _ := json.Marshal(server.SegmentRequest{Text: c.text, State: tok})
			st, _, resp := do(t, "POST", ts.URL+"/v1/calls/f/segments", string(body))
			if st != 400 || errCode(t, resp) != "invalid_state" {
				t.Fatalf("%d %s; want 400 invalid_state", st, resp)
			}
		})
	}
}

// TestKeyRotation: during a rotation a replica signs with the new key and
// verifies both; a replica without the new key refuses its tokens by key id.
func TestKeyRotation(t *testing.T) {
	oldKey := server.StateKey{ID: "old", Key: []byte("abcdefghijklmnopqrstuvwxyz012345")}
	newKey := server.StateKey{ID: "new", Key: []byte("ZYXWVUTSRQPONMLKJIHGFEDCBA987654")}
	cfg := testConfig()
	cfg.StateKeys = []server.StateKey{oldKey}
	before := newTestServer(t, cfg, true)
	cfg.StateKeys = []server.StateKey{newKey, oldKey}
	during := newTestServer(t, cfg, true)
	cfg.StateKeys = []server.StateKey{newKey}
	after := newTestServer(t, cfg, true)
	ctx := context.Background()
	r, err := before.C.Segment(ctx, "rot", server.SegmentRequest{Text: "여보세요", Seq: new(0)})
	if err != nil || !strings.HasPrefix(r.State, "cw3.old.") {
		t.Fatalf("old replica: %.12s %v", r.State, err)
	}
	r, err = during.C.Segment(ctx, "rot", server.SegmentRequest{Text: "검찰청입니다", State: r.State})
	if err != nil || !strings.HasPrefix(r.State, "cw3.new.") {
		t.Fatalf("rotating replica continuing an old-key token: %.12s %v", r.State, err)
	}
	_, err = before.C.Segment(ctx, "rot", server.SegmentRequest{Text: "네", State: r.State})
	if e := wantErr(t, err, 400, server.CodeInvalidState, "new-key token on an old replica"); !strings.Contains(e.Message, `"new"`) {
		t.Errorf("message does not name the key id: %q", e.Message)
	}
	if _, err := after.C.Segment(ctx, "rot", server.SegmentRequest{Text: "네", State: r.State}); err != nil {
		t.Fatalf("rotated replica: %v", err)
	}
	for _, k := range [][]server.StateKey{
		{{ID: "a", Key: []byte("aaaaaaaaaaaaaaaa")}},
		{{ID: "a", Key: []byte(strings.Repeat("ab", 16))}},
		{oldKey, {ID: "old", Key: newKey.Key}},
		{{ID: "bad id", Key: oldKey.Key}},
	} {
		c := testConfig()
		c.StateKeys = k
		if _, err := server.NewServer(c, server.Deps{}); err == nil {
			t.Errorf("keys %v accepted", k)
		}
	}
}

func TestParseStateKeys(t *testing.T) {
	k32 := "MDEyMzQ1Njc4OWFiY2RlZmdoaWprbG1ub3BxcnN0dXY=" // base64 of 32 distinct bytes
	keys, err := server.ParseStateKeys("k2:" + k32 + ", k1:" + strings.TrimRight(k32, "="))
	if err != nil || len(keys) != 2 || keys[0].ID != "k2" || len(keys[1].Key) != 32 {
		t.Fatalf("ParseStateKeys: %+v %v", keys, err)
	}
	one, err := server.ParseStateKey(k32)
	if err != nil || len(one.Key) != 32 || one.ID == "" {
		t.Fatalf("ParseStateKey: %+v %v", one, err)
	}
	for _, c := range []struct{ spec, want string }{
		{"k1", "id:base64"},
		{"k1:" + k32 + ",k1:" + k32, "twice"},
		{"k 1:" + k32, "key id"},
		{"k1:!!!", "not base64"},
		{"k1:YWFhYWFhYWFhYWFhYWFhYQ==", "16 bytes"},
		{"k1:" + "YWFh" + strings.Repeat("YWFh", 10), "distinct"},
	} {
		if _, err := server.ParseStateKeys(c.spec); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseStateKeys(%q): %v; want an error containing %q", c.spec, err, c.want)
		}
	}
	if _, err := server.ParseStateKey("aaaaaaaaaaaaaaaa"); err == nil || !strings.Contains(err.Error(), "head -c 32 /dev/urandom | base64") {
		t.Errorf("a 16-character raw key: %v", err)
	}
}

// phishingText returns sample-call phishing text of about n bytes.
func phishingText(t testing.TB, n int) string {
	var parts []string
	size := 0
	for size < n {
		for _, id := range []string{"sample-prosecutor", "sample-loan", "sample-family", "sample-remote-app"} {
			for _, sg := range samples(t)[id].Segments {
				if size+len(sg.Text)+1 > n {
					return strings.Join(parts, " ")
				}
				parts = append(parts, sg.Text)
				size += len(sg.Text) + 1
			}
		}
	}
	return strings.Join(parts, " ")
}

// TestLongSegmentsKeepOthersFast: segments at the text limit that raise an
// alert (so their reasons are searched) cost a bounded time, and other
// calls' segments keep their latency while they run.
func TestLongSegmentsKeepOthersFast(t *testing.T) {
	cfg := testConfig()
	ts := newTestServer(t, cfg, true)
	ctx := context.Background()
	huge := phishingText(t, cfg.MaxTextBytes)
	normal := samples(t)["sample-bank-deposit"]
	// others streams 8 calls segment by segment until stop, recording
	// every segment's latency.
	others := func(stop <-chan struct{}, rounds int) ([]time.Duration, error) {
		var mu sync.Mutex
		var lat []time.Duration
		var firstErr error
		var wg sync.WaitGroup
		for c := range 8 {
			wg.Go(func() {
				for round := 0; round < rounds; round++ {
					call := ts.C.NewCall(fmt.Sprintf("other-%d-%d", c, round))
					for _, sg := range normal.Segments {
						select {
						case <-stop:
							return
						default:
						}
						t0 := time.Now()
						_, err := call.Feed(ctx, sg.Text, sg.Start, sg.End)
						mu.Lock()
						lat = append(lat, time.Since(t0))
						if err != nil && firstErr == nil {
							firstErr = err
						}
						mu.Unlock()
					}
				}
			})
		}
		wg.Wait()
		return lat, firstErr
	}
	pct := func(d []time.Duration, p int) time.Duration {
		slices.Sort(d)
		return d[min(len(d)-1, len(d)*p/100)]
	}
	base, err := others(nil, 3)
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	type hugeResult struct {
		d     time.Duration
		alert bool
		err   error
	}
	hres := make(chan hugeResult, 2)
	for k := range 2 {
		go func() {
			time.Sleep(time.Duration(k) * 150 * time.Millisecond) // staggered
			t0 := time.Now()
			r, err := ts.C.Segment(ctx, fmt.Sprint("huge-", k), server.SegmentRequest{Text: huge, Seq: new(0)})
			hres <- hugeResult{time.Since(t0), r.Alert != "" && len(r.Reasons) > 0, err}
		}()
	}
	var during []time.Duration
	done := make(chan struct{})
	go func() {
		during, err = others(stop, 1000)
		close(done)
	}()
	var hs []hugeResult
	for range 2 {
		hs = append(hs, <-hres)
	}
	close(stop)
	<-done
	if err != nil {
		t.Fatalf("another call failed while long segments ran: %v", err)
	}
	for _, h := range hs {
		if h.err != nil {
			t.Fatalf("segment of %d bytes: %v", len(huge), h.err)
		}
		if !h.alert {
			t.Errorf("the %d-byte phishing segment raised no alert with reasons; the test needs one", len(huge))
		}
	}
	t.Logf("two %d-byte segments with alerts and reasons: %v, %v", len(huge), hs[0].d.Round(time.Millisecond), hs[1].d.Round(time.Millisecond))
	t.Logf("other calls' segments: alone p50 %v p99 %v (n=%d); meanwhile p50 %v p99 %v max %v (n=%d)",
		pct(base, 50), pct(base, 99), len(base), pct(during, 50), pct(during, 99), pct(during, 100), len(during))
	for _, h := range hs {
		if h.d > 5*time.Second {
			t.Errorf("a segment at the text limit took %v (the request deadline is %v)", h.d, cfg.RequestTimeout)
		}
	}
	if worst := pct(during, 100); worst > 2*time.Second {
		t.Errorf("another call's segment took %v while long segments ran", worst)
	}
}

// rawRequest writes head (and body) on a new connection to ts and returns
// the connection; the caller reads the answer.
func rawRequest(t testing.TB, ts *testServer, head, body string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(ts.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := io.WriteString(conn, head+"\r\n"+body); err != nil {
		t.Fatal(err)
	}
	return conn
}

func readStatus(t testing.TB, conn net.Conn, within time.Duration) (int, string) {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(within))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer within %v: %v", within, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestBodyBounds: bodies are read under the request deadline, the bytes of
// bodies in flight are capped, declared oversize bodies are refused before
// they are read, and texts are counted while decoding.
func TestBodyBounds(t *testing.T) {
	cfg := testConfig()
	cfg.RequestTimeout = 500 * time.Millisecond
	cfg.MaxInflightBytes = 2 * cfg.MaxBodyBytes
	ts := newTestServer(t, cfg, true)
	post := "POST /v1/classify HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"

	t.Run("slow body", func(t *testing.T) {
		t0 := time.Now()
		conn := rawRequest(t, ts, post+"Content-Length: 100\r\n", `{"te`)
		st, body := readStatus(t, conn, 3*time.Second)
		if st != 408 || errCode(t, body) != "body_timeout" {
			t.Fatalf("%d %s", st, body)
		}
		t.Logf("a body that stops arriving: 408 after %v", time.Since(t0).Round(time.Millisecond))
	})
	t.Run("chunked body never finished", func(t *testing.T) {
		conn := rawRequest(t, ts, post+"Transfer-Encoding: chunked\r\n", "5\r\n{\"tex\r\n")
		if st, body := readStatus(t, conn, 3*time.Second); st != 408 {
			t.Fatalf("%d %s", st, body)
		}
	})
	t.Run("declared too large", func(t *testing.T) {
		conn := rawRequest(t, ts, post+fmt.Sprintf("Content-Length: %d\r\n", 2*cfg.MaxBodyBytes), "")
		if st, body := readStatus(t, conn, time.Second); st != 413 || errCode(t, body) != "body_too_large" {
			t.Fatalf("%d %s", st, body)
		}
	})
	t.Run("in-flight bytes", func(t *testing.T) {
		for range 2 { // two bodies that hold the whole budget and never arrive
			rawRequest(t, ts, post+fmt.Sprintf("Content-Length: %d\r\n", cfg.MaxBodyBytes), "{")
		}
		time.Sleep(100 * time.Millisecond)
		st, h, body := do(t, "POST", ts.URL+"/v1/classify", `{"texts":["네"]}`)
		if st != 429 || errCode(t, body) != "overloaded" || h.Get("Retry-After") == "" {
			t.Fatalf("with the budget held: %d %s", st, body)
		}
		// Refused at once even when its own body never arrives.
		t0 := time.Now()
		conn := rawRequest(t, ts, post+"Transfer-Encoding: chunked\r\n", "5\r\n{\"tex\r\n")
		if st, body := readStatus(t, conn, cfg.RequestTimeout/2); st != 429 {
			t.Fatalf("a chunked body with the budget held: %d %s", st, body)
		}
		t.Logf("refused with 429 after %v", time.Since(t0).Round(time.Millisecond))
		time.Sleep(cfg.RequestTimeout + 300*time.Millisecond)
		if st, _, body := do(t, "POST", ts.URL+"/v1/classify", `{"texts":["네"]}`); st != 200 {
			t.Fatalf("after the slow bodies timed out: %d %s", st, body)
		}
	})
	t.Run("slow connections do not pile up", func(t *testing.T) {
		before := runtime.NumGoroutine()
		for i := range 40 { // chunked bodies reserve 1 MiB each: most are refused with 429 at once
			if i%4 == 0 {
				rawRequest(t, ts, post+"Transfer-Encoding: chunked\r\n", "5\r\n{\"tex\r\n")
			} else {
				rawRequest(t, ts, post+"Content-Length: 1000\r\n", "{")
			}
		}
		time.Sleep(100 * time.Millisecond)
		peak := runtime.NumGoroutine()
		time.Sleep(cfg.RequestTimeout + 500*time.Millisecond)
		after := runtime.NumGoroutine()
		t.Logf("goroutines: %d before, %d with 40 slow bodies, %d after the deadline", before, peak, after)
		if after > before+10 {
			t.Fatalf("%d goroutines left after the deadline (from %d)", after, before)
		}
	})
	t.Run("texts counted while decoding", func(t *testing.T) {
		body := `{"texts":[` + strings.Repeat(`"a",`, 100000) + `"a"]}`
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		st, _, resp := do(t, "POST", ts.URL+"/v1/classify", body)
		runtime.ReadMemStats(&m1)
		if st != 413 || errCode(t, resp) != "too_many_texts" {
			t.Fatalf("%d %s", st, resp)
		}
		alloc := m1.TotalAlloc - m0.TotalAlloc
		t.Logf("a %d-byte body of 100,001 texts: 413 after %d KiB allocated in all", len(body), alloc>>10)
		if alloc > 8<<20 {
			t.Errorf("%d MiB allocated for a body refused at text 257", alloc>>20)
		}
		st, _, resp = do(t, "POST", ts.URL+"/v2/models/"+ts.D.Bundle().Card.Name+"/infer",
			`{"inputs":[{"name":"text","datatype":"BYTES","shape":[100001],"data":[`+strings.Repeat(`"a",`, 100000)+`"a"]}]}`)
		if st != 413 || !strings.Contains(resp, "too_many_texts") {
			t.Fatalf("v2: %d %s", st, resp)
		}
	})
}
