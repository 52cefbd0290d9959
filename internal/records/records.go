// Package records reads input records (text lines, JSONL or CSV) for the
// CLI, turning every malformed line into an error record instead of
// stopping, so that each input yields exactly one output.
package records

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Formats.
const (
	FormatText  = "text"
	FormatJSONL = "jsonl"
	FormatCSV   = "csv"
)

// DefaultMaxLine bounds one input line; longer lines become error records
// (the reader skips to the next newline without holding the line).
const DefaultMaxLine = 64 << 20

// Record is one input item. Err is set when the line could not be parsed; ID
// then falls back to the line number.
type Record struct {
	ID    string
	Line  int
	Text  string
	Label string
	Group string
	// Family is the scenario family, where the data names it (eval's
	// per-family table).
	Family string
	Err    error
}

// ErrMalformed is wrapped by every per-record parse error.
var ErrMalformed = errors.New("malformed record")

// Reader yields records one at a time.
type Reader interface {
	// Next returns the next record, or io.EOF. Other errors are fatal
	// (the underlying reader failed).
	Next() (Record, error)
}

// NewReader returns a reader for format over r.
func NewReader(r io.Reader, format string, maxLine int) (Reader, error) {
	if maxLine <= 0 {
		maxLine = DefaultMaxLine
	}
	switch format {
	case FormatText:
		return &lineReader{lr: newLineReader(r, maxLine), parse: parseText}, nil
	case FormatJSONL:
		return &lineReader{lr: newLineReader(r, maxLine), parse: parseJSONL}, nil
	case FormatCSV:
		return newCSVReader(r)
	default:
		return nil, fmt.Errorf("unknown input format %q: use text, jsonl or csv", format)
	}
}

// lines splits on '\n' with a hard cap per line.
type lines struct {
	br   *bufio.Reader
	max  int
	line int
}

func newLineReader(r io.Reader, max int) *lines {
	return &lines{br: bufio.NewReaderSize(r, 64<<10), max: max}
}

// next returns the next line without its terminator ("\n" or "\r\n", and
// a UTF-8 BOM on the first line); tooLong reports a line whose content is
// over the cap (the content is discarded, never held).
func (l *lines) next() (text []byte, n int, tooLong bool, err error) {
	// Hold a little more than the cap so the terminator and BOM, which do not
	// count, can be stripped before the length is judged.
	hold := l.max + len("\xef\xbb\xbf\r\n")
	var buf []byte
	seen := false
	for {
		chunk, err := l.br.ReadSlice('\n')
		seen = seen || len(chunk) > 0
		if !tooLong {
			if len(buf)+len(chunk) > hold {
				tooLong, buf = true, nil
			} else {
				buf = append(buf, chunk...)
			}
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, 0, false, err
		}
		if errors.Is(err, io.EOF) && !seen {
			return nil, 0, false, io.EOF
		}
		l.line++
		buf = bytes.TrimSuffix(buf, []byte("\n"))
		buf = bytes.TrimSuffix(buf, []byte("\r"))
		if l.line == 1 {
			buf = bytes.TrimPrefix(buf, []byte("\xef\xbb\xbf")) // UTF-8 BOM
		}
		if len(buf) > l.max {
			tooLong, buf = true, nil
		}
		return buf, l.line, tooLong, nil
	}
}

type lineReader struct {
	lr    *lines
	parse func(b []byte, line int) Record
}

func (r *lineReader) Next() (Record, error) {
	for {
		b, n, tooLong, err := r.lr.next()
		if err != nil {
			return Record{}, err
		}
		if tooLong {
			return Record{ID: strconv.Itoa(n), Line: n, Err: fmt.Errorf("%w: line %d is longer than %d bytes; split the transcript or raise the limit", ErrMalformed, n, r.lr.max)}, nil
		}
		if len(bytes.TrimSpace(b)) == 0 {
			continue // blank lines are separators, not records
		}
		return r.parse(b, n), nil
	}
}

func parseText(b []byte, line int) Record {
	return Record{ID: strconv.Itoa(line), Line: line, Text: string(b)}
}

func parseJSONL(b []byte, line int) Record {
	rec := Record{ID: strconv.Itoa(line), Line: line}
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		rec.Err = fmt.Errorf("%w: line %d is not a JSON object: %v", ErrMalformed, line, err)
		return rec
	}
	// Decoder.More is false before a stray '}' or ']', so look at the bytes;
	// only JSON's own whitespace may follow (not \f, \v or Unicode spaces).
	if len(bytes.Trim(b[dec.InputOffset():], " \t\r\n")) > 0 {
		rec.Err = fmt.Errorf("%w: line %d has data after the JSON object", ErrMalformed, line)
		return rec
	}
	if raw == nil {
		rec.Err = fmt.Errorf("%w: line %d is null, want an object with \"text\"", ErrMalformed, line)
		return rec
	}
	if v, ok := raw["id"]; ok {
		id, err := scalarString(v)
		if err != nil {
			rec.Err = fmt.Errorf("%w: line %d: \"id\" must be a string or number: %v", ErrMalformed, line, err)
			return rec
		}
		if id != "" {
			rec.ID = id // an empty id keeps the line number, so output ids are never blank
		}
	}
	for _, f := range []struct {
		name string
		dst  *string
	}{{"label", &rec.Label}, {"group", &rec.Group}, {"family", &rec.Family}} {
		if v, ok := raw[f.name]; ok && string(v) != "null" {
			if err := json.Unmarshal(v, f.dst); err != nil {
				rec.Err = fmt.Errorf("%w: line %d: %q must be a string", ErrMalformed, line, f.name)
				return rec
			}
		}
	}
	v, ok := raw["text"]
	if !ok {
		rec.Err = fmt.Errorf("%w: line %d has no \"text\" field", ErrMalformed, line)
		return rec
	}
	if err := json.Unmarshal(v, &rec.Text); err != nil {
		rec.Err = fmt.Errorf("%w: line %d: \"text\" must be a string", ErrMalformed, line)
		return rec
	}
	return rec
}

// scalarString accepts a JSON string or number as an id.
func scalarString(v json.RawMessage) (string, error) {
	var s string
	if err := json.Unmarshal(v, &s); err == nil {
		return s, nil
	}
	var n json.Number
	if err := json.Unmarshal(v, &n); err == nil {
		return n.String(), nil
	}
	return "", fmt.Errorf("got %s", truncate(string(v), 40))
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// csvReader reads a CSV with a header naming at least a "text" column and
// optionally "id", "label", "group". Quoted fields may hold newlines.
type csvReader struct {
	cr     *csv.Reader
	cols   map[string]int
	rowNum int
}

func newCSVReader(r io.Reader) (*csvReader, error) {
	br := bufio.NewReader(r)
	if b, err := br.Peek(3); err == nil && bytes.Equal(b, []byte("\xef\xbb\xbf")) {
		br.Discard(3)
	}
	cr := csv.NewReader(br)
	cr.FieldsPerRecord = -1
	cr.LazyQuotes = false
	cr.ReuseRecord = false
	head, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return &csvReader{cr: cr, cols: map[string]int{"text": 0}}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("CSV header: %w", err)
	}
	cols := map[string]int{}
	for i, h := range head {
		cols[strings.ToLower(strings.TrimSpace(h))] = i
	}
	if _, ok := cols["text"]; !ok {
		return nil, fmt.Errorf("CSV header %q has no \"text\" column; the first line must name the columns (id,text[,label])", strings.Join(head, ","))
	}
	return &csvReader{cr: cr, cols: cols}, nil
}

func (r *csvReader) Next() (Record, error) {
	fields, err := r.cr.Read()
	if errors.Is(err, io.EOF) {
		return Record{}, io.EOF
	}
	r.rowNum++
	rec := Record{ID: strconv.Itoa(r.rowNum)}
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		rec.Line = pe.StartLine
		rec.Err = fmt.Errorf("%w: CSV row %d (line %d): %v", ErrMalformed, r.rowNum, pe.StartLine, pe.Err)
		return rec, nil
	}
	if err != nil {
		return Record{}, err
	}
	// FieldPos is only valid after a successful Read (it panics otherwise).
	line, _ := r.cr.FieldPos(0)
	rec.Line = line
	get := func(name string) (string, bool) {
		i, ok := r.cols[name]
		if !ok || i >= len(fields) {
			return "", false
		}
		return fields[i], true
	}
	if id, ok := get("id"); ok && id != "" {
		rec.ID = id
	}
	rec.Label, _ = get("label")
	rec.Group, _ = get("group")
	rec.Family, _ = get("family")
	t, ok := get("text")
	if !ok {
		rec.Err = fmt.Errorf("%w: CSV row %d (line %d) has %d fields, no \"text\" column", ErrMalformed, r.rowNum, line, len(fields))
		return rec, nil
	}
	rec.Text = t
	return rec, nil
}
