package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callwatch/callwatch/server"
)

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

func post(t *testing.T, url, ctype, body string) (int, http.Header, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// TestHTTPHygiene: 415 for bodies that are not JSON, messages without Go
// internals or newlines, 400 for a segment without text, every status
// counted, durations in seconds in logs, model info and verdict/level
// counters in metrics.
func TestHTTPHygiene(t *testing.T) {
	d, _ := openDetector(t)
	logs := &lockedBuffer{}
	s, err := server.NewServer(testConfig(), server.Deps{Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s)
	t.Cleanup(func() { hs.Close(); s.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Load(ctx, d); err != nil {
		t.Fatal(err)
	}
	u := hs.URL

	t.Run("415", func(t *testing.T) {
		for _, c := range []struct{ path, body string }{
			{"/v1/classify", `{"texts":["안녕하세요"]}`},
			{"/v1/calls/h1/segments", `{"text":"안녕하세요","seq":0}`},
			{"/v2/models/" + d.Bundle().Card.Name + "/infer", `{"inputs":[{"name":"text","shape":[1],"datatype":"BYTES","data":["안녕하세요"]}]}`},
		} {
			for _, ct := range []string{"text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "bogus"} {
				code, h, body := post(t, u+c.path, ct, c.body)
				if code != 415 || h.Get("X-Error-Code") != "unsupported_media_type" {
					t.Errorf("%s as %s: %d %s, want 415 unsupported_media_type", c.path, ct, code, body)
				}
			}
			for _, ct := range []string{"", "application/json", "application/json; charset=utf-8", "application/vnd.callwatch+json"} {
				if code, _, body := post(t, u+c.path, ct, strings.Replace(c.body, "h1", "h1"+ct, 1)); code != 200 {
					t.Errorf("%s as %q: %d %s, want 200", c.path, ct, code, body)
				}
			}
		}
	})

	t.Run("messages", func(t *testing.T) {
		for _, c := range []struct{ path, body, want string }{
			{"/v1/classify", `{"texts":"one text"}`, "must be a JSON array"},
			{"/v1/classify", `{"records":[{"id":1,"text":"x"}]}`, "must be a string, got number"},
			{"/v1/calls/m1/segments", `{"text":"네","seq":"zero"}`, "must be a whole number, got string"},
			{"/v1/calls/m1/segments", `{"text":"네","start":"0"}`, "must be a number"},
			{"/v1/calls/m1/segments", "{\"text\":\n\"네\",,}", "not valid JSON"},
			{"/v2/models/" + d.Bundle().Card.Name + "/infer", `{"inputs":[{"name":"text","shape":[1],"datatype":"BYTES","data":[5]}]}`, "is a number"},
		} {
			code, _, body := post(t, u+c.path, "application/json", c.body)
			if code != 400 {
				t.Errorf("%s %s: %d %s, want 400", c.path, c.body, code, body)
				continue
			}
			for _, bad := range []string{"Go ", "struct", "[]string", "int", "float64", "interface", "\\n", "json:"} {
				if strings.Contains(body, bad) {
					t.Errorf("%s %s: message shows %q: %s", c.path, c.body, bad, body)
				}
			}
			if !strings.Contains(body, c.want) {
				t.Errorf("%s %s: %s lacks %q", c.path, c.body, body, c.want)
			}
		}
	})

	t.Run("segment without text", func(t *testing.T) {
		for _, b := range []string{`{"seq":0}`, `{"text":"","seq":0}`, `{"text":"  \n ","seq":0}`} {
			code, _, body := post(t, u+"/v1/calls/t1/segments", "application/json", b)
			if code != 400 || errCode(t, body) != "bad_request" || !strings.Contains(body, "no text") {
				t.Errorf("%s: %d %s, want 400 bad_request", b, code, body)
			}
		}
	})

	t.Run("metrics", func(t *testing.T) {
		do(t, "GET", u+"/no/such/path", "")
		do(t, "PUT", u+"/v1/classify", "")
		if code, _, _ := post(t, u+"/v1/classify", "application/json", `{"texts":["서울중앙지검 수사관입니다 안전계좌로 이체하세요","네 택배 도착했습니다"]}`); code != 200 {
			t.Fatal("classify")
		}
		_, _, m := do(t, "GET", u+"/metrics", "")
		_, _, m2 := do(t, "GET", u+"/metrics", "")
		b := d.Bundle()
		for _, want := range []string{
			`callwatch_http_requests_total{code="404",route="unmatched"} 1`,
			`callwatch_http_requests_total{code="405",route="unmatched"} 1`,
			`callwatch_http_requests_total{code="415",route="POST /v1/classify"} 4`,
			`callwatch_model_info{backend="` + d.Backend().Name() + `",name="` + b.Card.Name + `",sha256="` + b.ModelSHA256[:12] + `",version="` + b.Card.Version + `"} 1`,
			`callwatch_verdicts_total{label=`,
			`callwatch_segment_levels_total{level="none"}`,
		} {
			if !strings.Contains(m, want) {
				t.Errorf("/metrics lacks %s", want)
			}
		}
		if !strings.Contains(m2, `callwatch_http_requests_total{code="200",route="GET /metrics"} 1`) {
			t.Error("GET /metrics itself is not counted")
		}
	})

	t.Run("log durations in seconds", func(t *testing.T) {
		n := 0
		for _, line := range strings.Split(logs.String(), "\n") {
			if line == "" {
				continue
			}
			var rec map[string]any
			if err := json.Unmarshal([]byte(line), &rec); err != nil {
				t.Fatalf("log line %q: %v", line, err)
			}
			if rec["msg"] != "request" {
				continue
			}
			n++
			if _, ok := rec["duration"]; ok {
				t.Errorf("a raw duration in the log: %s", line)
			}
			if d, ok := rec["duration_s"].(float64); !ok || d < 0 || d > 10 {
				t.Errorf("duration_s not seconds: %s", line)
			}
		}
		if n == 0 {
			t.Error("no request log lines")
		}
		if strings.Contains(logs.String(), `"warmup":`) || !strings.Contains(logs.String(), `"warmup_s":`) {
			t.Error("warm-up time is not in seconds")
		}
	})
}
