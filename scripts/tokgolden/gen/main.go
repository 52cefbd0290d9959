// Command gen is the Go half of the golden-id pipeline (see regen.sh):
//
//	gen vocab -corpus FILE -size N [-min-freq N] -out tokenizer.json
//	gen clean -lines golden_lines.jsonl            > cleaned.jsonl (one JSON string a line)
//	gen join  -lines golden_lines.jsonl -ids ids.jsonl > golden_ids.jsonl
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
