package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/callwatch/callwatch"
	"github.com/callwatch/callwatch/api"
	"github.com/callwatch/callwatch/models"
	"github.com/callwatch/callwatch/runtime/ort"
	"github.com/callwatch/callwatch/server"
)

// The OpenAPI document (api/openapi.json) against the server: every route
// registered in this package is a path+method of the document and the
// reverse, and live requests to every operation — successes and the errors
// that can be provoked in-process — answer a status the document lists for
// that operation, with a body its schema accepts and an X-Error-Code its
// x-error-codes name. (api's TestOpenAPIErrorStatuses checks each listed
// code's status against the code table.)

var oaMethodPath = regexp.MustCompile(`^(GET|HEAD|POST|PUT|PATCH|DELETE|OPTIONS) (/\S*)$`)

// oaRoutes reads the "METHOD /pattern" literals of the package's non-test
// files: the ServeMux patterns routes() registers.
func oaRoutes(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) == 0 {
				return true
			}
			lit, ok := call.Args[0].(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			s, err := strconv.Unquote(lit.Value)
			if err == nil && oaMethodPath.MatchString(s) {
				out = append(out, s)
			}
			return true
		})
	}
	if !slices.Contains(out, "GET /v2/health/ready") {
		t.Fatalf("found routes %v: the route parser no longer sees routes()", out)
	}
	return out
}

// oaMuxPath turns a ServeMux pattern's path into OpenAPI's form: "/{$}" is
// "/", "{x...}" is "{x}", and a subtree pattern "/static/" is reported with
// prefix=true (its document path is the prefix plus one parameter).
func oaMuxPath(p string) (path string, prefix bool) {
	p = strings.ReplaceAll(p, "{$}", "")
	p = regexp.MustCompile(`\{(\w+)\.\.\.\}`).ReplaceAllString(p, "{$1}")
	if p == "" {
		return "/", false
	}
	if strings.HasSuffix(p, "/") && p != "/" {
		return p, true
	}
	return p, false
}

var oaOneParam = regexp.MustCompile(`^\{\w+\}$`)

func oaLoad(t *testing.T) *openapi3.T {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(api.OpenAPI())
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return doc
}

func TestOpenAPIRoutes(t *testing.T) {
	doc := oaLoad(t)
	type op struct{ method, path string }
	var specOps []op
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			specOps = append(specOps, op{method, path})
		}
	}
	matches := func(route string, o op) bool {
		m := oaMethodPath.FindStringSubmatch(route)
		path, prefix := oaMuxPath(m[2])
		if m[1] != o.method {
			return false
		}
		if prefix {
			rest, ok := strings.CutPrefix(o.path, path)
			return ok && oaOneParam.MatchString(rest)
		}
		return path == o.path
	}
	routes := oaRoutes(t)
	for _, r := range routes {
		if !slices.ContainsFunc(specOps, func(o op) bool { return matches(r, o) }) {
			t.Errorf("route %q is not in api/openapi.json", r)
		}
	}
	for _, o := range specOps {
		if !slices.ContainsFunc(routes, func(r string) bool { return matches(r, o) }) {
			t.Errorf("api/openapi.json has %s %s, but no route serves it", o.method, o.path)
		}
	}
}

// oaExchange is one live request and the status it must get.
type oaExchange struct {
	name, method, path string
	header             map[string]string
	body               string
	status             int
	validRequest       bool // the request itself must satisfy the document
}

func oaDetector(t *testing.T) *callwatch.Detector {
	t.Helper()
	b, err := models.Load(filepath.Join("..", "models", models.DefaultName))
	if err != nil {
		t.Fatal(err)
	}
	be, err := callwatch.OpenBackend(callwatch.BackendNative, b, ort.Options{}, func(string) {})
	if err != nil {
		t.Fatal(err)
	}
	d, err := callwatch.New(b, be)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// oaChecker sends exchanges and checks each answer against the document.
type oaChecker struct {
	t      *testing.T
	doc    *openapi3.T
	router routers.Router
	raw    map[string]any // the document as plain JSON, for the x- fields
	hit    map[string]bool
}

func newOAChecker(t *testing.T) *oaChecker {
	doc := oaLoad(t)
	r, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := json.Unmarshal(api.OpenAPI(), &raw); err != nil {
		t.Fatal(err)
	}
	return &oaChecker{t: t, doc: doc, router: r, raw: raw, hit: map[string]bool{}}
}

// errorCodes is the x-error-codes of a response object (plain JSON).
func errorCodes(resp any) []string {
	m, _ := resp.(map[string]any)
	list, _ := m["x-error-codes"].([]any)
	var out []string
	for _, c := range list {
		s, _ := c.(string)
		out = append(out, s)
	}
	return out
}

func (c *oaChecker) send(s http.Handler, x oaExchange) *httptest.ResponseRecorder {
	t := c.t
	t.Helper()
	newReq := func() *http.Request {
		var body io.Reader
		if x.body != "" {
			body = strings.NewReader(x.body)
		}
		req := httptest.NewRequest(x.method, x.path, body)
		if x.body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		for k, v := range x.header {
			req.Header.Set(k, v)
		}
		return req
	}
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, newReq())
	res := rec.Result()
	body := rec.Body.Bytes()
	code := res.Header.Get("X-Error-Code")
	where := x.name + " (" + x.method + " " + x.path + ")"
	if res.StatusCode != x.status {
		t.Errorf("%s: status %d (code %q), want %d; body %s", where, res.StatusCode, code, x.status, oaShort(body))
	}
	// The documented operation, or the answers to unrouted requests.
	req := newReq()
	route, params, err := c.router.FindRoute(req)
	var docResp any
	if err != nil {
		var re *routers.RouteError
		if !errors.As(err, &re) || re.Reason != routers.ErrPathNotFound.Error() && re.Reason != routers.ErrMethodNotAllowed.Error() {
			t.Errorf("%s: %v", where, err)
			return rec
		}
		if code != string(api.CodeNotFound) && code != string(api.CodeMethod) {
			t.Errorf("%s: not in the document, but the server routed it (status %d, code %q)", where, res.StatusCode, code)
		}
		unrouted, _ := c.raw["x-unrouted-responses"].(map[string]any)
		docResp = unrouted[strconv.Itoa(res.StatusCode)]
		if docResp == nil {
			t.Errorf("%s: status %d is not in x-unrouted-responses", where, res.StatusCode)
			return rec
		}
		var eb api.ErrorBody
		if err := json.Unmarshal(body, &eb); err != nil || eb.Error.Code == "" {
			t.Errorf("%s: body %s is not an ErrorBody", where, oaShort(body))
		}
		c.hit["unrouted "+strconv.Itoa(res.StatusCode)] = true
	} else {
		if code == string(api.CodeNotFound) || code == string(api.CodeMethod) {
			t.Errorf("%s: the document has %s %s, but the server answered %d %s", where, route.Method, route.Path, res.StatusCode, code)
		}
		in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
			Options: &openapi3filter.Options{MultiError: true,
				// The server checks API keys itself (auth_test.go); here
				// the requirement only has to be well formed.
				AuthenticationFunc: func(context.Context, *openapi3filter.AuthenticationInput) error { return nil }}}
		if x.validRequest {
			if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
				t.Errorf("%s: the request does not satisfy the document: %v", where, err)
			}
		}
		opts := &openapi3filter.Options{MultiError: true, IncludeResponseStatus: true}
		if !strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
			opts.ExcludeResponseBody = true
		}
		err := openapi3filter.ValidateResponse(context.Background(), &openapi3filter.ResponseValidationInput{
			RequestValidationInput: in, Status: res.StatusCode, Header: res.Header,
			Body: io.NopCloser(bytes.NewReader(body)), Options: opts})
		if err != nil {
			t.Errorf("%s: the answer (%d %s) does not satisfy the document: %v", where, res.StatusCode, oaShort(body), err)
		}
		paths, _ := c.raw["paths"].(map[string]any)
		item, _ := paths[route.Path].(map[string]any)
		op, _ := item[strings.ToLower(route.Method)].(map[string]any)
		resps, _ := op["responses"].(map[string]any)
		docResp = resps[strconv.Itoa(res.StatusCode)]
		c.hit[route.Method+" "+route.Path] = true
	}
	if codes := errorCodes(docResp); res.StatusCode >= 400 && !slices.Contains(codes, code) {
		t.Errorf("%s: answered %d with X-Error-Code %q; the document lists %v for it", where, res.StatusCode, code, codes)
	}
	return rec
}

func oaShort(b []byte) string {
	if len(b) > 300 {
		return string(b[:300]) + "…"
	}
	return string(b)
}

// oaBody is the decoded JSON body of an answer.
func oaBody(t *testing.T, rec *httptest.ResponseRecorder, v any) {
	t.Helper()
	if err := json.Unmarshal(rec.Body.Bytes(), v); err != nil {
		t.Fatalf("decode %s: %v", oaShort(rec.Body.Bytes()), err)
	}
}

func TestOpenAPIHandlers(t *testing.T) {
	c := newOAChecker(t)
	d := oaDetector(t)
	name := d.Bundle().Card.Name

	// Before the model is loaded.
	cold, err := server.NewServer(server.DefaultConfig(), server.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cold.Close)
	for _, x := range []oaExchange{
		{name: "live while loading", method: "GET", path: "/v2/health/live", status: 200, validRequest: true},
		{name: "ready while loading", method: "GET", path: "/v2/health/ready", status: 503, validRequest: true},
		{name: "model while loading", method: "GET", path: "/v1/model", status: 503, validRequest: true},
		{name: "v2 model while loading", method: "GET", path: "/v2/models/" + name, status: 503, validRequest: true},
		{name: "v2 model ready while loading", method: "GET", path: "/v2/models/" + name + "/ready", status: 503, validRequest: true},
		{name: "infer while loading", method: "POST", path: "/v2/models/" + name + "/infer", body: `{"inputs":[{"name":"text","datatype":"BYTES","shape":[1],"data":["안녕하세요"]}]}`, status: 503, validRequest: true},
		{name: "classify while loading", method: "POST", path: "/v1/classify", body: `{"texts":["안녕하세요"]}`, status: 503, validRequest: true},
		{name: "segment while loading", method: "POST", path: "/v1/calls/c0/segments", body: `{"text":"안녕하세요","seq":0}`, status: 503, validRequest: true},
	} {
		c.send(cold, x)
	}

	cfg := server.DefaultConfig()
	cfg.StateKeys = []server.StateKey{{ID: "oa1", Key: []byte("0123456789abcdefghijklmnopqrstuv")}}
	cfg.MaxTexts = 4
	cfg.MaxBodyBytes = 64 << 10 // state tokens are several KB
	cfg.MaxTextBytes = 1024
	other := cfg
	other.StateKeys = []server.StateKey{{ID: "oa2", Key: []byte("vutsrqponmlkjihgfedcba9876543210")}}
	s, err := server.NewServer(cfg, server.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.Load(ctx, d); err != nil {
		t.Fatal(err)
	}

	text := "고객님 명의로 대포통장이 개설되어 검찰에서 연락드렸습니다 안전계좌로 이체하셔야 합니다"
	infer := func(data ...string) string {
		js, _ := json.Marshal(data)
		return `{"id":"r1","inputs":[{"name":"text","datatype":"BYTES","shape":[` + strconv.Itoa(len(data)) + `],"data":` + string(js) + `}]}`
	}
	for _, x := range []oaExchange{
		{name: "server metadata", method: "GET", path: "/v2", status: 200, validRequest: true},
		{name: "live", method: "GET", path: "/v2/health/live", status: 200, validRequest: true},
		{name: "ready", method: "GET", path: "/v2/health/ready", status: 200, validRequest: true},
		{name: "model metadata", method: "GET", path: "/v2/models/" + name, status: 200, validRequest: true},
		{name: "unknown model", method: "GET", path: "/v2/models/nope", status: 404, validRequest: true},
		{name: "model ready", method: "GET", path: "/v2/models/" + name + "/ready", status: 200, validRequest: true},
		{name: "unknown model ready", method: "GET", path: "/v2/models/nope/ready", status: 404, validRequest: true},
		{name: "infer", method: "POST", path: "/v2/models/" + name + "/infer", body: infer(text, "안녕하세요 택배 도착 예정입니다"), status: 200, validRequest: true},
		{name: "infer one output", method: "POST", path: "/v2/models/" + name + "/infer", body: `{"inputs":[{"name":"text","datatype":"BYTES","shape":[1,1],"data":["안녕하세요"]}],"outputs":[{"name":"label"}]}`, status: 200, validRequest: true},
		{name: "infer unknown model", method: "POST", path: "/v2/models/nope/infer", body: infer(text), status: 404, validRequest: true},
		{name: "infer wrong input", method: "POST", path: "/v2/models/" + name + "/infer", body: `{"inputs":[{"name":"audio","datatype":"BYTES","shape":[1],"data":["x"]}]}`, status: 400, validRequest: true},
		{name: "infer broken JSON", method: "POST", path: "/v2/models/" + name + "/infer", body: `{"inputs":[`, status: 400},
		{name: "infer text that cannot be scored", method: "POST", path: "/v2/models/" + name + "/infer", body: infer(text, " "), status: 400, validRequest: true},
		{name: "infer too many texts", method: "POST", path: "/v2/models/" + name + "/infer", body: infer("가", "나", "다", "라", "마"), status: 413, validRequest: true},
		{name: "infer text too large", method: "POST", path: "/v2/models/" + name + "/infer", body: infer(strings.Repeat("가", 400)), status: 413, validRequest: true},
		{name: "infer body too large", method: "POST", path: "/v2/models/" + name + "/infer", body: infer("가") + strings.Repeat(" ", 64<<10), status: 413},
		{name: "classify texts", method: "POST", path: "/v1/classify", body: `{"texts":["` + text + `","안녕하세요"]}`, status: 200, validRequest: true},
		{name: "classify records, one unscorable", method: "POST", path: "/v1/classify", body: `{"records":[{"id":"a","text":"` + text + `"},{"id":"b","text":" "}]}`, status: 200, validRequest: true},
		{name: "classify texts and records", method: "POST", path: "/v1/classify", body: `{"texts":["a"],"records":[{"id":"b","text":"c"}]}`, status: 400, validRequest: true},
		{name: "classify no input", method: "POST", path: "/v1/classify", body: `{}`, status: 400, validRequest: true},
		{name: "classify too many texts", method: "POST", path: "/v1/classify", body: `{"texts":["가","나","다","라","마"]}`, status: 413, validRequest: true},
		{name: "model", method: "GET", path: "/v1/model", status: 200, validRequest: true},
		{name: "metrics", method: "GET", path: "/metrics", status: 200, validRequest: true},
		{name: "monitor page", method: "GET", path: "/", status: 200, validRequest: true},
		{name: "monitor script", method: "GET", path: "/static/app.js", status: 200, validRequest: true},
		{name: "unknown path", method: "GET", path: "/v3/nothing", status: 404},
		{name: "wrong method", method: "GET", path: "/v1/classify", status: 405},
		{name: "end call without handle", method: "DELETE", path: "/v1/calls/c1", status: 400},
		{name: "end unknown call", method: "DELETE", path: "/v1/calls/c1", header: map[string]string{api.HandleHeader: "AAAAAAAAAAAAAAAAAAAAAA"}, status: 404, validRequest: true},
	} {
		c.send(s, x)
	}

	// The document itself.
	rec := c.send(s, oaExchange{name: "openapi", method: "GET", path: "/openapi.json", status: 200, validRequest: true})
	if !bytes.Equal(rec.Body.Bytes(), api.OpenAPI()) {
		t.Error("GET /openapi.json does not answer api/openapi.json")
	}

	// A streamed call: new, continued by token, continued by handle, its
	// errors, and its end.
	seg := func(x oaExchange) api.SegmentResponse {
		t.Helper()
		x.method = "POST"
		if x.path == "" {
			x.path = "/v1/calls/c1/segments"
		}
		rec := c.send(s, x)
		var r api.SegmentResponse
		if rec.Code == 200 {
			oaBody(t, rec, &r)
		}
		return r
	}
	js := func(v any) string { b, _ := json.Marshal(v); return string(b) }
	first := seg(oaExchange{name: "segment 0", body: `{"text":"` + text + `","start":0,"end":4.5,"seq":0}`, status: 200, validRequest: true})
	second := seg(oaExchange{name: "segment 1 by token", body: js(map[string]any{"text": text, "start": 4.5, "end": 9, "state": first.State}), status: 200, validRequest: true})
	seg(oaExchange{name: "segment 2 by handle", body: js(map[string]any{"text": "입금 확인되면 바로 알려드리겠습니다", "seq": 2, "handle": second.Handle}), status: 200, validRequest: true})
	seg(oaExchange{name: "old token replayed", body: js(map[string]any{"text": "다른 말", "state": first.State}), status: 409, validRequest: true})
	seg(oaExchange{name: "token of another call", path: "/v1/calls/c2/segments", body: js(map[string]any{"text": text, "state": first.State}), status: 400, validRequest: true})
	seg(oaExchange{name: "forged token", body: js(map[string]any{"text": text, "state": "cw2.oa1.e30.AAAA"}), status: 400, validRequest: true})
	seg(oaExchange{name: "later segment of an unknown call", path: "/v1/calls/c3/segments", body: `{"text":"` + text + `","seq":5}`, status: 410, validRequest: true})
	seg(oaExchange{name: "segment without seq or state", path: "/v1/calls/c3/segments", body: `{"text":"` + text + `"}`, status: 400, validRequest: true})
	seg(oaExchange{name: "segment text too large", path: "/v1/calls/c3/segments", body: `{"text":"` + strings.Repeat("가", 400) + `","seq":0}`, status: 413, validRequest: true})
	seg(oaExchange{name: "segment broken JSON", path: "/v1/calls/c3/segments", body: `{"text":`, status: 400})
	c.send(s, oaExchange{name: "end call", method: "DELETE", path: "/v1/calls/c1", header: map[string]string{api.HandleHeader: first.Handle}, status: 204, validRequest: true})
	c.send(s, oaExchange{name: "end call again", method: "DELETE", path: "/v1/calls/c1", header: map[string]string{api.HandleHeader: first.Handle}, status: 404, validRequest: true})

	// A token from a replica with another key.
	s2, err := server.NewServer(other, server.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s2.Close)
	if err := s2.Load(ctx, d); err != nil {
		t.Fatal(err)
	}
	rec = c.send(s2, oaExchange{name: "segment 0 elsewhere", method: "POST", path: "/v1/calls/c9/segments", body: `{"text":"` + text + `","seq":0}`, status: 200, validRequest: true})
	var foreign api.SegmentResponse
	oaBody(t, rec, &foreign)
	c.send(s, oaExchange{name: "token signed with another key", method: "POST", path: "/v1/calls/c9/segments", body: js(map[string]any{"text": text, "state": foreign.State}), status: 400, validRequest: true})

	// Every operation of the document was exercised.
	for path, item := range c.doc.Paths.Map() {
		for method := range item.Operations() {
			if !c.hit[method+" "+path] {
				t.Errorf("%s %s: no request of this test reached it; add one", method, path)
			}
		}
	}
	for _, st := range []string{"404", "405"} {
		if !c.hit["unrouted "+st] {
			t.Errorf("x-unrouted-responses %s not exercised", st)
		}
	}
}
