package main

import (
	"fmt"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"testing"
)

// raceBuild reports a -race test binary, where the tokenizer runs ~7x
// slower: the large-volume tests then use fewer records.
func raceBuild() bool {
	bi, ok := debug.ReadBuildInfo()
	return ok && slices.ContainsFunc(bi.Settings, func(s debug.BuildSetting) bool { return s.Key == "-race" && s.Value == "true" })
}

// want describes one expected output record: a verdict (err == "") whose
// score equals that of the text sameAs when sameAs is set, or an error
// record whose message contains err.
type want struct {
	id     string
	err    string
	sameAs string
}

// refScores caches the score of a reference text per backend, classified
// on its own through the CLI.
type refScores struct {
	mu sync.Mutex
	m  map[string]float64
}

func (r *refScores) get(t *testing.T, backend, text string) float64 {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	key := backend + "\x00" + text
	if s, ok := r.m[key]; ok {
		return s
	}
	res := runCLI(t, "", nil, "classify", "--model", modelDir, "--backend", backend, text)
	recs := jsonl(t, res.stdout)
	if res.err != nil || len(recs) != 1 {
		t.Fatalf("reference %q: %v\n%s", text, res.err, res.stderr)
	}
	s := recs[0]["score"].(float64)
	if r.m == nil {
		r.m = map[string]float64{}
	}
	r.m[key] = s
	return s
}

const (
	refPhish  = "검찰청 수사관입니다 명의가 도용돼서 안전계좌로 이체하셔야 합니다"
	refNormal = "적금 만기 안내드리려고 연락드렸습니다 영업점 방문하시면 됩니다"
)

// TestBadInput drives classify with every kind of malformed or odd input a
// transcript pipeline produces. Each row states the records expected, in
// order, and the exit code; every stdout line must be a complete JSON
// object.
func TestBadInput(t *testing.T) {
	huge := strings.Repeat("안전계좌로 이체하세요 ", 50<<20/len("안전계좌로 이체하세요 ")+1) // > 50 MB, over the card's 8 MiB text cap
	tests := []struct {
		name     string
		backends []string
		stdin    string
		args     []string // after classify --model --backend; nil means --input - --format FORMAT
		format   string
		want     []want
		code     int
	}{
		{name: "invalid UTF-8 is replaced, not fatal", backends: []string{"native", "ort"}, format: "text",
			stdin: "\xff\xfe" + refPhish + "\xc3\n",
			want:  []want{{id: "1", sameAs: refPhish}}, code: exitOK},
		// encoding/json turns bad bytes in a string into U+FFFD, which the
		// tokenizer keeps (as [UNK]); raw bad bytes in a text line are dropped.
		{name: "invalid UTF-8 inside a JSON string", format: "jsonl",
			stdin: `{"id":"u","text":"` + refPhish + "\xff" + `"}` + "\n",
			want:  []want{{id: "u", sameAs: refPhish + "\ufffd"}}, code: exitOK},
		{name: "NUL and control bytes are dropped", format: "text",
			stdin: strings.Replace(refPhish, " ", " \x00\x01", 3) + "\n",
			want:  []want{{id: "1", sameAs: refPhish}}, code: exitOK},
		{name: "empty JSON text", format: "jsonl",
			stdin: `{"id":"e","text":""}` + "\n" + `{"id":"ok","text":"` + refNormal + `"}`,
			want:  []want{{id: "e", err: "empty text"}, {id: "ok", sameAs: refNormal}}, code: exitFailed},
		{name: "whitespace-only JSON text", format: "jsonl",
			stdin: `{"id":"w","text":" \t\u3000\u00a0 "}` + "\n",
			want:  []want{{id: "w", err: "empty text after cleaning"}}, code: exitFailed},
		{name: "whitespace-only argument", args: []string{"   ", refNormal},
			want: []want{{id: "1", err: "empty text after cleaning"}, {id: "2", sameAs: refNormal}}, code: exitFailed},
		{name: "whitespace-only text lines are separators", format: "text",
			stdin: "   \n\t\n" + refNormal + "\n",
			want:  []want{{id: "3", sameAs: refNormal}}, code: exitOK},
		{name: "50 MB line is refused on its own", format: "text",
			stdin: refNormal + "\n" + huge + "\n" + refPhish + "\n",
			want:  []want{{id: "1", sameAs: refNormal}, {id: "2", err: "text too long"}, {id: "3", sameAs: refPhish}}, code: exitFailed},
		{name: "10,000 consecutive spaces collapse", format: "text",
			stdin: strings.Replace(refPhish, " ", strings.Repeat(" ", 10000), 1) + "\n",
			want:  []want{{id: "1", sameAs: refPhish}}, code: exitOK},
		{name: "only emoji is scored (all unknown tokens)", format: "text",
			stdin: "😀😀👍🏽🎉👨\u200d👩\u200d👧\n",
			want:  []want{{id: "1", sameAs: "😀😀👍🏽🎉👨👩👧"}}, code: exitOK},
		{name: "only Latin is scored", format: "text",
			stdin: "hello this is a test call from the bank\n",
			want:  []want{{id: "1", sameAs: "hello this is a test call from the bank"}}, code: exitOK},
		{name: "CRLF text file", backends: []string{"native", "ort"}, format: "text",
			stdin: refPhish + "\r\n" + refNormal + "\r\n",
			want:  []want{{id: "1", sameAs: refPhish}, {id: "2", sameAs: refNormal}}, code: exitOK},
		{name: "CRLF JSONL file", format: "jsonl",
			stdin: `{"id":"a","text":"` + refPhish + `"}` + "\r\n" + `{"id":"b","text":"` + refNormal + `"}` + "\r\n",
			want:  []want{{id: "a", sameAs: refPhish}, {id: "b", sameAs: refNormal}}, code: exitOK},
		{name: "BOM on a text file", format: "text",
			stdin: "\ufeff" + refPhish + "\n",
			want:  []want{{id: "1", sameAs: refPhish}}, code: exitOK},
		{name: "BOM on a JSONL file", format: "jsonl",
			stdin: "\ufeff" + `{"id":"b","text":"` + refPhish + `"}` + "\n",
			want:  []want{{id: "b", sameAs: refPhish}}, code: exitOK},
		{name: "BOM on a CSV file", format: "csv",
			stdin: "\ufeffid,text\nc," + refPhish + "\n",
			want:  []want{{id: "c", sameAs: refPhish}}, code: exitOK},
		{name: "last line without newline", format: "text",
			stdin: refNormal + "\n" + refPhish,
			want:  []want{{id: "1", sameAs: refNormal}, {id: "2", sameAs: refPhish}}, code: exitOK},
		{name: "last JSONL line cut mid-object", format: "jsonl",
			stdin: `{"id":"a","text":"` + refNormal + `"}` + "\n" + `{"id":"b","text":"검찰`,
			want:  []want{{id: "a", sameAs: refNormal}, {id: "2", err: "line 2 is not a JSON object"}}, code: exitFailed},
		{name: "malformed JSON lines", format: "jsonl",
			stdin: `{"id":"x" "text":"y"}` + "\n" + `not json` + "\n" + `["a"]` + "\n" + `null` + "\n" + `{"text":"a"}{"text":"b"}` + "\n" + `{"id":"ok","text":"` + refNormal + `"}`,
			want: []want{{id: "1", err: "not a JSON object"}, {id: "2", err: "not a JSON object"}, {id: "3", err: "not a JSON object"},
				{id: "4", err: "null"}, {id: "5", err: "data after the JSON object"}, {id: "ok", sameAs: refNormal}}, code: exitFailed},
		{name: "wrong field types", backends: []string{"native", "ort"}, format: "jsonl",
			stdin: strings.Join([]string{
				`{"id":"n","text":12}`, `{"id":"arr","text":["a"]}`, `{"id":"nul","text":null}`, `{"id":{"k":1},"text":"a"}`,
				`{"id":"lab","text":"a","label":1}`, `{"id":"none"}`, `{"id":3.5,"text":"` + refNormal + `"}`,
			}, "\n"),
			want: []want{{id: "n", err: `"text" must be a string`}, {id: "arr", err: `"text" must be a string`}, {id: "nul", err: "empty text"},
				{id: "4", err: `"id" must be a string or number`}, {id: "lab", err: `"label" must be a string`}, {id: "none", err: `no "text" field`},
				{id: "3.5", sameAs: refNormal}}, code: exitFailed},
		{name: "CSV with quoted newlines and commas", format: "csv",
			stdin: "id,text\r\nq,\"" + strings.Replace(refPhish, " ", "\n", 2) + "\"\r\nr,\"" + refNormal + ", 네\"\r\n",
			want:  []want{{id: "q", sameAs: refPhish}, {id: "r", sameAs: refNormal + ", 네"}}, code: exitOK},
		{name: "CSV with a bad row and a short row", format: "csv",
			stdin: "id,text\na,x\"y\nb\nc," + refNormal + "\n",
			want:  []want{{id: "1", err: "bare \" in non-quoted-field"}, {id: "b", err: `no "text" column`}, {id: "c", sameAs: refNormal}}, code: exitFailed},
		{name: "duplicate ids are kept, in order", backends: []string{"native", "ort"}, format: "jsonl",
			stdin: `{"id":"d","text":"` + refPhish + `"}` + "\n" + `{"id":"d","text":"` + refNormal + `"}` + "\n" + `{"id":"d","text":"` + refPhish + `"}`,
			want:  []want{{id: "d", sameAs: refPhish}, {id: "d", sameAs: refNormal}, {id: "d", sameAs: refPhish}}, code: exitOK},
		{name: "lone surrogate escapes", format: "jsonl",
			stdin: `{"id":"s","text":"\ud800` + refPhish + `\udfff"}`,
			want:  []want{{id: "s", sameAs: "\ufffd" + refPhish + "\ufffd"}}, code: exitOK},
		{name: "empty input gives no records", format: "jsonl", stdin: "", want: nil, code: exitOK},
		{name: "blank-only input gives no records", format: "text", stdin: "\n\r\n \n", want: nil, code: exitOK},
	}
	var refs refScores
	for _, tt := range tests {
		backends := tt.backends
		if backends == nil {
			backends = []string{"native"}
		}
		for _, be := range backends {
			t.Run(be+"/"+tt.name, func(t *testing.T) {
				args := []string{"classify", "--model", modelDir, "--backend", be}
				if tt.args != nil {
					args = append(args, tt.args...)
				} else {
					args = append(args, "--input", "-", "--format", tt.format)
				}
				r := runCLI(t, tt.stdin, nil, args...)
				if r.code != tt.code {
					t.Fatalf("exit %d, want %d (err %v)\nstdout %s\nstderr %s", r.code, tt.code, r.err, r.stdout, r.stderr)
				}
				if tt.code != exitOK && strings.Count(strings.TrimSuffix(r.stderr, "\n"), "\n") != 0 {
					t.Errorf("stderr is not one line: %q", r.stderr)
				}
				recs := jsonl(t, r.stdout)
				if len(recs) != len(tt.want) {
					t.Fatalf("%d records, want %d:\n%s", len(recs), len(tt.want), r.stdout)
				}
				for i, w := range tt.want {
					checkRecord(t, i, recs[i], w, func(text string) float64 { return refs.get(t, be, text) })
				}
			})
		}
	}
}

func checkRecord(t *testing.T, i int, rec map[string]any, w want, ref func(string) float64) {
	t.Helper()
	if rec["id"] != w.id {
		t.Errorf("record %d: id %v, want %q", i, rec["id"], w.id)
	}
	if w.err != "" {
		msg, _ := rec["error"].(string)
		if !strings.Contains(msg, w.err) {
			t.Errorf("record %d: error %q, want it to mention %q (record %v)", i, msg, w.err, rec)
		}
		if _, ok := rec["score"]; ok {
			t.Errorf("record %d: error record carries a score: %v", i, rec)
		}
		return
	}
	score, ok := rec["score"].(float64)
	if !ok || rec["error"] != nil {
		t.Errorf("record %d: want a verdict, got %v", i, rec)
		return
	}
	if l := rec["label"]; l != "phishing" && l != "normal" {
		t.Errorf("record %d: label %v", i, l)
	}
	if l := rec["level"]; l != "none" && l != "suspicious" && l != "dangerous" {
		t.Errorf("record %d: level %v", i, l)
	}
	if w.sameAs != "" {
		if s := ref(w.sameAs); s != score {
			t.Errorf("record %d: score %v, want %v (the score of %q)", i, score, s, truncateForLog(w.sameAs))
		}
	}
}

func truncateForLog(s string) string {
	if r := []rune(s); len(r) > 40 {
		return fmt.Sprintf("%s…(%d runes)", string(r[:40]), len(r))
	}
	return s
}

// TestNothingLost feeds a large mixed JSONL file (good, malformed, empty,
// wrongly typed, duplicate-id and multi-window records) through classify on
// both backends at several batch sizes: exactly one output per input, in
// input order, ids preserved, the same verdicts whatever the batching.
func TestNothingLost(t *testing.T) {
	n := 3000
	if raceBuild() {
		n = 500
	}
	type expect struct {
		id  string
		bad bool
	}
	var in strings.Builder
	exp := make([]expect, 0, n)
	long := strings.Repeat("고객님 명의로 대포통장이 개설돼서 금융감독원 직원이 안전계좌를 안내해 드리고 ", 60) // several 512-token windows
	for i := range n {
		line := i + 1
		id := fmt.Sprintf("r%04d", i)
		switch i % 10 {
		case 0, 1, 2, 3:
			fmt.Fprintf(&in, `{"id":%q,"text":"%s %d번째 통화입니다"}`+"\n", id, []string{refPhish, refNormal}[i%2], i)
			exp = append(exp, expect{id, false})
		case 4:
			fmt.Fprintf(&in, `{"id":%q,"text":"%s"}`+"\n", id, long)
			exp = append(exp, expect{id, false})
		case 5:
			fmt.Fprintf(&in, `{"id":%q,"text":`+"\n", id) // cut mid-object
			exp = append(exp, expect{fmt.Sprint(line), true})
		case 6:
			fmt.Fprintf(&in, `{"id":%q,"text":"  "}`+"\n", id)
			exp = append(exp, expect{id, true})
		case 7:
			fmt.Fprintf(&in, `{"id":%q,"text":%d}`+"\n", id, i)
			exp = append(exp, expect{id, true})
		case 8:
			fmt.Fprintf(&in, `{"id":"dup","text":"엄마 나야 폰 액정이 깨져서 %d 그러는데 상품권 좀"}`+"\n", i)
			exp = append(exp, expect{"dup", false})
		case 9:
			fmt.Fprintf(&in, `{"text":"택배 기사입니다 %d 문 앞에 두고 갈게요"}`+"\n", i)
			exp = append(exp, expect{fmt.Sprint(line), false})
		}
	}
	scores := map[string][]float64{}
	for _, be := range []string{"native", "ort"} {
		for _, batch := range []int{1, 7, 64} {
			name := fmt.Sprintf("%s/batch%d", be, batch)
			t.Run(name, func(t *testing.T) {
				r := runCLI(t, in.String(), nil, "classify", "--model", modelDir, "--backend", be, "--batch", fmt.Sprint(batch), "--input", "-", "--format", "jsonl")
				if r.code != exitFailed {
					t.Fatalf("exit %d, want %d (some records are bad): %v", r.code, exitFailed, r.err)
				}
				recs := jsonl(t, r.stdout)
				if len(recs) != n {
					t.Fatalf("%d inputs gave %d outputs", n, len(recs))
				}
				s := make([]float64, n)
				for i, rec := range recs {
					if rec["id"] != exp[i].id {
						t.Fatalf("output %d has id %v, want %q: lost or reordered", i, rec["id"], exp[i].id)
					}
					_, isErr := rec["error"]
					if isErr != exp[i].bad {
						t.Fatalf("output %d (%s): error %v, want %v: %v", i, exp[i].id, isErr, exp[i].bad, rec)
					}
					if !isErr {
						s[i] = rec["score"].(float64)
					}
				}
				if want := fmt.Sprintf("%d of %d records failed", 3*n/10, n); !strings.Contains(r.stderr, want) {
					t.Errorf("stderr %q does not say %q", r.stderr, want)
				}
				scores[name] = s
			})
		}
	}
	if len(scores) != 6 {
		return // a run failed above
	}
	base := scores["native/batch1"]
	for name, s := range scores {
		for i := range s {
			if d := s[i] - base[i]; d > 2e-6 || d < -2e-6 {
				t.Errorf("%s record %d: score %v, native/batch1 %v", name, i, s[i], base[i])
				break
			}
		}
	}
}
