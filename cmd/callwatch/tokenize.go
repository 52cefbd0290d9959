package main

import (
	"errors"
	"io"

	"github.com/callwatch/callwatch/tokenize"
)

type idsRecord struct {
	ID    string  `json:"id"`
	IDs   []int64 `json:"ids"`
	Label string  `json:"label,omitempty"`
	Group string  `json:"group,omitempty"`
}

// tokenizeCmd prints the model's token ids for each record; label and group
// fields of JSONL input pass through, which is how training data is made
// with exactly the tokenizer that serves.
func (e *env) tokenizeCmd(args []string) error {
	o, fs := addInputFlags("tokenize", e, "tokenize [TEXT...] [--input FILE|-] [--format text|jsonl|csv] [--model DIR | --tokenizer FILE]")
	fs.String("model", "", "model bundle whose tokenizer.json to use (default: the shipped model)")
	tokPath := fs.String("tokenizer", "", "a tokenizer.json to use instead of a bundle's")
	c, rr, closeIn, err := e.parseWithRecords(fs, o, args)
	if err != nil {
		return err
	}
	defer closeIn()
	var tok *tokenize.Tokenizer
	if *tokPath != "" {
		if tok, err = tokenize.Load(*tokPath); err != nil {
			return usagef("tokenizer %s: %v", *tokPath, err)
		}
	} else {
		b, err := e.loadBundle(c)
		if err != nil {
			return err
		}
		if tok, err = tokenize.LoadBytes(b.Tokenizer); err != nil {
			return usagef("tokenizer of %s: %v", b.Dir, err)
		}
	}
	out := newJSONLWriter(e.stdout)
	failed, total := 0, 0
	for {
		chunk, rerr := readChunk(e.ctx, rr, chunkSize)
		for _, r := range chunk {
			total++
			var werr error
			if r.Err != nil {
				failed++
				werr = out.Write(errorRecord{ID: r.ID, Line: r.Line, Error: r.Err.Error()})
			} else if ids, err := tok.Encode(r.Text); err != nil {
				failed++
				werr = out.Write(errorRecord{ID: r.ID, Line: r.Line, Error: err.Error()})
			} else {
				werr = out.Write(idsRecord{ID: r.ID, IDs: ids, Label: r.Label, Group: r.Group})
			}
			if werr != nil {
				return werr
			}
		}
		if err := out.Flush(); err != nil {
			return err
		}
		if rerr != nil {
			if errors.Is(rerr, io.EOF) {
				break
			}
			return rerr
		}
	}
	if failed > 0 {
		return &errRecords{failed: failed, total: total}
	}
	return nil
}
