package api

import "net/http"

// HTTP wire types of callwatch serve (/v1 and the Open Inference Protocol v2).

// ClassifyRequest is the body of POST /v1/classify: either texts (ids are
// then "1".."n") or records with their own ids.
type ClassifyRequest struct {
	Texts   []string `json:"texts,omitempty"`
	Records []Record `json:"records,omitempty"`
}

// Record is one input text with its id.
type Record struct {
	ID   string `json:"id"`
	Text string `json:"text"`
}

// ClassifyResponse is one result per input, in input order.
type ClassifyResponse struct {
	Results []Result `json:"results"`
}

// SegmentRequest is the body of POST /v1/calls/{call_id}/segments.
type SegmentRequest struct {
	Text  string  `json:"text"`
	Start float64 `json:"start,omitempty"`
	End   float64 `json:"end,omitempty"`
	// Seq is this segment's 0-based sequence number in the call: 0 for the
	// first, then the previous answer's Segment+1. Required without a state
	// token (the token carries it; when both are sent they must agree). A
	// mismatch answers 409 out_of_order with the expected number; the last
	// segment sent again answers again without counting twice.
	Seq *int `json:"seq,omitempty"`
	// State is the token from this call's previous response: any replica
	// with the key continues the call from it.
	State string `json:"state,omitempty"`
	// Handle continues a call held in this replica's session store without
	// the token: it is the Handle of the call's first answer, and no other
	// client can read, feed or end the call without it.
	Handle string `json:"handle,omitempty"`
}

// SegmentResponse is the call's standing after the segment.
type SegmentResponse struct {
	CallID     string   `json:"call_id"`
	Segment    int      `json:"segment"`
	Score      float64  `json:"score"`
	Level      Level    `json:"level"`
	Family     string   `json:"family,omitempty"`
	FamilyProb float64  `json:"family_prob,omitempty"`
	Alert      Level    `json:"alert,omitempty"`
	Reasons    []Reason `json:"reasons,omitempty"`
	State      string   `json:"state"`
	// Handle is set when this replica's session store holds the call: send
	// it (with seq) instead of the token, and in X-Call-Handle to end it.
	Handle string `json:"handle,omitempty"`
}

// HandleHeader carries a stored call's handle on DELETE /v1/calls/{call_id}.
const HandleHeader = "X-Call-Handle"

// ErrorBody is the JSON shape of every /v1 error.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is a /v1 error: a stable code, a message for people, and for
// out_of_order the sequence number the call expects next.
type ErrorDetail struct {
	Code        Code   `json:"code"`
	Message     string `json:"message"`
	ExpectedSeq *int   `json:"expected_seq,omitempty"`
}

// V2Tensor is a tensor in the protocol's JSON form; data is flat, row-major.
type V2Tensor struct {
	Name       string         `json:"name"`
	Shape      []int64        `json:"shape"`
	Datatype   string         `json:"datatype"`
	Parameters map[string]any `json:"parameters,omitempty"`
	Data       []any          `json:"data"`
}

// V2InferRequest is the body of POST /v2/models/{name}/infer.
type V2InferRequest struct {
	ID         string           `json:"id,omitempty"`
	Parameters map[string]any   `json:"parameters,omitempty"`
	Inputs     []V2Tensor       `json:"inputs"`
	Outputs    []V2OutputWanted `json:"outputs,omitempty"`
}

// V2OutputWanted names a requested output.
type V2OutputWanted struct {
	Name string `json:"name"`
}

// V2InferResponse is the infer reply.
type V2InferResponse struct {
	ModelName    string     `json:"model_name"`
	ModelVersion string     `json:"model_version,omitempty"`
	ID           string     `json:"id,omitempty"`
	Outputs      []V2Tensor `json:"outputs"`
}

// Code is a stable, machine-readable error code. Clients branch on it; the
// message is for people and may change.
type Code string

// Error codes. Their HTTP status is in codeStatus, the one place that maps
// them.
const (
	CodeBadRequest    Code = "bad_request"            // malformed JSON or missing fields
	CodeInvalidText   Code = "invalid_text"           // a text that cannot be scored (empty after cleaning)
	CodeMediaType     Code = "unsupported_media_type" // a request body that is not JSON (Content-Type)
	CodeBodyTooLarge  Code = "body_too_large"         // request body over server.max_body_bytes
	CodeTextTooLarge  Code = "text_too_large"         // one text over server.max_text_bytes
	CodeTooManyTexts  Code = "too_many_texts"         // more texts than server.max_texts in one request
	CodeInvalidState  Code = "invalid_state"          // state token malformed or its signature does not verify
	CodeStateCallID   Code = "state_call_id"          // state token belongs to another call id
	CodeStateModel    Code = "state_model"            // state token was made by another model
	CodeModelNotFound Code = "model_not_found"        // v2 model name unknown
	CodeCallNotFound  Code = "call_not_found"         // DELETE of a call not in the session store (or with another handle)
	CodeOutOfOrder    Code = "out_of_order"           // seq is not the call's next one (replayed, skipped or forked); see expected_seq
	CodeCallExpired   Code = "call_expired"           // seq > 0 for a call this replica does not hold (expired, evicted, ended, restarted)
	CodeBodyTimeout   Code = "body_timeout"           // the request body did not arrive within server.request_timeout
	CodeUnauthorized  Code = "unauthorized"           // no API key, or not a valid one (see WWW-Authenticate)
	CodeForbidden     Code = "forbidden"              // the API key lacks the route's scope
	CodeNotFound      Code = "not_found"              // no route for the path
	CodeMethod        Code = "method_not_allowed"     // the path exists with other methods (see Allow)
	CodeOverloaded    Code = "overloaded"             // batch queue full: retry later
	CodeTooManyCalls  Code = "too_many_calls"         // session store full of calls being scored right now (nothing to evict)
	CodeNotReady      Code = "not_ready"              // model loading or warming up
	CodeShuttingDown  Code = "shutting_down"          // draining for shutdown
	CodeTimeout       Code = "timeout"                // request deadline passed
	CodeCanceled      Code = "canceled"               // client went away
	CodeInternal      Code = "internal"               // a bug or a broken backend
)

// codeStatus is the only mapping from error code to HTTP status.
var codeStatus = map[Code]int{
	CodeBadRequest:    http.StatusBadRequest,
	CodeInvalidText:   http.StatusBadRequest,
	CodeMediaType:     http.StatusUnsupportedMediaType,
	CodeBodyTooLarge:  http.StatusRequestEntityTooLarge,
	CodeTextTooLarge:  http.StatusRequestEntityTooLarge,
	CodeTooManyTexts:  http.StatusRequestEntityTooLarge,
	CodeInvalidState:  http.StatusBadRequest,
	CodeStateCallID:   http.StatusBadRequest,
	CodeStateModel:    http.StatusConflict,
	CodeModelNotFound: http.StatusNotFound,
	CodeCallNotFound:  http.StatusNotFound,
	CodeOutOfOrder:    http.StatusConflict,
	CodeCallExpired:   http.StatusGone,
	CodeBodyTimeout:   http.StatusRequestTimeout,
	CodeUnauthorized:  http.StatusUnauthorized,
	CodeForbidden:     http.StatusForbidden,
	CodeNotFound:      http.StatusNotFound,
	CodeMethod:        http.StatusMethodNotAllowed,
	CodeOverloaded:    http.StatusTooManyRequests,
	CodeTooManyCalls:  http.StatusServiceUnavailable,
	CodeNotReady:      http.StatusServiceUnavailable,
	CodeShuttingDown:  http.StatusServiceUnavailable,
	CodeTimeout:       http.StatusGatewayTimeout,
	CodeCanceled:      499, // nginx's "client closed request"; nobody reads it
	CodeInternal:      http.StatusInternalServerError,
}

// Status is the HTTP status for code (500 for an unknown code).
func (c Code) Status() int {
	if s, ok := codeStatus[c]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// RetryAfter says which codes tell the client to come back, and when (s).
func (c Code) RetryAfter() int {
	switch c {
	case CodeOverloaded, CodeShuttingDown:
		return 1
	case CodeNotReady, CodeTooManyCalls:
		return 5
	}
	return 0
}
