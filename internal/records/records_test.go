package records

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
)

// readAll drains r, failing the test on a fatal error or a reader that does
// not end (more records than input bytes can justify).
func readAll(t *testing.T, r Reader, limit int) []Record {
	t.Helper()
	var out []Record
	for {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		out = append(out, rec)
		if len(out) > limit {
			t.Fatalf("reader yielded more than %d records: it does not advance", limit)
		}
	}
}

func newReader(t *testing.T, in, format string, max int) Reader {
	t.Helper()
	r, err := NewReader(strings.NewReader(in), format, max)
	if err != nil {
		t.Fatalf("NewReader(%s): %v", format, err)
	}
	return r
}

func TestLines(t *testing.T) {
	type rec struct {
		id, text string
		bad      bool
	}
	tests := []struct {
		name   string
		in     string
		max    int
		format string
		want   []rec
	}{
		{"plain", "a\nb\n", 0, FormatText, []rec{{"1", "a", false}, {"2", "b", false}}},
		{"no final newline", "a\nb", 0, FormatText, []rec{{"1", "a", false}, {"2", "b", false}}},
		{"crlf", "a\r\nb\r\n", 0, FormatText, []rec{{"1", "a", false}, {"2", "b", false}}},
		{"bom", "\xef\xbb\xbfa\nb", 0, FormatText, []rec{{"1", "a", false}, {"2", "b", false}}},
		{"bom only on line 1", "a\n\xef\xbb\xbfb", 0, FormatText, []rec{{"1", "a", false}, {"2", "\xef\xbb\xbfb", false}}},
		{"blank lines skipped, numbering kept", "\n  \r\n\t\na\n\n", 0, FormatText, []rec{{"4", "a", false}}},
		{"cap counts content only (lf)", "abcd\n", 4, FormatText, []rec{{"1", "abcd", false}}},
		{"cap counts content only (crlf)", "abcd\r\n", 4, FormatText, []rec{{"1", "abcd", false}}},
		{"cap counts content only (bom)", "\xef\xbb\xbfabcd\r\n", 4, FormatText, []rec{{"1", "abcd", false}}},
		{"over cap at eof", "abcde", 4, FormatText, []rec{{"1", "", true}}},
		{"over cap then more", "abcdefghijk\nok\n", 4, FormatText, []rec{{"1", "", true}, {"2", "ok", false}}},
		{"nul and bad utf8 pass through", "a\x00b\xff\n", 0, FormatText, []rec{{"1", "a\x00b\xff", false}}},
		{"jsonl", `{"id":"x","text":"안녕"}` + "\n" + `{"text":"둘"}`, 0, FormatJSONL, []rec{{"x", "안녕", false}, {"2", "둘", false}}},
		{"jsonl empty id falls back to the line", `{"id":"","text":"a"}`, 0, FormatJSONL, []rec{{"1", "a", false}}},
		{"jsonl numeric id", `{"id":12.5,"text":"a"}`, 0, FormatJSONL, []rec{{"12.5", "a", false}}},
		{"jsonl cut mid-object", `{"id":"x","text":"안`, 0, FormatJSONL, []rec{{"1", "", true}}},
		{"jsonl two objects", `{"text":"a"}{"text":"b"}`, 0, FormatJSONL, []rec{{"1", "", true}}},
		{"jsonl stray closing brace", `{"text":"a"}}`, 0, FormatJSONL, []rec{{"1", "", true}}},
		{"jsonl stray closing bracket", `{"text":"a"} ]`, 0, FormatJSONL, []rec{{"1", "", true}}},
		{"jsonl form feed after the object", "{\"text\":\"a\"}\f", 0, FormatJSONL, []rec{{"1", "", true}}},
		{"jsonl JSON whitespace after the object", "{\"text\":\"a\"} \t ", 0, FormatJSONL, []rec{{"1", "a", false}}},
		{"jsonl null", `null`, 0, FormatJSONL, []rec{{"1", "", true}}},
		{"jsonl array", `["a"]`, 0, FormatJSONL, []rec{{"1", "", true}}},
		{"jsonl text number", `{"text":1}`, 0, FormatJSONL, []rec{{"1", "", true}}},
		{"jsonl id object", `{"id":{},"text":"a"}`, 0, FormatJSONL, []rec{{"1", "", true}}},
		{"jsonl label number", `{"label":1,"text":"a"}`, 0, FormatJSONL, []rec{{"1", "", true}}},
		{"jsonl no text keeps the id", `{"id":"x"}`, 0, FormatJSONL, []rec{{"x", "", true}}},
		{"jsonl empty text is a record", `{"text":""}`, 0, FormatJSONL, []rec{{"1", "", false}}},
		{"csv", "id,text\na,\"x\ny\"\nb,z\n", 0, FormatCSV, []rec{{"a", "x\ny", false}, {"b", "z", false}}},
		{"csv bom crlf", "\xef\xbb\xbfid,text\r\na,x\r\n", 0, FormatCSV, []rec{{"a", "x", false}}},
		{"csv short row", "id,text\na\nb,y\n", 0, FormatCSV, []rec{{"a", "", true}, {"b", "y", false}}},
		{"csv bare quote", "id,text\na,x\"y\nb,z\n", 0, FormatCSV, []rec{{"1", "", true}, {"b", "z", false}}},
		{"csv duplicate ids kept", "id,text\na,x\na,y\n", 0, FormatCSV, []rec{{"a", "x", false}, {"a", "y", false}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := readAll(t, newReader(t, tt.in, tt.format, tt.max), 100)
			if len(got) != len(tt.want) {
				t.Fatalf("got %d records %+v, want %d", len(got), got, len(tt.want))
			}
			for i, w := range tt.want {
				g := got[i]
				if g.ID != w.id || (g.Err != nil) != w.bad || (!w.bad && g.Text != w.text) {
					t.Errorf("record %d = {id %q text %q err %v}, want {id %q text %q bad %v}", i, g.ID, g.Text, g.Err, w.id, w.text, w.bad)
				}
				if g.Err != nil && !errors.Is(g.Err, ErrMalformed) {
					t.Errorf("record %d error %v does not wrap ErrMalformed", i, g.Err)
				}
			}
		})
	}
}

// TestReadErrorIsFatal: an I/O error from the underlying reader stops the
// run instead of turning into records.
func TestReadErrorIsFatal(t *testing.T) {
	boom := errors.New("disk gone")
	for _, f := range []string{FormatText, FormatJSONL} {
		r, err := NewReader(io.MultiReader(strings.NewReader("a\n"), iotest.ErrReader(boom)), f, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.Next(); err != nil {
			t.Fatalf("%s: first record: %v", f, err)
		}
		if _, err := r.Next(); !errors.Is(err, boom) {
			t.Fatalf("%s: got %v, want the read error", f, err)
		}
	}
}

func TestCSVHeaderWithoutText(t *testing.T) {
	if _, err := NewReader(strings.NewReader("id,body\n1,x\n"), FormatCSV, 0); err == nil || !strings.Contains(err.Error(), `no "text" column`) {
		t.Fatalf("got %v", err)
	}
	if _, err := NewReader(strings.NewReader(""), "xml", 0); err == nil {
		t.Fatal("unknown format accepted")
	}
}

// splitLines mirrors the documented line rules: '\n' ends a line, one
// trailing '\r' is dropped, a BOM is dropped from line 1, blank lines yield
// nothing, and lines over max yield an error record.
type lineWant struct {
	line    int
	content []byte
	tooLong bool
}

func splitLines(in []byte, max int) []lineWant {
	var out []lineWant
	if len(in) == 0 {
		return nil
	}
	parts := bytes.Split(in, []byte("\n"))
	if len(parts[len(parts)-1]) == 0 {
		parts = parts[:len(parts)-1] // the final newline ends the last line
	}
	for i, p := range parts {
		p = bytes.TrimSuffix(p, []byte("\r"))
		if i == 0 {
			p = bytes.TrimPrefix(p, []byte("\xef\xbb\xbf"))
		}
		switch {
		case len(p) > max:
			out = append(out, lineWant{line: i + 1, tooLong: true})
		case len(bytes.TrimSpace(p)) == 0:
		default:
			out = append(out, lineWant{line: i + 1, content: p})
		}
	}
	return out
}

// fuzzMax is small so that the fuzzer reaches the over-long path, and
// prime so that it straddles bufio's chunking differently from any power of 2.
const fuzzMax = 61

func checkLines(t *testing.T, in []byte, format string, check func(t *testing.T, w lineWant, r Record)) {
	r, err := NewReader(bytes.NewReader(in), format, fuzzMax)
	if err != nil {
		t.Fatal(err)
	}
	got := readAll(t, r, len(in)+1)
	want := splitLines(in, fuzzMax)
	if len(got) != len(want) {
		t.Fatalf("%d records from %d non-blank lines\ninput %q\ngot %+v", len(got), len(want), in, got)
	}
	for i, w := range want {
		g := got[i]
		if g.Line != w.line {
			t.Fatalf("record %d has line %d, want %d (out of order?)", i, g.Line, w.line)
		}
		if w.tooLong {
			if g.Err == nil || !errors.Is(g.Err, ErrMalformed) || g.ID != strconv.Itoa(w.line) {
				t.Fatalf("line %d is over the cap: got %+v", w.line, g)
			}
			continue
		}
		check(t, w, g)
	}
}

func FuzzText(f *testing.F) {
	for _, s := range []string{"", "a", "a\nb", "a\r\n\r\nb\r\n", "\xef\xbb\xbf가\n", "\n\n\n", " \t\u3000\n x", "\xff\x00\n", strings.Repeat("가", 40) + "\nok", strings.Repeat("x", fuzzMax) + "\r\n" + strings.Repeat("y", fuzzMax+1)} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		checkLines(t, in, FormatText, func(t *testing.T, w lineWant, g Record) {
			if g.Err != nil || g.Text != string(w.content) || g.ID != strconv.Itoa(w.line) {
				t.Fatalf("line %d %q: got %+v", w.line, w.content, g)
			}
		})
	})
}

func FuzzJSONL(f *testing.F) {
	for _, s := range []string{
		`{"id":"a","text":"안녕하세요"}`,
		`{"id":1,"text":"x","label":"phishing","group":"g"}` + "\r\n" + `{"text":"y"}`,
		`{"id":"a","text":"안`, `{"text":1}`, `{"text":null}`, `null`, `[]`, `{"a":1}{"b":2}`,
		"\xef\xbb\xbf{\"text\":\"bom\"}\n\n", `{"text":"\u0000\ud800"}`, `{"id":{"x":1},"text":"a"}`,
		`{"text":"a","text":2}`, `{"TEXT":"upper"}`, `  {"text":"pad"}  `, "{\"text\":\"\xff\"}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		checkLines(t, in, FormatJSONL, func(t *testing.T, w lineWant, g Record) {
			if g.Err != nil {
				if !errors.Is(g.Err, ErrMalformed) || g.ID == "" {
					t.Fatalf("line %d: bad error record %+v", w.line, g)
				}
				return
			}
			// A parsed record came from one JSON object whose "text" is a
			// string equal to Text.
			var m map[string]json.RawMessage
			if err := json.Unmarshal(w.content, &m); err != nil || m == nil {
				t.Fatalf("line %d %q accepted but is not a JSON object: %v", w.line, w.content, err)
			}
			var text string
			if err := json.Unmarshal(m["text"], &text); err != nil || text != g.Text {
				t.Fatalf("line %d %q: Text %q, JSON text %q (%v)", w.line, w.content, g.Text, text, err)
			}
			if _, ok := m["id"]; (!ok && g.ID != strconv.Itoa(w.line)) || g.ID == "" {
				t.Fatalf("line %d got ID %q", w.line, g.ID)
			}
		})
	})
}

func FuzzCSV(f *testing.F) {
	for _, s := range []string{
		"id,text\na,x\n", "text\n\"multi\nline\"\n", "id,text,label\r\n1,\"a,b\",phishing\r\n2,c\r\n",
		"\xef\xbb\xbfid,text\na,x", "id,text\na,\"unterminated\n", "id,text\na,x\"y\nb,z\n", "", "id,body\n1,x\n",
		"id,text\n\n\na\n,,,,,\n", "TEXT , ID\nx,1\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		r, err := NewReader(bytes.NewReader(in), FormatCSV, 0)
		if err != nil {
			return // a header error is reported once, as a setup error
		}
		got := readAll(t, r, len(in)+1)
		// The same rows as encoding/csv reads them after the header: one
		// record per row, parse errors included, in order.
		ref := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(in, []byte("\xef\xbb\xbf"))))
		ref.FieldsPerRecord = -1
		rows := 0
		if _, err := ref.Read(); !errors.Is(err, io.EOF) {
			for {
				_, err := ref.Read()
				if errors.Is(err, io.EOF) {
					break
				}
				rows++
				if rows > len(in)+1 {
					t.Fatal("reference reader does not advance")
				}
			}
		}
		if len(got) != rows {
			t.Fatalf("%d records for %d CSV rows\ninput %q", len(got), rows, in)
		}
		last := 0
		for i, g := range got {
			if g.Line < last {
				t.Fatalf("record %d line %d after line %d", i, g.Line, last)
			}
			last = g.Line
			if g.Err != nil && !errors.Is(g.Err, ErrMalformed) {
				t.Fatalf("record %d error %v does not wrap ErrMalformed", i, g.Err)
			}
			if g.ID == "" {
				t.Fatalf("record %d has an empty id", i)
			}
		}
	})
}
