package server

import (
	"net/http"

	"github.com/callwatch/callwatch/api"
)

// openAPIDoc is the OpenAPI 3 document of every route (api/openapi.json).
var openAPIDoc = api.OpenAPI()

// handleOpenAPI answers GET /openapi.json.
func (s *Server) handleOpenAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write(openAPIDoc)
}
