package main

import (
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/callwatch/callwatch"
	"github.com/callwatch/callwatch/internal/records"
	"github.com/callwatch/callwatch/tokenize"
)

type idsRecord struct {
	ID    string  `json:"id"`
	IDs   []int64 `json:"ids"`
	Label string  `json:"label,omitempty"`
	Group string  `json:"group,omitempty"`
}

func (e *env) tokenizeCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tokenize [TEXT...] [--input FILE|-] [--format text|jsonl|csv] [--model DIR | --tokenizer FILE]",
		Short: "Print the model's token ids for each input record",
		Long: `tokenize writes {"id","ids"} per input record, in order, with the tokenizer of the
model bundle (or --tokenizer). label and group fields of JSONL input pass through,
which is how training data is made with exactly the tokenizer that serves.`,
	}
	o := addInputFlags(cmd)
	fs := cmd.Flags()
	addKeyFlags(fs, "model")
	tokPath := fs.String("tokenizer", "", "a tokenizer.json to use instead of the model bundle's")
	normalizer := fs.String("normalizer", "", "with --tokenizer: the text normalizer the model will apply (\""+tokenize.NormalizerPoliteEndings+"\"); a bundle's card names its own")
	cmd.RunE = func(cmd *cobra.Command, args []string) error { return e.tokenize(fs, o, *tokPath, *normalizer, args) }
	return cmd
}

// tokenize prints the model's token ids for each record as soon as it is
// read (live input is answered line by line).
func (e *env) tokenize(fs *pflag.FlagSet, o *inputOpts, tokPath, normalizer string, args []string) error {
	c, rr, closeIn, err := e.configWithRecords(fs, o, args)
	if err != nil {
		return err
	}
	defer closeIn()
	var tok *tokenize.Tokenizer
	if tokPath != "" {
		if tok, err = tokenize.Load(tokPath, tokenize.WithNormalizer(normalizer)); err != nil {
			return usagef("tokenizer %s: %w", tokPath, err)
		}
	} else {
		if normalizer != "" {
			return cmdlinef("--normalizer goes with --tokenizer; a model bundle's card.json names its own text_normalizer")
		}
		b, err := e.loadBundle(c)
		if err != nil {
			return err
		}
		if tok, err = callwatch.LoadTokenizer(b); err != nil {
			return err
		}
	}
	out := newJSONLWriter(e.stdout)
	failed, total := 0, 0
	err = e.eachChunk(rr, func(chunk []records.Record) error {
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
		return out.Flush()
	})
	if err != nil {
		return err
	}
	if failed > 0 {
		return &errRecords{failed: failed, total: total}
	}
	return nil
}
