package server

import (
	"io/fs"
	"net/http"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// routes is the whole URL space of the service, in one place.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	handle := func(pattern string, h http.HandlerFunc) { mux.Handle(pattern, s.instrument(pattern, h)) }

	// KServe Open Inference Protocol v2
	handle("GET /v2", s.handleV2Server)
	handle("GET /v2/health/live", s.handleLive)
	handle("GET /v2/health/ready", s.handleReady)
	handle("GET /v2/models/{name}", s.handleV2Model)
	handle("GET /v2/models/{name}/ready", s.handleV2ModelReady)
	handle("POST /v2/models/{name}/infer", s.handleV2Infer)

	// plain JSON API
	handle("POST /v1/classify", s.handleClassify)
	handle("POST /v1/calls/{call_id}/segments", s.handleSegment)
	handle("DELETE /v1/calls/{call_id}", s.handleEndCall)
	handle("GET /v1/model", s.handleModelInfo)

	// operations
	handle("GET /metrics", promhttp.HandlerFor(s.m.reg, promhttp.HandlerOpts{}).ServeHTTP)
	handle("GET /openapi.json", s.handleOpenAPI) // api/openapi.json

	// live call monitor page
	static, _ := fs.Sub(staticFiles, "static")
	handle("GET /{$}", func(w http.ResponseWriter, r *http.Request) { http.ServeFileFS(w, r, static, "index.html") })
	handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)).ServeHTTP)

	return s.requestID(s.unmatchedJSON(mux))
}

// unmatchedRoute labels the requests no route matches in metrics and logs.
const unmatchedRoute = "unmatched"

// unmatchedJSON answers requests no route matches with the same JSON error
// shape as every other error, instead of net/http's plain-text 404/405
// (the 405 keeps the Allow header the mux computes); they are counted
// under the route "unmatched".
func (s *Server) unmatchedJSON(mux *http.ServeMux) http.Handler {
	unmatched := s.instrument(unmatchedRoute, func(w http.ResponseWriter, r *http.Request) {
		h, _ := mux.Handler(r)
		probe := &statusProbe{header: http.Header{}}
		h.ServeHTTP(probe, r)
		if probe.status == http.StatusMethodNotAllowed {
			w.Header().Set("Allow", probe.header.Get("Allow"))
			writeError(w, errorf(CodeMethod, "%s is not allowed on %s (allowed: %s)", r.Method, r.URL.Path, probe.header.Get("Allow")))
			return
		}
		if probe.status != http.StatusNotFound {
			h.ServeHTTP(w, r) // e.g. a redirect to the cleaned path
			return
		}
		writeError(w, errorf(CodeNotFound, "no such endpoint %s %s; see GET /v1/model, POST /v1/classify, POST /v1/calls/{call_id}/segments and the KServe v2 routes under /v2", r.Method, clip(r.URL.Path, 200)))
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := mux.Handler(r); pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		unmatched.ServeHTTP(w, r)
	})
}

// statusProbe records what the mux's own not-found/method handler would
// send, without sending it.
type statusProbe struct {
	header http.Header
	status int
}

func (p *statusProbe) Header() http.Header         { return p.header }
func (p *statusProbe) Write(b []byte) (int, error) { return len(b), nil }
func (p *statusProbe) WriteHeader(code int)        { p.status = code }
