// Package server is callwatch's HTTP service: the KServe Open Inference
// Protocol v2 (/v2), a plain JSON API (/v1) for classifying texts and
// streaming calls segment by segment, Prometheus metrics, and a live call
// monitor page.
//
// A call's streaming state travels with the client as a signed token, so
// any replica with the same key continues any call; concurrent requests are
// coalesced into backend batches; a bounded queue refuses work it cannot
// take instead of growing.
package server

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"runtime"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/callwatch/callwatch"
)

// Config holds every server setting (config keys server.*).
type Config struct {
	MaxBatch       int           // units per backend batch (server.max_batch)
	MaxWait        time.Duration // longest a request waits for others to join its batch (server.max_wait)
	MaxQueue       int           // requests waiting per queue before 429 (server.max_queue)
	Workers        int           // batches running at once (server.workers)
	RequestTimeout time.Duration // per-request deadline, body reading included (server.request_timeout)
	MaxBodyBytes   int64         // request body limit (server.max_body_bytes)
	MaxTextBytes   int           // one text's limit (server.max_text_bytes)
	MaxTexts       int           // texts per classify/infer request (server.max_texts)
	// MaxInflightBytes caps the body bytes of all requests in flight
	// together (server.max_inflight_bytes): a request whose body does not
	// fit answers 429 before it is read. A body of unknown length reserves
	// MaxBodyBytes.
	MaxInflightBytes int64
	// StateKeys sign state tokens (server.state_keys, or the single
	// server.state_key): the first signs, all verify, so keys rotate by
	// adding the new one first and dropping the old one later. Replicas
	// that share calls share the keys. Empty: a random per-process key
	// (tokens then work on this process only).
	StateKeys []StateKey
	// StatePrecision is how stream tokens carry the model state
	// (server.state_precision): PrecisionFloat32 (default, exact) or
	// PrecisionFloat16 (half the size; the state is rounded after every
	// segment on every replica alike).
	StatePrecision string
	// APIKeys, when set, are required as "Authorization: Bearer KEY" on
	// every route but health and readiness (and metrics unless
	// MetricsAuth); per-client quotas are then kept per key.
	APIKeys     []APIKey
	MetricsAuth bool // GET /metrics needs a key with the admin scope
	// Sessions enables the server-side store for clients that do not carry
	// the state token.
	Sessions    bool
	SessionTTL  time.Duration
	MaxSessions int // held calls; the least recently used is evicted for a new one
	// MaxSessionsPerClient caps the held calls of one client (its API key
	// once the service has them, else its IP address); a client over it
	// evicts its own least recently used call. 0: no quota.
	MaxSessionsPerClient int
	// MaxTrackedCalls bounds the calls whose sequence number this replica
	// remembers for token-carrying clients (replay and fork checks).
	MaxTrackedCalls int
	// DrainDelay is how long Serve keeps serving, with readiness at 503,
	// after it is told to stop and before it stops accepting connections
	// (server.drain_delay), so load balancers see the replica leave.
	DrainDelay time.Duration
}

// DefaultConfig returns the defaults documented in the README.
func DefaultConfig() Config {
	return Config{
		MaxBatch: 32, MaxWait: 2 * time.Millisecond, MaxQueue: 1024, Workers: max(1, runtime.GOMAXPROCS(0)),
		RequestTimeout: 10 * time.Second, MaxBodyBytes: 1 << 20, MaxTextBytes: 64 << 10, MaxTexts: 256,
		MaxInflightBytes: 64 << 20, StatePrecision: PrecisionFloat32,
		Sessions: true, SessionTTL: 10 * time.Minute, MaxSessions: 10000, MaxTrackedCalls: 100000,
		DrainDelay: 5 * time.Second,
	}
}

// ValidateConfig reports every problem of cfg, naming its keys.
func ValidateConfig(cfg Config) error { return cfg.validate() }

func (c Config) validate() error {
	var probs []string
	if c.MaxBatch < 1 {
		probs = append(probs, fmt.Sprintf("max_batch must be >= 1, got %d", c.MaxBatch))
	}
	if c.MaxWait < 0 {
		probs = append(probs, fmt.Sprintf("max_wait must be >= 0, got %s", c.MaxWait))
	}
	if c.MaxQueue < 1 || c.Workers < 1 || c.MaxTexts < 1 || c.MaxSessions < 1 || c.MaxTrackedCalls < 1 {
		probs = append(probs, "max_queue, workers, max_texts, max_sessions and max_tracked_calls must be >= 1")
	}
	if c.MaxSessionsPerClient < 0 {
		probs = append(probs, "max_sessions_per_client must be >= 0 (0: no quota)")
	}
	if c.RequestTimeout <= 0 || c.SessionTTL <= 0 {
		probs = append(probs, "request_timeout and session_ttl must be positive")
	}
	if c.MetricsAuth && len(c.APIKeys) == 0 {
		probs = append(probs, "metrics_auth needs API keys (api_keys or api_keys_file)")
	}
	if c.StatePrecision != "" && c.StatePrecision != PrecisionFloat32 && c.StatePrecision != PrecisionFloat16 {
		probs = append(probs, fmt.Sprintf("state_precision must be %s or %s, got %q", PrecisionFloat32, PrecisionFloat16, c.StatePrecision))
	}
	if c.DrainDelay < 0 {
		probs = append(probs, "drain_delay must be >= 0")
	}
	if c.MaxBodyBytes < 1024 || c.MaxTextBytes < 1 {
		probs = append(probs, "max_body_bytes must be >= 1024 and max_text_bytes >= 1")
	}
	if c.MaxInflightBytes < c.MaxBodyBytes {
		probs = append(probs, fmt.Sprintf("max_inflight_bytes (%d) must be >= max_body_bytes (%d)", c.MaxInflightBytes, c.MaxBodyBytes))
	}
	seen := map[string]bool{}
	for i, k := range c.StateKeys {
		if !validKeyID(k.ID) || seen[k.ID] {
			probs = append(probs, fmt.Sprintf("state key %d: id %q must be unique and 1-%d letters, digits, '-' or '_'", i+1, k.ID, maxKeyID))
		}
		seen[k.ID] = true
		if err := checkKey(k.Key); err != nil {
			probs = append(probs, fmt.Sprintf("state key %d (%s): %v", i+1, k.ID, err))
		}
	}
	if len(probs) > 0 {
		return errors.New("server config: " + strings.Join(probs, "; "))
	}
	return nil
}

// Deps are the server's collaborators.
type Deps struct {
	Logger   *slog.Logger         // nil: discard
	Registry *prometheus.Registry // nil: a fresh one
	Now      func() time.Time     // nil: time.Now
	// Client names the client a request comes from, for the per-client
	// quota (nil: the IP address of the connection's peer). With
	// Config.APIKeys the API key names the client instead.
	Client func(*http.Request) string
}

// Server is an http.Handler. Create it with NewServer, give it a detector
// with Load, and Close it after the HTTP server has drained.
type Server struct {
	cfg     Config
	log     *slog.Logger
	m       *metrics
	signer  signer
	calls   *callStore
	handler http.Handler
	now     func() time.Time
	client  func(*http.Request) string

	inflight atomic.Int64 // body bytes reserved by requests in flight

	det      atomic.Pointer[callwatch.Detector]
	policy   callwatch.Policy
	ready    atomic.Bool
	draining atomic.Bool

	base     context.Context
	cancel   context.CancelFunc
	classify *batcher[[][]int64, []callwatch.Scores]
	segments *batcher[segJob, callwatch.Update]
	janitor  chan struct{}
}

// NewServer builds the handler. It answers liveness at once and everything
// that needs the model with 503 not_ready until Load has succeeded.
func NewServer(cfg Config, deps Deps) (*Server, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: deps.Logger, now: deps.Now, client: deps.Client, m: newMetrics(deps.Registry), janitor: make(chan struct{})}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.client == nil {
		s.client = peerIP
	}
	keys := cfg.StateKeys
	if len(keys) == 0 {
		key := make([]byte, 32)
		rand.Read(key)
		keys = []StateKey{{ID: "local", Key: key}}
		s.log.Warn("no server.state_keys (env CALLWATCH_SERVER_STATE_KEYS) set: using a random per-process key; state tokens will not work across replicas or restarts")
	}
	s.signer = signer{keys: keys, half: cfg.StatePrecision == PrecisionFloat16}
	s.calls = newCallStore(cfg.SessionTTL, cfg.MaxSessions, cfg.MaxTrackedCalls, cfg.MaxSessionsPerClient, s.now, s.m)
	s.base, s.cancel = context.WithCancel(context.Background())
	s.classify = newBatcher(s.base, "classify", cfg.MaxBatch, cfg.MaxWait, cfg.MaxQueue, cfg.Workers, s.m,
		func(rows [][]int64) int { return len(rows) }, s.execClassify)
	// A long segment counts for more of a batch, so that one at the text
	// limit runs alone instead of holding 31 short ones until it is done.
	s.segments = newBatcher(s.base, "segment", cfg.MaxBatch, cfg.MaxWait, cfg.MaxQueue, cfg.Workers, s.m,
		func(j segJob) int { return 1 + len(j.seg.Text)/segmentUnitBytes }, s.execSegments)
	s.handler = s.routes()
	go s.sweepLoop()
	return s, nil
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// Load installs the detector with its default alert policy and runs a
// warm-up inference through the batcher; the server reports ready only
// after it passed.
func (s *Server) Load(ctx context.Context, d *callwatch.Detector) error {
	return s.LoadPolicy(ctx, d, d.DefaultPolicy())
}

// LoadPolicy is Load with the alert policy for streamed calls.
func (s *Server) LoadPolicy(ctx context.Context, d *callwatch.Detector, pol callwatch.Policy) error {
	if err := pol.Validate(); err != nil {
		return err
	}
	s.policy = pol
	s.det.Store(d)
	t0 := time.Now()
	ids, err := d.Tokenizer().Encode("안녕하세요 고객센터입니다 무엇을 도와드릴까요")
	if err != nil {
		return fmt.Errorf("warm-up tokenize: %w", err)
	}
	scores, err := s.classify.submit(ctx, [][]int64{ids})
	if err != nil {
		return fmt.Errorf("warm-up inference: %w", err)
	}
	if len(scores) != 1 || !(scores[0].Phishing >= 0 && scores[0].Phishing <= 1) {
		return fmt.Errorf("warm-up inference: score %v is not a probability", scores)
	}
	s.ready.Store(true)
	s.m.ready.Set(1)
	b := d.Bundle()
	s.log.Info("model ready", "model", b.Card.Name, "version", b.Card.Version, "sha256", b.ModelSHA256[:12],
		"backend", d.Backend().Name(), "warmup_s", time.Since(t0).Seconds())
	s.m.modelInfo.Reset()
	s.m.modelInfo.WithLabelValues(b.Card.Name, b.Card.Version, b.ModelSHA256[:12], d.Backend().Name()).Set(1)
	return nil
}

// Ready reports whether the model is loaded and warmed up.
func (s *Server) Ready() bool { return s.ready.Load() && !s.draining.Load() }

// Drain makes readiness fail so load balancers stop sending new work while
// the HTTP server finishes what it has.
func (s *Server) Drain() { s.draining.Store(true); s.m.ready.Set(0) }

// Close stops the batchers after running what they hold. Call it after the
// HTTP server's Shutdown; it does not close the detector.
func (s *Server) Close() {
	s.Drain()
	s.classify.close()
	s.segments.close()
	select {
	case <-s.janitor:
	default:
		close(s.janitor)
	}
	s.cancel()
}

func (s *Server) sweepLoop() {
	t := time.NewTicker(max(s.cfg.SessionTTL/4, time.Second))
	defer t.Stop()
	for {
		select {
		case <-t.C:
			s.calls.sweep()
		case <-s.janitor:
			return
		}
	}
}

// detector returns the loaded detector or a not_ready error.
func (s *Server) detector() (*callwatch.Detector, error) {
	d := s.det.Load()
	if d == nil || !s.ready.Load() {
		return nil, errorf(CodeNotReady, "model is loading")
	}
	return d, nil
}

// segmentUnitBytes of segment text count as one unit of a segment batch.
const segmentUnitBytes = 2048

// peerIP is the default client name for quotas: the connection's peer.
func peerIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// Serve runs an HTTP server for h on ln until ctx is done, then drains:
// readiness answers 503 at once while requests are still served for the
// config's DrainDelay (so load balancers see the replica leave), then the
// listener closes, in-flight requests finish (up to drain), and the batchers
// stop last. load, when set, runs after the listener is up, so liveness
// answers while the model loads.
func Serve(ctx context.Context, ln net.Listener, s *Server, drain time.Duration, load func(context.Context) error) error {
	hs := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn)}
	errc := make(chan error, 2)
	go func() { errc <- hs.Serve(ln) }()
	s.log.Info("listening", "addr", ln.Addr().String(), "memory_limit", memoryLimit())
	if load != nil {
		go func() {
			if err := load(ctx); err != nil {
				errc <- fmt.Errorf("loading the model: %w", err)
			}
		}()
	}
	var err error
	select {
	case <-ctx.Done():
		s.Drain()
		s.log.Info("draining: readiness answers 503 while requests are still served", "drain_delay_s", s.cfg.DrainDelay.Seconds())
		select {
		case <-time.After(s.cfg.DrainDelay):
		case err = <-errc:
		}
	case err = <-errc:
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	s.log.Info("shutting down", "drain_s", drain.Seconds())
	s.Drain()
	sctx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	if serr := hs.Shutdown(sctx); serr != nil && err == nil {
		err = fmt.Errorf("draining: %w", serr)
	}
	s.Close()
	s.log.Info("stopped")
	return err
}

// memoryLimit describes the Go runtime's soft memory limit (GOMEMLIMIT).
func memoryLimit() string {
	l := debug.SetMemoryLimit(-1)
	if l == math.MaxInt64 {
		return "none (set GOMEMLIMIT, e.g. to 80% of the container's memory)"
	}
	return fmt.Sprintf("%d MiB (GOMEMLIMIT)", l>>20)
}
