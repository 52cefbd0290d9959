package main

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/callwatch/callwatch"
)

// resolved is every setting after the one config path.
type resolved struct {
	c   config
	srv serveOptions
	pol callwatch.Policy
}

func resolveConfig(t *testing.T, file string, envv map[string]string, args []string) (resolved, string, error) {
	t.Helper()
	var r resolved
	stderr := &bytes.Buffer{}
	e := &env{getenv: func(k string) string { return envv[k] }, stderr: stderr,
		environ: func() []string {
			var out []string
			for k, v := range envv {
				out = append(out, k+"="+v)
			}
			return out
		}}
	if file != "" {
		p := filepath.Join(t.TempDir(), "callwatch.yaml")
		if err := os.WriteFile(p, []byte(file), 0o644); err != nil {
			t.Fatal(err)
		}
		args = append([]string{"--config", p}, args...)
	}
	fs, err := commandFlags(e, "serve", args)
	if err != nil {
		return r, stderr.String(), err
	}
	if r.c, err = e.loadConfig(fs); err != nil {
		return r, stderr.String(), err
	}
	if r.srv, err = e.serveSettings(fs); err != nil {
		return r, stderr.String(), err
	}
	r.pol, err = e.policyFrom(fs, callwatch.Policy{Suspicious: 0.5, Dangerous: 0.8, Smooth: 2, Hysteresis: 0.1, Reasons: 3})
	return r, stderr.String(), err
}

// yamlFor nests key: value as callwatch.yaml writes it.
func yamlFor(key, value string) string {
	parts := strings.Split(key, ".")
	var b strings.Builder
	for i, p := range parts {
		b.WriteString(strings.Repeat("  ", i) + p + ":")
		if i < len(parts)-1 {
			b.WriteString("\n")
		}
	}
	b.WriteString(" " + value + "\n")
	return b.String()
}

func randKey() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

// TestConfigEveryKey sets every key from the file, the environment and its
// flag: a good value arrives where it belongs; a bad one is refused with a
// message naming the key (or its flag).
func TestConfigEveryKey(t *testing.T) {
	key := randKey()
	pki := writePKI(t)
	type row struct {
		extra      map[string]string // set in the environment as well
		good, want string            // good value as written; want: what get shows
		bad        []string          // refused values
		msg        string            // in the refusal
		get        func(resolved) any
	}
	rows := map[string]row{
		"model":       {nil, "/models/x", "/models/x", nil, "", func(r resolved) any { return r.c.Model }},
		"backend":     {nil, "native", "native", []string{"gpu"}, "use auto, ort or native", func(r resolved) any { return r.c.Backend }},
		"batch":       {nil, "7", "7", []string{"many", "0", "1.5"}, "", func(r resolved) any { return r.c.Batch }},
		"threads":     {nil, "3", "3", []string{"x", "0"}, "", func(r resolved) any { return r.c.Threads }},
		"window":      {nil, "96", "96", []string{"x", "-1"}, "", func(r resolved) any { return r.c.Window }},
		"ort.library": {nil, "/lib/ort.so", "/lib/ort.so", nil, "", func(r resolved) any { return r.c.ORTLibrary }},

		"stream.smooth":     {nil, "4", "4", []string{"x", "0", "1000"}, "", func(r resolved) any { return r.pol.Smooth }},
		"stream.hysteresis": {nil, "0.25", "0.25", []string{"x", "1.5"}, "", func(r resolved) any { return r.pol.Hysteresis }},
		"stream.reasons":    {nil, "5", "5", []string{"x", "-1"}, "", func(r resolved) any { return r.pol.Reasons }},

		"server.addr":                    {map[string]string{"CALLWATCH_SERVER_INSECURE": "true"}, "0.0.0.0:9090", "0.0.0.0:9090", []string{"nohost"}, "HOST:PORT", func(r resolved) any { return r.srv.addr }},
		"server.api_keys":                {nil, "k-0123456789abcdef,k2-0123456789abcdef:stream", "2", []string{"short", "k-0123456789abcdef:root"}, "", func(r resolved) any { return len(r.srv.cfg.APIKeys) }},
		"server.api_keys_file":           {nil, pki.hashes, "1", []string{"/no/such/file", pki.ca}, "", func(r resolved) any { return len(r.srv.cfg.APIKeys) }},
		"server.metrics_auth":            {map[string]string{"CALLWATCH_SERVER_API_KEYS": "k-0123456789abcdef"}, "true", "true", []string{"maybe"}, "", func(r resolved) any { return r.srv.cfg.MetricsAuth }},
		"server.tls_cert":                {map[string]string{"CALLWATCH_SERVER_TLS_KEY": pki.key}, pki.cert, "true", []string{pki.ca, "/no/such/cert"}, "", func(r resolved) any { return r.srv.tls != nil }},
		"server.tls_key":                 {map[string]string{"CALLWATCH_SERVER_TLS_CERT": pki.cert}, pki.key, "true", []string{pki.clientKey}, "", func(r resolved) any { return r.srv.tls != nil }},
		"server.tls_client_ca":           {map[string]string{"CALLWATCH_SERVER_TLS_CERT": pki.cert, "CALLWATCH_SERVER_TLS_KEY": pki.key}, pki.ca, "true", []string{pki.hashes, "/no/such/ca"}, "", func(r resolved) any { return r.srv.tls.ClientCAs != nil }},
		"server.insecure":                {map[string]string{"CALLWATCH_SERVER_ADDR": "0.0.0.0:1"}, "true", "true", []string{"maybe", "false"}, "", func(r resolved) any { return r.srv.insecure }},
		"server.max_batch":               {nil, "16", "16", []string{"x", "0"}, "", func(r resolved) any { return r.srv.cfg.MaxBatch }},
		"server.max_wait":                {nil, "5ms", "5ms", []string{"5", "banana", "-1s"}, "", func(r resolved) any { return r.srv.cfg.MaxWait }},
		"server.max_queue":               {nil, "10", "10", []string{"x", "0"}, "", func(r resolved) any { return r.srv.cfg.MaxQueue }},
		"server.workers":                 {nil, "2", "2", []string{"x", "0"}, "", func(r resolved) any { return r.srv.cfg.Workers }},
		"server.request_timeout":         {nil, "3s", "3s", []string{"10", "banana", "0"}, "", func(r resolved) any { return r.srv.cfg.RequestTimeout }},
		"server.max_body_bytes":          {nil, "4096", "4096", []string{"x", "10"}, "", func(r resolved) any { return r.srv.cfg.MaxBodyBytes }},
		"server.max_text_bytes":          {nil, "100", "100", []string{"x", "0"}, "", func(r resolved) any { return r.srv.cfg.MaxTextBytes }},
		"server.max_texts":               {nil, "9", "9", []string{"x", "0"}, "", func(r resolved) any { return r.srv.cfg.MaxTexts }},
		"server.sessions":                {nil, "false", "false", []string{"nope"}, "", func(r resolved) any { return r.srv.cfg.Sessions }},
		"server.session_ttl":             {nil, "1m", "1m0s", []string{"60", "x", "0s"}, "", func(r resolved) any { return r.srv.cfg.SessionTTL }},
		"server.max_sessions":            {nil, "50", "50", []string{"x", "0"}, "", func(r resolved) any { return r.srv.cfg.MaxSessions }},
		"server.shutdown_timeout":        {nil, "7s", "7s", []string{"7", "x", "0s"}, "", func(r resolved) any { return r.srv.drain }},
		"server.log_level":               {nil, "debug", "DEBUG", []string{"loud"}, "", func(r resolved) any { return r.srv.level }},
		"server.max_inflight_bytes":      {nil, "2000000", "2000000", []string{"x", "100"}, "", func(r resolved) any { return r.srv.cfg.MaxInflightBytes }},
		"server.max_sessions_per_client": {nil, "4", "4", []string{"x", "-1"}, "", func(r resolved) any { return r.srv.cfg.MaxSessionsPerClient }},
		"server.max_tracked_calls":       {nil, "77", "77", []string{"x", "0"}, "", func(r resolved) any { return r.srv.cfg.MaxTrackedCalls }},
		"server.drain_delay":             {nil, "2s", "2s", []string{"2", "x", "-1s"}, "", func(r resolved) any { return r.srv.cfg.DrainDelay }},
		"server.state_keys":              {nil, "k1:" + key, "k1", []string{"k1:short"}, "", func(r resolved) any { return r.srv.cfg.StateKeys[0].ID }},
		"server.state_precision":         {nil, "float16", "float16", []string{"half", "64"}, "", func(r resolved) any { return r.srv.cfg.StatePrecision }},
		"server.state_key":               {nil, key, "1", []string{"short"}, "", func(r resolved) any { return len(r.srv.cfg.StateKeys) }},
	}
	for _, k := range configKeys {
		tt, ok := rows[k.key]
		if !ok {
			t.Errorf("config key %s has no row in this test", k.key)
			continue
		}
		sources := []string{"file", "env"}
		if k.flag != "" {
			sources = append(sources, "flag")
		}
		set := func(src, val string) (string, map[string]string, []string) {
			envv := map[string]string{}
			for k, v := range tt.extra {
				envv[k] = v
			}
			switch src {
			case "file":
				return yamlFor(k.key, fmt.Sprintf("%q", val)), envv, nil
			case "env":
				envv[envName(k.key)] = val
				return "", envv, nil
			}
			return "", envv, []string{"--" + k.flag + "=" + val}
		}
		for _, src := range sources {
			t.Run(k.key+"/"+src, func(t *testing.T) {
				file, envv, args := set(src, tt.good)
				r, _, err := resolveConfig(t, file, envv, args)
				if err != nil {
					t.Fatalf("good value %q: %v", tt.good, err)
				}
				if got := fmt.Sprint(tt.get(r)); got != tt.want {
					t.Fatalf("good value %q: got %s, want %s", tt.good, got, tt.want)
				}
				for _, bad := range tt.bad {
					file, envv, args := set(src, bad)
					_, _, err := resolveConfig(t, file, envv, args)
					if err == nil {
						t.Fatalf("bad value %q accepted", bad)
					}
					msg := err.Error()
					if !strings.Contains(msg, k.key) && !(k.flag != "" && strings.Contains(msg, k.flag)) &&
						!strings.Contains(msg, strings.TrimPrefix(k.key, "server.")) {
						t.Errorf("bad value %q: %q names neither %s nor --%s", bad, msg, k.key, k.flag)
					}
					if tt.msg != "" && !strings.Contains(msg, tt.msg) {
						t.Errorf("bad value %q: %q lacks %q", bad, msg, tt.msg)
					}
					if strings.Contains(msg, "\n") {
						t.Errorf("bad value %q: message has a newline: %q", bad, msg)
					}
				}
			})
		}
		// In the file, unquoted YAML numbers and booleans are typed values.
		if k.kind == kindDuration {
			t.Run(k.key+"/bare-number", func(t *testing.T) {
				for _, src := range []string{"file-int", "env", "file-float"} {
					var file string
					var envv map[string]string
					switch src {
					case "file-int":
						file = yamlFor(k.key, "10")
					case "file-float":
						file = yamlFor(k.key, "1.5")
					default:
						envv = map[string]string{envName(k.key): "10"}
					}
					_, _, err := resolveConfig(t, file, envv, nil)
					if err == nil || !strings.Contains(err.Error(), k.key) || !strings.Contains(err.Error(), "unit") {
						t.Errorf("%s: bare number: %v; want a refusal naming %s and the unit", src, err, k.key)
					}
				}
			})
		}
	}
}

func TestConfigTypedYAML(t *testing.T) {
	r, _, err := resolveConfig(t, "batch: 9\nserver:\n  sessions: false\n  max_wait: 0\n  request_timeout: 2s\nstream:\n  hysteresis: 0.2\n", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.c.Batch != 9 || r.srv.cfg.Sessions || r.srv.cfg.MaxWait != 0 || r.srv.cfg.RequestTimeout.String() != "2s" || r.pol.Hysteresis != 0.2 {
		t.Fatalf("got %+v", r)
	}
	for _, bad := range []string{"batch: 1.5\n", "batch: true\n", "server:\n  sessions: 3\n", "server:\n  max_wait: [1]\n"} {
		if _, _, err := resolveConfig(t, bad, nil, nil); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// TestConfigStrict: an unknown key in the file is an error that says which
// key was meant; an unknown CALLWATCH_* variable a warning.
func TestConfigStrict(t *testing.T) {
	for file, want := range map[string]string{
		"server:\n  request_timout: 10s\n": "did you mean server.request_timeout",
		"bach: 3\n":                        "did you mean batch",
		"model:\n  path: /x\n":             "unknown key model.path",
		"nonsense_key_here: 1\n":           "unknown key nonsense_key_here",
	} {
		_, _, err := resolveConfig(t, file, nil, nil)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v; want %q", file, err, want)
		}
	}
	_, stderr, err := resolveConfig(t, "", map[string]string{"CALLWATCH_SERVER_REQUEST_TIMOUT": "5s", "CALLWATCH_CONFIG": "", "CALLWATCH_BATCH": "3"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stderr, "warning: environment variable CALLWATCH_SERVER_REQUEST_TIMOUT is not a callwatch setting") ||
		!strings.Contains(stderr, "did you mean CALLWATCH_SERVER_REQUEST_TIMEOUT") {
		t.Errorf("stderr %q", stderr)
	}
	if strings.Contains(stderr, "CALLWATCH_BATCH") || strings.Contains(stderr, "CALLWATCH_CONFIG") {
		t.Errorf("warned about a known variable: %q", stderr)
	}
}

// TestConfigServerPrecedence: flag > env > file > default for a server key.
func TestConfigServerPrecedence(t *testing.T) {
	file := "server:\n  request_timeout: 3s\n"
	for _, tt := range []struct {
		env  map[string]string
		args []string
		want string
	}{
		{nil, nil, "3s"},
		{map[string]string{"CALLWATCH_SERVER_REQUEST_TIMEOUT": "4s"}, nil, "4s"},
		{map[string]string{"CALLWATCH_SERVER_REQUEST_TIMEOUT": "4s"}, []string{"--request-timeout", "5s"}, "5s"},
	} {
		r, _, err := resolveConfig(t, file, tt.env, tt.args)
		if err != nil || r.srv.cfg.RequestTimeout.String() != tt.want {
			t.Errorf("%v %v: %v %v, want %s", tt.env, tt.args, r.srv.cfg.RequestTimeout, err, tt.want)
		}
	}
	r, _, err := resolveConfig(t, "", nil, nil)
	if err != nil || r.srv.cfg.RequestTimeout.String() != "10s" || r.srv.addr != "127.0.0.1:8080" {
		t.Errorf("defaults: %+v %v", r.srv, err)
	}
}
