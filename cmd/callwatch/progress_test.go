package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestProgressLine(t *testing.T) {
	var buf bytes.Buffer
	t0 := time.Unix(1000, 0)
	now := t0
	p := &progress{w: &buf, on: true, now: func() time.Time { return now }, start: t0, every: defaultProgressEvery}
	p.setTotal(100)
	now = t0.Add(2 * time.Second)
	p.update(50, 1)
	if got, want := buf.String(), "\r\x1b[Kcallwatch: 50/100 records (1 failed), 25/s, 2s left"; got != want {
		t.Errorf("known total: %q, want %q", got, want)
	}
	buf.Reset()
	now = now.Add(10 * time.Millisecond)
	p.update(51, 1)
	if buf.Len() != 0 {
		t.Errorf("redrawn within %s: %q", p.every, buf.String())
	}
	// An estimated total that is passed is dropped, with the time left.
	if got, want := p.line(120, 0, t0.Add(4*time.Second)), "callwatch: 120 records, 30/s"; got != want {
		t.Errorf("passed total: %q, want %q", got, want)
	}
	p.setTotal(0)
	if got, want := p.line(10, 0, t0.Add(time.Second)), "callwatch: 10 records, 10/s"; got != want {
		t.Errorf("unknown total: %q, want %q", got, want)
	}
	// Not a terminal: nothing at all.
	buf.Reset()
	q := (&env{stderr: &buf, stdout: io.Discard}).newProgress()
	q.update(1, 0)
	q.done(1, 0)
	if q.on || buf.Len() != 0 {
		t.Errorf("progress on a buffer: on=%v, wrote %q", q.on, buf.String())
	}
}

func TestCountLines(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		data string
		csv  bool
		want int
	}{{"a\nb\nc\n", false, 3}, {"a\nb\nc", false, 3}, {"", false, 0}, {"id,text\n1,a\n2,b\n", true, 2}} {
		p := filepath.Join(dir, "f")
		os.WriteFile(p, []byte(tc.data), 0o644)
		if got := countLines(p, tc.csv); got != tc.want {
			t.Errorf("countLines(%q, csv %v) = %d, want %d", tc.data, tc.csv, got, tc.want)
		}
	}
	if countLines(filepath.Join(dir, "missing"), false) != 0 {
		t.Error("a missing file counts")
	}
}

// renderTerminal plays output on a one-line-at-a-time terminal (\r goes to
// the line start, ESC[K erases to its end, other bytes overwrite) and
// returns the lines left on the screen.
func renderTerminal(raw string) []string {
	var lines []string
	var cur []byte
	col := 0
	for i := 0; i < len(raw); i++ {
		switch {
		case raw[i] == '\r':
			col = 0
		case raw[i] == '\n':
			lines = append(lines, string(cur))
			cur, col = nil, 0
		case strings.HasPrefix(raw[i:], "\x1b[K"):
			cur = cur[:col]
			i += 2
		default:
			if col < len(cur) {
				cur[col] = raw[i]
			} else {
				cur = append(cur, raw[i])
			}
			col++
		}
	}
	if len(cur) > 0 {
		lines = append(lines, string(cur))
	}
	return lines
}

// checkScreen: every line on the screen is a verdict, but the last, which
// is the final count.
func checkScreen(t *testing.T, raw string, records int) {
	t.Helper()
	lines := renderTerminal(raw)
	if len(lines) != records+1 {
		t.Fatalf("screen has %d lines, want %d verdicts and the final count:\n%s", len(lines), records, strings.Join(lines, "\n"))
	}
	jsonl(t, strings.Join(lines[:records], "\n"))
	if last := lines[records]; !strings.HasPrefix(last, "callwatch: ") || !strings.Contains(last, "records (0 failed) in") {
		t.Errorf("last line %q is not the final count", last)
	}
}

// With stdout and stderr on the same terminal, verdict lines and the
// progress line never mix; the total is shown when known.
func TestProgressSharedTerminal(t *testing.T) {
	t.Run("live", func(t *testing.T) {
		pr, pw := io.Pipe()
		defer pw.Close()
		term := newLineSink() // stdout and stderr both
		res := startCLIShared(pr, term, "classify", "--model", modelDir, "--backend", "native", "--input", "-")
		texts := []string{phishText, normText, "택배 기사인데요 문 앞에 두고 갈게요"}
		for _, text := range texts {
			io.WriteString(pw, text+"\n")
			term.waitLine(t, time.Minute, "a verdict")
		}
		pw.Close()
		r := <-res
		if r.err != nil {
			t.Fatal(r.err)
		}
		raw := term.raw()
		if !strings.Contains(raw, "callwatch: 2 records") {
			t.Errorf("no progress line between records: %q", raw)
		}
		checkScreen(t, raw, len(texts))
	})

	t.Run("file total", func(t *testing.T) {
		in := filepath.Join(t.TempDir(), "calls.txt")
		os.WriteFile(in, []byte(phishText+"\n"+normText+"\n\n택배 기사인데요\n"), 0o644)
		term := newLineSink()
		r := <-startCLIShared(strings.NewReader(""), term, "classify", "--model", modelDir, "--backend", "native", "--input", in)
		if r.err != nil {
			t.Fatal(r.err)
		}
		raw := term.raw()
		if !strings.Contains(raw, "/4 records") { // lines counted, blank included: an estimate
			t.Errorf("no total from the file's lines: %q", raw)
		}
		checkScreen(t, raw, 3)
	})

	t.Run("arguments total", func(t *testing.T) {
		term := newLineSink()
		r := <-startCLIShared(strings.NewReader(""), term, "classify", "--model", modelDir, "--backend", "native", phishText, normText)
		if r.err != nil {
			t.Fatal(r.err)
		}
		raw := term.raw()
		if !strings.Contains(raw, "callwatch: 2/2 records") {
			t.Errorf("no total from the arguments: %q", raw)
		}
		checkScreen(t, raw, 2)
	})
}

// startCLIShared runs the program with stdout and stderr on one writer
// that counts as a terminal, the progress line redrawn at every update.
func startCLIShared(stdin io.Reader, term io.Writer, args ...string) <-chan runResult {
	ch := make(chan runResult, 1)
	e := &env{ctx: context.Background(), getenv: func(string) string { return "" }, stdin: stdin, stdout: term, stderr: term,
		isTerminal: func(io.Writer) bool { return true }, progressEvery: time.Nanosecond}
	go func() { ch <- runResult{err: e.execute(args)} }()
	return ch
}
