package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"
)

type ctxKey int

const requestIDKey ctxKey = 0

// requestID takes X-Request-Id from the client (a proxy's) or makes one,
// echoes it, and puts it in the context for logs.
func (s *Server) requestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-Id")
		if id == "" || len(id) > 128 {
			var b [8]byte
			rand.Read(b[:])
			id = hex.EncodeToString(b[:])
		}
		w.Header().Set("X-Request-Id", id)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestIDKey, id)))
	})
}

func requestIDFrom(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int
	body   *deadlineBody // nil: no body, or not read through the wrapper
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
		if code >= 400 && w.body != nil && !w.body.done {
			// An error before the body was read to its end: close the
			// connection after the answer rather than let net/http read
			// the rest of a body that may never come.
			w.Header().Set("Connection", "close")
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += n
	return n, err
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// instrument applies the per-request deadline and body limit, and records
// metrics and one log line per request under the route's pattern (never
// the raw path: call ids would explode the label set).
func (s *Server) instrument(route string, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t0 := time.Now()
		ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
		defer cancel()
		r = r.WithContext(ctx)
		sw := &statusWriter{ResponseWriter: w}
		id, aerr := s.authenticate(route, r)
		if id != "" {
			r = r.WithContext(withClientKey(ctx, id))
		}
		if aerr != nil {
			// Refused before the body is read.
			sw.Header().Set("WWW-Authenticate", wwwAuthenticate(aerr, route))
			if r.ContentLength != 0 {
				sw.Header().Set("Connection", "close")
			}
			if strings.Contains(route, " /v2") {
				writeV2Error(sw, aerr)
			} else {
				writeError(sw, aerr)
			}
		} else if merr := checkMediaType(r); merr != nil && route != unmatchedRoute {
			sw.Header().Set("Connection", "close")
			_ = http.NewResponseController(w).SetReadDeadline(time.Now())
			if strings.HasPrefix(route, "POST /v2/") {
				writeV2Error(sw, merr)
			} else {
				writeError(sw, merr)
			}
		} else if release, err := s.admitBody(sw, r); err != nil {
			// The body is not read: answer at once and close the connection,
			// and let net/http's attempt to drain the body fail at once too
			// instead of waiting for a body that may never come.
			sw.Header().Set("Connection", "close")
			_ = http.NewResponseController(w).SetReadDeadline(time.Now())
			if strings.HasPrefix(route, "POST /v2/") {
				writeV2Error(sw, err)
			} else {
				writeError(sw, err)
			}
		} else {
			func() {
				defer release() // a panicking handler must not keep its bytes reserved
				h(sw, r)
			}()
		}
		if sw.status == 0 {
			sw.status = http.StatusOK
		}
		d := time.Since(t0)
		code := strconv.Itoa(sw.status)
		s.m.requests.WithLabelValues(route, code).Inc()
		s.m.latency.WithLabelValues(route, code).Observe(d.Seconds())
		lvl := slog.LevelDebug                                              // success is counted in metrics; logs are for problems
		if sw.status >= 500 && sw.status != http.StatusServiceUnavailable { // 503: loading or draining, expected
			lvl = slog.LevelWarn
		} else if sw.status >= 400 {
			lvl = slog.LevelInfo
		}
		s.log.LogAttrs(ctx, lvl, "request", slog.String("id", requestIDFrom(ctx)), slog.String("route", route),
			slog.Int("status", sw.status), slog.String("error_code", sw.Header().Get("X-Error-Code")),
			slog.Float64("duration_s", d.Seconds()), slog.Int("bytes", sw.bytes))
	})
}

// checkMediaType refuses a body declared as anything but JSON with 415.
// A body without Content-Type is read as JSON.
func checkMediaType(r *http.Request) *Error {
	if r.Method != http.MethodPost && r.Method != http.MethodPut {
		return nil
	}
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return nil
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err == nil && (mt == "application/json" || strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json")) {
		return nil
	}
	return errorf(CodeMediaType, "the request body must be JSON (Content-Type: application/json), not %q", clip(ct, 60))
}

// admitBody bounds a request's body before anything of it is read: a
// declared length over server.max_body_bytes answers 413 at once; the body
// reserves its bytes (its declared length, or max_body_bytes when unknown)
// from server.max_inflight_bytes or answers 429; and it must arrive within
// the request deadline (a read deadline on the connection, 408 after it).
func (s *Server) admitBody(w *statusWriter, r *http.Request) (release func(), err error) {
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return func() {}, nil
	}
	if r.ContentLength > s.cfg.MaxBodyBytes {
		return nil, errorf(CodeBodyTooLarge, "request body is %d bytes, over %d (server.max_body_bytes)", r.ContentLength, s.cfg.MaxBodyBytes)
	}
	n := r.ContentLength
	if n < 0 {
		n = s.cfg.MaxBodyBytes
	}
	if total := s.inflight.Add(n); total > s.cfg.MaxInflightBytes {
		s.inflight.Add(-n)
		s.m.rejected.WithLabelValues(string(CodeOverloaded)).Inc()
		return nil, errorf(CodeOverloaded, "request bodies in flight would hold %d bytes, over %d (server.max_inflight_bytes); retry later", total, s.cfg.MaxInflightBytes)
	}
	s.m.inflight.Set(float64(s.inflight.Load()))
	rc := http.NewResponseController(w.ResponseWriter)
	if rc.SetReadDeadline(time.Now().Add(s.cfg.RequestTimeout)) == nil {
		w.body = &deadlineBody{ReadCloser: r.Body, rc: rc}
		r.Body = w.body
	}
	r.Body = http.MaxBytesReader(w.ResponseWriter, r.Body, s.cfg.MaxBodyBytes)
	return func() {
		s.inflight.Add(-n)
		s.m.inflight.Set(float64(s.inflight.Load()))
	}, nil
}
