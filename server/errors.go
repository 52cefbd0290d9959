package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/callwatch/callwatch"
	"github.com/callwatch/callwatch/api"
)

// Code is the stable error code of package api (one table maps codes to
// HTTP statuses there).
type Code = api.Code

// Error codes (see api).
const (
	CodeBadRequest    = api.CodeBadRequest
	CodeInvalidText   = api.CodeInvalidText
	CodeMediaType     = api.CodeMediaType
	CodeBodyTooLarge  = api.CodeBodyTooLarge
	CodeTextTooLarge  = api.CodeTextTooLarge
	CodeTooManyTexts  = api.CodeTooManyTexts
	CodeInvalidState  = api.CodeInvalidState
	CodeStateCallID   = api.CodeStateCallID
	CodeStateModel    = api.CodeStateModel
	CodeModelNotFound = api.CodeModelNotFound
	CodeCallNotFound  = api.CodeCallNotFound
	CodeOutOfOrder    = api.CodeOutOfOrder
	CodeCallExpired   = api.CodeCallExpired
	CodeBodyTimeout   = api.CodeBodyTimeout
	CodeUnauthorized  = api.CodeUnauthorized
	CodeForbidden     = api.CodeForbidden
	CodeNotFound      = api.CodeNotFound
	CodeMethod        = api.CodeMethod
	CodeOverloaded    = api.CodeOverloaded
	CodeTooManyCalls  = api.CodeTooManyCalls
	CodeNotReady      = api.CodeNotReady
	CodeShuttingDown  = api.CodeShuttingDown
	CodeTimeout       = api.CodeTimeout
	CodeCanceled      = api.CodeCanceled
	CodeInternal      = api.CodeInternal
)

// Error is an error with a code, returned by handlers and the batcher.
type Error struct {
	Code    Code
	Message string
	Err     error
	// ExpectedSeq is, for out_of_order, the seq the call expects next.
	ExpectedSeq *int
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

// outOfOrder is a 409 out_of_order naming the seq the call expects.
func outOfOrder(expected int, format string, a ...any) *Error {
	e := errorf(CodeOutOfOrder, format, a...)
	e.ExpectedSeq = &expected
	return e
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
	case errors.Is(err, callwatch.ErrInvalidState):
		return &Error{Code: CodeInvalidState, Message: err.Error()}
	case errors.Is(err, callwatch.ErrStateMismatch):
		return &Error{Code: CodeStateModel, Message: err.Error()}
	default:
		return &Error{Code: CodeInternal, Message: "internal error", Err: err}
	}
}

// writeError writes err as {"error":{"code","message"}}. The v2 (KServe)
// routes use writeV2Error instead, which keeps the protocol's string shape.
func writeError(w http.ResponseWriter, err error) {
	e := asError(err)
	b := api.ErrorBody{Error: api.ErrorDetail{Code: e.Code, Message: oneLine(e.Message), ExpectedSeq: e.ExpectedSeq}}
	writeErrorHeaders(w, e)
	writeJSONBody(w, e.Code.Status(), b)
}

// writeV2Error follows the Open Inference Protocol: {"error": "<string>"};
// the code leads the string so clients can still branch on it.
func writeV2Error(w http.ResponseWriter, err error) {
	e := asError(err)
	writeErrorHeaders(w, e)
	writeJSONBody(w, e.Code.Status(), map[string]string{"error": string(e.Code) + ": " + oneLine(e.Message)})
}

// oneLine keeps a message on one line (it also goes into logs).
func oneLine(s string) string {
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	return strings.Join(strings.Fields(s), " ")
}

func writeErrorHeaders(w http.ResponseWriter, e *Error) {
	if s := e.Code.RetryAfter(); s > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(s))
	}
	w.Header().Set("X-Error-Code", string(e.Code))
}

func writeJSON(w http.ResponseWriter, v any) { writeJSONBody(w, http.StatusOK, v) }

// writeJSONBody sends v as JSON with status. The body is encoded before
// anything is sent, so a value that cannot be encoded (a NaN that slipped
// through) answers 500 with an error body, never 200 with an empty one.
func writeJSONBody(w http.ResponseWriter, status int, v any) {
	writeJSONSized(w, status, v, 0)
}

// writeJSONSized is writeJSONBody with room for about size bytes made
// first (a segment's answer is mostly its state token), so the buffer
// does not grow by doubling.
func writeJSONSized(w http.ResponseWriter, status int, v any, size int) {
	var buf bytes.Buffer
	buf.Grow(size + 512)
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		status = http.StatusInternalServerError
		buf.Reset()
		b := api.ErrorBody{Error: api.ErrorDetail{Code: CodeInternal, Message: "internal error: the answer could not be encoded"}}
		_ = json.NewEncoder(&buf).Encode(b)
		w.Header().Set("X-Error-Code", string(CodeInternal))
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes()) // the client may be gone; nothing to do about it
}
