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
	"net"
	"net/http"
	"runtime"
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
	RequestTimeout time.Duration // per-request deadline (server.request_timeout)
	MaxBodyBytes   int64         // request body limit (server.max_body_bytes)
	MaxTextBytes   int           // one text's limit (server.max_text_bytes)
	MaxTexts       int           // texts per classify/infer request (server.max_texts)
	// StateKey signs state tokens; replicas that share calls share the key.
	// Empty: a random per-process key (tokens then work on this process only).
	StateKey []byte
	// Sessions enables the server-side store used when a segment request
	// carries no state token.
	Sessions    bool
	SessionTTL  time.Duration
	MaxSessions int
}

// DefaultConfig returns the defaults documented in the README.
func DefaultConfig() Config {
	return Config{
		MaxBatch: 32, MaxWait: 2 * time.Millisecond, MaxQueue: 1024, Workers: max(1, runtime.GOMAXPROCS(0)),
		RequestTimeout: 10 * time.Second, MaxBodyBytes: 1 << 20, MaxTextBytes: 64 << 10, MaxTexts: 256,
		Sessions: true, SessionTTL: 10 * time.Minute, MaxSessions: 10000,
	}
}

func (c Config) validate() error {
	var probs []string
	if c.MaxBatch < 1 {
		probs = append(probs, fmt.Sprintf("max_batch must be >= 1, got %d", c.MaxBatch))
	}
	if c.MaxWait < 0 {
		probs = append(probs, fmt.Sprintf("max_wait must be >= 0, got %s", c.MaxWait))
	}
	if c.MaxQueue < 1 || c.Workers < 1 || c.MaxTexts < 1 || c.MaxSessions < 1 {
		probs = append(probs, "max_queue, workers, max_texts and max_sessions must be >= 1")
	}
	if c.RequestTimeout <= 0 || c.SessionTTL <= 0 {
		probs = append(probs, "request_timeout and session_ttl must be positive")
	}
	if c.MaxBodyBytes < 1024 || c.MaxTextBytes < 1 {
		probs = append(probs, "max_body_bytes must be >= 1024 and max_text_bytes >= 1")
	}
	if len(c.StateKey) > 0 && len(c.StateKey) < 16 {
		probs = append(probs, fmt.Sprintf("state_key must be at least 16 bytes, got %d", len(c.StateKey)))
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
}

// Server is an http.Handler. Create it with NewServer, give it a detector
// with Load, and Close it after the HTTP server has drained.
type Server struct {
	cfg     Config
	log     *slog.Logger
	m       *metrics
	signer  signer
	store   *store
	handler http.Handler
	now     func() time.Time

	det      atomic.Pointer[callwatch.Detector]
	policy   callwatch.Policy
	ready    atomic.Bool
	draining atomic.Bool

	base     context.Context
	cancel   context.CancelFunc
	classify *batcher[[][]int64, []float32]
	segments *batcher[segJob, callwatch.Update]
	janitor  chan struct{}
}

// NewServer builds the handler. It answers liveness at once and everything
// that needs the model with 503 not_ready until Load has succeeded.
func NewServer(cfg Config, deps Deps) (*Server, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: deps.Logger, now: deps.Now, m: newMetrics(deps.Registry), janitor: make(chan struct{})}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	key := cfg.StateKey
	if len(key) == 0 {
		key = make([]byte, 32)
		rand.Read(key)
		s.log.Warn("no server.state_key (env CALLWATCH_SERVER_STATE_KEY) set: using a random per-process key; state tokens will not work across replicas or restarts")
	}
	s.signer = signer{key: key}
	s.store = newStore(cfg.SessionTTL, cfg.MaxSessions, s.now, s.m.activeCalls)
	s.base, s.cancel = context.WithCancel(context.Background())
	s.classify = newBatcher(s.base, "classify", cfg.MaxBatch, cfg.MaxWait, cfg.MaxQueue, cfg.Workers, s.m,
		func(rows [][]int64) int { return len(rows) }, s.execClassify)
	s.segments = newBatcher(s.base, "segment", cfg.MaxBatch, cfg.MaxWait, cfg.MaxQueue, cfg.Workers, s.m,
		func(segJob) int { return 1 }, s.execSegments)
	s.handler = s.routes()
	if cfg.Sessions {
		go s.sweepLoop()
	}
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
	if len(scores) != 1 || !(scores[0] >= 0 && scores[0] <= 1) {
		return fmt.Errorf("warm-up inference: score %v is not a probability", scores)
	}
	s.ready.Store(true)
	s.m.ready.Set(1)
	b := d.Bundle()
	s.log.Info("model ready", "model", b.Card.Name, "version", b.Card.Version, "sha256", b.ModelSHA256[:12],
		"backend", d.Backend().Name(), "warmup", time.Since(t0).Round(time.Microsecond).String())
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
			s.store.sweep()
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

// Serve runs an HTTP server for h on ln until ctx is done, then drains:
// readiness fails first, in-flight requests finish (up to drain), and the
// batchers stop last. load, when set, runs after the listener is up, so
// liveness answers while the model loads.
func Serve(ctx context.Context, ln net.Listener, s *Server, drain time.Duration, load func(context.Context) error) error {
	hs := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn)}
	errc := make(chan error, 2)
	go func() { errc <- hs.Serve(ln) }()
	s.log.Info("listening", "addr", ln.Addr().String())
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
	case err = <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
	}
	s.log.Info("shutting down", "drain", drain.String())
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
