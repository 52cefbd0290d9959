package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// lineSink is a stdout that tells the test each complete line as it is
// written.
type lineSink struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	all   bytes.Buffer
	lines chan string
}

// raw is everything written.
func (s *lineSink) raw() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.all.String()
}

func newLineSink() *lineSink { return &lineSink{lines: make(chan string, 1000)} }

func (s *lineSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf.Write(p)
	s.all.Write(p)
	for {
		i := bytes.IndexByte(s.buf.Bytes(), '\n')
		if i < 0 {
			return len(p), nil
		}
		s.lines <- string(s.buf.Next(i + 1))
	}
}

// waitLine returns the next complete stdout line, failing after d.
func (s *lineSink) waitLine(t *testing.T, d time.Duration, what string) string {
	t.Helper()
	select {
	case l := <-s.lines:
		return l
	case <-time.After(d):
		t.Fatalf("no output line within %s: %s", d, what)
		return ""
	}
}

type runResult struct {
	err    error
	stderr string
}

// startCLI runs the program on its own goroutine with the given stdin.
func startCLI(ctx context.Context, stdin io.Reader, stdout io.Writer, args ...string) <-chan runResult {
	ch := make(chan runResult, 1)
	go func() {
		var errb bytes.Buffer
		err := run(ctx, args, func(string) string { return "" }, stdin, stdout, &errb)
		ch <- runResult{err, errb.String()}
	}()
	return ch
}

// `classify --input -` answers each record while the input is still open.
func TestClassifyLiveInput(t *testing.T) {
	pr, pw := io.Pipe()
	defer pw.Close()
	out := newLineSink()
	res := startCLI(context.Background(), pr, out, "classify", "--model", modelDir, "--backend", "native", "--input", "-")
	texts := []string{phishText, normText, "엄마 나야 폰이 고장나서 그러는데 상품권 좀 사서 보내줘"}
	for i, text := range texts {
		if _, err := io.WriteString(pw, text+"\n"); err != nil {
			t.Fatal(err)
		}
		// The input stays open: the verdict must come anyway.
		line := out.waitLine(t, time.Minute, "verdict for a record while the input is open")
		recs := jsonl(t, line)
		if len(recs) != 1 || recs[0]["id"] != []string{"1", "2", "3"}[i] || recs[0]["label"] == nil {
			t.Fatalf("record %d: got %q", i+1, line)
		}
	}
	pw.Close()
	select {
	case r := <-res:
		if r.err != nil {
			t.Fatalf("classify: %v\n%s", r.err, r.stderr)
		}
	case <-time.After(time.Minute):
		t.Fatal("classify did not end after its input closed")
	}
}

// Ctrl-C while classify waits for input ends it at once with exit 130,
// keeping the verdicts written.
func TestClassifyInterruptWhileWaiting(t *testing.T) {
	pr, pw := io.Pipe()
	defer pw.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := newLineSink()
	res := startCLI(ctx, pr, out, "classify", "--model", modelDir, "--backend", "native", "--input", "-")
	io.WriteString(pw, phishText+"\n")
	out.waitLine(t, time.Minute, "first verdict")
	cancel()
	select {
	case r := <-res:
		if code := exitCode(r.err); code != exitInterrupted || !strings.Contains(r.stderr, "interrupted after 1 records") {
			t.Fatalf("exit %d (%v), stderr %q; want %d and 1 record written", code, r.err, r.stderr, exitInterrupted)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Ctrl-C was not honoured while classify waited for input")
	}
}

// stallReader gives data on its first Read, then on its second signals
// that everything before was consumed and blocks until released.
type stallReader struct {
	data    string
	reads   int
	stalled chan struct{}
	release chan struct{}
}

func (s *stallReader) Read(p []byte) (int, error) {
	s.reads++
	if s.reads == 1 {
		return copy(p, s.data), nil
	}
	if s.reads == 2 {
		close(s.stalled)
	}
	<-s.release
	return 0, io.EOF
}

// Ctrl-C scores and writes every record already read, then exits 130.
func TestClassifyInterruptScoresWhatWasRead(t *testing.T) {
	in := &stallReader{data: phishText + "\n" + normText + "\n" + "택배 기사인데요 문 앞에 두고 갈게요\n",
		stalled: make(chan struct{}), release: make(chan struct{})}
	defer close(in.release)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out lockedBuffer
	res := startCLI(ctx, in, &out, "classify", "--model", modelDir, "--backend", "native", "--input", "-")
	select {
	case <-in.stalled: // the three lines were parsed; the reader waits for more
	case <-time.After(time.Minute):
		t.Fatal("classify never read its input")
	}
	cancel()
	var r runResult
	select {
	case r = <-res:
	case <-time.After(time.Minute):
		t.Fatal("Ctrl-C was not honoured")
	}
	if code := exitCode(r.err); code != exitInterrupted {
		t.Fatalf("exit %d (%v), want %d\n%s", code, r.err, exitInterrupted, r.stderr)
	}
	recs := jsonl(t, out.String())
	if len(recs) != 3 || !strings.Contains(r.stderr, "interrupted after 3 records") {
		t.Fatalf("want the 3 records read scored; got %d\n%s\n%s", len(recs), out.String(), r.stderr)
	}
	for i, rec := range recs {
		if rec["id"] != []string{"1", "2", "3"}[i] || rec["label"] == nil {
			t.Errorf("record %d: %v", i+1, rec)
		}
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// A --server that never answers does not hold Ctrl-C longer than the
// grace given to records already read.
func TestClassifyInterruptHungServer(t *testing.T) {
	arrived, release := make(chan struct{}, 10), make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release) // before Close, which waits for the handlers
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out lockedBuffer
	res := make(chan runResult, 1)
	go func() {
		var errb bytes.Buffer
		e := &env{ctx: ctx, getenv: func(string) string { return "" }, stdin: strings.NewReader(""), stdout: &out, stderr: &errb,
			interruptGrace: 100 * time.Millisecond}
		err := e.execute([]string{"classify", "--server", srv.URL, phishText})
		res <- runResult{err, errb.String()}
	}()
	select {
	case <-arrived:
	case <-time.After(time.Minute):
		t.Fatal("no request reached the server")
	}
	cancel()
	select {
	case r := <-res:
		if code := exitCode(r.err); code != exitInterrupted {
			t.Fatalf("exit %d (%v), want %d\n%s", code, r.err, exitInterrupted, r.stderr)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Ctrl-C waited on a hung server")
	}
}
