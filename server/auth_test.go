package server_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/callwatch/callwatch/client"
	"github.com/callwatch/callwatch/server"
)

const (
	keyAll    = "all-scopes-key-0123456789"
	keyStream = "stream-only-key-0123456789"
	keyAdmin  = "admin-only-key-0123456789"
)

func authConfig(t *testing.T, metricsAuth bool) server.Config {
	t.Helper()
	cfg := testConfig()
	keys, err := server.ParseAPIKeys(keyAll + "," + keyStream + ":stream")
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(keyAdmin))
	fileKeys, err := server.ParseAPIKeysFile("# ops\n\n" + hex.EncodeToString(sum[:]) + "  admin\n")
	if err != nil {
		t.Fatal(err)
	}
	cfg.APIKeys = append(keys, fileKeys...)
	cfg.MetricsAuth = metricsAuth
	return cfg
}

func authDo(t *testing.T, method, url, key, body string) (int, http.Header, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if key != "" {
		req.Header.Set("Authorization", key)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// TestAuth: with API keys, every route but health, readiness, the monitor
// page's files and (unless metrics_auth) metrics needs a valid key with the route's scope; 401 and
// 403 carry a Bearer challenge.
func TestAuth(t *testing.T) {
	for _, metricsAuth := range []bool{false, true} {
		t.Run(fmt.Sprint("metrics_auth=", metricsAuth), func(t *testing.T) {
			ts := newTestServer(t, authConfig(t, metricsAuth), true)
			seg := `{"text":"안녕하세요","seq":0}`
			cases := []struct {
				method, path, key, body string
				want                    int
				code                    string
			}{
				{"GET", "/v2/health/live", "", "", 200, ""},
				{"GET", "/v2/health/ready", "", "", 200, ""},
				{"GET", "/v1/model", "", "", 401, "unauthorized"},
				{"GET", "/v1/model", "Bearer wrong-key-0123456789", "", 401, "unauthorized"},
				{"GET", "/v1/model", "Basic " + keyAll, "", 401, "unauthorized"},
				{"GET", "/v1/model", "Bearer " + keyAll, "", 200, ""},
				{"GET", "/v1/model", "bearer " + keyAll, "", 200, ""},
				{"POST", "/v1/classify", "", `{"texts":["x"]}`, 401, "unauthorized"},
				{"POST", "/v1/classify", "Bearer " + keyAll, `{"texts":["안녕하세요"]}`, 200, ""},
				{"POST", "/v1/classify", "Bearer " + keyStream, `{"texts":["안녕하세요"]}`, 403, "forbidden"},
				{"POST", "/v1/calls/a1/segments", "", seg, 401, "unauthorized"},
				{"POST", "/v1/calls/a1/segments", "Bearer " + keyStream, seg, 200, ""},
				{"POST", "/v1/calls/a2/segments", "Bearer " + keyAdmin, seg, 403, "forbidden"},
				{"POST", "/v2/models/x/infer", "", `{"inputs":[]}`, 401, "unauthorized"},
				{"GET", "/v2", "", "", 401, "unauthorized"},
				{"GET", "/openapi.json", "", "", 401, "unauthorized"},
				{"GET", "/openapi.json", "Bearer " + keyStream, "", 200, ""},
				// the monitor page is open: it asks for a key itself
				{"GET", "/", "", "", 200, ""},
				{"GET", "/static/app.js", "", "", 200, ""},
			}
			if metricsAuth {
				cases = append(cases, []struct {
					method, path, key, body string
					want                    int
					code                    string
				}{
					{"GET", "/metrics", "", "", 401, "unauthorized"},
					{"GET", "/metrics", "Bearer " + keyStream, "", 403, "forbidden"},
					{"GET", "/metrics", "Bearer " + keyAdmin, "", 200, ""},
					{"GET", "/metrics", "Bearer " + keyAll, "", 200, ""},
				}...)
			} else {
				cases = append(cases, struct {
					method, path, key, body string
					want                    int
					code                    string
				}{"GET", "/metrics", "", "", 200, ""})
			}
			for _, c := range cases {
				code, h, body := authDo(t, c.method, ts.URL+c.path, c.key, c.body)
				if code != c.want {
					t.Errorf("%s %s with %q: %d %s, want %d", c.method, c.path, c.key, code, body, c.want)
					continue
				}
				if c.code == "" {
					continue
				}
				if got := h.Get("X-Error-Code"); got != c.code {
					t.Errorf("%s %s: X-Error-Code %q, want %q", c.method, c.path, got, c.code)
				}
				wa := h.Get("WWW-Authenticate")
				if !strings.HasPrefix(wa, `Bearer realm="callwatch"`) || (c.want == 403) != strings.Contains(wa, "insufficient_scope") {
					t.Errorf("%s %s: WWW-Authenticate %q", c.method, c.path, wa)
				}
				if strings.Contains(body, keyAll) || strings.Contains(body, keyStream) {
					t.Errorf("%s %s: the answer repeats a key: %s", c.method, c.path, body)
				}
			}
		})
	}
}

// TestAuthClientAndQuota: the Go client sends its key; with keys, the
// per-client quota is kept per key, not per IP (all clients here share
// 127.0.0.1).
func TestAuthClientAndQuota(t *testing.T) {
	cfg := authConfig(t, false)
	cfg.MaxSessionsPerClient = 2
	ts := newTestServer(t, cfg, true)
	ctx := context.Background()
	if _, err := ts.C.Classify(ctx, "안녕하세요"); err == nil {
		t.Fatal("a client without a key was served")
	}
	ca, _ := client.New(ts.URL, client.WithAPIKey(keyAll))
	cs, _ := client.New(ts.URL, client.WithAPIKey(keyStream))
	if _, err := ca.Classify(ctx, "안녕하세요"); err != nil {
		t.Fatal(err)
	}
	// Each key opens 2 calls: within its own quota, though both come from
	// the same address.
	handles := map[string]string{}
	for _, k := range []struct {
		name string
		c    *client.Client
	}{{"a", ca}, {"s", cs}} {
		for i := range 2 {
			id := fmt.Sprint(k.name, i)
			r, err := k.c.Segment(ctx, id, server.SegmentRequest{Text: "네", Seq: new(0)})
			if err != nil {
				t.Fatal(err)
			}
			handles[id] = r.Handle
		}
	}
	for id, h := range handles {
		c := ca
		if id[0] == 's' {
			c = cs
		}
		if _, err := c.Segment(ctx, id, server.SegmentRequest{Text: "네 네", Seq: new(1), Handle: h}); err != nil {
			t.Errorf("call %s: %v (another key's calls counted against this one's quota?)", id, err)
		}
	}
	// A third call of one key evicts that key's own oldest.
	if _, err := cs.Segment(ctx, "s2", server.SegmentRequest{Text: "네", Seq: new(0)}); err != nil {
		t.Fatal(err)
	}
	if _, err := ca.Segment(ctx, "a0", server.SegmentRequest{Text: "네 네 네", Seq: new(2), Handle: handles["a0"]}); err != nil {
		t.Errorf("key a's call was evicted by key s's: %v", err)
	}
}

func TestParseAPIKeys(t *testing.T) {
	for _, bad := range []string{"", "short", "a-long-enough-key-123:root", ","} {
		if _, err := server.ParseAPIKeys(bad); err == nil {
			t.Errorf("ParseAPIKeys(%q) accepted", bad)
		}
	}
	ks, err := server.ParseAPIKeys("cw-abc/def+ghi==0123456789, k2-0123456789012345:stream+admin")
	if err != nil || len(ks) != 2 || ks[0].Scopes != nil || len(ks[1].Scopes) != 2 {
		t.Fatalf("%+v %v", ks, err)
	}
	if ks[0].Hash != sha256.Sum256([]byte("cw-abc/def+ghi==0123456789")) {
		t.Error("the hash is not the SHA-256 of the key")
	}
	for _, bad := range []string{"", "# only a comment\n", "nothex\n", strings.Repeat("a", 64) + " root\n"} {
		if _, err := server.ParseAPIKeysFile(bad); err == nil {
			t.Errorf("ParseAPIKeysFile(%q) accepted", bad)
		}
	}
}
