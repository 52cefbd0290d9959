package api

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
)

// The OpenAPI document (openapi.json) against this package: it parses and
// validates as OpenAPI 3, every error response names its codes
// (x-error-codes) and their status is the one codeStatus gives them, every
// code of the table appears, and the schemas of the wire types have exactly
// their JSON fields. server's TestOpenAPIRoutes checks it against the routes
// and the handlers' answers.

func TestOpenAPIValid(t *testing.T) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(OpenAPI())
	if err != nil {
		t.Fatalf("openapi.json does not load as OpenAPI 3: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("openapi.json is not valid OpenAPI 3: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Errorf("openapi = %q, want 3.x", doc.OpenAPI)
	}
	if len(doc.Paths.Map()) == 0 {
		t.Fatal("no paths")
	}
	// Every operation has an id and a 2xx answer.
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			if op.OperationID == "" {
				t.Errorf("%s %s: no operationId", method, path)
			}
			has2xx := false
			for code := range op.Responses.Map() {
				has2xx = has2xx || strings.HasPrefix(code, "2")
			}
			if !has2xx {
				t.Errorf("%s %s: no 2xx response", method, path)
			}
		}
	}
}

// oaResponse is what the checks read of a response object.
type oaResponse struct {
	Codes   []Code                     `json:"x-error-codes"`
	Headers map[string]json.RawMessage `json:"headers"`
	Content map[string]struct {
		Schema struct {
			Ref string `json:"$ref"`
		} `json:"schema"`
	} `json:"content"`
}

type oaDoc struct {
	Paths    map[string]map[string]json.RawMessage `json:"paths"`
	Unrouted map[string]oaResponse                 `json:"x-unrouted-responses"`
	Comp     struct {
		Schemas map[string]oaSchema `json:"schemas"`
	} `json:"components"`
}

type oaSchema struct {
	Enum       []string                   `json:"enum"`
	Properties map[string]json.RawMessage `json:"properties"`
	Required   []string                   `json:"required"`
}

func loadOADoc(t *testing.T) oaDoc {
	t.Helper()
	var d oaDoc
	if err := json.Unmarshal(OpenAPI(), &d); err != nil {
		t.Fatal(err)
	}
	return d
}

// oaResponses lists every response of the document: "METHOD PATH" (or
// "unrouted") → status → response.
func oaResponses(t *testing.T, d oaDoc) map[string]map[string]oaResponse {
	t.Helper()
	out := map[string]map[string]oaResponse{"unrouted": d.Unrouted}
	for path, item := range d.Paths {
		for method, raw := range item {
			if method == "parameters" || method == "summary" || method == "description" {
				continue
			}
			var op struct {
				Responses map[string]oaResponse `json:"responses"`
			}
			if err := json.Unmarshal(raw, &op); err != nil {
				t.Fatalf("%s %s: %v", method, path, err)
			}
			out[strings.ToUpper(method)+" "+path] = op.Responses
		}
	}
	return out
}

func TestOpenAPIErrorStatuses(t *testing.T) {
	d := loadOADoc(t)
	if len(d.Unrouted) == 0 {
		t.Error("x-unrouted-responses is missing: the answers to unknown paths and methods are part of the API")
	}
	tableStatuses := map[int]bool{}
	for _, s := range codeStatus {
		tableStatuses[s] = true
	}
	seen := map[Code][]string{}
	for where, resps := range oaResponses(t, d) {
		for key, r := range resps {
			status, err := strconv.Atoi(key)
			if err != nil {
				t.Errorf("%s: response %q: use explicit statuses, so each can be checked against the code table", where, key)
				continue
			}
			if status < 400 {
				if status != http.StatusOK && status != http.StatusNoContent {
					t.Errorf("%s: success status %d: the server answers only 200 and 204", where, status)
				}
				if len(r.Codes) > 0 {
					t.Errorf("%s %d: a success lists error codes %v", where, status, r.Codes)
				}
				continue
			}
			if !tableStatuses[status] {
				t.Errorf("%s: status %d is not the status of any code in api's code table", where, status)
			}
			if len(r.Codes) == 0 {
				t.Errorf("%s %d: error response without x-error-codes", where, status)
			}
			retry := false
			for _, c := range r.Codes {
				want, ok := codeStatus[c]
				switch {
				case !ok:
					t.Errorf("%s %d: code %q is not in api's code table", where, status, c)
				case want != status:
					t.Errorf("%s: code %q listed under %d, but its status is %d (api/wire.go codeStatus)", where, c, status, want)
				}
				retry = retry || c.RetryAfter() > 0
				seen[c] = append(seen[c], where)
			}
			if _, ok := r.Headers["Retry-After"]; ok != retry {
				t.Errorf("%s %d: Retry-After header documented = %v, but the codes %v send it = %v", where, status, ok, r.Codes, retry)
			}
			if _, ok := r.Headers["X-Error-Code"]; !ok {
				t.Errorf("%s %d: X-Error-Code header not documented", where, status)
			}
			// /v2 answers errors in the protocol's string shape, the rest
			// (unknown routes included) in ErrorBody.
			wantSchema := "#/components/schemas/ErrorBody"
			if strings.Contains(where, " /v2") {
				wantSchema = "#/components/schemas/V2Error"
			}
			if got := r.Content["application/json"].Schema.Ref; got != wantSchema {
				t.Errorf("%s %d: error body schema %q, want %q", where, status, got, wantSchema)
			}
		}
	}
	for c := range codeStatus {
		if len(seen[c]) == 0 {
			t.Errorf("code %q (status %d) is in api's code table but no response of openapi.json lists it", c, codeStatus[c])
		}
	}
	enum := d.Comp.Schemas["ErrorCode"].Enum
	table := slices.Sorted(maps.Keys(codeStatus))
	got := slices.Clone(enum)
	sort.Strings(got)
	want := make([]string, len(table))
	for i, c := range table {
		want[i] = string(c)
	}
	if !slices.Equal(got, want) {
		t.Errorf("schema ErrorCode enum = %v, want the code table's codes %v", got, want)
	}
}

// TestOpenAPIWireTypes: the schema of each wire type has exactly its JSON
// fields, and for what the server sends, the fields always present are
// the required ones.
func TestOpenAPIWireTypes(t *testing.T) {
	d := loadOADoc(t)
	types := []struct {
		schema string
		v      any
		sent   bool // the server writes it: required = the fields without omitempty
	}{
		{"ClassifyRequest", ClassifyRequest{}, false},
		{"Record", Record{}, false},
		{"ClassifyResponse", ClassifyResponse{}, true},
		{"Verdict", Verdict{}, true},
		{"RecordError", RecordError{}, true},
		{"SegmentRequest", SegmentRequest{}, false},
		{"SegmentResponse", SegmentResponse{}, true},
		{"Reason", Reason{}, true},
		{"ErrorBody", ErrorBody{}, true},
		{"ErrorDetail", ErrorDetail{}, true},
		{"V2Tensor", V2Tensor{}, true},
		{"V2InferRequest", V2InferRequest{}, false},
		{"V2OutputWanted", V2OutputWanted{}, false},
		{"V2InferResponse", V2InferResponse{}, true},
	}
	for _, tt := range types {
		s, ok := d.Comp.Schemas[tt.schema]
		if !ok {
			t.Errorf("no schema %s", tt.schema)
			continue
		}
		fields, always := jsonFields(reflect.TypeOf(tt.v))
		props := slices.Sorted(maps.Keys(s.Properties))
		if !slices.Equal(props, fields) {
			t.Errorf("schema %s has properties %v; the Go type's JSON fields are %v", tt.schema, props, fields)
		}
		if tt.sent {
			req := slices.Clone(s.Required)
			sort.Strings(req)
			if !slices.Equal(req, always) {
				t.Errorf("schema %s requires %v; the server always sends %v (the fields without omitempty)", tt.schema, req, always)
			}
		}
	}
	var levels []string
	for _, l := range []Level{LevelNone, LevelSuspicious, LevelDangerous} {
		levels = append(levels, string(l))
	}
	if got := d.Comp.Schemas["Level"].Enum; !slices.Equal(got, levels) {
		t.Errorf("schema Level enum = %v, want %v", got, levels)
	}
}

// jsonFields is the sorted JSON field names of struct type t (embedded
// structs flattened), and those without omitempty.
func jsonFields(t reflect.Type) (all, always []string) {
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if f.Anonymous && tag == "" {
			a, b := jsonFields(f.Type)
			all, always = append(all, a...), append(always, b...)
			continue
		}
		if !f.IsExported() || tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if name == "" {
			name = f.Name
		}
		all = append(all, name)
		if !strings.Contains(opts, "omitempty") {
			always = append(always, name)
		}
	}
	sort.Strings(all)
	sort.Strings(always)
	return all, always
}
