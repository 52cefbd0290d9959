package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/callwatch/callwatch"
)

// Code is a stable, machine-readable error code. Clients branch on it; the
// message is for people and may change.
type Code string

// Error codes. Their HTTP status is in codeStatus, the one place that maps
// them.
const (
	CodeBadRequest    Code = "bad_request"        // malformed JSON or missing fields
	CodeInvalidText   Code = "invalid_text"       // a text that cannot be scored (empty after cleaning)
	CodeBodyTooLarge  Code = "body_too_large"     // request body over server.max_body_bytes
	CodeTextTooLarge  Code = "text_too_large"     // one text over server.max_text_bytes
	CodeTooManyTexts  Code = "too_many_texts"     // more texts than server.max_texts in one request
	CodeInvalidState  Code = "invalid_state"      // state token malformed or its signature does not verify
	CodeStateCallID   Code = "state_call_id"      // state token belongs to another call id
	CodeStateModel    Code = "state_model"        // state token was made by another model
	CodeModelNotFound Code = "model_not_found"    // v2 model name unknown
	CodeCallNotFound  Code = "call_not_found"     // DELETE of a call not in the session store
	CodeNotFound      Code = "not_found"          // no route for the path
	CodeMethod        Code = "method_not_allowed" // the path exists with other methods (see Allow)
	CodeOverloaded    Code = "overloaded"         // batch queue full: retry later
	CodeTooManyCalls  Code = "too_many_calls"     // session store full
	CodeNotReady      Code = "not_ready"          // model loading or warming up
	CodeShuttingDown  Code = "shutting_down"      // draining for shutdown
	CodeTimeout       Code = "timeout"            // request deadline passed
	CodeCanceled      Code = "canceled"           // client went away
	CodeInternal      Code = "internal"           // a bug or a broken backend
)

// codeStatus is the only mapping from error code to HTTP status.
var codeStatus = map[Code]int{
	CodeBadRequest:    http.StatusBadRequest,
	CodeInvalidText:   http.StatusBadRequest,
	CodeBodyTooLarge:  http.StatusRequestEntityTooLarge,
	CodeTextTooLarge:  http.StatusRequestEntityTooLarge,
	CodeTooManyTexts:  http.StatusRequestEntityTooLarge,
	CodeInvalidState:  http.StatusBadRequest,
	CodeStateCallID:   http.StatusBadRequest,
	CodeStateModel:    http.StatusConflict,
	CodeModelNotFound: http.StatusNotFound,
	CodeCallNotFound:  http.StatusNotFound,
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

// retryAfter says which codes tell the client to come back, and when (s).
func (c Code) retryAfter() int {
	switch c {
	case CodeOverloaded, CodeShuttingDown:
		return 1
	case CodeNotReady, CodeTooManyCalls:
		return 5
	}
	return 0
}

// Error is an error with a code, returned by handlers and the batcher.
type Error struct {
	Code    Code
	Message string
	Err     error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

func errorf(code Code, format string, a ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, a...)}
}

// asError maps any error to a coded one.
func asError(err error) *Error {
	var e *Error
	switch {
	case errors.As(err, &e):
		return e
	case errors.Is(err, context.DeadlineExceeded):
		return &Error{Code: CodeTimeout, Message: "request deadline passed", Err: err}
	case errors.Is(err, context.Canceled):
		return &Error{Code: CodeCanceled, Message: "request canceled", Err: err}
	case errors.Is(err, callwatch.ErrStateMismatch):
		return &Error{Code: CodeStateModel, Message: err.Error()}
	default:
		return &Error{Code: CodeInternal, Message: "internal error", Err: err}
	}
}

// errorBody is the JSON shape of every /v1 error.
type errorBody struct {
	Error struct {
		Code    Code   `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// writeError writes err as {"error":{"code","message"}}. The v2 (KServe)
// routes use writeV2Error instead, which keeps the protocol's string shape.
func writeError(w http.ResponseWriter, err error) {
	e := asError(err)
	var b errorBody
	b.Error.Code, b.Error.Message = e.Code, e.Message
	writeErrorHeaders(w, e)
	writeJSONBody(w, e.Code.Status(), b)
}

// writeV2Error follows the Open Inference Protocol: {"error": "<string>"};
// the code leads the string so clients can still branch on it.
func writeV2Error(w http.ResponseWriter, err error) {
	e := asError(err)
	writeErrorHeaders(w, e)
	writeJSONBody(w, e.Code.Status(), map[string]string{"error": string(e.Code) + ": " + e.Message})
}

func writeErrorHeaders(w http.ResponseWriter, e *Error) {
	if s := e.Code.retryAfter(); s > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(s))
	}
	w.Header().Set("X-Error-Code", string(e.Code))
}

func writeJSON(w http.ResponseWriter, v any) { writeJSONBody(w, http.StatusOK, v) }

func writeJSONBody(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v) // the client may be gone; nothing to do about it
}
