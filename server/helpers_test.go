package server_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/callwatch/callwatch"
	"github.com/callwatch/callwatch/client"
	"github.com/callwatch/callwatch/models"
	cwruntime "github.com/callwatch/callwatch/runtime"
	"github.com/callwatch/callwatch/runtime/ort"
	"github.com/callwatch/callwatch/server"
)

var shipped = filepath.Join("..", "models", models.DefaultName)

// testKey is shared by "replicas" in tests, as a deployment would share it.
var testKey = server.StateKey{ID: "test1", Key: []byte("0123456789abcdefghijklmnopqrstuv")}

// countingBackend is the real backend with a count of Run calls, so tests
// can see how many backend calls concurrent requests became. gate, when
// set, holds every Run until it is closed.
type countingBackend struct {
	cwruntime.Backend
	runs    atomic.Int64
	waiting atomic.Int64
	gate    chan struct{}
	delay   atomic.Int64 // nanoseconds every Run sleeps first
}

func (c *countingBackend) Run(ctx context.Context, in cwruntime.Input) (cwruntime.Output, error) {
	c.runs.Add(1)
	if d := c.delay.Load(); d > 0 {
		time.Sleep(time.Duration(d))
	}
	if c.gate != nil {
		c.waiting.Add(1)
		<-c.gate
		c.waiting.Add(-1)
	}
	return c.Backend.Run(ctx, in)
}

// openDetector loads the shipped bundle on onnxruntime when its library
// loads (`make ort`), else on the pure-Go backend.
func openDetector(t testing.TB) (*callwatch.Detector, *countingBackend) {
	t.Helper()
	b, err := models.Load(shipped)
	if err != nil {
		t.Fatalf("load shipped bundle: %v", err)
	}
	be, err := callwatch.OpenBackend(callwatch.BackendAuto, b, ort.Options{}, func(msg string) { t.Log(msg) })
	if err != nil {
		t.Fatalf("open backend: %v", err)
	}
	cb := &countingBackend{Backend: be}
	d, err := callwatch.New(b, cb)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d, cb
}

func testConfig() server.Config {
	c := server.DefaultConfig()
	c.StateKeys = []server.StateKey{testKey}
	return c
}

type testServer struct {
	*server.Server
	URL string
	C   *client.Client
	D   *callwatch.Detector
	B   *countingBackend
	hs  *httptest.Server
}

// newTestServer starts a replica with its own detector; load=false leaves
// it before Load (not ready).
func newTestServer(t testing.TB, cfg server.Config, load bool) *testServer {
	t.Helper()
	d, cb := openDetector(t)
	return newTestServerWith(t, cfg, d, cb, load)
}

func newTestServerWith(t testing.TB, cfg server.Config, d *callwatch.Detector, cb *countingBackend, load bool) *testServer {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	s, err := server.NewServer(cfg, server.Deps{Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s)
	t.Cleanup(func() { hs.Close(); s.Close() })
	if load {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := s.Load(ctx, d); err != nil {
			t.Fatalf("Load: %v", err)
		}
	}
	c, err := client.New(hs.URL)
	if err != nil {
		t.Fatal(err)
	}
	return &testServer{Server: s, URL: hs.URL, C: c, D: d, B: cb, hs: hs}
}

// testWriter sends server logs to t.Log (only shown on failure or -v).
type testWriter struct{ t testing.TB }

var logMu sync.Mutex

func (w testWriter) Write(p []byte) (int, error) {
	logMu.Lock()
	defer logMu.Unlock()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

type sampleCall struct {
	ID       string `json:"id"`
	Kind     string `json:"kind"`
	Segments []struct {
		Text  string  `json:"text"`
		Start float64 `json:"start"`
		End   float64 `json:"end"`
	} `json:"segments"`
}

// samples are the calls bundled with the monitor page.
func samples(t testing.TB) map[string]sampleCall {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("static", "samples.json"))
	if err != nil {
		t.Fatal(err)
	}
	var f struct{ Calls []sampleCall }
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	m := map[string]sampleCall{}
	for _, c := range f.Calls {
		m[c.ID] = c
	}
	return m
}

func (c sampleCall) text() string {
	var parts []string
	for _, s := range c.Segments {
		parts = append(parts, s.Text)
	}
	return strings.Join(parts, " ")
}

// do sends a raw request and returns status, headers and body.
func do(t testing.TB, method, url, body string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// errCode pulls the code from a /v1 error body.
func errCode(t testing.TB, body string) string {
	t.Helper()
	var e struct {
		Error struct{ Code, Message string }
	}
	if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error.Code == "" {
		t.Fatalf("not a JSON error body: %q", body)
	}
	return e.Error.Code
}
