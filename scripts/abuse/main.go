// Command abuse replays, against `callwatch serve` on loopback, the faults a
// red-team run found (issue 15) and reports what the service does now: long
// segments next to normal calls, retries after a 504 or a lost answer,
// replayed and forked tokens, expired and reused calls, a store flood, call
// takeover by a guessed id, slow and oversized bodies, forged tokens, a weak
// key, the SIGTERM drain, and `callwatch stream` memory over many calls.
// Every scenario is bounded in requests and time; it starts its own servers
// on 127.0.0.1 and stops them.
//
//	go build -o bin/callwatch ./cmd/callwatch
//	go run ./scripts/abuse --server-bin bin/callwatch [--json abuse.json]
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/callwatch/callwatch"
	"github.com/callwatch/callwatch/api"
	"github.com/callwatch/callwatch/client"
	cwserver "github.com/callwatch/callwatch/server"
)

// The shared state key of the servers this script starts (base64 of 32
// bytes); the script knows it so it can forge tokens as an insider could.
const (
	keyID  = "abuse1"
	keyB64 = "q3vKkP0d2y8Zb1hF6tWmN4sXcR7uJ9eL5gA0iVoYz2E="
)

type sampleCall struct {
	ID       string `json:"id"`
	Kind     string `json:"kind"`
	Segments []struct {
		Text  string  `json:"text"`
		Start float64 `json:"start"`
		End   float64 `json:"end"`
	} `json:"segments"`
}

// finding is one scenario's outcome.
type finding struct {
	Name    string         `json:"name"`
	OK      bool           `json:"ok"`
	Figures map[string]any `json:"figures"`
	Notes   []string       `json:"notes,omitempty"`
}

type runner struct {
	bin      string
	samples  map[string]sampleCall
	hc       *http.Client
	findings []*finding
	deadline time.Time
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "abuse:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		bin     = flag.String("server-bin", "bin/callwatch", "callwatch binary")
		samples = flag.String("samples", "server/static/samples.json", "sample calls")
		out     = flag.String("json", "", "also write the findings as JSON here")
		maxTime = flag.Duration("max-time", 4*time.Minute, "stop after this long")
		only    = flag.String("only", "", "run only the scenarios whose name contains this (e.g. \"store flood\")")
	)
	flag.Parse()
	raw, err := os.ReadFile(*samples)
	if err != nil {
		return fmt.Errorf("sample calls: %w (run from the repository root)", err)
	}
	var f struct{ Calls []sampleCall }
	if err := json.Unmarshal(raw, &f); err != nil {
		return err
	}
	r := &runner{bin: *bin, samples: map[string]sampleCall{}, deadline: time.Now().Add(*maxTime),
		hc: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}}}
	for _, c := range f.Calls {
		r.samples[c.ID] = c
	}
	srv, err := r.start("main", "--drain-delay", "3s")
	if err != nil {
		return err
	}
	short, err := r.start("short-timeout", "--request-timeout", "150ms")
	if err != nil {
		srv.stop()
		return err
	}
	for _, sc := range []struct {
		name string
		fn   func(*finding, *server) error
		s    *server
	}{
		{"long segments next to normal calls", r.longSegments, srv},
		{"a 504'd segment is not applied", r.timeoutNotApplied, short},
		{"retry after a lost answer", r.retryLostAnswer, srv},
		{"replayed and forked tokens", r.replayFork, srv},
		{"expired and reused calls", r.expiredReused, srv},
		{"store flood", r.storeFlood, srv},
		{"call takeover by a guessed id", r.takeover, srv},
		{"forged tokens (with the key)", r.forged, srv},
		{"slow and unfinished bodies", r.slowBodies, srv},
		{"many small texts in big bodies", r.bigBodies, srv},
		{"drain on SIGTERM", r.drain, srv},
	} {
		if !strings.Contains(sc.name, *only) {
			continue
		}
		if time.Now().After(r.deadline) {
			return fmt.Errorf("--max-time reached before %q", sc.name)
		}
		fd := &finding{Name: sc.name, OK: true, Figures: map[string]any{}}
		r.findings = append(r.findings, fd)
		t0 := time.Now()
		if err := sc.fn(fd, sc.s); err != nil {
			fd.OK = false
			fd.Notes = append(fd.Notes, "error: "+err.Error())
		}
		fd.Figures["seconds"] = round(time.Since(t0).Seconds(), 2)
		r.print(fd)
	}
	short.stop()
	srv.stop()
	for _, sc := range []struct {
		name string
		fn   func(*finding) error
	}{
		{"weak state key", r.weakKey},
		{"stream memory over many calls", r.streamMemory},
	} {
		if !strings.Contains(sc.name, *only) {
			continue
		}
		fd := &finding{Name: sc.name, OK: true, Figures: map[string]any{}}
		r.findings = append(r.findings, fd)
		if err := sc.fn(fd); err != nil {
			fd.OK = false
			fd.Notes = append(fd.Notes, "error: "+err.Error())
		}
		r.print(fd)
	}
	js, _ := json.MarshalIndent(r.findings, "", "  ")
	if *out != "" {
		if err := os.WriteFile(*out, append(js, '\n'), 0o644); err != nil {
			return err
		}
	}
	failed := 0
	for _, fd := range r.findings {
		if !fd.OK {
			failed++
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d scenarios did not hold", failed, len(r.findings))
	}
	fmt.Printf("all %d scenarios held\n", len(r.findings))
	return nil
}

func (r *runner) print(fd *finding) {
	status := "ok  "
	if !fd.OK {
		status = "FAIL"
	}
	keys := make([]string, 0, len(fd.Figures))
	for k := range fd.Figures {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%v", k, fd.Figures[k]))
	}
	fmt.Printf("%s %s: %s\n", status, fd.Name, strings.Join(parts, " "))
	for _, n := range fd.Notes {
		fmt.Printf("     %s\n", n)
	}
}

// expect records a failed expectation.
func (fd *finding) expect(ok bool, format string, a ...any) {
	if !ok {
		fd.OK = false
		fd.Notes = append(fd.Notes, fmt.Sprintf(format, a...))
	}
}

// --- servers

type server struct {
	name string
	base string
	cmd  *exec.Cmd
	c    *client.Client
	done chan error
	log  *tail
}

// tail keeps the last lines a process wrote.
type tail struct {
	mu    sync.Mutex
	lines []string
}

func (t *tail) add(s string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lines = append(t.lines, s)
	if len(t.lines) > 50 {
		t.lines = t.lines[1:]
	}
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.Join(t.lines, "\n")
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func (r *runner) start(name string, extra ...string) (*server, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(r.bin, append([]string{"serve", "--addr", addr, "--log-level", "warn"}, extra...)...)
	cmd.Env = append(os.Environ(), "CALLWATCH_SERVER_STATE_KEYS="+keyID+":"+keyB64)
	s := &server{name: name, base: "http://" + addr, cmd: cmd, done: make(chan error, 1), log: &tail{}}
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w (build it with `go build -o bin/callwatch ./cmd/callwatch`)", r.bin, err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			s.log.add(sc.Text())
		}
		s.done <- cmd.Wait()
	}()
	s.c, _ = client.New(s.base, client.WithHTTPClient(r.hc))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := s.c.WaitReady(ctx); err != nil {
		s.stop()
		return nil, fmt.Errorf("server %s: %w\n%s", name, err, s.log)
	}
	return s, nil
}

func (s *server) stop() {
	if s.cmd.ProcessState != nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
	}
}

// metrics reads the server's unlabelled and simply labelled samples.
func (r *runner) metrics(s *server) map[string]float64 {
	m := map[string]float64{}
	resp, err := r.hc.Get(s.base + "/metrics")
	if err != nil {
		return m
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 8<<20))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		if i := strings.LastIndexByte(line, ' '); i > 0 {
			if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
				m[line[:i]] = v
			}
		}
	}
	return m
}

func mib(b float64) float64 { return round(b/(1<<20), 1) }

func round(f float64, d int) float64 {
	p := 1.0
	for range d {
		p *= 10
	}
	return float64(int64(f*p+0.5)) / p
}

func ms(d time.Duration) float64 { return round(float64(d)/float64(time.Millisecond), 1) }

func pct(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)]
}

func code(err error) string {
	var e *client.Error
	if errors.As(err, &e) {
		return strconv.Itoa(e.Status) + " " + string(e.Code)
	}
	if err != nil {
		return "transport"
	}
	return "200"
}

func expected(err error) int {
	var e *client.Error
	if errors.As(err, &e) && e.ExpectedSeq != nil {
		return *e.ExpectedSeq
	}
	return -1
}

func (r *runner) req(c sampleCall, i int) api.SegmentRequest {
	sg := c.Segments[i]
	return api.SegmentRequest{Text: sg.Text, Start: sg.Start, End: sg.End}
}

// phishing returns sample phishing text of about n bytes.
func (r *runner) phishing(n int) string {
	var parts []string
	size := 0
	for {
		for _, id := range []string{"sample-prosecutor", "sample-loan", "sample-family", "sample-remote-app"} {
			for _, sg := range r.samples[id].Segments {
				if size+len(sg.Text)+1 > n {
					return strings.Join(parts, " ")
				}
				parts = append(parts, sg.Text)
				size += len(sg.Text) + 1
			}
		}
	}
}

// --- scenarios

// longSegments: two staggered segments at the 64 KiB text limit whose
// alerts search reasons, while 8 other calls stream.
func (r *runner) longSegments(fd *finding, s *server) error {
	ctx := context.Background()
	normal := r.samples["sample-bank-deposit"]
	others := func(stop <-chan struct{}, rounds int) (lat []time.Duration, errs int) {
		var mu sync.Mutex
		var wg sync.WaitGroup
		for c := range 8 {
			wg.Go(func() {
				for round := range rounds {
					call := s.c.NewCall(fmt.Sprintf("other-%d-%d-%d", c, round, time.Now().UnixNano()))
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
						if err != nil {
							errs++
						}
						mu.Unlock()
					}
				}
			})
		}
		wg.Wait()
		return lat, errs
	}
	base, _ := others(nil, 3)
	m0 := r.metrics(s)
	huge := r.phishing(64 << 10)
	stop := make(chan struct{})
	type res struct {
		d     time.Duration
		alert bool
		err   error
	}
	hres := make(chan res, 2)
	for k := range 2 {
		go func() {
			time.Sleep(time.Duration(k) * 500 * time.Millisecond)
			t0 := time.Now()
			resp, err := s.c.Segment(ctx, fmt.Sprint("huge-", k), api.SegmentRequest{Text: huge, Seq: new(0)})
			hres <- res{time.Since(t0), resp.Alert != "" && len(resp.Reasons) > 0, err}
		}()
	}
	var during []time.Duration
	var errs int
	done := make(chan struct{})
	go func() { during, errs = others(stop, 200); close(done) }()
	h := []res{<-hres, <-hres}
	close(stop)
	<-done
	m1 := r.metrics(s)
	fd.Figures["segment_bytes"] = len(huge)
	fd.Figures["long_segment_ms"] = []float64{ms(h[0].d), ms(h[1].d)}
	fd.Figures["others_alone_p50_ms"], fd.Figures["others_alone_p99_ms"] = ms(pct(base, 50)), ms(pct(base, 99))
	fd.Figures["others_during_p50_ms"], fd.Figures["others_during_p99_ms"], fd.Figures["others_during_max_ms"] = ms(pct(during, 50)), ms(pct(during, 99)), ms(pct(during, 100))
	fd.Figures["others_segments"], fd.Figures["others_errors"] = len(during), errs
	fd.Figures["server_cpu_s"] = round(m1["process_cpu_seconds_total"]-m0["process_cpu_seconds_total"], 2)
	fd.Figures["rss_mib"] = fmt.Sprintf("%v→%v", mib(m0["process_resident_memory_bytes"]), mib(m1["process_resident_memory_bytes"]))
	for _, x := range h {
		fd.expect(x.err == nil && x.alert, "long segment: %v (alert with reasons: %v)", x.err, x.alert)
		fd.expect(x.d < 5*time.Second, "long segment took %v", x.d)
	}
	fd.expect(errs == 0, "%d of the other calls' segments failed", errs)
	fd.expect(pct(during, 100) < 2*time.Second, "another call's segment took %v", pct(during, 100))
	return nil
}

// timeoutNotApplied: on a server with a 150 ms deadline, a segment at the
// text limit answers 504, and the call still expects that segment.
func (r *runner) timeoutNotApplied(fd *finding, s *server) error {
	ctx := context.Background()
	first, err := s.c.Segment(ctx, "t504", api.SegmentRequest{Text: "여보세요 고객님", Seq: new(0)})
	if err != nil {
		return err
	}
	_, err = s.c.Segment(ctx, "t504", api.SegmentRequest{Text: r.phishing(64 << 10), Seq: new(1), Handle: first.Handle})
	fd.Figures["long_segment"] = code(err)
	_, err = s.c.Segment(ctx, "t504", api.SegmentRequest{Text: "네", Seq: new(2), Handle: first.Handle})
	fd.Figures["next_seq_after_504"] = code(err)
	fd.Figures["expected_seq"] = expected(err)
	resp, err2 := s.c.Segment(ctx, "t504", api.SegmentRequest{Text: "네 알겠습니다", Seq: new(1), Handle: first.Handle})
	fd.Figures["seq_1_again"] = fmt.Sprintf("%s segment %d", code(err2), resp.Segment)
	fd.expect(fd.Figures["long_segment"] == "504 timeout", "the long segment answered %v, want 504", fd.Figures["long_segment"])
	fd.expect(expected(err) == 1, "after the 504 the call expects seq %d, want 1 (the 504'd segment was applied)", expected(err))
	fd.expect(err2 == nil && resp.Segment == 1, "seq 1 after the 504: %v", err2)
	return nil
}

// retryLostAnswer: a client abandons a slow segment (its answer is lost)
// and sends it again; then sends it a third time. The call counts it once
// and ends where a clean run of the same segments ends.
func (r *runner) retryLostAnswer(fd *finding, s *server) error {
	ctx := context.Background()
	c := r.samples["sample-loan"]
	long := api.SegmentRequest{Text: r.phishing(32 << 10)}
	segs := []api.SegmentRequest{r.req(c, 0), r.req(c, 1), long, r.req(c, 2), r.req(c, 3)}
	// The reference: the same segments, once each, carried by the token.
	ref := s.c.NewCall("retry-ref")
	var want api.SegmentResponse
	for _, sg := range segs {
		var err error
		if want, err = ref.Feed(ctx, sg.Text, sg.Start, sg.End); err != nil {
			return err
		}
	}
	h := ""
	var last api.SegmentResponse
	abandoned, repeats := 0, 0
	for i, sg := range segs {
		sg.Seq, sg.Handle = new(i), h
		if i == 2 { // the client gives up before the answer comes
			actx, cancel := context.WithTimeout(ctx, 5*time.Millisecond)
			if _, err := s.c.Segment(actx, "retry", sg); err != nil {
				abandoned++
			}
			cancel()
			time.Sleep(2 * time.Second) // the server finishes scoring it meanwhile
		}
		resp, err := s.c.Segment(ctx, "retry", sg)
		if err != nil {
			return fmt.Errorf("segment %d: %w", i, err)
		}
		sg.Handle = resp.Handle                     // (for seq 0: the client got the handle this time)
		again, err := s.c.Segment(ctx, "retry", sg) // and its answer lost once more
		if err != nil || again.State != resp.State || again.Segment != i {
			fd.expect(false, "segment %d sent again: %v (same answer: %v)", i, err, again.State == resp.State)
		} else {
			repeats++
		}
		h, last = resp.Handle, resp
	}
	fd.Figures["abandoned"], fd.Figures["answered_again_identically"] = abandoned, repeats
	fd.Figures["segments_counted"] = last.Segment + 1
	fd.Figures["score_vs_clean_run"] = fmt.Sprintf("%v vs %v", last.Score, want.Score)
	fd.expect(last.Segment == len(segs)-1 && last.Score == want.Score && last.Level == want.Level,
		"after retries: segment %d score %v %s; clean run: segment %d score %v %s", last.Segment, last.Score, last.Level, want.Segment, want.Score, want.Level)
	return nil
}

// replayFork: an old token replayed, a token continued twice with
// different text, and seq disagreeing with the token.
func (r *runner) replayFork(fd *finding, s *server) error {
	ctx := context.Background()
	c := r.samples["sample-prosecutor"]
	var toks []string
	tok := ""
	for i := range 5 {
		req := r.req(c, i)
		req.State, req.Seq = tok, new(i)
		resp, err := s.c.Segment(ctx, "fork", req)
		if err != nil {
			return err
		}
		toks = append(toks, tok)
		tok = resp.State
	}
	toks = append(toks, tok)
	req := r.req(c, 1)
	req.State = toks[1]
	_, err := s.c.Segment(ctx, "fork", req)
	fd.Figures["old_token_replayed"] = fmt.Sprintf("%s expected_seq=%d", code(err), expected(err))
	fd.expect(expected(err) == 5, "old token: %v", err)
	req = r.req(c, 12)
	req.State = toks[4]
	_, err = s.c.Segment(ctx, "fork", req)
	fd.Figures["token_continued_twice"] = fmt.Sprintf("%s expected_seq=%d", code(err), expected(err))
	fd.expect(expected(err) == 5, "fork: %v", err)
	req = r.req(c, 4)
	req.State = toks[4]
	resp, err := s.c.Segment(ctx, "fork", req)
	fd.Figures["same_token_same_text"] = fmt.Sprintf("%s segment %d", code(err), resp.Segment)
	fd.expect(err == nil && resp.Segment == 4 && resp.State == toks[5], "the same request again: %v", err)
	req = r.req(c, 5)
	req.State, req.Seq = toks[5], new(7)
	_, err = s.c.Segment(ctx, "fork", req)
	fd.Figures["seq_disagrees_with_token"] = code(err)
	fd.expect(expected(err) == 5, "seq 7 with the token of 5: %v", err)
	return nil
}

// expiredReused: an ended call's next segment, a segment without token or
// handle, and a call id reused for a new call.
func (r *runner) expiredReused(fd *finding, s *server) error {
	ctx := context.Background()
	a, err := s.c.Segment(ctx, "reuse", api.SegmentRequest{Text: "서울중앙지검 수사관입니다 본인 명의 통장이 연루됐습니다", Seq: new(0)})
	if err != nil {
		return err
	}
	if err := s.c.EndCall(ctx, "reuse", a.Handle); err != nil {
		return err
	}
	_, err = s.c.Segment(ctx, "reuse", api.SegmentRequest{Text: "안전계좌로 옮기세요", Seq: new(1), Handle: a.Handle})
	fd.Figures["ended_call_next_segment"] = code(err)
	fd.expect(code(err) == "410 call_expired", "ended call: %v", err)
	_, err = s.c.Segment(ctx, "reuse", api.SegmentRequest{Text: "안전계좌로 옮기세요", Seq: new(1)})
	fd.Figures["later_segment_without_token_or_handle"] = code(err)
	fd.expect(code(err) == "410 call_expired", "no token, no handle: %v", err)
	b, err := s.c.Segment(ctx, "reuse", api.SegmentRequest{Text: "네 택배 기사입니다", Seq: new(0)})
	fd.Figures["call_id_reused"] = fmt.Sprintf("%s segment %d new_handle=%v", code(err), b.Segment, b.Handle != a.Handle)
	fd.expect(err == nil && b.Segment == 0 && b.Handle != a.Handle && b.Level == "none", "reused id: %+v %v", b, err)
	return nil
}

// storeFlood: one client opens 12,000 stored calls (the store holds
// 10,000) with 16 connections; everyone else must still be served.
func (r *runner) storeFlood(fd *finding, s *server) error {
	ctx := context.Background()
	m0 := r.metrics(s)
	victim, err := s.c.Segment(ctx, "flood-victim", api.SegmentRequest{Text: "여보세요 고객님", Seq: new(0)})
	if err != nil {
		return err
	}
	var next atomic.Int64
	var mu sync.Mutex
	codes := map[string]int{}
	t0 := time.Now()
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > 12000 || time.Since(t0) > time.Minute {
					return
				}
				_, err := s.c.Segment(ctx, fmt.Sprint("flood-", i), api.SegmentRequest{Text: "네", Seq: new(0)})
				mu.Lock()
				codes[code(err)]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	took := time.Since(t0)
	tokResp, tokErr := s.c.Segment(ctx, "flood-victim", api.SegmentRequest{Text: "계좌번호 확인하겠습니다", State: victim.State})
	_, newErr := s.c.Segment(ctx, "after-flood", api.SegmentRequest{Text: "네", Seq: new(0)})
	m1 := r.metrics(s)
	fd.Figures["flood_requests"], fd.Figures["flood_seconds"] = 12000, round(took.Seconds(), 2)
	fd.Figures["flood_answers"] = codes
	fd.Figures["token_call_after_flood"] = fmt.Sprintf("%s segment %d", code(tokErr), tokResp.Segment)
	fd.Figures["new_call_after_flood"] = code(newErr)
	fd.Figures["held_calls"] = m1["callwatch_active_calls"]
	fd.Figures["evicted_lru"] = m1[`callwatch_calls_dropped_total{reason="lru"}`] - m0[`callwatch_calls_dropped_total{reason="lru"}`]
	fd.Figures["rss_mib"] = fmt.Sprintf("%v→%v", mib(m0["process_resident_memory_bytes"]), mib(m1["process_resident_memory_bytes"]))
	fd.expect(codes["200"] == 12000, "flood answers %v, want 12,000 × 200", codes)
	fd.expect(tokErr == nil && tokResp.Segment == 1, "token call after the flood: %v", tokErr)
	fd.expect(newErr == nil, "new call after the flood: %v", newErr)
	return nil
}

// takeover: an attacker who knows a victim's call id.
func (r *runner) takeover(fd *finding, s *server) error {
	ctx := context.Background()
	secret := "국민은행 123-456-789012 계좌로 이체하세요"
	v0, err := s.c.Segment(ctx, "victim-call", api.SegmentRequest{Text: "검찰청 수사관입니다", Seq: new(0)})
	if err != nil {
		return err
	}
	v1, err := s.c.Segment(ctx, "victim-call", api.SegmentRequest{Text: secret, Seq: new(1), Handle: v0.Handle})
	if err != nil {
		return err
	}
	// The attacker: no handle, a guessed one, seq 0, DELETE.
	a0, err := s.c.Segment(ctx, "victim-call", api.SegmentRequest{Text: "네", Seq: new(0)})
	leak := err == nil && strings.Contains(a0.State+fmt.Sprint(a0.Reasons), "123-456")
	fd.Figures["attacker_seq0"] = fmt.Sprintf("%s own_call=%v segment=%d", code(err), a0.Handle != v0.Handle, a0.Segment)
	fd.expect(!leak && a0.Handle != v0.Handle && a0.Segment == 0, "the attacker's seq 0 reached the victim's call")
	// The attacker's token is its own: open it with the key and look for
	// the secret. The victim's token is sealed: its bytes do not show it.
	if _, _, _, st, err := cwserver.OpenState([]cwserver.StateKey{stateKey()}, a0.State); err != nil {
		return fmt.Errorf("opening the attacker's token: %w", err)
	} else if strings.Contains(fmt.Sprint(st.Top), "123-456") {
		fd.expect(false, "the attacker's token holds the victim's transcript")
	}
	sealed, err := sealedBytes(v1.State)
	fd.Figures["victim_token_shows_text"] = err != nil || bytes.Contains(sealed, []byte("123-456"))
	fd.expect(err == nil && !bytes.Contains(sealed, []byte("123-456")), "the victim's token shows its transcript (%v)", err)
	_, err = s.c.Segment(ctx, "victim-call", api.SegmentRequest{Text: "네", Seq: new(2), Handle: "AAAAAAAAAAAAAAAAAAAAAA"})
	fd.Figures["attacker_guessed_handle"] = code(err)
	fd.expect(code(err) == "410 call_expired", "guessed handle: %v", err)
	err = s.c.EndCall(ctx, "victim-call", "")
	fd.Figures["attacker_delete_no_handle"] = code(err)
	err2 := s.c.EndCall(ctx, "victim-call", "AAAAAAAAAAAAAAAAAAAAAA")
	fd.Figures["attacker_delete_guessed_handle"] = code(err2)
	fd.expect(err != nil && err2 != nil, "the attacker ended the call")
	v2, err := s.c.Segment(ctx, "victim-call", api.SegmentRequest{Text: "지금 바로 옮기셔야 합니다", Seq: new(2), Handle: v1.Handle})
	fd.Figures["victim_continues"] = fmt.Sprintf("%s segment %d", code(err), v2.Segment)
	fd.expect(err == nil && v2.Segment == 2, "the victim's call: %v", err)
	return nil
}

// stateKey is the servers' state key, for forging tokens as an insider.
func stateKey() cwserver.StateKey {
	key, _ := base64.StdEncoding.DecodeString(keyB64)
	return cwserver.StateKey{ID: keyID, Key: key}
}

// sealedBytes is what a token shows to anyone without the key: the
// base64url part after "cw3.<kid>.".
func sealedBytes(tok string) ([]byte, error) {
	i := strings.LastIndexByte(tok, '.')
	if !strings.HasPrefix(tok, "cw3.") || i < 0 {
		return nil, errors.New("not a cw3 token")
	}
	return base64.RawURLEncoding.DecodeString(tok[i+1:])
}

// forge opens a token with the servers' key, rewrites its state and seals
// it again, as someone holding the key could.
func forge(tok string, edit func(st *callwatch.SessionState)) (string, error) {
	k := stateKey()
	callID, handle, chain, st, err := cwserver.OpenState([]cwserver.StateKey{k}, tok)
	if err != nil {
		return "", err
	}
	edit(&st)
	return cwserver.SealState(k, callID, handle, chain, st)
}

func (r *runner) forged(fd *finding, s *server) error {
	ctx := context.Background()
	good, err := s.c.Segment(ctx, "forged", api.SegmentRequest{Text: "검찰청 수사관입니다 명의가 도용됐습니다", Seq: new(0)})
	if err != nil {
		return err
	}
	top := make([]callwatch.TopSegment, 5000)
	for i := range top {
		top[i] = callwatch.TopSegment{Text: "x", Index: 0, Delta: 0.1, PhraseWords: 1}
	}
	for _, c := range []struct {
		name, text string
		edit       func(*callwatch.SessionState)
	}{
		// U+200B: a segment with no words (the state is kept as it was)
		{"score_1e308_empty_segment", "\u200b", func(st *callwatch.SessionState) { st.Score = 1e308 }},
		{"reasons_5000", "네", func(st *callwatch.SessionState) { st.Top = top }},
		{"segment_-1", "네", func(st *callwatch.SessionState) { st.Segments = -1 }},
		{"reason_phrase_past_its_text", "네", func(st *callwatch.SessionState) {
			st.Top = []callwatch.TopSegment{{Text: "검찰청 수사관입니다", Index: 0, Delta: 0.1, PhraseAt: 40, PhraseWords: 2}}
		}},
	} {
		tok, err := forge(good.State, c.edit)
		if err != nil {
			return err
		}
		body, _ := json.Marshal(api.SegmentRequest{Text: c.text, State: tok})
		resp, err := r.hc.Post(s.base+"/v1/calls/forged/segments", "application/json", bytes.NewReader(body))
		if err != nil {
			return err
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var eb api.ErrorBody
		jsonOK := json.Unmarshal(b, &eb) == nil && eb.Error.Code != ""
		fd.Figures[c.name] = fmt.Sprintf("%d %s (%d-byte JSON body)", resp.StatusCode, eb.Error.Code, len(b))
		fd.expect(resp.StatusCode == 400 && eb.Error.Code == api.CodeInvalidState && jsonOK, "%s: %d %q", c.name, resp.StatusCode, b)
	}
	return nil
}

// slowBodies: 150 bodies sent at 1 byte a second and 150 chunked bodies
// never finished, against the 10 s request deadline and the 64 MiB cap on
// body bytes in flight.
func (r *runner) slowBodies(fd *finding, s *server) error {
	m0 := r.metrics(s)
	addr := strings.TrimPrefix(s.base, "http://")
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	defer func() { close(stop); wg.Wait() }()
	for i := range 300 {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			return err
		}
		conns = append(conns, conn)
		head := "POST /v1/classify HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
		if i%2 == 0 {
			io.WriteString(conn, head+"Content-Length: 100000\r\n\r\n{")
			wg.Go(func() { // one byte a second, for at most 15 s
				for range 15 {
					select {
					case <-stop:
						return
					case <-time.After(time.Second):
						if _, err := conn.Write([]byte(" ")); err != nil {
							return
						}
					}
				}
			})
		} else {
			io.WriteString(conn, head+"Transfer-Encoding: chunked\r\n\r\n5\r\n{\"tex\r\n")
		}
	}
	time.Sleep(time.Second)
	m1 := r.metrics(s)
	// Each connection gets its answer once the deadline has passed.
	statuses := map[int]int{}
	var smu sync.Mutex
	var rwg sync.WaitGroup
	for _, c := range conns {
		rwg.Go(func() {
			c.SetReadDeadline(time.Now().Add(15 * time.Second))
			st := 0
			if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err == nil {
				st = resp.StatusCode
				resp.Body.Close()
			}
			smu.Lock()
			statuses[st]++
			smu.Unlock()
		})
	}
	rwg.Wait()
	time.Sleep(500 * time.Millisecond)
	m2 := r.metrics(s)
	fd.Figures["connections"] = len(conns)
	fd.Figures["answers"] = statuses
	fd.Figures["goroutines"] = fmt.Sprintf("%v→%v→%v", m0["go_goroutines"], m1["go_goroutines"], m2["go_goroutines"])
	fd.Figures["rss_mib"] = fmt.Sprintf("%v→%v→%v", mib(m0["process_resident_memory_bytes"]), mib(m1["process_resident_memory_bytes"]), mib(m2["process_resident_memory_bytes"]))
	// 408 once the deadline passed, or 429 at once for a body that did not
	// fit server.max_inflight_bytes (a chunked body reserves max_body_bytes).
	fd.expect(statuses[408]+statuses[429] == len(conns), "answers %v, want %d × 408 or 429", statuses, len(conns))
	fd.expect(m2["go_goroutines"] < m0["go_goroutines"]+20, "goroutines left: %v (from %v)", m2["go_goroutines"], m0["go_goroutines"])
	return nil
}

// bigBodies: 32 concurrent 840 KB bodies of tiny texts.
func (r *runner) bigBodies(fd *finding, s *server) error {
	m0 := r.metrics(s)
	body := `{"texts":[` + strings.Repeat(`"a",`, 210000) + `"a"]}`
	statuses := map[string]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			resp, err := r.hc.Post(s.base+"/v1/classify", "application/json", strings.NewReader(body))
			k := "transport"
			if err == nil {
				var eb api.ErrorBody
				json.NewDecoder(resp.Body).Decode(&eb)
				resp.Body.Close()
				k = fmt.Sprintf("%d %s", resp.StatusCode, eb.Error.Code)
			}
			mu.Lock()
			statuses[k]++
			mu.Unlock()
		})
	}
	wg.Wait()
	m1 := r.metrics(s)
	fd.Figures["body_bytes"] = len(body)
	fd.Figures["answers"] = statuses
	fd.Figures["rss_mib"] = fmt.Sprintf("%v→%v", mib(m0["process_resident_memory_bytes"]), mib(m1["process_resident_memory_bytes"]))
	fd.expect(statuses["413 too_many_texts"]+statuses["429 overloaded"] == 32, "answers %v", statuses)
	fd.expect(m1["process_resident_memory_bytes"]-m0["process_resident_memory_bytes"] < 100<<20, "RSS grew by %v MiB", mib(m1["process_resident_memory_bytes"]-m0["process_resident_memory_bytes"]))
	return nil
}

// drain: SIGTERM with a 3 s drain delay while probes poll readiness every
// 50 ms and a request is in flight.
func (r *runner) drain(fd *finding, s *server) error {
	ctx := context.Background()
	var ok200, ready503, refused, other atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; i < 400; i++ { // at most 20 s
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			resp, err := r.hc.Get(s.base + "/v2/health/ready")
			switch {
			case err != nil:
				refused.Add(1)
				if refused.Load() >= 5 {
					return
				}
			case resp.StatusCode == 200:
				ok200.Add(1)
			case resp.StatusCode == 503:
				ready503.Add(1)
			default:
				other.Add(1)
			}
			if resp != nil {
				resp.Body.Close()
			}
		}
	})
	time.Sleep(300 * time.Millisecond)
	inflight := make(chan error, 1)
	go func() {
		_, err := s.c.Segment(ctx, "drain-long", api.SegmentRequest{Text: r.phishing(64 << 10), Seq: new(0)})
		inflight <- err
	}()
	time.Sleep(50 * time.Millisecond)
	t0 := time.Now()
	s.cmd.Process.Signal(syscall.SIGTERM)
	time.Sleep(time.Second)
	_, duringErr := s.c.Classify(ctx, "네 여보세요")
	err := <-inflight
	var exitErr error
	select {
	case exitErr = <-s.done:
	case <-time.After(30 * time.Second):
		s.cmd.Process.Kill()
		exitErr = <-s.done
	}
	took := time.Since(t0)
	close(stop)
	wg.Wait()
	fd.Figures["ready_200_before"] = ok200.Load()
	fd.Figures["ready_503_during_drain"] = ready503.Load()
	fd.Figures["refused_after"] = refused.Load()
	fd.Figures["new_request_during_drain"] = code(duringErr)
	fd.Figures["in_flight_request"] = code(err)
	fd.Figures["exit_after_s"] = round(took.Seconds(), 2)
	fd.expect(ready503.Load() >= 20, "readiness answered 503 %d times during the 3 s delay", ready503.Load())
	fd.expect(err == nil && duringErr == nil, "in flight: %v; during the delay: %v", err, duringErr)
	fd.expect(exitErr == nil, "server exit: %v", exitErr)
	return nil
}

// weakKey: `serve` with the 16-character raw key the red team used.
func (r *runner) weakKey(fd *finding) error {
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, r.bin, "serve", "--addr", addr)
	cmd.Env = append(os.Environ(), "CALLWATCH_SERVER_STATE_KEY=aaaaaaaaaaaaaaaa", "CALLWATCH_SERVER_STATE_KEYS=")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	exit := 0
	if errors.As(err, &ee) {
		exit = ee.ExitCode()
	}
	msg := strings.TrimSpace(string(out))
	fd.Figures["exit"] = exit
	fd.Figures["message"] = msg
	fd.expect(exit == 2 && strings.Contains(msg, "state_key"), "serve with a weak key: exit %d: %s", exit, msg)
	return nil
}

// streamMemory: peak RSS of `callwatch stream` over 30,000 one-segment
// calls, with and without end markers.
func (r *runner) streamMemory(fd *finding) error {
	for _, end := range []bool{true, false} {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		cmd := exec.CommandContext(ctx, r.bin, "stream")
		pr, pw := io.Pipe()
		cmd.Stdin, cmd.Stdout = pr, io.Discard
		if err := cmd.Start(); err != nil {
			cancel()
			return err
		}
		go func() {
			bw := bufio.NewWriter(pw)
			for i := range 30000 {
				fmt.Fprintf(bw, "{\"call_id\":\"m-%d\",\"start\":0,\"end\":2,\"text\":\"여보세요 고객님 택배 주소 확인차 연락드렸습니다\"}\n", i)
				if end {
					fmt.Fprintf(bw, "{\"call_id\":\"m-%d\",\"end\":true}\n", i)
				}
			}
			bw.Flush()
			pw.Close()
		}()
		var hwm int64
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
	poll:
		for {
			select {
			case err := <-done:
				cancel()
				if err != nil {
					return err
				}
				break poll
			case <-time.After(20 * time.Millisecond):
				if kb := vmHWM(cmd.Process.Pid); kb > hwm {
					hwm = kb
				}
			}
		}
		key := "peak_rss_mib_with_end_markers"
		if !end {
			key = "peak_rss_mib_without"
		}
		fd.Figures[key] = round(float64(hwm)/1024, 1)
	}
	fd.Figures["calls"] = 30000
	return nil
}

// vmHWM reads a process's peak resident set (kB) from /proc.
func vmHWM(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n
		}
	}
	return 0
}
