package tokenize

import (
	"bufio"
	"container/heap"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode/utf8"
)

// Special tokens, always first in the vocabulary.
const (
	PadToken = "[PAD]"
	UnkToken = "[UNK]"
	PadID    = 0
	UnkID    = 1

	continuation = "##"
	// maxInputCharsPerWord is written to tokenizer.json; longer words are
	// one [UNK] in HF and sugarme alike, so the builder does not learn them.
	maxInputCharsPerWord = 100
)

// ErrVocabOptions reports invalid VocabOptions.
var ErrVocabOptions = errors.New("tokenize: invalid vocab options")

// VocabOptions configures BuildVocab.
type VocabOptions struct {
	// Size is the total vocabulary size, special tokens and alphabet
	// included. It must hold at least the alphabet (≈ 4,900 entries).
	Size int
	// MinFreq is the minimum count for a character outside the fixed
	// alphabet to enter it, and for a pair to be merged. 0 means 2.
	MinFreq int
	// Normalizer is the text normalizer the tokenizer will apply
	// (WithNormalizer), so that words are counted as the model will see them.
	Normalizer string
}

// Vocab is a WordPiece vocabulary: tokens in id order.
type Vocab struct {
	tokens   []string
	alphabet int // number of leading entries that are specials + alphabet
}

// Tokens returns the tokens in id order.
func (v *Vocab) Tokens() []string { return slices.Clone(v.tokens) }

// Size is the number of tokens.
func (v *Vocab) Size() int { return len(v.tokens) }

// AlphabetSize is the number of special and single-character tokens, i.e.
// where learned subwords start.
func (v *Vocab) AlphabetSize() int { return v.alphabet }

// BuildVocab learns a WordPiece vocabulary from texts. It is deterministic:
// the same texts and options give the same vocabulary, whatever the order
// of map iteration or the number of CPUs.
//
// Texts are cleaned and pre-tokenized exactly like Tokenizer.Encode does with
// the tokenizer.json that WriteTokenizerJSON writes. The alphabet always holds
// the 2,350 KS X 1001 Hangul syllables and the ASCII letters (word-initial and
// "##" forms), ASCII digits and punctuation, and every other character seen
// at least MinFreq times. Subwords are then learned by BPE-style merges on
// word counts (highest count first, ties broken by the lexicographic order of
// the pair), each merge becoming a WordPiece token: word-initial pieces plain,
// continuations with "##".
func BuildVocab(texts []string, opt VocabOptions) (*Vocab, error) {
	return BuildVocabContext(context.Background(), texts, opt)
}

// BuildVocabContext is BuildVocab that stops early when ctx is done.
func BuildVocabContext(ctx context.Context, texts []string, opt VocabOptions) (*Vocab, error) {
	if opt.MinFreq == 0 {
		opt.MinFreq = 2
	}
	if opt.MinFreq < 0 || opt.Size <= 0 {
		return nil, fmt.Errorf("%w: size %d, min freq %d", ErrVocabOptions, opt.Size, opt.MinFreq)
	}

	if !KnownNormalizer(opt.Normalizer) {
		return nil, fmt.Errorf("%w: unknown text normalizer %q", ErrVocabOptions, opt.Normalizer)
	}
	counts := make(map[string]int)
	polite := opt.Normalizer == NormalizerPoliteEndings
	for _, text := range texts {
		preTokenize(Clean(text), func(w string) {
			if polite {
				w = PoliteEndings(w)
			}
			counts[w]++
		})
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	b := newVocabBuilder()
	b.add(PadToken)
	b.add(UnkToken)
	for _, tok := range alphabet(counts, opt.MinFreq) {
		b.add(tok)
	}
	if len(b.tokens) > opt.Size {
		return nil, fmt.Errorf("%w: size %d is below the alphabet (%d tokens with specials)", ErrVocabOptions, opt.Size, len(b.tokens))
	}
	alphabetSize := len(b.tokens)
	if err := b.learn(ctx, counts, opt); err != nil {
		return nil, err
	}
	return &Vocab{tokens: b.tokens, alphabet: alphabetSize}, nil
}

// alphabet returns the single-character tokens, sorted: plain forms by code
// point, then "##" forms by code point.
func alphabet(counts map[string]int, minFreq int) []string {
	plain := make(map[rune]bool)
	cont := make(map[rune]bool)
	both := func(r rune) { plain[r], cont[r] = true, true }
	for _, r := range Hangul2350() {
		both(r)
	}
	for r := rune(0x21); r <= 0x7e; r++ {
		if isDigit(r) || isPunct(r) {
			plain[r] = true // always a word of its own, never a continuation
		} else {
			both(r)
		}
	}
	chars := make(map[rune]int)
	for w, n := range counts {
		for _, r := range w {
			chars[r] += n
		}
	}
	for r, n := range chars {
		if n < minFreq {
			continue
		}
		if isDigit(r) || isPunct(r) {
			plain[r] = true
		} else {
			both(r)
		}
	}
	ps := sortedRunes(plain)
	cs := sortedRunes(cont)
	out := make([]string, 0, len(ps)+len(cs))
	for _, r := range ps {
		out = append(out, string(r))
	}
	for _, r := range cs {
		out = append(out, continuation+string(r))
	}
	return out
}

func sortedRunes(m map[rune]bool) []rune {
	out := make([]rune, 0, len(m))
	for r := range m {
		out = append(out, r)
	}
	slices.Sort(out)
	return out
}

// vocabBuilder holds the growing vocabulary and the BPE state.
type vocabBuilder struct {
	tokens []string
	seen   map[string]bool

	// symbols interns symbol strings (plain or "##"-prefixed) to ints.
	symbols []string
	symID   map[string]int

	words []bpeWord
	pairs map[pair]*pairStat
	queue pairHeap
}

type bpeWord struct {
	syms []int
	freq int
}

type pair struct{ left, right int }

type pairStat struct {
	count int
	words map[int]struct{} // indices of words that contain the pair
}

func newVocabBuilder() *vocabBuilder {
	return &vocabBuilder{seen: make(map[string]bool), symID: make(map[string]int), pairs: make(map[pair]*pairStat)}
}

func (b *vocabBuilder) add(tok string) {
	if !b.seen[tok] {
		b.seen[tok] = true
		b.tokens = append(b.tokens, tok)
	}
}

func (b *vocabBuilder) intern(s string) int {
	if id, ok := b.symID[s]; ok {
		return id
	}
	id := len(b.symbols)
	b.symbols = append(b.symbols, s)
	b.symID[s] = id
	return id
}

// learn runs the merges until the vocabulary is full or no pair occurs
// MinFreq times.
func (b *vocabBuilder) learn(ctx context.Context, counts map[string]int, opt VocabOptions) error {
	// Sorted words make symbol ids, and so everything after, independent of
	// map order.
	words := make([]string, 0, len(counts))
	for w := range counts {
		words = append(words, w)
	}
	slices.Sort(words)
	for _, w := range words {
		if utf8.RuneCountInString(w) < 2 || utf8.RuneCountInString(w) > maxInputCharsPerWord {
			continue
		}
		syms := make([]int, 0, len(w))
		ok := true
		first := true
		for _, r := range w {
			s := string(r)
			if !first {
				s = continuation + s
			}
			first = false
			if !b.seen[s] {
				ok = false // the word will be [UNK]; its pairs teach nothing
				break
			}
			syms = append(syms, b.intern(s))
		}
		if ok {
			b.words = append(b.words, bpeWord{syms: syms, freq: counts[w]})
		}
	}
	for i := range b.words {
		b.addPairs(i)
	}
	for p, st := range b.pairs {
		b.push(p, st.count)
	}

	for n := 0; len(b.tokens) < opt.Size; n++ {
		if n%256 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		p, ok := b.best()
		if !ok || b.pairs[p].count < opt.MinFreq {
			break
		}
		merged := b.symbols[p.left] + strings.TrimPrefix(b.symbols[p.right], continuation)
		b.add(merged)
		b.merge(p, b.intern(merged))
	}
	return nil
}

// addPairs counts the adjacent pairs of word i (sign +1) into b.pairs.
func (b *vocabBuilder) addPairs(i int) { b.countPairs(i, +1) }

func (b *vocabBuilder) countPairs(i, sign int) []pair {
	w := b.words[i]
	var touched []pair
	for k := 0; k+1 < len(w.syms); k++ {
		p := pair{w.syms[k], w.syms[k+1]}
		st := b.pairs[p]
		if st == nil {
			st = &pairStat{words: make(map[int]struct{})}
			b.pairs[p] = st
		}
		st.count += sign * w.freq
		if sign > 0 {
			st.words[i] = struct{}{}
		}
		touched = append(touched, p)
	}
	return touched
}

// merge replaces every occurrence of p by sym and updates the pair counts.
func (b *vocabBuilder) merge(p pair, sym int) {
	st := b.pairs[p]
	idx := make([]int, 0, len(st.words))
	for i := range st.words {
		idx = append(idx, i)
	}
	slices.Sort(idx) // deterministic order of heap pushes
	changed := make(map[pair]bool)
	for _, i := range idx {
		for _, q := range b.countPairs(i, -1) {
			changed[q] = true
			delete(b.pairs[q].words, i)
		}
		w := &b.words[i]
		out := w.syms[:0]
		for k := 0; k < len(w.syms); k++ {
			if k+1 < len(w.syms) && w.syms[k] == p.left && w.syms[k+1] == p.right {
				out = append(out, sym)
				k++
				continue
			}
			out = append(out, w.syms[k])
		}
		w.syms = out
		for _, q := range b.countPairs(i, +1) {
			changed[q] = true
		}
	}
	keys := make([]pair, 0, len(changed))
	for q := range changed {
		keys = append(keys, q)
	}
	slices.SortFunc(keys, func(a, c pair) int {
		if a.left != c.left {
			return a.left - c.left
		}
		return a.right - c.right
	})
	for _, q := range keys {
		if st := b.pairs[q]; st.count <= 0 {
			delete(b.pairs, q)
		} else {
			b.push(q, st.count)
		}
	}
}

func (b *vocabBuilder) push(p pair, count int) {
	heap.Push(&b.queue, heapEntry{count: count, p: p, left: b.symbols[p.left], right: b.symbols[p.right]})
}

// best pops the pair with the highest current count, skipping stale entries.
func (b *vocabBuilder) best() (pair, bool) {
	for b.queue.Len() > 0 {
		e := heap.Pop(&b.queue).(heapEntry)
		if st, ok := b.pairs[e.p]; ok && st.count == e.count {
			return e.p, true
		}
	}
	return pair{}, false
}

type heapEntry struct {
	count       int
	p           pair
	left, right string
}

// pairHeap orders by count descending, then by the pair's strings ascending.
type pairHeap []heapEntry

func (h pairHeap) Len() int { return len(h) }
func (h pairHeap) Less(i, j int) bool {
	if h[i].count != h[j].count {
		return h[i].count > h[j].count
	}
	if h[i].left != h[j].left {
		return h[i].left < h[j].left
	}
	return h[i].right < h[j].right
}
func (h pairHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *pairHeap) Push(x any)   { *h = append(*h, x.(heapEntry)) }
func (h *pairHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

// WriteTokenizerJSON writes the vocabulary as an HF tokenizer.json that both
// sugarme and the Rust tokenizers library load: normalizer NFC, pre-tokenizer
// Sequence[WhitespaceSplit, Digits(individual_digits), Punctuation(Isolated)],
// WordPiece model and decoder, no added tokens, post-processor, padding or
// truncation. The output is byte-identical for identical vocabularies.
func (v *Vocab) WriteTokenizerJSON(w io.Writer) error {
	bw := bufio.NewWriter(w)
	bw.WriteString(`{
  "version": "1.0",
  "truncation": null,
  "padding": null,
  "added_tokens": [],
  "normalizer": {"type": "NFC"},
  "pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": "WhitespaceSplit"}, {"type": "Digits", "individual_digits": true}, {"type": "Punctuation", "behavior": "Isolated"}]},
  "post_processor": null,
  "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": true},
  "model": {
    "type": "WordPiece",
    "unk_token": "[UNK]",
    "continuing_subword_prefix": "##",
    "max_input_chars_per_word": `)
	fmt.Fprintf(bw, "%d,\n    \"vocab\": {", maxInputCharsPerWord)
	for id, tok := range v.tokens {
		key, err := marshalString(tok)
		if err != nil {
			return fmt.Errorf("tokenize: write vocab token %d: %w", id, err)
		}
		sep := ","
		if id == 0 {
			sep = ""
		}
		fmt.Fprintf(bw, "%s\n      %s: %d", sep, key, id)
	}
	bw.WriteString("\n    }\n  }\n}\n")
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("tokenize: write tokenizer.json: %w", err)
	}
	return nil
}

// marshalString is json.Marshal without HTML escaping, for readable files.
func marshalString(s string) (string, error) {
	var sb strings.Builder
	enc := json.NewEncoder(&sb)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		return "", err
	}
	return strings.TrimSuffix(sb.String(), "\n"), nil
}
