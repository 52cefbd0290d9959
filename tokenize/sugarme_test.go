package tokenize

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	sugar "github.com/sugarme/tokenizer"
	"github.com/sugarme/tokenizer/pretrained"
)

// This file is the reference the fast path is tested against:
// github.com/sugarme/tokenizer's whole pipeline (normalizer, pre-tokenizer,
// WordPiece model) loaded from the same tokenizer.json. It lives in test code
// only; the package itself never calls sugarme.
//
// Both give the ids of the Rust HF library on ordinary text (tested against
// each other and against HF), but sugarme's pipeline uses Go's Unicode tables
// and so differs from HF on ~220 rare punctuation and digit code points
// (hfNotSplit, hfExtraSplit), where the fast path follows HF. The pipeline is
// about 8x slower and allocates ~3 KB per character, so it runs on bounded
// chunks, and it panics on inputs Clean removes, so its panics become errors.

// defaultChunkBytes bounds what one sugarme call sees: sugarme keeps
// per-character alignments (~3 KB per character), so a whole call transcript
// in one piece would cost hundreds of MB.
const defaultChunkBytes = 2000

// sugarRef encodes like Tokenizer.Encode (same cleaning, limits and errors)
// through sugarme's pipeline, on chunks of cleaned text.
type sugarRef struct {
	tk         *Tokenizer // the same file through this package: limits, vocab, pre-tokenizer kind
	sugar      *sugar.Tokenizer
	chunkBytes int
}

// newSugarRef loads raw (a tokenizer.json) both ways. chunkBytes below
// utf8.UTFMax means defaultChunkBytes; tests use tiny chunks to exercise
// every split point.
func newSugarRef(raw []byte, chunkBytes int, opts ...Option) (*sugarRef, error) {
	tk, err := LoadBytes(raw, opts...)
	if err != nil {
		return nil, err
	}
	st, err := loadSugarme(raw)
	if err != nil {
		return nil, err
	}
	if chunkBytes < utf8.UTFMax {
		chunkBytes = defaultChunkBytes
	}
	return &sugarRef{tk: tk, sugar: st, chunkBytes: chunkBytes}, nil
}

// loadSugarRef is newSugarRef on the test tokenizer.
func loadSugarRef(t testing.TB, chunkBytes int, opts ...Option) *sugarRef {
	t.Helper()
	raw, err := os.ReadFile(testTokenizer)
	if err != nil {
		t.Fatal(err)
	}
	r, err := newSugarRef(raw, chunkBytes, opts...)
	if err != nil {
		t.Fatalf("sugarme reference: %v", err)
	}
	return r
}

// loadSugarme loads sugarme's pipeline. sugarme asserts JSON types without
// checking; its panics become errors.
func loadSugarme(raw []byte) (tk *sugar.Tokenizer, err error) {
	defer func() {
		if r := recover(); r != nil {
			tk, err = nil, fmt.Errorf("%w: sugarme panicked while loading: %v", ErrTokenizer, r)
		}
	}()
	tk, err = pretrained.FromReader(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("%w: sugarme load: %w", ErrTokenizer, err)
	}
	return tk, nil
}

func (r *sugarRef) UnkID() int64   { return r.tk.UnkID() }
func (r *sugarRef) VocabSize() int { return r.tk.VocabSize() }

// Encode is Tokenizer.Encode through sugarme's pipeline.
func (r *sugarRef) Encode(text string) ([]int64, error) {
	c, err := r.tk.clean(text)
	if err != nil {
		return nil, err
	}
	ids := make([]int64, 0, len(c)/4+1)
	err = r.chunks(c, func(piece string, single bool) error {
		if single && utf8.RuneCountInString(piece) > r.tk.maxChars {
			// One over-long word is one [UNK]; no need to hand sugarme
			// megabytes of it.
			ids = append(ids, r.tk.unkID)
			return nil
		}
		got, err := r.encodeRaw(piece)
		if err != nil {
			return err
		}
		for _, id := range got {
			ids = append(ids, int64(id))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return ids, nil
}

// encodeRaw runs sugarme on already cleaned text in one call, turning panics
// into errors.
func (r *sugarRef) encodeRaw(s string) (ids []int, err error) {
	defer func() {
		if p := recover(); p != nil {
			ids, err = nil, fmt.Errorf("%w: sugarme panicked: %v", ErrTokenizer, p)
		}
	}()
	enc, err := r.sugar.EncodeSingle(s, false)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrTokenizer, err)
	}
	return enc.Ids, nil
}

// isSugarPunct is sugarme's own view of punctuation (Go's Unicode tables).
func isSugarPunct(r rune) bool { return unicode.In(r, asciiPunct, unicode.P) }

// isSugarBoundary is isBoundary as sugarme's pre-tokenizers see it; the
// pipeline's chunks must be cut where sugarme splits.
func (r *sugarRef) isSugarBoundary(c rune) bool {
	return isSugarPunct(c) || (r.tk.pretok == PreTokSequence && unicode.IsNumber(c))
}

// chunks cuts cleaned text into pieces of at most chunkBytes at pre-token
// boundaries (spaces first, then around punctuation or digits), so that
// encoding the pieces one by one and concatenating gives the ids of the whole
// text. A piece longer than chunkBytes is a single pre-token (single=true).
func (r *sugarRef) chunks(s string, fn func(piece string, single bool) error) error {
	limit := r.chunkBytes
	for len(s) > limit {
		if i := strings.LastIndexByte(s[:limit+1], ' '); i > 0 {
			if err := fn(s[:i], false); err != nil {
				return err
			}
			s = s[i+1:]
			continue
		}
		if p := r.lastCut(s, limit); p > 0 {
			if err := fn(s[:p], false); err != nil {
				return err
			}
			s = s[p:]
			continue
		}
		end := r.wordEnd(s)
		if err := fn(s[:end], true); err != nil {
			return err
		}
		s = strings.TrimPrefix(s[end:], " ")
	}
	if s == "" {
		return nil
	}
	return fn(s, false)
}

// lastCut returns the last position p in (0, limit] where s can be cut
// between two runes one of which is a boundary rune, or 0. len(s) > limit.
func (r *sugarRef) lastCut(s string, limit int) int {
	p := limit
	for p > 0 && !utf8.RuneStart(s[p]) {
		p--
	}
	for p > 0 {
		c, _ := utf8.DecodeRuneInString(s[p:])
		prev, n := utf8.DecodeLastRuneInString(s[:p])
		if r.isSugarBoundary(c) || r.isSugarBoundary(prev) {
			return p
		}
		p -= n
	}
	return 0
}

// wordEnd returns the end of the pre-token that starts s: the first space or
// boundary rune after the first rune.
func (r *sugarRef) wordEnd(s string) int {
	_, n := utf8.DecodeRuneInString(s)
	for i := n; i < len(s); {
		c, w := utf8.DecodeRuneInString(s[i:])
		if c == ' ' || r.isSugarBoundary(c) {
			return i
		}
		i += w
	}
	return len(s)
}
