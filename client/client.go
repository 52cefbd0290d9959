// Package client is a typed Go client for the callwatch HTTP service
// (package server). The CLI's `classify --server URL`, the server's tests
// and the load test use it.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/callwatch/callwatch/api"
)

// Client talks to one callwatch server (or a load balancer in front of
// several: calls carry their state token, so any replica will do).
type Client struct {
	base   string
	hc     *http.Client
	apiKey string
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient replaces http.DefaultClient.
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.hc = hc } }

// WithAPIKey sends key as "Authorization: Bearer KEY" (servers with
// server.api_keys or server.api_keys_file).
func WithAPIKey(key string) Option { return func(c *Client) { c.apiKey = key } }

// New returns a client for baseURL, e.g. "http://127.0.0.1:8080".
func New(baseURL string, opts ...Option) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("server URL %q: want http://host:port", baseURL)
	}
	c := &Client{base: strings.TrimRight(baseURL, "/"), hc: http.DefaultClient}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// Error is a non-2xx answer from the api.
type Error struct {
	Status     int
	Code       api.Code // stable code; branch on this
	Message    string
	RetryAfter time.Duration // from Retry-After, when the server sent one
	// ExpectedSeq is, for out_of_order, the seq the call expects next.
	ExpectedSeq *int
}

func (e *Error) Error() string {
	return fmt.Sprintf("callwatch server: %d %s: %s", e.Status, e.Code, e.Message)
}

// Classify scores texts; one result per text, in order (ids "1".."n").
func (c *Client) Classify(ctx context.Context, texts ...string) ([]api.Result, error) {
	var out api.ClassifyResponse
	err := c.do(ctx, http.MethodPost, "/v1/classify", api.ClassifyRequest{Texts: texts}, &out)
	return out.Results, err
}

// ClassifyRecords scores records with their own ids.
func (c *Client) ClassifyRecords(ctx context.Context, recs []api.Record) ([]api.Result, error) {
	var out api.ClassifyResponse
	err := c.do(ctx, http.MethodPost, "/v1/classify", api.ClassifyRequest{Records: recs}, &out)
	return out.Results, err
}

// Segment sends one segment of a call. Pass the previous response's State
// in seg.State to continue the call on any replica.
func (c *Client) Segment(ctx context.Context, callID string, seg api.SegmentRequest) (api.SegmentResponse, error) {
	var out api.SegmentResponse
	err := c.do(ctx, http.MethodPost, "/v1/calls/"+url.PathEscape(callID)+"/segments", seg, &out)
	return out, err
}

// Call streams one call, carrying its state token and sequence number
// between segments.
type Call struct {
	c     *Client
	id    string
	state string
	seq   int
}

// NewCall starts following call id.
func (c *Client) NewCall(id string) *Call { return &Call{c: c, id: id} }

// Feed sends the call's next segment. After an error the same segment may
// be fed again: the server answers a segment it already applied without
// applying it twice.
func (k *Call) Feed(ctx context.Context, text string, start, end float64) (api.SegmentResponse, error) {
	r, err := k.c.Segment(ctx, k.id, api.SegmentRequest{Text: text, Start: start, End: end, State: k.state, Seq: new(k.seq)})
	if err == nil {
		k.state, k.seq = r.State, r.Segment+1
	}
	return r, err
}

// EndCall drops a call from the server's session store; handle is the
// Handle of the call's answers.
func (c *Client) EndCall(ctx context.Context, callID, handle string) error {
	return c.doHeader(ctx, http.MethodDelete, "/v1/calls/"+url.PathEscape(callID), http.Header{api.HandleHeader: {handle}}, nil, nil)
}

// Infer calls the Open Inference Protocol v2 endpoint of model.
func (c *Client) Infer(ctx context.Context, model string, req api.V2InferRequest) (api.V2InferResponse, error) {
	var out api.V2InferResponse
	err := c.do(ctx, http.MethodPost, "/v2/models/"+url.PathEscape(model)+"/infer", req, &out)
	return out, err
}

// Ready reports whether /v2/health/ready answers 200.
func (c *Client) Ready(ctx context.Context) (bool, error) {
	err := c.do(ctx, http.MethodGet, "/v2/health/ready", nil, nil)
	if e, ok := err.(*Error); ok && e.Status == http.StatusServiceUnavailable {
		return false, nil
	}
	return err == nil, err
}

// WaitReady polls readiness until it succeeds or ctx ends.
func (c *Client) WaitReady(ctx context.Context) error {
	for {
		if ok, _ := c.Ready(ctx); ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("server %s not ready: %w", c.base, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	return c.doHeader(ctx, method, path, nil, in, out)
}

func (c *Client) doHeader(ctx context.Context, method, path string, h http.Header, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	for k, v := range h {
		req.Header[k] = v
	}
	if c.apiKey != "" {
		req.Header.Set("Authorization", "Bearer "+c.apiKey)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	// Read into a buffer of the declared length: a segment's answer is
	// mostly its state token, and io.ReadAll would grow its buffer from
	// 512 bytes by copying.
	var buf bytes.Buffer
	if n := resp.ContentLength; n > 0 && n <= 64<<20 {
		buf.Grow(int(n) + bytes.MinRead)
	}
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		return err
	}
	data := buf.Bytes()
	if resp.StatusCode/100 != 2 {
		return decodeError(resp, data)
	}
	if out == nil || len(data) == 0 {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("callwatch server: decoding %s %s response: %w", method, path, err)
	}
	return nil
}

// decodeError reads both error shapes: /v1 {"error":{"code","message"}}
// and v2 {"error":"code: message"}.
func decodeError(resp *http.Response, data []byte) error {
	e := &Error{Status: resp.StatusCode, Code: api.Code(resp.Header.Get("X-Error-Code"))}
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil {
		e.RetryAfter = time.Duration(s) * time.Second
	}
	var v1 api.ErrorBody
	var v2 struct {
		Error string `json:"error"`
	}
	switch {
	case json.Unmarshal(data, &v1) == nil && v1.Error.Code != "":
		e.Code, e.Message, e.ExpectedSeq = v1.Error.Code, v1.Error.Message, v1.Error.ExpectedSeq
	case json.Unmarshal(data, &v2) == nil && v2.Error != "":
		e.Message = v2.Error
	default:
		e.Message = strings.TrimSpace(string(data))
	}
	if e.Code == "" {
		e.Code = api.Code("http_" + strconv.Itoa(resp.StatusCode))
	}
	return e
}
