// Command gen is the Go half of the golden-id pipeline (see regen.sh):
//
//	gen vocab -corpus FILE -size N [-min-freq N] -out tokenizer.json
//	gen clean -lines golden_lines.jsonl            > cleaned.jsonl (one JSON string a line)
//	gen join  -lines golden_lines.jsonl -ids ids.jsonl > golden_ids.jsonl
//	gen allchars > lines.jsonl   ("가X나" for every code point X ≥ U+0080:
//	                              checks character classes against HF)
//	gen chartable -ids golden.jsonl > tokenize/hfchars.go
//	                             (from allchars goldens: where Go's Unicode
//	                              tables and HF's disagree on punctuation/digits)
//
// Lines files hold one object a line: {"raw": "..."} or, for text that is not
// valid UTF-8 (JSON cannot carry it), {"raw_b64": "..."}.
package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode"

	"github.com/callwatch/callwatch/tokenize"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New("usage: gen vocab|clean|join [flags]")
	}
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	corpus := fs.String("corpus", "", "vocab corpus, one text a line")
	size := fs.Int("size", 0, "vocab size")
	minFreq := fs.Int("min-freq", 2, "min frequency")
	out := fs.String("out", "", "output file")
	lines := fs.String("lines", "", "golden lines JSONL")
	ids := fs.String("ids", "", "ids JSONL from encode.js")
	tokPath := fs.String("tokenizer", "tokenize/testdata/tokenizer.json", "tokenizer.json the ids came from")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	switch args[0] {
	case "vocab":
		return vocab(*corpus, *size, *minFreq, *out)
	case "clean":
		raws, err := readLines(*lines)
		if err != nil {
			return err
		}
		w := bufio.NewWriter(stdout)
		for _, r := range raws {
			b, err := marshal(tokenize.Clean(r))
			if err != nil {
				return err
			}
			w.Write(b)
			w.WriteByte('\n')
		}
		return w.Flush()
	case "join":
		return join(*lines, *ids, stdout)
	case "chartable":
		tk, err := tokenize.Load(*tokPath)
		if err != nil {
			return err
		}
		ga, _ := tk.TokenToID("가")
		na, _ := tk.TokenToID("나")
		return chartable(*ids, ga, na, stdout)
	case "allchars":
		w := bufio.NewWriter(stdout)
		for r := rune(0x80); r <= 0x10FFFF; r++ {
			if r >= 0xD800 && r <= 0xDFFF {
				continue
			}
			b, err := marshal(RawLine{Raw: ptr("가" + string(r) + "나")})
			if err != nil {
				return err
			}
			w.Write(b)
			w.WriteByte('\n')
		}
		return w.Flush()
	}
	return fmt.Errorf("unknown subcommand %q", args[0])
}

func vocab(corpus string, size, minFreq int, out string) error {
	b, err := os.ReadFile(corpus)
	if err != nil {
		return err
	}
	v, err := tokenize.BuildVocab(strings.Split(string(b), "\n"), tokenize.VocabOptions{Size: size, MinFreq: minFreq})
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := v.WriteTokenizerJSON(&buf); err != nil {
		return err
	}
	return os.WriteFile(out, buf.Bytes(), 0o644)
}

// RawLine is one golden input line.
type RawLine struct {
	Raw    *string `json:"raw,omitempty"`
	RawB64 *string `json:"raw_b64,omitempty"`
}

func readLines(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for n := 1; sc.Scan(); n++ {
		var l RawLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, n, err)
		}
		switch {
		case l.Raw != nil:
			out = append(out, *l.Raw)
		case l.RawB64 != nil:
			b, err := base64.StdEncoding.DecodeString(*l.RawB64)
			if err != nil {
				return nil, fmt.Errorf("%s:%d: %w", path, n, err)
			}
			out = append(out, string(b))
		default:
			return nil, fmt.Errorf("%s:%d: neither raw nor raw_b64", path, n)
		}
	}
	return out, sc.Err()
}

func join(linesPath, idsPath string, stdout io.Writer) error {
	raws, err := readLines(linesPath)
	if err != nil {
		return err
	}
	f, err := os.Open(idsPath)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	w := bufio.NewWriter(stdout)
	i := 0
	for ; sc.Scan(); i++ {
		if i >= len(raws) {
			return fmt.Errorf("more ids lines than input lines (%d)", len(raws))
		}
		var ids []int64
		if err := json.Unmarshal(sc.Bytes(), &ids); err != nil {
			return fmt.Errorf("%s:%d: %w", idsPath, i+1, err)
		}
		rec := struct {
			Raw    *string `json:"raw,omitempty"`
			RawB64 *string `json:"raw_b64,omitempty"`
			Clean  string  `json:"clean"`
			IDs    []int64 `json:"ids"`
		}{Clean: tokenize.Clean(raws[i]), IDs: ids}
		if ids == nil {
			rec.IDs = []int64{}
		}
		r := raws[i]
		if isValid(r) {
			rec.Raw = &r
		} else {
			b := base64.StdEncoding.EncodeToString([]byte(r))
			rec.RawB64 = &b
		}
		b, err := marshal(rec)
		if err != nil {
			return err
		}
		w.Write(b)
		w.WriteByte('\n')
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if i != len(raws) {
		return fmt.Errorf("%d ids lines for %d input lines", i, len(raws))
	}
	return w.Flush()
}

// chartable reads goldens of "가X나" lines and writes the code points where
// Go's view (unicode.P, ASCII punctuation, unicode.IsNumber: X is a word of
// its own) disagrees with HF's (X is a word of its own iff HF's ids are
// 가, something, 나 with 나 word-initial).
func chartable(path string, gaID, naID int64, stdout io.Writer) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	var goOnly, hfOnly []rune
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var rec struct {
			Raw   string  `json:"raw"`
			Clean string  `json:"clean"`
			IDs   []int64 `json:"ids"`
		}
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			return err
		}
		rs := []rune(rec.Raw)
		if len(rs) != 3 || rec.Clean != rec.Raw {
			continue // spaces, controls, NFC changes: Clean's business
		}
		r := rs[1]
		goSplit := unicode.IsNumber(r) || unicode.IsPunct(r)
		hfSplit := len(rec.IDs) == 3 && rec.IDs[0] == gaID && rec.IDs[2] == naID
		switch {
		case goSplit && !hfSplit:
			goOnly = append(goOnly, r)
		case !goSplit && hfSplit:
			hfOnly = append(hfOnly, r)
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	w := bufio.NewWriter(stdout)
	fmt.Fprintf(w, `// Code generated by scripts/tokgolden/gen chartable; DO NOT EDIT.

package tokenize

// hfNotSplit: Go's Unicode tables call these punctuation (P*) or numeric, but
// HF tokenizers (unicode_categories' older tables) does not split them off.
var hfNotSplit = []rune{%s}

// hfExtraSplit: HF splits these off but Go's tables do not: numeric in the
// Rust standard library's newer Unicode tables, or punctuation in
// unicode_categories' old tables that later Unicode moved out of P*.
var hfExtraSplit = []rune{%s}
`, runeList(goOnly), runeList(hfOnly))
	return w.Flush()
}

func runeList(rs []rune) string {
	var b strings.Builder
	for i, r := range rs {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "0x%04X", r)
	}
	return b.String()
}

func ptr(s string) *string { return &s }

func isValid(s string) bool { return strings.ToValidUTF8(s, "\uFFFD") == s }

// marshal is json.Marshal without HTML escaping.
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}
