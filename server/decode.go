package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// Request bodies are read under three bounds: the body limit
// (server.max_body_bytes, 413), the request deadline (a read deadline on the
// connection, 408 body_timeout), and for classify and infer a count of texts
// and their sizes kept while decoding, so a body of 100,000 tiny texts is
// refused at text max_texts+1, not after all of them sit in memory.

// bodyError maps a failure reading or decoding a body to a coded error.
func bodyError(err error) error {
	var mb *http.MaxBytesError
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &mb):
		return errorf(CodeBodyTooLarge, "request body is over %d bytes (server.max_body_bytes)", mb.Limit)
	case errors.Is(err, os.ErrDeadlineExceeded):
		return errorf(CodeBodyTimeout, "the request body did not arrive before the request deadline (server.request_timeout)")
	case errors.Is(err, io.EOF):
		return errorf(CodeBadRequest, "empty request body; send JSON")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errorf(CodeBadRequest, "request body ends inside its JSON value")
	case errors.As(err, &se):
		return errorf(CodeBadRequest, "request body is not valid JSON: %s at byte %d", strings.TrimPrefix(se.Error(), "json: "), se.Offset)
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			field = "the body"
		} else {
			field = "field " + strconv.Quote(field)
		}
		return errorf(CodeBadRequest, "%s must be %s, got %s", field, jsonKind(te.Type), te.Value)
	default:
		var e *Error
		if errors.As(err, &e) {
			return e
		}
		return errorf(CodeBadRequest, "request body is not valid JSON for this route: %s", strings.TrimPrefix(err.Error(), "json: "))
	}
}

// jsonKind names a Go type's JSON form, for messages that must not show
// Go type names.
func jsonKind(t reflect.Type) string {
	if t == nil {
		return "a JSON value"
	}
	switch t.Kind() {
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Pointer:
		return jsonKind(t.Elem())
	}
	return "a JSON value"
}

// jsonValueKind names a decoded JSON value's kind.
func jsonValueKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case float64, json.Number:
		return "a number"
	case string:
		return "a string"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return "a JSON value"
}

// decode reads a JSON body into v.
//
// The body is read whole first, into a buffer of its declared length (it
// is bounded by server.max_body_bytes already), and decoded in one pass: a
// streamed segment's body is mostly its state token, and a json.Decoder
// would grow its buffer several times and scan the token once more. A body
// that is not valid JSON is decoded again the streaming way, for the same
// error message either way.
func decode(r *http.Request, v any) error {
	var buf bytes.Buffer
	if n := r.ContentLength; n > 0 && n <= 64<<20 {
		buf.Grow(int(n) + bytes.MinRead)
	}
	if _, err := buf.ReadFrom(r.Body); err != nil {
		return bodyError(err)
	}
	err := json.Unmarshal(buf.Bytes(), v)
	var se *json.SyntaxError
	if err == nil || !errors.As(err, &se) {
		if err != nil {
			return bodyError(err)
		}
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(buf.Bytes()))
	if err := dec.Decode(v); err != nil {
		return bodyError(err)
	}
	return finish(dec)
}

// finish checks that nothing follows the value; reading to the end also
// enforces the body limit on trailing bytes.
func finish(dec *json.Decoder) error {
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		if err == nil {
			return errorf(CodeBadRequest, "unexpected data after the JSON value")
		}
		var mb *http.MaxBytesError
		if errors.As(err, &mb) || errors.Is(err, os.ErrDeadlineExceeded) {
			return bodyError(err)
		}
		return errorf(CodeBadRequest, "unexpected data after the JSON value")
	}
	return nil
}

// stream walks a JSON body token by token.
type stream struct{ dec *json.Decoder }

func newStream(r io.Reader) *stream { return &stream{dec: json.NewDecoder(r)} }

func (s *stream) token() (json.Token, error) {
	t, err := s.dec.Token()
	if err != nil {
		return nil, bodyError(err)
	}
	return t, nil
}

func (s *stream) value(v any) error {
	if err := s.dec.Decode(v); err != nil {
		return bodyError(err)
	}
	return nil
}

func (s *stream) skip() error {
	var raw json.RawMessage
	return s.value(&raw)
}

// object walks a JSON object, calling field with each key; field consumes
// the value. A null is an empty object.
func (s *stream) object(what string, field func(key string) error) error {
	t, err := s.token()
	if err != nil {
		return err
	}
	if t == nil {
		return nil
	}
	if t != json.Delim('{') {
		return errorf(CodeBadRequest, "%s must be a JSON object", what)
	}
	for s.dec.More() {
		k, err := s.token()
		if err != nil {
			return err
		}
		key, _ := k.(string)
		if err := field(key); err != nil {
			return err
		}
	}
	_, err = s.token()
	return err
}

// array walks a JSON array, calling elem for each element; elem consumes
// it. A null is an empty array.
func (s *stream) array(what string, elem func(i int) error) error {
	t, err := s.token()
	if err != nil {
		return err
	}
	if t == nil {
		return nil
	}
	if t != json.Delim('[') {
		return errorf(CodeBadRequest, "%s must be a JSON array", what)
	}
	for i := 0; s.dec.More(); i++ {
		if err := elem(i); err != nil {
			return err
		}
	}
	_, err = s.token()
	return err
}

// textLimits counts texts as they are decoded.
type textLimits struct {
	max, maxBytes, n int
}

func (l *textLimits) add(i int, text string) error {
	l.n++
	if l.n > l.max {
		return errorf(CodeTooManyTexts, "more than %d texts in one request (server.max_texts)", l.max)
	}
	if len(text) > l.maxBytes {
		return errorf(CodeTextTooLarge, "text %d is %d bytes, limit %d (server.max_text_bytes)", i, len(text), l.maxBytes)
	}
	return nil
}

// decodeClassify reads a ClassifyRequest, counting its texts as it goes.
func (s *Server) decodeClassify(r *http.Request) (ClassifyRequest, error) {
	var req ClassifyRequest
	st := newStream(r.Body)
	lim := &textLimits{max: s.cfg.MaxTexts, maxBytes: s.cfg.MaxTextBytes}
	err := st.object("the request body", func(key string) error {
		switch key {
		case "texts":
			return st.array(`"texts"`, func(i int) error {
				t, err := st.token()
				if err != nil {
					return err
				}
				text, ok := t.(string)
				if !ok {
					return errorf(CodeBadRequest, `"texts" element %d is not a string`, i)
				}
				if err := lim.add(i, text); err != nil {
					return err
				}
				req.Texts = append(req.Texts, text)
				return nil
			})
		case "records":
			return st.array(`"records"`, func(i int) error {
				var rec Record
				if err := st.value(&rec); err != nil {
					return errorf(CodeBadRequest, `"records" element %d is not {"id","text"}: %v`, i, err)
				}
				if err := lim.add(i, rec.Text); err != nil {
					return err
				}
				req.Records = append(req.Records, rec)
				return nil
			})
		default:
			return st.skip()
		}
	})
	if err != nil {
		return req, err
	}
	return req, finish(st.dec)
}

// decodeV2 reads a V2InferRequest, counting the BYTES elements of its
// input tensors as it goes.
func (s *Server) decodeV2(r *http.Request) (V2InferRequest, error) {
	var req V2InferRequest
	st := newStream(r.Body)
	lim := &textLimits{max: s.cfg.MaxTexts, maxBytes: s.cfg.MaxTextBytes}
	err := st.object("the request body", func(key string) error {
		switch key {
		case "id":
			return st.value(&req.ID)
		case "parameters":
			return st.value(&req.Parameters)
		case "outputs":
			return st.value(&req.Outputs)
		case "inputs":
			return st.array(`"inputs"`, func(i int) error {
				var t V2Tensor
				err := st.object(fmt.Sprintf("input %d", i), func(key string) error {
					switch key {
					case "name":
						return st.value(&t.Name)
					case "shape":
						return st.value(&t.Shape)
					case "datatype":
						return st.value(&t.Datatype)
					case "parameters":
						return st.value(&t.Parameters)
					case "data":
						t.Data = []any{}
						return st.array(fmt.Sprintf("input %d data", i), func(k int) error {
							tok, err := st.token()
							if err != nil {
								return err
							}
							if _, ok := tok.(json.Delim); ok {
								return errorf(CodeBadRequest, "input %d data must be a flat array of strings (row-major)", i)
							}
							text, _ := tok.(string)
							if err := lim.add(k, text); err != nil {
								return err
							}
							t.Data = append(t.Data, tok)
							return nil
						})
					default:
						return st.skip()
					}
				})
				req.Inputs = append(req.Inputs, t)
				return err
			})
		default:
			return st.skip()
		}
	})
	if err != nil {
		return req, err
	}
	return req, finish(st.dec)
}

// deadlineBody clears the connection's read deadline once the whole body
// has been read, so that the deadline bounds the body, not the handler:
// net/http watches an idle connection with a background read, and that read
// timing out would cancel the request. A body that was not read to its end
// keeps the deadline, which also bounds net/http's own attempt to discard
// the rest of it after the answer.
type deadlineBody struct {
	io.ReadCloser
	rc   *http.ResponseController
	done bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if errors.Is(err, io.EOF) && !b.done {
		b.done = true
		_ = b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}
