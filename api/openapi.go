package api

import (
	_ "embed"
	"slices"
)

// openAPI is the OpenAPI 3 document of callwatch serve (/v1, /v2, metrics
// and the monitor page). TestOpenAPI keeps it in step with the wire types
// and the code→status table; the server's TestOpenAPIRoutes with its routes
// and handlers.
//
//go:embed openapi.json
var openAPI []byte

// OpenAPI returns the OpenAPI 3 document (JSON) that callwatch serve
// answers at GET /openapi.json.
func OpenAPI() []byte { return slices.Clone(openAPI) }
