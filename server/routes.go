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
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.m.reg, promhttp.HandlerOpts{}))

	// live call monitor page
	static, _ := fs.Sub(staticFiles, "static")
	handle("GET /{$}", func(w http.ResponseWriter, r *http.Request) { http.ServeFileFS(w, r, static, "index.html") })
	handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)).ServeHTTP)

	return s.requestID(mux)
}
