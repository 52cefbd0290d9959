package server_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callwatch/callwatch"
	"github.com/callwatch/callwatch/client"
	"github.com/callwatch/callwatch/server"
)

func TestHealthAndReadiness(t *testing.T) {
	ts := newTestServer(t, testConfig(), false)
	if st, _, body := do(t, "GET", ts.URL+"/v2/health/live", ""); st != 200 || !strings.Contains(body, `"live":true`) {
		t.Fatalf("live before load: %d %s", st, body)
	}
	st, h, body := do(t, "GET", ts.URL+"/v2/health/ready", "")
	if st != 503 || h.Get("Retry-After") == "" || !strings.HasPrefix(body, `{"error":"not_ready`) {
		t.Fatalf("ready before load: %d %q %s", st, h.Get("Retry-After"), body)
	}
	if st, _, body := do(t, "POST", ts.URL+"/v1/classify", `{"texts":["안녕하세요"]}`); st != 503 || errCode(t, body) != "not_ready" {
		t.Fatalf("classify before load: %d %s", st, body)
	}
	if err := ts.Load(context.Background(), ts.D); err != nil {
		t.Fatal(err)
	}
	if ts.B.runs.Load() < 1 {
		t.Fatal("Load reported ready without a warm-up inference")
	}
	name := ts.D.Bundle().Card.Name
	for _, c := range []struct {
		path   string
		status int
		want   string
	}{
		{"/v2/health/ready", 200, `"ready":true`},
		{"/v2/models/" + name + "/ready", 200, `"ready":true`},
		{"/v2/models/" + name, 200, `"datatype":"BYTES"`},
		{"/v2/models/no-such-model", 404, `model_not_found`},
		{"/v2/models/no-such-model/ready", 404, `model_not_found`},
	} {
		st, _, body := do(t, "GET", ts.URL+c.path, "")
		if st != c.status || !strings.Contains(body, c.want) {
			t.Errorf("GET %s: %d %s; want %d containing %s", c.path, st, body, c.status, c.want)
		}
	}
}

func TestV2Infer(t *testing.T) {
	ts := newTestServer(t, testConfig(), true)
	sm := samples(t)
	texts := []string{sm["sample-prosecutor"].text(), sm["sample-bank-deposit"].text()}
	want, err := ts.D.Classify(context.Background(), texts)
	if err != nil {
		t.Fatal(err)
	}
	name := ts.D.Bundle().Card.Name
	resp, err := ts.C.Infer(context.Background(), name, server.V2InferRequest{ID: "req-1", Inputs: []server.V2Tensor{
		{Name: "text", Datatype: "BYTES", Shape: []int64{2}, Data: []any{texts[0], texts[1]}}}})
	if err != nil {
		t.Fatal(err)
	}
	if resp.ModelName != name || resp.ID != "req-1" || len(resp.Outputs) != 3 {
		t.Fatalf("response header: %+v", resp)
	}
	probs := resp.Outputs[0]
	if probs.Name != "probabilities" || probs.Datatype != "FP32" || fmt.Sprint(probs.Shape) != "[2 2]" || len(probs.Data) != 4 {
		t.Fatalf("probabilities tensor: %+v", probs)
	}
	for i := range texts {
		pn, pp := probs.Data[2*i].(float64), probs.Data[2*i+1].(float64)
		if math.Abs(pn+pp-1) > 1e-6 || math.Abs(pp-want[i].Score) > 1e-6 {
			t.Errorf("text %d: probs (%g, %g), detector says %g", i, pn, pp, want[i].Score)
		}
		if got := resp.Outputs[1].Data[i]; got != want[i].Label {
			t.Errorf("text %d: label %v, want %s", i, got, want[i].Label)
		}
		if got := resp.Outputs[2].Data[i]; got != string(want[i].Level) {
			t.Errorf("text %d: level %v, want %s", i, got, want[i].Level)
		}
	}
	if want[0].Label != "phishing" || want[1].Label != "normal" {
		t.Errorf("samples no longer separate: %+v", want)
	}

	// only the requested outputs, in the requested order
	resp, err = ts.C.Infer(context.Background(), name, server.V2InferRequest{
		Inputs:  []server.V2Tensor{{Name: "text", Datatype: "BYTES", Shape: []int64{1, 1}, Data: []any{texts[1]}}},
		Outputs: []server.V2OutputWanted{{Name: "label"}}})
	if err != nil || len(resp.Outputs) != 1 || resp.Outputs[0].Data[0] != "normal" {
		t.Fatalf("outputs filter: %+v %v", resp, err)
	}

	for _, c := range []struct{ name, body, code string }{
		{"not json", `{`, "bad_request"},
		{"wrong datatype", `{"inputs":[{"name":"text","datatype":"FP32","shape":[1],"data":[1]}]}`, "bad_request"},
		{"wrong name", `{"inputs":[{"name":"input_ids","datatype":"BYTES","shape":[1],"data":["x"]}]}`, "bad_request"},
		{"shape mismatch", `{"inputs":[{"name":"text","datatype":"BYTES","shape":[3],"data":["a","b"]}]}`, "bad_request"},
		{"non-string", `{"inputs":[{"name":"text","datatype":"BYTES","shape":[1],"data":[7]}]}`, "bad_request"},
		{"empty text", `{"inputs":[{"name":"text","datatype":"BYTES","shape":[2],"data":["네 안녕하세요"," "]}]}`, "invalid_text"},
		{"unknown output", `{"inputs":[{"name":"text","datatype":"BYTES","shape":[1],"data":["네"]}],"outputs":[{"name":"hn"}]}`, "bad_request"},
	} {
		t.Run(c.name, func(t *testing.T) {
			st, _, body := do(t, "POST", ts.URL+"/v2/models/"+name+"/infer", c.body)
			var e struct{ Error string }
			if st != 400 || json.Unmarshal([]byte(body), &e) != nil || !strings.HasPrefix(e.Error, c.code+": ") {
				t.Fatalf("got %d %s; want 400 with v2 error string starting %q", st, body, c.code)
			}
		})
	}
}

func TestClassify(t *testing.T) {
	cfg := testConfig()
	cfg.MaxTexts = 4
	cfg.MaxTextBytes = 3000
	cfg.MaxBodyBytes = 8192
	ts := newTestServer(t, cfg, true)
	sm := samples(t)
	texts := []string{sm["sample-family"].text(), "   ", sm["sample-card-loss"].text()}
	want, err := ts.D.Classify(context.Background(), texts)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ts.C.Classify(context.Background(), texts...)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("%d results for 3 texts", len(got))
	}
	for i, g := range got {
		if g.ID != fmt.Sprint(i+1) {
			t.Errorf("result %d has id %q", i, g.ID)
		}
		if want[i].Err != nil {
			if g.Error == "" || g.Label != "" {
				t.Errorf("result %d: want an error record, got %+v", i, g)
			}
			continue
		}
		if g.Label != want[i].Label || g.Level != want[i].Level || math.Abs(g.Score-want[i].Score) > 1e-6 {
			t.Errorf("result %d: %+v, detector says %+v", i, g, want[i].Verdict)
		}
	}
	// record shapes are the CLI's
	st, _, body := do(t, "POST", ts.URL+"/v1/classify", `{"records":[{"id":"a","text":"네 고객님 안전계좌로 옮기세요"},{"id":"b","text":""}]}`)
	if st != 200 || !strings.Contains(body, `{"id":"a","label":`) || !strings.Contains(body, `{"id":"b","error":"tokenize: empty text`) {
		t.Fatalf("records: %d %s", st, body)
	}

	for _, c := range []struct {
		name, body string
		status     int
		code       string
	}{
		{"not json", `{"texts":`, 400, "bad_request"},
		{"trailing data", `{"texts":["a"]} x`, 400, "bad_request"},
		{"nothing", `{}`, 400, "bad_request"},
		{"both", `{"texts":["a"],"records":[{"id":"1","text":"b"}]}`, 400, "bad_request"},
		{"body too large", `{"texts":["` + strings.Repeat("가", 3000) + `"]}`, 413, "body_too_large"},
		{"text too large", `{"texts":["` + strings.Repeat("a", 3001) + `"]}`, 413, "text_too_large"},
		{"too many texts", `{"texts":["a","b","c","d","e"]}`, 413, "too_many_texts"},
	} {
		t.Run(c.name, func(t *testing.T) {
			st, h, body := do(t, "POST", ts.URL+"/v1/classify", c.body)
			if st != c.status || errCode(t, body) != c.code || h.Get("X-Error-Code") != c.code {
				t.Fatalf("got %d %s; want %d %s", st, body, c.status, c.code)
			}
		})
	}
	if st, _, body := do(t, "GET", ts.URL+"/v1/classify", ""); st != http.StatusMethodNotAllowed {
		t.Errorf("GET /v1/classify: %d %s", st, body)
	}
}

func round6(f float64) float64 { return math.Round(f*1e6) / 1e6 }

// feedLocal streams a call through a Session in-process: the reference for
// what the service must answer.
func feedLocal(t testing.TB, d *callwatch.Detector, c sampleCall) []callwatch.Update {
	s, err := d.NewSession(d.DefaultPolicy())
	if err != nil {
		t.Fatal(err)
	}
	var ups []callwatch.Update
	for _, sg := range c.Segments {
		u, err := s.Feed(context.Background(), callwatch.Segment{Text: sg.Text, Start: sg.Start, End: sg.End})
		if err != nil {
			t.Fatal(err)
		}
		ups = append(ups, u)
	}
	return ups
}

// TestStateTokenAcrossReplicas: a call alternates between two replicas that
// share only the state key (own detectors, no session store), and gets
// exactly the updates one in-process session gives.
func TestStateTokenAcrossReplicas(t *testing.T) {
	cfg := testConfig()
	cfg.Sessions = false
	a := newTestServer(t, cfg, true)
	b := newTestServer(t, cfg, true)
	for _, id := range []string{"sample-prosecutor", "sample-bank-deposit"} {
		t.Run(id, func(t *testing.T) {
			call := samples(t)[id]
			want := feedLocal(t, a.D, call)
			state := ""
			sawAlert := false
			for i, sg := range call.Segments {
				replica := []*testServer{a, b}[i%2]
				r, err := replica.C.Segment(context.Background(), "call-"+id, server.SegmentRequest{Text: sg.Text, Start: sg.Start, End: sg.End, State: state, Seq: new(i)})
				if err != nil {
					t.Fatalf("segment %d on replica %d: %v", i, i%2, err)
				}
				w := want[i]
				if r.Segment != i || r.Level != w.Level || r.Alert != w.Alert || math.Abs(r.Score-w.Score) > 1e-6 {
					t.Fatalf("segment %d: got %d %g %s alert=%q, in-process %d %g %s alert=%q", i, r.Segment, r.Score, r.Level, r.Alert, w.Segment, w.Score, w.Level, w.Alert)
				}
				if r.Alert != "" {
					sawAlert = true
					if len(r.Reasons) == 0 || fmt.Sprint(r.Reasons) != fmt.Sprint(w.Reasons) {
						t.Fatalf("segment %d alert reasons %+v, in-process %+v", i, r.Reasons, w.Reasons)
					}
				}
				state = r.State
			}
			last := want[len(want)-1]
			if call.Kind == "phishing" && (last.Level != callwatch.LevelDangerous || !sawAlert) {
				t.Errorf("phishing sample ends at %s", last.Level)
			}
			if call.Kind == "normal" && last.Level != callwatch.LevelNone {
				t.Errorf("normal sample ends at %s", last.Level)
			}
		})
	}
	// Without a configured key each process signs with its own random key:
	// the token is refused elsewhere, loudly, not misread.
	nokey := cfg
	nokey.StateKeys = nil
	x, y := newTestServer(t, nokey, true), newTestServer(t, nokey, true)
	r0, err := x.C.Segment(context.Background(), "k", server.SegmentRequest{Text: "네 여보세요", Seq: new(0)})
	if err != nil {
		t.Fatal(err)
	}
	_, err = y.C.Segment(context.Background(), "k", server.SegmentRequest{Text: "네", State: r0.State})
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Code != server.CodeInvalidState {
		t.Fatalf("random per-process keys: token accepted by another process (%v)", err)
	}
	// Without the token and without a store, a call starts only at seq 0;
	// a later segment is 410, not a silent restart.
	r, err := b.C.Segment(context.Background(), "call-sample-prosecutor", server.SegmentRequest{Text: "네 여보세요", Seq: new(0)})
	if err != nil || r.Segment != 0 || r.Handle != "" {
		t.Fatalf("no token, no store, seq 0: %+v, %v", r, err)
	}
	_, err = b.C.Segment(context.Background(), "call-sample-prosecutor", server.SegmentRequest{Text: "네", Seq: new(1)})
	if !errors.As(err, &ce) || ce.Status != 410 || ce.Code != server.CodeCallExpired {
		t.Fatalf("no token, no store, seq 1: %v; want 410 call_expired", err)
	}
}

// resign opens a token, lets edit change its fields (as JSON: call_id,
// handle, chain, state) and seals it again with key.
func resign(t testing.TB, tok string, key server.StateKey, edit func(map[string]any)) string {
	t.Helper()
	callID, handle, chain, st, err := server.OpenToken([]server.StateKey{testKey}, tok)
	if err != nil {
		t.Fatal(err)
	}
	sj, _ := json.Marshal(st)
	var sm map[string]any
	json.Unmarshal(sj, &sm)
	p := map[string]any{"call_id": callID, "handle": handle, "chain": chain, "state": sm}
	edit(p)
	sj, _ = json.Marshal(p["state"])
	var st2 callwatch.SessionState
	if err := json.Unmarshal(sj, &st2); err != nil {
		t.Fatal(err)
	}
	out, err := server.SealToken(key, p["call_id"].(string), p["handle"].(string), p["chain"].(string), st2)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func hmacSum(key []byte, msg string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

func TestStateTokenErrors(t *testing.T) {
	cfg := testConfig()
	cfg.Sessions = false
	ts := newTestServer(t, cfg, true)
	r, err := ts.C.Segment(context.Background(), "c1", server.SegmentRequest{Text: "안녕하세요 검찰청 수사관입니다", Seq: new(0)})
	if err != nil {
		t.Fatal(err)
	}
	good := r.State
	dot := strings.LastIndex(good, ".")
	if !strings.HasPrefix(good, "cw3."+testKey.ID+".") || strings.Count(good, ".") != 2 {
		t.Fatal(`token format differs from the documented "cw3." kid "." base64url(sealed)`)
	}
	if strings.Contains(good, base64.RawURLEncoding.EncodeToString([]byte("검찰청"))[:8]) {
		t.Error("the token shows transcript text")
	}
	// A token of the previous format (cw2: signed JSON).
	cw2 := "cw2." + testKey.ID + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"call_id":"c1"}`)) + ".c2ln"
	t.Logf("state token after one segment: %d bytes", len(good))
	// Tamper with one character of the sealed part, keeping it base64url, so that the
	// check that fails is the authentication and not the decoding (flipping a bit can turn
	// '-' into ',').
	flip := []byte(good)
	if flip[dot+20] == 'A' {
		flip[dot+20] = 'B'
	} else {
		flip[dot+20] = 'A'
	}
	// A token of the old format (v1: base64url(JSON).base64url(HMAC)).
	v1body := base64.RawURLEncoding.EncodeToString([]byte(`{"v":1,"call_id":"c1","state":{}}`))
	v1 := v1body + "." + base64.RawURLEncoding.EncodeToString(hmacSum(testKey.Key, v1body))
	for _, c := range []struct {
		name, call, token string
		status            int
		code              server.Code
		msg               string
	}{
		{"tampered payload", "c1", string(flip), 400, server.CodeInvalidState, "signature"},
		{"truncated", "c1", good[:dot+10], 400, server.CodeInvalidState, ""},
		{"old format", "c1", v1, 400, server.CodeInvalidState, "old-format"},
		{"cw2 format", "c1", cw2, 400, server.CodeInvalidState, "old-format"},
		{"undecodable state", "c1", server.SealPlain(testKey, []byte{1, 0, 7}), 400, server.CodeInvalidState, "does not decode"},
		{"not a token", "c1", "hello", 400, server.CodeInvalidState, "not a callwatch state token"},
		{"another token's salt", "c1", good[:dot+1] + resign(t, good, testKey, func(p map[string]any) { p["state"].(map[string]any)["score"] = 0.999 })[dot+1:dot+23] + good[dot+23:], 400, server.CodeInvalidState, "signature"},
		{"other key, same id", "c1", resign(t, good, server.StateKey{ID: testKey.ID, Key: []byte("another-replica-set-key-32-bytes")}, func(map[string]any) {}), 400, server.CodeInvalidState, "signature"},
		{"unknown key id", "c1", resign(t, good, server.StateKey{ID: "old7", Key: testKey.Key}, func(map[string]any) {}), 400, server.CodeInvalidState, `"old7"`},
		{"other call", "c2", good, 400, server.CodeStateCallID, ""},
		{"other model", "c1", resign(t, good, testKey, func(p map[string]any) {
			p["state"].(map[string]any)["model_sha256"] = strings.Repeat("ab", 32)
		}), 409, server.CodeStateModel, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := ts.C.Segment(context.Background(), c.call, server.SegmentRequest{Text: "계좌로 옮기세요", State: c.token})
			var e *client.Error
			if !errors.As(err, &e) || e.Status != c.status || e.Code != c.code || !strings.Contains(e.Message, c.msg) {
				t.Fatalf("got %v; want %d %s (%q)", err, c.status, c.code, c.msg)
			}
		})
	}
	// the good token still works
	if r2, err := ts.C.Segment(context.Background(), "c1", server.SegmentRequest{Text: "계좌로 옮기세요", State: good}); err != nil || r2.Segment != 1 {
		t.Fatalf("good token: %+v %v", r2, err)
	}
}

// TestSessionStore: calls without a token live in the store under a random
// handle. A new call evicts the least recently used one instead of
// answering 503; only the handle feeds or ends a call, so a caller who
// knows the call id gets a call of its own, not the victim's; an evicted or
// ended call answers 410.
func TestSessionStore(t *testing.T) {
	cfg := testConfig()
	cfg.MaxSessions = 2
	ts := newTestServer(t, cfg, true)
	ctx := context.Background()
	call := samples(t)["sample-loan"]
	want := feedLocal(t, ts.D, call)
	handle := ""
	for i, sg := range call.Segments {
		r, err := ts.C.Segment(ctx, "kept", server.SegmentRequest{Text: sg.Text, Start: sg.Start, End: sg.End, Seq: new(i), Handle: handle}) // no token
		if err != nil {
			t.Fatal(err)
		}
		if r.Segment != i || math.Abs(r.Score-want[i].Score) > 1e-6 || r.Level != want[i].Level {
			t.Fatalf("segment %d via store: %d %g %s, want %g %s", i, r.Segment, r.Score, r.Level, want[i].Score, want[i].Level)
		}
		if i == 0 {
			handle = r.Handle
		}
		if r.Handle == "" || r.Handle != handle {
			t.Fatalf("segment %d: handle %q, first answer's %q", i, r.Handle, handle)
		}
	}
	n := len(call.Segments)
	var e *client.Error
	// Another caller who knows only the call id starts a call of its own.
	other, err := ts.C.Segment(ctx, "kept", server.SegmentRequest{Text: "네 고객님 계좌번호 불러주세요", Seq: new(0)})
	if err != nil || other.Segment != 0 || other.Handle == "" || other.Handle == handle {
		t.Fatalf("same call id, no handle: %+v %v; want a new call with its own handle", other, err)
	}
	for _, h := range []string{"", "AAAAAAAAAAAAAAAAAAAAAA", other.Handle[:21] + "x"} {
		_, err := ts.C.Segment(ctx, "kept", server.SegmentRequest{Text: "네", Seq: new(n), Handle: h})
		if !errors.As(err, &e) || e.Status != 410 || e.Code != server.CodeCallExpired {
			t.Fatalf("seq %d with handle %q: %v; want 410 call_expired", n, h, err)
		}
	}
	if err := ts.C.EndCall(ctx, "kept", ""); !errors.As(err, &e) || e.Status != 400 {
		t.Fatalf("DELETE without a handle: %v", err)
	}
	if err := ts.C.EndCall(ctx, "kept", other.Handle[:21]+"x"); !errors.As(err, &e) || e.Code != server.CodeCallNotFound {
		t.Fatalf("DELETE with a wrong handle: %v", err)
	}
	// The store holds 2: a third call evicts the least recently used (the
	// other caller's), not 503.
	last := call.Segments[n-1]
	if r, err := ts.C.Segment(ctx, "kept", server.SegmentRequest{Text: last.Text, Start: last.Start, End: last.End, Seq: new(n - 1), Handle: handle}); err != nil || r.Segment != n-1 || r.Score != round6(want[n-1].Score) {
		t.Fatalf("the last segment again (retry): %+v %v", r, err)
	}
	if _, err := ts.C.Segment(ctx, "third", server.SegmentRequest{Text: "네", Seq: new(0)}); err != nil {
		t.Fatalf("store full: %v; want the least recently used call evicted", err)
	}
	if _, err := ts.C.Segment(ctx, "kept", server.SegmentRequest{Text: "네", Seq: new(1), Handle: other.Handle}); !errors.As(err, &e) || e.Code != server.CodeCallExpired {
		t.Fatalf("evicted call: %v; want 410", err)
	}
	if err := ts.C.EndCall(ctx, "kept", handle); err != nil {
		t.Fatal(err)
	}
	if err := ts.C.EndCall(ctx, "kept", handle); !errors.As(err, &e) || e.Code != server.CodeCallNotFound {
		t.Fatalf("second end: %v", err)
	}
	if _, err := ts.C.Segment(ctx, "kept", server.SegmentRequest{Text: "네", Seq: new(n), Handle: handle}); !errors.As(err, &e) || e.Code != server.CodeCallExpired {
		t.Fatalf("after end: %v; want 410, not a restart", err)
	}
	// An invalid first segment does not leave a call behind.
	st, _, body := do(t, "POST", ts.URL+"/v1/calls/x/segments", `{"text":"네","end":-1,"start":3,"seq":0}`)
	if st != 400 || errCode(t, body) != "bad_request" {
		t.Fatalf("end before start: %d %s", st, body)
	}
	st, _, body = do(t, "POST", ts.URL+"/v1/calls/x/segments", `{"text":"네"}`)
	if st != 400 || errCode(t, body) != "bad_request" || !strings.Contains(body, "seq") {
		t.Fatalf("no seq, no token: %d %s", st, body)
	}
	_, _, body = do(t, "GET", ts.URL+"/metrics", "")
	for _, want := range []string{`callwatch_active_calls 1`, `callwatch_calls_dropped_total{reason="lru"} 1`,
		`callwatch_calls_dropped_total{reason="ended"} 1`, `callwatch_segments_total{source="retry"} 1`} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// TestBatchingCoalesces: concurrent requests become far fewer backend calls.
func TestBatchingCoalesces(t *testing.T) {
	cfg := testConfig()
	cfg.MaxWait = 300 * time.Millisecond // long, so the test does not race the timer
	cfg.MaxBatch = 64
	cfg.Workers = 1
	ts := newTestServer(t, cfg, true)
	sm := samples(t)
	const n = 24
	t.Run("classify", func(t *testing.T) {
		before := ts.B.runs.Load()
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for i := range n {
			wg.Go(func() {
				text := sm["sample-police"].Segments[i%len(sm["sample-police"].Segments)].Text
				if _, err := ts.C.Classify(context.Background(), text); err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		runs := ts.B.runs.Load() - before
		t.Logf("%d concurrent classify requests → %d backend calls", n, runs)
		if runs > 3 {
			t.Fatalf("%d requests made %d backend calls; batching did not coalesce", n, runs)
		}
	})
	t.Run("segments", func(t *testing.T) {
		before := ts.B.runs.Load()
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for i := range n {
			wg.Go(func() {
				if _, err := ts.C.Segment(context.Background(), fmt.Sprintf("call-%d", i), server.SegmentRequest{Text: "네 여보세요 택배 기사인데요", Seq: new(0)}); err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		runs := ts.B.runs.Load() - before
		t.Logf("%d concurrent segments of different calls → %d backend calls", n, runs)
		if runs > 3 {
			t.Fatalf("%d segment requests made %d backend calls", n, runs)
		}
	})
	st, _, body := do(t, "GET", ts.URL+"/metrics", "")
	for _, want := range []string{
		`callwatch_batch_size_count{kind="classify"}`, `callwatch_batch_size_count{kind="segment"}`,
		`callwatch_http_requests_total{code="200",route="POST /v1/classify"} 24`,
		`callwatch_http_request_duration_seconds_bucket{code="200",route="POST /v1/calls/{call_id}/segments"`,
		`callwatch_tokenize_seconds_count`, `callwatch_inference_seconds_count{kind="classify"}`,
		`callwatch_queue_depth{kind="classify"}`, `callwatch_active_calls 24`, `callwatch_segments_total{source="new"} 24`,
		`callwatch_ready 1`, `process_resident_memory_bytes`,
	} {
		if st != 200 || !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// TestOverloadAndTimeout: with the backend held, a bounded queue refuses
// work with 429 + Retry-After, waiting requests hit their deadline with 504,
// and everything accepted completes once the backend moves.
func TestOverloadAndTimeout(t *testing.T) {
	cfg := testConfig()
	cfg.MaxBatch, cfg.Workers, cfg.MaxQueue, cfg.MaxWait = 1, 1, 1, 0
	cfg.RequestTimeout = 3 * time.Second
	ts := newTestServer(t, cfg, true)
	ts.B.gate = make(chan struct{})
	type result struct {
		status int
		code   string
		retry  string
	}
	results := make(chan result, 8)
	var wg sync.WaitGroup
	for i := range 6 {
		wg.Go(func() {
			st, h, body := do(t, "POST", ts.URL+"/v1/classify", fmt.Sprintf(`{"texts":["네 여보세요 %d"]}`, i))
			r := result{status: st, retry: h.Get("Retry-After")}
			if st != 200 {
				r.code = errCode(t, body)
			}
			results <- r
		})
		time.Sleep(30 * time.Millisecond) // one running, one held by the collector, one queued, then full
	}
	for ts.B.waiting.Load() == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	close(ts.B.gate)
	wg.Wait()
	close(results)
	ok, refused := 0, 0
	for r := range results {
		switch {
		case r.status == 200:
			ok++
		case r.status == 429 && r.code == "overloaded" && r.retry != "":
			refused++
		default:
			t.Errorf("unexpected answer %+v", r)
		}
	}
	if ok < 1 || refused < 2 || ok+refused != 6 {
		t.Fatalf("%d ok, %d refused of 6; want the queue to refuse the overflow", ok, refused)
	}
	t.Logf("backend held: %d accepted and completed, %d refused with 429", ok, refused)

	// A request that cannot be served before its deadline gets 504.
	cfg.RequestTimeout = 150 * time.Millisecond
	ts2 := newTestServer(t, cfg, true)
	ts2.B.gate = make(chan struct{})
	defer close(ts2.B.gate)
	st, _, body := do(t, "POST", ts2.URL+"/v1/classify", `{"texts":["네"]}`)
	if st != 504 || errCode(t, body) != "timeout" {
		t.Fatalf("deadline: %d %s", st, body)
	}
}

// TestGracefulShutdown: cancelling Serve's context (what SIGTERM does in
// `callwatch serve`) turns readiness to 503 at once while requests are
// still served for the drain delay (so probes see the replica leave instead
// of "connection refused"), lets an in-flight request finish, then stops.
func TestGracefulShutdown(t *testing.T) {
	cfg := testConfig()
	cfg.MaxWait = 500 * time.Millisecond // the request sits in the batcher while shutdown starts
	cfg.MaxBatch = 64
	cfg.DrainDelay = 800 * time.Millisecond
	d, _ := openDetector(t)
	s, err := server.NewServer(cfg, server.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- server.Serve(ctx, ln, s, 10*time.Second, func(ctx context.Context) error { return s.Load(ctx, d) })
	}()
	base := "http://" + ln.Addr().String()
	c, _ := client.New(base)
	wctx, wcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer wcancel()
	if err := c.WaitReady(wctx); err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() {
		res, err := c.Classify(context.Background(), "네 고객님 금융감독원 안전계좌로 옮기셔야 합니다")
		if err == nil && (len(res) != 1 || res[0].Label == "") {
			err = fmt.Errorf("bad result %+v", res)
		}
		got <- err
	}()
	time.Sleep(150 * time.Millisecond)
	t0 := time.Now()
	cancel()
	// New work is still served during the delay.
	servedc := make(chan error, 1)
	go func() {
		time.Sleep(200 * time.Millisecond)
		st, _, body, err := tryDo("POST", base+"/v1/classify", `{"texts":["네 여보세요"]}`)
		if err == nil && st != 200 {
			err = fmt.Errorf("%d %s", st, body)
		}
		servedc <- err
	}()
	// Probe readiness every 20 ms until the server is gone. Serve sees the
	// cancellation on its own goroutine, so a probe racing it may still get
	// 200; once one probe has seen 503, every later one must too.
	var ready503, early200, refused int
	var stopped time.Duration
	for time.Since(t0) < 5*time.Second {
		st, _, body, err := tryDo("GET", base+"/v2/health/ready", "")
		if err != nil {
			refused++
			stopped = time.Since(t0)
			break
		}
		switch {
		case st == 503 && strings.Contains(body, "shutting_down"):
			ready503++
		case st == 200 && ready503 == 0 && time.Since(t0) < 300*time.Millisecond:
			early200++
		default:
			t.Errorf("readiness while draining (%v after cancel, %d 503s before): %d %s",
				time.Since(t0).Round(time.Millisecond), ready503, st, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := <-servedc; err != nil {
		t.Fatalf("a new request during the drain delay: %v", err)
	}
	if err := <-got; err != nil {
		t.Fatalf("in-flight request during shutdown: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	t.Logf("drain: %d readiness probes answered 503 shutting_down during the %v delay (new requests still served; %d probes raced the cancel and got 200); connection refused after %v",
		ready503, cfg.DrainDelay, early200, stopped.Round(time.Millisecond))
	if ready503 < 10 || refused != 1 || stopped < cfg.DrainDelay {
		t.Fatalf("drain delay not kept: %d 503s, stopped after %v", ready503, stopped)
	}
	if _, err := c.Classify(context.Background(), "네"); err == nil {
		t.Fatal("server still answering after shutdown")
	}
}

// tryDo is do without failing the test on a connection error.
func tryDo(method, url, body string) (int, http.Header, string, error) {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		return 0, nil, "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b), nil
}

// TestUnmatchedRoutes: a path or method the service does not have gets the
// same JSON error shape as every other error, and a 405 keeps Allow.
func TestUnmatchedRoutes(t *testing.T) {
	ts := newTestServer(t, testConfig(), true)
	for _, c := range []struct {
		method, path string
		status       int
		code, allow  string
	}{
		{"GET", "/nope", 404, "not_found", ""},
		{"POST", "/v1/classify/extra", 404, "not_found", ""},
		{"GET", "/v1/classify", 405, "method_not_allowed", "POST"},
		{"PUT", "/v1/model", 405, "method_not_allowed", "GET, HEAD"},
	} {
		st, h, body := do(t, c.method, ts.URL+c.path, "")
		if st != c.status || errCode(t, body) != c.code || h.Get("Content-Type") != "application/json" {
			t.Errorf("%s %s: %d %q %s; want %d with code %s", c.method, c.path, st, h.Get("Content-Type"), body, c.status, c.code)
		}
		if c.allow != "" && h.Get("Allow") != c.allow {
			t.Errorf("%s %s: Allow %q, want %q", c.method, c.path, h.Get("Allow"), c.allow)
		}
	}
	// Registered routes are untouched.
	if st, _, body := do(t, "GET", ts.URL+"/v1/model", ""); st != 200 {
		t.Fatalf("GET /v1/model: %d %s", st, body)
	}
}
