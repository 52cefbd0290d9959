package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/callwatch/callwatch/internal/records"
	"github.com/callwatch/callwatch/tokenize"
)

// vocab builds a WordPiece tokenizer.json from a corpus with the project's
// deterministic builder (tokenize.BuildVocab: sugarme's own trainers are
// broken or nondeterministic, as the tokenize package doc says).
func (e *env) vocab(args []string) error {
	o, fs := addInputFlags("vocab", e, "vocab --input FILE [--format jsonl] --size N --out tokenizer.json")
	size := fs.Int("size", 8000, "vocabulary size, special tokens included")
	minFreq := fs.Int("min-freq", 2, "minimum count for a character or subword")
	outPath := fs.String("out", "", "where to write tokenizer.json (required)")
	if err := parseFlags(fs.FlagSet, args); err != nil {
		return err
	}
	if *outPath == "" {
		return usagef("--out is required")
	}
	rr, closeIn, err := e.openRecords(o, fs.Args())
	if err != nil {
		return err
	}
	defer closeIn()
	var texts []string
	for {
		r, err := rr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if r.Err != nil {
			return usagef("corpus line %d: %v", r.Line, r.Err)
		}
		texts = append(texts, tokenize.Clean(r.Text))
	}
	v, err := tokenize.BuildVocab(texts, tokenize.VocabOptions{Size: *size, MinFreq: *minFreq})
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := v.WriteTokenizerJSON(&buf); err != nil {
		return err
	}
	if err := os.WriteFile(*outPath, buf.Bytes(), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "callwatch: wrote %s from %d texts\n", *outPath, len(texts))
	return nil
}

var _ = records.FormatJSONL
