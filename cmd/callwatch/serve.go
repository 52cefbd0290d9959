package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"os"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/callwatch/callwatch"
	"github.com/callwatch/callwatch/client"
	"github.com/callwatch/callwatch/server"
)

const serveLong = `serve runs the HTTP service until SIGTERM/SIGINT, then drains: KServe v2 (/v2),
JSON API (/v1/classify, /v1/calls/{id}/segments), /metrics, and a live call
monitor at /. State tokens are signed with server.state_keys (env
CALLWATCH_SERVER_STATE_KEYS="id:base64,...": the first signs, all verify; each key
at least 32 random bytes, e.g. $(head -c 32 /dev/urandom | base64)); replicas that
share calls share them. API keys come from CALLWATCH_SERVER_API_KEYS or
--api-keys-file; listening outside loopback without them needs --insecure.`

func (e *env) serveCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "serve [--addr HOST:PORT]",
		Short:   "HTTP service: KServe v2, JSON API, state tokens, metrics, live monitor page",
		Long:    serveLong,
		Example: `  CALLWATCH_SERVER_STATE_KEYS="k1:$(head -c 32 /dev/urandom | base64)" callwatch serve --addr 127.0.0.1:8080`,
		Args:    noArgs,
	}
	fs := cmd.Flags()
	addServeFlags(fs)
	cmd.RunE = func(cmd *cobra.Command, args []string) error { return e.serve(fs) }
	return cmd
}

// addServeFlags defines serve's flags, all of them config keys.
func addServeFlags(fs *pflag.FlagSet) {
	addKeyFlags(fs, modelKeys...)
	addKeyFlags(fs, policyKeys...)
	addKeyFlags(fs, serverKeys()...)
}

// serve runs the HTTP service until SIGTERM/SIGINT, then drains.
func (e *env) serve(fs *pflag.FlagSet) error {
	c, err := e.loadConfig(fs)
	if err != nil {
		return err
	}
	so, err := e.serveSettings(fs)
	if err != nil {
		return err
	}
	cfg, drain, level := so.cfg, so.drain, so.level
	if so.warning != "" {
		fmt.Fprintf(e.stderr, "callwatch: warning: %s\n", so.warning)
	}
	logger := slog.New(slog.NewJSONHandler(e.stderr, &slog.HandlerOptions{Level: level}))
	s, err := server.NewServer(cfg, server.Deps{Logger: logger})
	if err != nil {
		return usagef("%w", err)
	}
	ln, err := so.listen()
	if err != nil {
		return err
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

// serveOptions are serve's settings, all of them validated.
type serveOptions struct {
	cfg      server.Config
	addr     string
	drain    time.Duration
	level    slog.Level
	tls      *tls.Config // nil: plain HTTP
	insecure bool        // listening outside loopback without API keys is allowed
	warning  string      // said once on stderr
}

// listen opens the listener, TLS when configured.
func (o serveOptions) listen() (net.Listener, error) {
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return nil, usagef("cannot listen on %s: %v", o.addr, err)
	}
	if o.tls != nil {
		ln = tls.NewListener(ln, o.tls)
	}
	return ln, nil
}

// loopback reports whether addr's host is a loopback name or address
// (an empty host is every interface).
func loopback(addr string) bool {
	host, _, _ := net.SplitHostPort(addr)
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// access reads the API keys and TLS settings.
func (e *env) access(fs *pflag.FlagSet, o *serveOptions) error {
	get := func(key string) setting { return e.lookup(fs, key) }
	str := func(key string) (string, setting, error) {
		s := get(key)
		v, err := s.str()
		return v, s, err
	}
	spec, ks, err := str("server.api_keys")
	if err != nil {
		return err
	}
	if spec != "" {
		keys, err := server.ParseAPIKeys(spec)
		if err != nil {
			return ks.errorf("%v", err)
		}
		o.cfg.APIKeys = keys
	}
	file, fsg, err := str("server.api_keys_file")
	if err != nil {
		return err
	}
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return fsg.errorf("cannot read it: %v", err)
		}
		keys, err := server.ParseAPIKeysFile(string(b))
		if err != nil {
			return fsg.errorf("%s: %v", file, err)
		}
		o.cfg.APIKeys = append(o.cfg.APIKeys, keys...)
	}
	if o.cfg.MetricsAuth, err = get("server.metrics_auth").boolean(); err != nil {
		return err
	}
	if o.insecure, err = get("server.insecure").boolean(); err != nil {
		return err
	}
	cert, cs, err := str("server.tls_cert")
	if err != nil {
		return err
	}
	key, kset, err := str("server.tls_key")
	if err != nil {
		return err
	}
	ca, cas, err := str("server.tls_client_ca")
	if err != nil {
		return err
	}
	switch {
	case (cert == "") != (key == ""):
		return usagef("server.tls_cert and server.tls_key (--tls-cert, --tls-key) go together: set both or neither")
	case ca != "" && cert == "":
		return usagef("server.tls_client_ca (--tls-client-ca) needs --tls-cert and --tls-key")
	case cert != "":
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return usagef("server.tls_cert %s (from %s) and server.tls_key %s (from %s): cannot load them: %v", cert, cs.from, key, kset.from, err)
		}
		o.tls = &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
		if ca != "" {
			pem, err := os.ReadFile(ca)
			if err != nil {
				return cas.errorf("cannot read it: %v", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return cas.errorf("%s holds no PEM certificate", ca)
			}
			o.tls.ClientCAs, o.tls.ClientAuth = pool, tls.RequireAndVerifyClientCert
		}
	}
	if !loopback(o.addr) {
		switch {
		case len(o.cfg.APIKeys) == 0 && !o.insecure:
			return usagef("server.addr %s is outside loopback and no API keys are set: anyone who reaches the port could use the service and read state tokens. Set CALLWATCH_SERVER_API_KEYS or --api-keys-file, or pass --insecure (server.insecure) if something in front of callwatch authenticates", o.addr)
		case o.tls == nil:
			o.warning = "serving plain HTTP outside loopback: API keys and transcripts cross the network in clear unless a proxy in front terminates TLS (--tls-cert, --tls-key)"
		}
	}
	return nil
}

// serveSettings reads server.* through the one config path (config.go).
func (e *env) serveSettings(fs *pflag.FlagSet) (serveOptions, error) {
	o := serveOptions{cfg: server.DefaultConfig()}
	cfg := &o.cfg
	var err error
	get := func(key string) setting { return e.lookup(fs, key) }
	num := func(dst *int, key string, lo int64) {
		if err == nil {
			*dst, err = get(key).integer(lo, math.MaxInt32)
		}
	}
	num64 := func(dst *int64, key string, lo int64) {
		if err == nil {
			var n int64
			if n, err = get(key).int64(); err == nil && n < lo {
				err = get(key).errorf("must be at least %d, got %d", lo, n)
			}
			*dst = n
		}
	}
	dur := func(dst *time.Duration, key string, lo time.Duration) {
		if err == nil {
			*dst, err = get(key).duration(lo)
		}
	}
	num(&cfg.MaxBatch, "server.max_batch", 1)
	dur(&cfg.MaxWait, "server.max_wait", 0)
	num(&cfg.MaxQueue, "server.max_queue", 1)
	num(&cfg.Workers, "server.workers", 1)
	dur(&cfg.RequestTimeout, "server.request_timeout", time.Millisecond)
	num64(&cfg.MaxBodyBytes, "server.max_body_bytes", 1024)
	num(&cfg.MaxTextBytes, "server.max_text_bytes", 1)
	num(&cfg.MaxTexts, "server.max_texts", 1)
	if err == nil {
		cfg.Sessions, err = get("server.sessions").boolean()
	}
	dur(&cfg.SessionTTL, "server.session_ttl", time.Second)
	num(&cfg.MaxSessions, "server.max_sessions", 1)
	num64(&cfg.MaxInflightBytes, "server.max_inflight_bytes", 1024)
	num(&cfg.MaxSessionsPerClient, "server.max_sessions_per_client", 0)
	num(&cfg.MaxTrackedCalls, "server.max_tracked_calls", 1)
	dur(&cfg.DrainDelay, "server.drain_delay", 0)
	dur(&o.drain, "server.shutdown_timeout", time.Millisecond)
	if err != nil {
		return o, err
	}
	keysSet, singleSet := get("server.state_keys"), get("server.state_key")
	keys, err := keysSet.str()
	if err != nil {
		return o, err
	}
	single, err := singleSet.str()
	if err != nil {
		return o, err
	}
	switch {
	case keys != "" && single != "":
		return o, usagef("set server.state_keys (id:base64,...) or the older server.state_key, not both")
	case keys != "":
		k, err := server.ParseStateKeys(keys)
		if err != nil {
			return o, keysSet.errorf("%v", err)
		}
		cfg.StateKeys = k
	case single != "":
		k, err := server.ParseStateKey(single)
		if err != nil {
			return o, singleSet.errorf("%v", err)
		}
		cfg.StateKeys = []server.StateKey{k}
	}
	sp := get("server.state_precision")
	if cfg.StatePrecision, err = sp.str(); err != nil {
		return o, err
	}
	if cfg.StatePrecision != server.PrecisionFloat32 && cfg.StatePrecision != server.PrecisionFloat16 {
		return o, sp.errorf("want %s or %s, got %q", server.PrecisionFloat32, server.PrecisionFloat16, cfg.StatePrecision)
	}
	lv := get("server.log_level")
	name, err := lv.str()
	if err != nil {
		return o, err
	}
	if err := o.level.UnmarshalText([]byte(name)); err != nil {
		return o, lv.errorf("want debug, info, warn or error, got %q", name)
	}
	as := get("server.addr")
	if o.addr, err = as.str(); err != nil {
		return o, err
	}
	if _, _, err := net.SplitHostPort(o.addr); err != nil {
		return o, as.errorf("%q: want HOST:PORT", o.addr)
	}
	if err := e.access(fs, &o); err != nil {
		return o, err
	}
	if err := server.ValidateConfig(*cfg); err != nil {
		return o, usagef("%v", err)
	}
	return o, nil
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
				r := callwatch.Result{Verdict: callwatch.Verdict{Label: g.Label, Score: g.Score, Level: g.Level, Family: g.Family, FamilyProb: g.FamilyProb}}
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
