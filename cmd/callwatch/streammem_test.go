package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// lineCounter counts the output lines of a stream without keeping them.
type lineCounter struct{ n atomic.Int64 }

func (c *lineCounter) Write(p []byte) (int, error) {
	c.n.Add(int64(bytes.Count(p, []byte("\n"))))
	return len(p), nil
}

func heapInuse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// TestStreamMemoryFlat: `stream` forgets a call at its end marker, so its
// memory stays flat over 100,000 short calls (each call used to keep its
// session, several KB, for as long as the stream ran).
func TestStreamMemoryFlat(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: 100,000 calls")
	}
	h1, h2, took := streamHeap(t, 100000, 10000, true)
	growth := int64(h2) - int64(h1)
	t.Logf("100,000 calls with end markers in %v; heap in use %.1f MiB after 10,000 calls, %.1f MiB after 100,000 (%+.1f MiB)",
		took.Round(time.Millisecond), float64(h1)/(1<<20), float64(h2)/(1<<20), float64(growth)/(1<<20))
	if growth > 16<<20 {
		t.Fatalf("heap grew by %.1f MiB over 90,000 calls that all ended", float64(growth)/(1<<20))
	}
	// The same without end markers keeps every call: the check above would
	// see it.
	k1, k2, _ := streamHeap(t, 12000, 2000, false)
	perCall := (int64(k2) - int64(k1)) / 10000
	t.Logf("without end markers: %.1f MiB after 2,000 calls, %.1f MiB after 12,000: %d bytes kept per call", float64(k1)/(1<<20), float64(k2)/(1<<20), perCall)
	if perCall < 1000 {
		t.Fatalf("calls without an end marker kept only %d bytes each; the flat result above proves nothing", perCall)
	}
}

// streamHeap streams calls one-segment calls (with or without end markers)
// and returns the heap in use after checkpoint calls and after all.
func streamHeap(t *testing.T, calls, checkpoint int, endMarkers bool) (h1, h2 uint64, took time.Duration) {
	pr, pw := io.Pipe()
	out := &lineCounter{}
	e := &env{ctx: context.Background(), getenv: func(string) string { return "" }, stdin: pr, stdout: out, stderr: io.Discard}
	done := make(chan error, 1)
	go func() {
		done <- runEnviron(e.ctx, []string{"stream", "--model", modelDir, "--backend", "native"}, e.getenv, nil, e.stdin, e.stdout, e.stderr)
	}()
	// waitOut waits until the first n calls have been answered.
	waitOut := func(n int) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Minute)
		for out.n.Load() < int64(n) {
			if time.Now().After(deadline) {
				t.Fatalf("only %d of %d calls answered in 5 minutes", out.n.Load(), n)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	t0 := time.Now()
	gate, last := make(chan struct{}), make(chan struct{})
	go func() {
		defer pw.Close()
		defer func() { <-last }() // keep the stream open until it is measured
		for i := range calls {
			if i == checkpoint {
				<-gate // measure with the input stopped
			}
			fmt.Fprintf(pw, "{\"call_id\":\"call-%d\",\"start\":0,\"end\":1.2,\"text\":\"네 여보세요 고객님\"}\n", i)
			if endMarkers {
				fmt.Fprintf(pw, "{\"call_id\":\"call-%d\",\"end\":true}\n", i)
			}
		}
	}()
	waitOut(checkpoint)
	h1 = heapInuse()
	close(gate)
	waitOut(calls)
	h2 = heapInuse()
	close(last)
	if err := <-done; err != nil {
		t.Fatalf("stream: %v", err)
	}
	return h1, h2, time.Since(t0)
}

// TestStreamEndAndIdle: after its end marker, or after --idle without a
// segment, a call is forgotten: its next segment starts a fresh call. A
// call within the idle time goes on.
func TestStreamEndAndIdle(t *testing.T) {
	first := `{"call_id":"a","start":0,"end":3,"text":"서울중앙지검 수사관입니다 본인 명의 통장이 사건에 연루됐습니다"}`
	second := `{"call_id":"a","start":3,"end":6,"text":"안전계좌로 이체하셔야 합니다"}`
	// scores lists a stream's score events (not alerts).
	scoresOf := func(out string) []any {
		var s []any
		for _, rec := range jsonl(t, out) {
			if _, alert := rec["alert"]; !alert {
				s = append(s, rec["score"])
			}
		}
		return s
	}
	score := func(out string, i int) any { return scoresOf(out)[i] }

	fresh := runCLI(t, second+"\n", nil, "stream", "--model", modelDir, "--backend", "native")
	cont := runCLI(t, first+"\n"+second+"\n", nil, "stream", "--model", modelDir, "--backend", "native")
	ended := runCLI(t, first+"\n"+`{"call_id":"a","end":true}`+"\n"+second+"\n", nil, "stream", "--model", modelDir, "--backend", "native")
	for _, r := range []result{fresh, cont, ended} {
		if r.err != nil {
			t.Fatalf("stream: %v\n%s", r.err, r.stderr)
		}
	}
	if score(cont.stdout, 1) == score(fresh.stdout, 0) {
		t.Fatal("the test needs a second segment that scores differently alone and in the call")
	}
	if got := score(ended.stdout, 1); got != score(fresh.stdout, 0) {
		t.Errorf("after the end marker the call went on: %v, fresh %v", got, score(fresh.stdout, 0))
	}
	if n := len(scoresOf(ended.stdout)); n != 2 {
		t.Errorf("the end marker printed a score: %d score events\n%s", n, ended.stdout)
	}

	// --idle: a slow feeder, so that time passes between lines.
	idle := func(pause time.Duration) string {
		pr, pw := io.Pipe()
		var out bytes.Buffer
		var wg sync.WaitGroup
		wg.Go(func() {
			defer pw.Close()
			io.WriteString(pw, first+"\n")
			time.Sleep(pause)
			io.WriteString(pw, `{"call_id":"b","text":"네"}`+"\n") // another call's segment runs the expiry
			io.WriteString(pw, second+"\n")
		})
		err := run(context.Background(), []string{"stream", "--model", modelDir, "--backend", "native", "--idle", "300ms"},
			func(string) string { return "" }, pr, &out, io.Discard)
		wg.Wait()
		if err != nil {
			t.Fatal(err)
		}
		return out.String()
	}
	var idleOut string
	for _, line := range jsonl(t, idle(600*time.Millisecond)) {
		if _, alert := line["alert"]; line["call_id"] == "a" && !alert {
			idleOut += fmt.Sprint(line["score"]) + " "
		}
	}
	if want := fmt.Sprint(score(cont.stdout, 0)) + " " + fmt.Sprint(score(fresh.stdout, 0)) + " "; idleOut != want {
		t.Errorf("idle call: scores %q, want %q (forgotten, then fresh)", idleOut, want)
	}
	var liveOut string
	for _, line := range jsonl(t, idle(0)) {
		if _, alert := line["alert"]; line["call_id"] == "a" && !alert {
			liveOut += fmt.Sprint(line["score"]) + " "
		}
	}
	if want := fmt.Sprint(score(cont.stdout, 0)) + " " + fmt.Sprint(score(cont.stdout, 1)) + " "; liveOut != want {
		t.Errorf("call within --idle: scores %q, want %q (continued)", liveOut, want)
	}

	for _, c := range []struct{ in, want string }{
		{`{"call_id":"a","end":true,"text":"네"}`, "carries no"},
		{`{"call_id":"a","end":"soon","text":"네"}`, "time in seconds, or true"},
	} {
		r := runCLI(t, c.in+"\n", nil, "stream", "--model", modelDir, "--backend", "native")
		if r.code != exitFailed || !strings.Contains(r.stdout, c.want) {
			t.Errorf("%s: exit %d, %s; want an error record containing %q", c.in, r.code, r.stdout, c.want)
		}
	}
	if r := runCLI(t, "", nil, "stream", "--model", modelDir, "--idle", "-1s"); r.code != exitUsage {
		t.Errorf("--idle -1s: exit %d", r.code)
	}
}

// TestServeStateKeys: `serve` refuses weak or malformed state keys with a
// clear error before it listens.
func TestServeStateKeys(t *testing.T) {
	k32 := "MDEyMzQ1Njc4OWFiY2RlZmdoaWprbG1ub3BxcnN0dXY="
	for _, c := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"CALLWATCH_SERVER_STATE_KEY": "aaaaaaaaaaaaaaaa"}, "head -c 32 /dev/urandom | base64"},
		{map[string]string{"CALLWATCH_SERVER_STATE_KEY": "not base64 at all!"}, "not base64"},
		{map[string]string{"CALLWATCH_SERVER_STATE_KEYS": k32}, "id:base64"},
		{map[string]string{"CALLWATCH_SERVER_STATE_KEYS": "a:" + k32 + ",a:" + k32}, "twice"},
		{map[string]string{"CALLWATCH_SERVER_STATE_KEYS": "a:" + k32, "CALLWATCH_SERVER_STATE_KEY": k32}, "not both"},
	} {
		r := runCLI(t, "", c.env, "serve", "--model", modelDir, "--addr", "127.0.0.1:0")
		if r.code != exitUsage || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%v: exit %d, %q; want exit %d naming %q", c.env, r.code, r.stderr, exitUsage, c.want)
		}
	}
}
