package server

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// Scopes an API key may be limited to. A key with no scopes has them all.
const (
	ScopeClassify = "classify" // POST /v1/classify, /v2 inference and model metadata
	ScopeStream   = "stream"   // /v1/calls/...
	ScopeAdmin    = "admin"    // GET /metrics when server.metrics_auth is set
)

var allScopes = []string{ScopeClassify, ScopeStream, ScopeAdmin}

// APIKey is one accepted API key, held as its SHA-256 hash only.
type APIKey struct {
	Hash   [sha256.Size]byte
	Scopes []string // nil: every scope
}

// ID names the key in logs and per-client quotas without revealing it.
func (k APIKey) ID() string { return "key:" + hex.EncodeToString(k.Hash[:6]) }

func (k APIKey) has(scope string) bool {
	return scope == "" || k.Scopes == nil || slices.Contains(k.Scopes, scope)
}

// ParseAPIKeys reads server.api_keys (env CALLWATCH_SERVER_API_KEYS):
// comma-separated keys, each optionally followed by ":" and its scopes
// joined by "+" (e.g. "KEY1,KEY2:stream+classify"). Keys are at least 16
// characters; only their hashes are kept.
func ParseAPIKeys(spec string) ([]APIKey, error) {
	var keys []APIKey
	for i, part := range strings.Split(spec, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		key, scopes, _ := strings.Cut(part, ":")
		if len(key) < 16 {
			return nil, fmt.Errorf("api_keys entry %d: a key must be at least 16 characters (e.g. $(head -c 24 /dev/urandom | base64))", i+1)
		}
		sc, err := parseScopes(scopes, "+")
		if err != nil {
			return nil, fmt.Errorf("api_keys entry %d: %w", i+1, err)
		}
		keys = append(keys, APIKey{Hash: sha256.Sum256([]byte(key)), Scopes: sc})
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("api_keys: no key given")
	}
	return keys, nil
}

// ParseAPIKeysFile reads the file of server.api_keys_file: one key per
// line as the hex SHA-256 of the key (`printf %s KEY | sha256sum`),
// optionally followed by its scopes separated by commas; blank lines and
// lines starting with # are skipped.
func ParseAPIKeysFile(content string) ([]APIKey, error) {
	var keys []APIKey
	sc := bufio.NewScanner(strings.NewReader(content))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		h, err := hex.DecodeString(strings.TrimSuffix(fields[0], "-"))
		if err != nil || len(h) != sha256.Size {
			return nil, fmt.Errorf("line %d: want the key's SHA-256 as 64 hex digits (printf %%s KEY | sha256sum), then optional scopes", n)
		}
		var scopes []string
		if len(fields) > 1 {
			if scopes, err = parseScopes(strings.Join(fields[1:], ","), ","); err != nil {
				return nil, fmt.Errorf("line %d: %w", n, err)
			}
		}
		k := APIKey{Scopes: scopes}
		copy(k.Hash[:], h)
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("no key hash in the file")
	}
	return keys, nil
}

func parseScopes(s, sep string) ([]string, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var out []string
	for _, sc := range strings.Split(s, sep) {
		sc = strings.TrimSpace(sc)
		if sc == "" {
			continue
		}
		if !slices.Contains(allScopes, sc) {
			return nil, fmt.Errorf("unknown scope %q: use %s", sc, strings.Join(allScopes, ", "))
		}
		out = append(out, sc)
	}
	return out, nil
}

// routeScope is the scope each route needs when authentication is on;
// routes not listed are open: health and readiness, metrics unless
// server.metrics_auth, and the monitor page with its static files (they
// hold no data; a browser cannot send a Bearer key when it loads a page, so
// the page asks for one and sends it with its own API calls).
var routeScope = map[string]string{
	"GET /v2":                           ScopeClassify,
	"GET /v2/models/{name}":             ScopeClassify,
	"GET /v2/models/{name}/ready":       ScopeClassify,
	"POST /v2/models/{name}/infer":      ScopeClassify,
	"POST /v1/classify":                 ScopeClassify,
	"GET /v1/model":                     ScopeClassify,
	"POST /v1/calls/{call_id}/segments": ScopeStream,
	"DELETE /v1/calls/{call_id}":        ScopeStream,
	"GET /openapi.json":                 "",
	"GET /metrics":                      ScopeAdmin,
}

type clientKey struct{}

// authenticate checks the request's API key for route. It returns the
// key's id, or an error to answer (401 for a missing or wrong key, 403 for
// a key without the route's scope).
func (s *Server) authenticate(route string, r *http.Request) (string, *Error) {
	scope, protected := routeScope[route]
	if !protected || len(s.cfg.APIKeys) == 0 || (route == "GET /metrics" && !s.cfg.MetricsAuth) {
		return "", nil
	}
	auth := r.Header.Get("Authorization")
	const prefix = "bearer "
	if len(auth) <= len(prefix) || !strings.EqualFold(auth[:len(prefix)], prefix) {
		return "", errorf(CodeUnauthorized, "this route needs an API key: send Authorization: Bearer KEY")
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(auth[len(prefix):])))
	// Compare with every key in constant time, whichever matches.
	found := -1
	for i := range s.cfg.APIKeys {
		if subtle.ConstantTimeCompare(sum[:], s.cfg.APIKeys[i].Hash[:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return "", errorf(CodeUnauthorized, "the API key is not valid")
	}
	k := s.cfg.APIKeys[found]
	if !k.has(scope) {
		return "", errorf(CodeForbidden, "the API key lacks the %s scope this route needs", scope)
	}
	return k.ID(), nil
}

// wwwAuthenticate is the challenge sent with 401 and 403 (RFC 6750).
func wwwAuthenticate(e *Error, route string) string {
	if e.Code == CodeForbidden {
		return fmt.Sprintf(`Bearer realm="callwatch", error="insufficient_scope", scope="%s"`, routeScope[route])
	}
	return `Bearer realm="callwatch"`
}

func withClientKey(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, clientKey{}, id)
}

// clientOf names the client for quotas: its API key when authentication
// is on, else the configured Deps.Client (default: the peer's IP address).
func (s *Server) clientOf(r *http.Request) string {
	if id, ok := r.Context().Value(clientKey{}).(string); ok && id != "" {
		return id
	}
	return s.client(r)
}
