package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/callwatch/callwatch/tokenize"
)

func (e *env) vocabCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "vocab [TEXT...] --input FILE [--format jsonl] --size N --out tokenizer.json",
		Short: "Build a WordPiece tokenizer.json from a corpus (training)",
		Long: `vocab builds a WordPiece tokenizer.json from a corpus with the project's
deterministic builder: the same corpus gives the same file, byte for byte.`,
		Example: `  callwatch vocab --input corpus.jsonl --size 8000 --out tokenizer.json`,
	}
	o := addInputFlags(cmd)
	fs := cmd.Flags()
	size := fs.Int("size", 8000, "vocabulary size, special tokens included")
	minFreq := fs.Int("min-freq", 2, "minimum count for a character or subword")
	outPath := fs.String("out", "", "where to write tokenizer.json (required)")
	normalizer := fs.String("normalizer", "", "count words as this text normalizer rewrites them (\""+tokenize.NormalizerPoliteEndings+"\"), for a model whose card names it")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if *outPath == "" {
			return cmdlinef("--out FILE is required")
		}
		if !tokenize.KnownNormalizer(*normalizer) {
			return cmdlinef("--normalizer %q is not a text normalizer this callwatch knows (%q or none)", *normalizer, tokenize.NormalizerPoliteEndings)
		}
		return e.vocab(o, args, *size, *minFreq, *normalizer, *outPath)
	}
	return cmd
}

// vocab builds a WordPiece tokenizer.json from a corpus with the project's
// deterministic builder (tokenize.BuildVocab: sugarme's own trainers are
// broken or nondeterministic, as the tokenize package doc says).
func (e *env) vocab(o *inputOpts, args []string, size, minFreq int, normalizer, outPath string) error {
	rr, closeIn, err := e.openRecords(o, args)
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
	v, err := tokenize.BuildVocab(texts, tokenize.VocabOptions{Size: size, MinFreq: minFreq, Normalizer: normalizer})
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := v.WriteTokenizerJSON(&buf); err != nil {
		return err
	}
	if err := os.WriteFile(outPath, buf.Bytes(), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "callwatch: wrote %s from %d texts\n", outPath, len(texts))
	return nil
}
