package server

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics lives on its own registry per server (no global state), so tests
// can run several servers in one process.
type metrics struct {
	reg          *prometheus.Registry
	requests     *prometheus.CounterVec
	latency      *prometheus.HistogramVec
	batchSize    *prometheus.HistogramVec
	queueDepth   *prometheus.GaugeVec
	tokenizeSecs prometheus.Histogram
	inferSeconds *prometheus.HistogramVec
	activeCalls  prometheus.Gauge
	trackedCalls prometheus.Gauge
	callsDropped *prometheus.CounterVec
	inflight     prometheus.Gauge
	segments     *prometheus.CounterVec
	rejected     *prometheus.CounterVec
	ready        prometheus.Gauge
	modelInfo    *prometheus.GaugeVec
	verdicts     *prometheus.CounterVec
	levels       *prometheus.CounterVec
	alerts       *prometheus.CounterVec
}

func newMetrics(reg *prometheus.Registry) *metrics {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	lat := []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}
	m := &metrics{
		reg: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "callwatch_http_requests_total",
			Help: "HTTP requests by route pattern and status code."}, []string{"route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "callwatch_http_request_duration_seconds",
			Help: "HTTP request latency by route pattern and status code.", Buckets: lat}, []string{"route", "code"}),
		batchSize: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "callwatch_batch_size",
			Help: "Units (texts or segments) per backend batch.", Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256}}, []string{"kind"}),
		queueDepth: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "callwatch_queue_depth",
			Help: "Requests waiting for a batch."}, []string{"kind"}),
		tokenizeSecs: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "callwatch_tokenize_seconds",
			Help: "Tokenization time per classify request (all its texts).", Buckets: lat}),
		inferSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "callwatch_inference_seconds",
			Help: "Backend time per batch (segment batches include their tokenization).", Buckets: lat}, []string{"kind"}),
		activeCalls: prometheus.NewGauge(prometheus.GaugeOpts{Name: "callwatch_active_calls",
			Help: "Calls held in the server-side session store."}),
		trackedCalls: prometheus.NewGauge(prometheus.GaugeOpts{Name: "callwatch_tracked_calls",
			Help: "Token-carrying calls whose sequence number this replica remembers (replay and fork checks)."}),
		callsDropped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "callwatch_calls_dropped_total",
			Help: "Calls dropped from the session store, by reason (lru, quota, ttl, ended, failed, replaced)."}, []string{"reason"}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{Name: "callwatch_inflight_body_bytes",
			Help: "Request body bytes reserved by requests in flight (server.max_inflight_bytes)."}),
		segments: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "callwatch_segments_total",
			Help: "Segments answered, by where the call state came from (token, store, new) or retry (answered again, not applied twice)."}, []string{"source"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "callwatch_rejected_total",
			Help: "Requests refused before scoring, by error code."}, []string{"code"}),
		ready: prometheus.NewGauge(prometheus.GaugeOpts{Name: "callwatch_ready",
			Help: "1 once the model is loaded and a warm-up inference passed."}),
		modelInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "callwatch_model_info",
			Help: "1 for the loaded model, by name, version, sha256 (first 12 hex digits of model.onnx) and backend."}, []string{"name", "version", "sha256", "backend"}),
		verdicts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "callwatch_verdicts_total",
			Help: "Texts classified (POST /v1/classify and v2 infer), by label and level."}, []string{"label", "level"}),
		levels: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "callwatch_segment_levels_total",
			Help: "Segments answered, by the call's level after the segment."}, []string{"level"}),
		alerts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "callwatch_alerts_total",
			Help: "Alerts raised on streamed calls (a call's level first rising), by level."}, []string{"level"}),
	}
	reg.MustRegister(m.modelInfo, m.verdicts, m.levels, m.alerts)
	reg.MustRegister(m.requests, m.latency, m.batchSize, m.queueDepth, m.tokenizeSecs, m.inferSeconds,
		m.activeCalls, m.trackedCalls, m.callsDropped, m.inflight, m.segments, m.rejected, m.ready)
	// Process metrics include process_resident_memory_bytes, which the load
	// test reads; a caller-supplied registry may already have them.
	_ = reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	_ = reg.Register(collectors.NewGoCollector())
	return m
}
