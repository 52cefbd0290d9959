package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/spf13/viper"

	"github.com/callwatch/callwatch"
	"github.com/callwatch/callwatch/client"
	"github.com/callwatch/callwatch/server"
)

// serverKeys are the server.* config keys with their flags ("" = config
// and environment only: a key on the command line would show in ps).
var serverKeys = []struct{ key, flag string }{
	{"server.addr", "addr"}, {"server.max_batch", "max-batch"}, {"server.max_wait", "max-wait"},
	{"server.max_queue", "max-queue"}, {"server.workers", "workers"}, {"server.request_timeout", "request-timeout"},
	{"server.max_body_bytes", "max-body-bytes"}, {"server.max_text_bytes", "max-text-bytes"}, {"server.max_texts", "max-texts"},
	{"server.sessions", "sessions"}, {"server.session_ttl", "session-ttl"}, {"server.max_sessions", "max-sessions"},
	{"server.shutdown_timeout", "shutdown-timeout"}, {"server.log_level", "log-level"},
	{"server.max_inflight_bytes", "max-inflight-bytes"}, {"server.max_sessions_per_client", "max-sessions-per-client"},
	{"server.max_tracked_calls", "max-tracked-calls"}, {"server.drain_delay", "drain-delay"},
	{"server.state_keys", ""}, {"server.state_key", ""},
}

// serve runs the HTTP service until SIGTERM/SIGINT, then drains.
func (e *env) serve(args []string) error {
	fs := newFlags("serve", "serve [--addr HOST:PORT] [flags]\n\nHTTP service: KServe v2 (/v2), JSON API (/v1/classify, /v1/calls/{id}/segments),\n/metrics, and a live call monitor at /. State tokens are signed with server.state_keys\n(env CALLWATCH_SERVER_STATE_KEYS=\"id:base64,...\": the first signs, all verify; each key at least\n32 random bytes, e.g. $(head -c 32 /dev/urandom | base64)); replicas that share calls share them.", e.stderr)
	addModelFlags(fs)
	addPolicyFlags(fs)
	def := server.DefaultConfig()
	fs.String("addr", "127.0.0.1:8080", "listen address")
	fs.Int("max-batch", def.MaxBatch, "texts or segments per backend batch")
	fs.Duration("max-wait", def.MaxWait, "longest a request waits for others to join its batch")
	fs.Int("max-queue", def.MaxQueue, "requests waiting per queue before answering 429")
	fs.Int("workers", def.Workers, "backend batches running at once")
	fs.Duration("request-timeout", def.RequestTimeout, "per-request deadline")
	fs.Int64("max-body-bytes", def.MaxBodyBytes, "request body limit (413 above)")
	fs.Int("max-text-bytes", def.MaxTextBytes, "one text's limit (413 above)")
	fs.Int("max-texts", def.MaxTexts, "texts per classify/infer request")
	fs.Bool("sessions", def.Sessions, "keep calls server-side for clients that send no state token")
	fs.Duration("session-ttl", def.SessionTTL, "idle time after which a stored call is dropped")
	fs.Int("max-sessions", def.MaxSessions, "calls kept server-side at most")
	fs.Int64("max-inflight-bytes", def.MaxInflightBytes, "body bytes of all requests in flight together (429 above)")
	fs.Int("max-sessions-per-client", def.MaxSessionsPerClient, "stored calls per client IP; over it the client's least recently used call is evicted (0: no quota)")
	fs.Int("max-tracked-calls", def.MaxTrackedCalls, "token-carrying calls whose sequence numbers are remembered (replay checks)")
	fs.Duration("drain-delay", def.DrainDelay, "on SIGTERM, how long readiness answers 503 while requests are still served, before the listener closes")
	fs.Duration("shutdown-timeout", 30*time.Second, "how long in-flight requests may take to finish on SIGTERM")
	fs.String("log-level", "info", "debug (one line per request), info, warn, error")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("serve takes no arguments, got %q", fs.Args())
	}
	c, err := e.loadConfig(fs)
	if err != nil {
		return err
	}
	v := e.v
	for _, k := range serverKeys {
		name := "CALLWATCH_" + strings.ToUpper(strings.ReplaceAll(k.key, ".", "_"))
		if val := e.getenv(name); val != "" {
			v.Set(k.key, val)
		}
		if k.flag == "" {
			continue
		}
		if f := fs.Lookup(k.flag); f != nil && (f.Changed || !v.IsSet(k.key)) {
			v.Set(k.key, f.Value.String())
		}
	}
	cfg, addr, drain, level, err := serverConfig(v)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewJSONHandler(e.stderr, &slog.HandlerOptions{Level: level}))
	s, err := server.NewServer(cfg, server.Deps{Logger: logger})
	if err != nil {
		return usagef("%v", err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return usagef("cannot listen on %s: %v", addr, err)
	}
	// The model loads after the listener is up, so liveness answers and
	// readiness says "not yet" meanwhile.
	var (
		mu  sync.Mutex
		det *callwatch.Detector
	)
	load := func(ctx context.Context) error {
		d, err := e.openDetector(c)
		if err != nil {
			return err
		}
		pol, err := e.policy(fs, d)
		if err == nil {
			err = s.LoadPolicy(ctx, d, pol)
		}
		if err != nil {
			d.Close()
			return err
		}
		mu.Lock()
		det = d
		mu.Unlock()
		return nil
	}
	err = server.Serve(e.ctx, ln, s, drain, load)
	mu.Lock()
	if det != nil {
		det.Close() // after the drain: no batch is running any more
	}
	mu.Unlock()
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// serverConfig reads server.* from v.
func serverConfig(v *viper.Viper) (server.Config, string, time.Duration, slog.Level, error) {
	cfg := server.DefaultConfig()
	cfg.MaxBatch = v.GetInt("server.max_batch")
	cfg.MaxWait = v.GetDuration("server.max_wait")
	cfg.MaxQueue = v.GetInt("server.max_queue")
	cfg.Workers = v.GetInt("server.workers")
	cfg.RequestTimeout = v.GetDuration("server.request_timeout")
	cfg.MaxBodyBytes = v.GetInt64("server.max_body_bytes")
	cfg.MaxTextBytes = v.GetInt("server.max_text_bytes")
	cfg.MaxTexts = v.GetInt("server.max_texts")
	cfg.Sessions = v.GetBool("server.sessions")
	cfg.SessionTTL = v.GetDuration("server.session_ttl")
	cfg.MaxSessions = v.GetInt("server.max_sessions")
	cfg.MaxInflightBytes = v.GetInt64("server.max_inflight_bytes")
	cfg.MaxSessionsPerClient = v.GetInt("server.max_sessions_per_client")
	cfg.MaxTrackedCalls = v.GetInt("server.max_tracked_calls")
	cfg.DrainDelay = v.GetDuration("server.drain_delay")
	keys, single := strings.TrimSpace(v.GetString("server.state_keys")), strings.TrimSpace(v.GetString("server.state_key"))
	switch {
	case keys != "" && single != "":
		return cfg, "", 0, 0, usagef("set server.state_keys (id:base64,...) or the older server.state_key, not both")
	case keys != "":
		k, err := server.ParseStateKeys(keys)
		if err != nil {
			return cfg, "", 0, 0, usagef("server.state_keys (env CALLWATCH_SERVER_STATE_KEYS): %v", err)
		}
		cfg.StateKeys = k
	case single != "":
		k, err := server.ParseStateKey(single)
		if err != nil {
			return cfg, "", 0, 0, usagef("server.state_key (env CALLWATCH_SERVER_STATE_KEY): %v", err)
		}
		cfg.StateKeys = []server.StateKey{k}
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(v.GetString("server.log_level"))); err != nil {
		return cfg, "", 0, 0, usagef("server.log_level: %v", err)
	}
	drain := v.GetDuration("server.shutdown_timeout")
	if drain <= 0 {
		return cfg, "", 0, 0, usagef("server.shutdown_timeout must be positive")
	}
	addr := v.GetString("server.addr")
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return cfg, "", 0, 0, usagef("server.addr %q: want HOST:PORT", addr)
	}
	return cfg, addr, drain, level, nil
}

// scorer returns what classify scores with: the local detector, or a
// callwatch server when serverURL is set (the same records come back).
func (e *env) scorer(c config, serverURL string) (func(context.Context, []string) ([]callwatch.Result, error), func(), error) {
	if serverURL == "" {
		d, err := e.openDetector(c)
		if err != nil {
			return nil, nil, err
		}
		return d.Classify, func() { d.Close() }, nil
	}
	cl, err := client.New(serverURL)
	if err != nil {
		return nil, nil, usagef("--server: %v", err)
	}
	remote := func(ctx context.Context, texts []string) ([]callwatch.Result, error) {
		res := make([]callwatch.Result, 0, len(texts))
		// The server's default max_texts is 256; stay under it.
		for start := 0; start < len(texts); start += 256 {
			part := texts[start:min(len(texts), start+256)]
			var got []server.ClassifyResult
			for attempt := 0; ; attempt++ {
				got, err = cl.Classify(ctx, part...)
				var ce *client.Error
				if err == nil || !errors.As(err, &ce) || ce.RetryAfter == 0 || attempt == 5 {
					break
				}
				select { // overloaded or not ready yet: wait as told
				case <-time.After(ce.RetryAfter):
				case <-ctx.Done():
					return nil, ctx.Err()
				}
			}
			if err != nil {
				return nil, fmt.Errorf("server %s: %w", serverURL, err)
			}
			if len(got) != len(part) {
				return nil, fmt.Errorf("server %s: %d results for %d texts", serverURL, len(got), len(part))
			}
			for _, g := range got {
				r := callwatch.Result{Verdict: callwatch.Verdict{Label: g.Label, Score: g.Score, Level: g.Level}}
				if g.Error != "" {
					r.Err = errors.New(g.Error)
				}
				res = append(res, r)
			}
		}
		return res, nil
	}
	return remote, func() {}, nil
}
