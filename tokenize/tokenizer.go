package tokenize

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"
)

// Errors callers branch on. Wrapped errors carry the details.
var (
	// ErrEmpty: the text is empty after cleaning.
	ErrEmpty = errors.New("tokenize: empty text after cleaning")
	// ErrTooLong: the cleaned text exceeds the configured byte cap.
	ErrTooLong = errors.New("tokenize: text too long")
	// ErrTokenizer: the underlying tokenizer failed or panicked.
	ErrTokenizer = errors.New("tokenize: tokenizer failure")
	// ErrUnsupported: a tokenizer.json uses a component this package refuses.
	ErrUnsupported = errors.New("tokenize: unsupported tokenizer configuration")
)

// DefaultMaxBytes caps cleaned text per Encode call.
const DefaultMaxBytes = 8 << 20

// Option configures a Tokenizer.
type Option func(*options)

type options struct {
	maxBytes   int
	normalizer string
}

// WithNormalizer applies the named text normalizer (card.json's
// "text_normalizer"; "" for none) to every word before WordPiece. An unknown
// name fails LoadBytes with ErrUnsupported.
func WithNormalizer(name string) Option {
	return func(o *options) { o.normalizer = name }
}

// WithMaxBytes sets the cap on cleaned text per Encode call (default
// DefaultMaxBytes). Longer text fails with ErrTooLong. n <= 0 keeps the default.
func WithMaxBytes(n int) Option {
	return func(o *options) {
		if n > 0 {
			o.maxBytes = n
		}
	}
}

// PreTokenizerKind says which of the two supported pre-tokenizers a file uses.
type PreTokenizerKind int

const (
	// PreTokBert is BertPreTokenizer: split on whitespace and punctuation.
	PreTokBert PreTokenizerKind = iota + 1
	// PreTokSequence is Sequence[WhitespaceSplit, Digits(individual_digits),
	// Punctuation(Isolated)], what WriteTokenizerJSON writes.
	PreTokSequence
)

// Tokenizer encodes cleaned text into WordPiece ids. It is safe for
// concurrent use.
type Tokenizer struct {
	opts     options
	vocab    map[string]int64
	inverse  []string
	unkID    int64
	maxChars int
	pretok   PreTokenizerKind
	pieces   *pieceIndex
	words    wordCache
	polite   bool // opts.normalizer is polite-endings (read per word)
}

// Load reads and validates an HF tokenizer.json file.
func Load(path string, opts ...Option) (*Tokenizer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tokenize: load: %w", err)
	}
	t, err := LoadBytes(b, opts...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// hfConfig is the subset of tokenizer.json that is validated before the
// vocab is used. Fields left as RawMessage are checked for null.
type hfConfig struct {
	Truncation    json.RawMessage `json:"truncation"`
	Padding       json.RawMessage `json:"padding"`
	AddedTokens   json.RawMessage `json:"added_tokens"`
	Normalizer    json.RawMessage `json:"normalizer"`
	PreTokenizer  json.RawMessage `json:"pre_tokenizer"`
	PostProcessor json.RawMessage `json:"post_processor"`
	Model         json.RawMessage `json:"model"`
}

type hfModel struct {
	Type                    string          `json:"type"`
	UnkToken                *string         `json:"unk_token"`
	ContinuingSubwordPrefix *string         `json:"continuing_subword_prefix"`
	MaxInputCharsPerWord    *int            `json:"max_input_chars_per_word"`
	Vocab                   map[string]int  `json:"vocab"`
	Merges                  json.RawMessage `json:"merges"`
}

type hfComponent struct {
	Type             string        `json:"type"`
	Behavior         string        `json:"behavior"`
	IndividualDigits *bool         `json:"individual_digits"`
	PreTokenizers    []hfComponent `json:"pretokenizers"`
}

func isNull(m json.RawMessage) bool {
	m = bytes.TrimSpace(m)
	return len(m) == 0 || bytes.Equal(m, []byte("null"))
}

func unsupported(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrUnsupported, fmt.Sprintf(format, args...))
}

// LoadBytes parses an HF tokenizer.json. It accepts only configurations that
// give the same ids here, in sugarme and in the Rust HF library (each refusal
// below says why the component is unsafe): a WordPiece model with "##"
// continuation, normalizer NFC or null, pre-tokenizer BertPreTokenizer or
// Sequence[WhitespaceSplit, Digits(individual_digits=true),
// Punctuation(Isolated)], and no added tokens, post-processor, padding or
// truncation. Anything else fails with an error wrapping ErrUnsupported that
// names the component.
func LoadBytes(b []byte, opts ...Option) (t *Tokenizer, err error) {
	var cfg hfConfig
	if err := json.Unmarshal(b, &cfg); err != nil {
		return nil, fmt.Errorf("tokenize: parse tokenizer.json: %w", err)
	}
	t = &Tokenizer{opts: options{maxBytes: DefaultMaxBytes}}
	for _, o := range opts {
		o(&t.opts)
	}
	if !KnownNormalizer(t.opts.normalizer) {
		return nil, unsupported("text normalizer %q (this build knows %q); use a callwatch as new as the model", t.opts.normalizer, normalizers)
	}
	t.polite = t.opts.normalizer == NormalizerPoliteEndings

	// Components that change ids in ways this package does not model.
	if !isNull(cfg.Truncation) {
		return nil, unsupported("truncation must be null (ids are never truncated here)")
	}
	if !isNull(cfg.Padding) {
		return nil, unsupported("padding must be null (sugarme panics on left padding; pad in the caller)")
	}
	if !isNull(cfg.AddedTokens) && !bytes.Equal(bytes.TrimSpace(cfg.AddedTokens), []byte("[]")) {
		return nil, unsupported("added_tokens must be empty (special-token matching in raw text is not verified against HF)")
	}
	if !isNull(cfg.PostProcessor) {
		return nil, unsupported("post_processor must be null (no special tokens are added)")
	}

	// Normalizer: NFC is a no-op after Clean; anything else is unsafe.
	if !isNull(cfg.Normalizer) {
		var n hfComponent
		if err := json.Unmarshal(cfg.Normalizer, &n); err != nil {
			return nil, fmt.Errorf("tokenize: parse normalizer: %w", err)
		}
		if n.Type != "NFC" {
			return nil, unsupported("normalizer %q (only NFC or null; BertNormalizer/NFKC/NFKD/Lowercase break Korean or panic in sugarme)", n.Type)
		}
	}

	if isNull(cfg.PreTokenizer) {
		return nil, unsupported("pre_tokenizer null (need BertPreTokenizer or Sequence[WhitespaceSplit, Digits, Punctuation])")
	}
	var p hfComponent
	if err := json.Unmarshal(cfg.PreTokenizer, &p); err != nil {
		return nil, fmt.Errorf("tokenize: parse pre_tokenizer: %w", err)
	}
	if t.pretok, err = checkPreTokenizer(p); err != nil {
		return nil, err
	}

	if isNull(cfg.Model) {
		return nil, unsupported("model missing")
	}
	var mt struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(cfg.Model, &mt); err != nil {
		return nil, fmt.Errorf("tokenize: parse model: %w", err)
	}
	if mt.Type != "WordPiece" {
		return nil, unsupported("model type %q (only WordPiece; sugarme's Unigram and prefixed BPE disagree with HF)", mt.Type)
	}
	var m hfModel
	if err := json.Unmarshal(cfg.Model, &m); err != nil {
		return nil, fmt.Errorf("tokenize: parse model: %w", err)
	}
	if err := t.setModel(m); err != nil {
		return nil, err
	}
	return t, nil
}

func checkPreTokenizer(p hfComponent) (PreTokenizerKind, error) {
	switch p.Type {
	case "BertPreTokenizer":
		return PreTokBert, nil
	case "Sequence":
		want := "Sequence[WhitespaceSplit, Digits(individual_digits=true), Punctuation(behavior=Isolated)]"
		ps := p.PreTokenizers
		if len(ps) != 3 {
			return 0, unsupported("pre_tokenizer Sequence of %d parts (only %s)", len(ps), want)
		}
		if ps[0].Type != "WhitespaceSplit" {
			return 0, unsupported("pre_tokenizer Sequence part 1 %q (only %s)", ps[0].Type, want)
		}
		if ps[1].Type != "Digits" || ps[1].IndividualDigits == nil || !*ps[1].IndividualDigits {
			return 0, unsupported("pre_tokenizer Sequence part 2 %q without individual_digits=true (only %s)", ps[1].Type, want)
		}
		if ps[2].Type != "Punctuation" || ps[2].Behavior != "Isolated" {
			return 0, unsupported("pre_tokenizer Sequence part 3 %q behavior %q (only %s)", ps[2].Type, ps[2].Behavior, want)
		}
		return PreTokSequence, nil
	default:
		return 0, unsupported("pre_tokenizer %q (only BertPreTokenizer or Sequence[WhitespaceSplit, Digits, Punctuation])", p.Type)
	}
}

func (t *Tokenizer) setModel(m hfModel) error {
	if m.Type != "WordPiece" {
		return unsupported("model type %q (only WordPiece; sugarme's Unigram and prefixed BPE disagree with HF)", m.Type)
	}
	// sugarme ignores continuing_subword_prefix and always uses "##".
	if m.ContinuingSubwordPrefix != nil && *m.ContinuingSubwordPrefix != "##" {
		return unsupported("WordPiece continuing_subword_prefix %q (sugarme only honours \"##\")", *m.ContinuingSubwordPrefix)
	}
	if m.UnkToken == nil {
		return unsupported("WordPiece without unk_token")
	}
	if len(m.Vocab) == 0 {
		return unsupported("WordPiece with empty vocab")
	}
	t.maxChars = 100 // HF's default
	if m.MaxInputCharsPerWord != nil {
		if *m.MaxInputCharsPerWord <= 0 {
			return unsupported("WordPiece max_input_chars_per_word %d", *m.MaxInputCharsPerWord)
		}
		t.maxChars = *m.MaxInputCharsPerWord
	}
	t.vocab = make(map[string]int64, len(m.Vocab))
	t.pieces = &pieceIndex{}
	t.inverse = make([]string, len(m.Vocab))
	for tok, id := range m.Vocab {
		if id < 0 || id >= len(m.Vocab) || t.inverse[id] != "" {
			return unsupported("WordPiece vocab ids must be a permutation of 0..%d (token %q has id %d)", len(m.Vocab)-1, tok, id)
		}
		if tok == "" {
			return unsupported("WordPiece vocab has an empty token")
		}
		t.inverse[id] = tok
		t.vocab[tok] = int64(id)
		t.pieces.add(tok)
	}
	unk, ok := t.vocab[*m.UnkToken]
	if !ok {
		return unsupported("unk_token %q is not in the vocab", *m.UnkToken)
	}
	t.unkID = unk
	return nil
}

// VocabSize is the number of tokens in the vocabulary.
func (t *Tokenizer) VocabSize() int { return len(t.inverse) }

// UnkID is the id of the unknown token.
func (t *Tokenizer) UnkID() int64 { return t.unkID }

// IDToToken returns the token for id.
func (t *Tokenizer) IDToToken(id int64) (string, bool) {
	if id < 0 || id >= int64(len(t.inverse)) {
		return "", false
	}
	return t.inverse[id], true
}

// TokenToID returns the id of a vocabulary token.
func (t *Tokenizer) TokenToID(tok string) (int64, bool) {
	id, ok := t.vocab[tok]
	return id, ok
}

// PreTokenizer reports which supported pre-tokenizer the file uses.
func (t *Tokenizer) PreTokenizer() PreTokenizerKind { return t.pretok }

// Encode cleans text and returns its token ids, without special tokens.
// It fails with ErrEmpty, ErrTooLong or ErrTokenizer (all wrapped).
func (t *Tokenizer) Encode(text string) ([]int64, error) {
	c, err := t.clean(text)
	if err != nil {
		return nil, err
	}
	return t.encodeWords(c), nil
}

// clean is Encode's first half: Clean, then the empty and length checks.
func (t *Tokenizer) clean(text string) (string, error) {
	c := Clean(text)
	if c == "" {
		return "", ErrEmpty
	}
	if len(c) > t.opts.maxBytes {
		return "", fmt.Errorf("%w: %d bytes after cleaning, limit %d", ErrTooLong, len(c), t.opts.maxBytes)
	}
	return c, nil
}

// encodeWords is the fast path: Go splits cleaned text into pre-tokens exactly
// like the configured pre-tokenizer (NFC is already done by Clean), and
// wordPiece tokenizes each word over the vocab sugarme's loader would use.
// This skips sugarme's NormalizedString alignment bookkeeping and its
// per-token allocations, where most of its time and memory go.
func (t *Tokenizer) encodeWords(c string) []int64 {
	ids := make([]int64, 0, len(c)/4+1)
	var scratch [128]byte
	buf := scratch[:0]
	splitWords(c, t.isBoundary, func(w string) {
		if t.polite && politeCandidate(w) {
			// Cached under the word as written (the cache maps a word to
			// the ids of its normalized form), so a formal word costs one
			// lookup and no allocation once seen.
			if cached, ok := t.words.get(w); ok {
				ids = append(ids, cached...)
				return
			}
			nw := PoliteEndings(w)
			n := len(ids)
			if id, ok := t.vocab[nw]; ok {
				ids = append(ids, id)
			} else {
				ids, buf = t.wordPiece(ids, nw, buf)
			}
			t.words.put(w, ids[n:])
			return
		}
		if id, ok := t.vocab[w]; ok {
			ids = append(ids, id)
			return
		}
		if cached, ok := t.words.get(w); ok {
			ids = append(ids, cached...)
			return
		}
		n := len(ids)
		ids, buf = t.wordPiece(ids, w, buf)
		t.words.put(w, ids[n:])
	})
	return ids
}

// wordCacheMax bounds the word cache. Call transcripts reuse a small set of
// split surface forms (stem + particle), so the first entries seen cover most
// later words; once full the cache stops growing (no eviction, so reads stay
// lock-free). 16k entries hold ~2 MB; 64k held ~9 MB for no measurable speed.
const wordCacheMax = 1 << 14

// wordCache maps a pre-token that is not itself a vocab entry to its
// WordPiece ids. WordPiece is a pure function of the word, so cached ids are
// exactly what wordPiece returns; a hit costs one lookup instead of one per
// candidate piece.
type wordCache struct {
	m sync.Map // string -> []int64 (never mutated after Store)
	n atomic.Int64
}

func (c *wordCache) get(w string) ([]int64, bool) {
	v, ok := c.m.Load(w)
	if !ok {
		return nil, false
	}
	return v.([]int64), true
}

func (c *wordCache) put(w string, ids []int64) {
	if c.n.Load() >= wordCacheMax {
		return
	}
	// Clone both: w points into the caller's text and ids into its result.
	if _, loaded := c.m.LoadOrStore(strings.Clone(w), slices.Clone(ids)); !loaded {
		c.n.Add(1)
	}
}

// wordPiece appends the ids of one pre-token: greedy longest-match-first,
// the algorithm of sugarme's and HF's WordPiece.Tokenize (a word longer than
// maxChars, or with a piece not in the vocab, is one [UNK]). It works on
// byte offsets of rune boundaries, which is the same on valid UTF-8 (Clean's
// output), and does not allocate: map lookups on string(bytes) don't copy,
// and buf holds "##" + the rest of the word for continuation pieces.
func (t *Tokenizer) wordPiece(ids []int64, w string, buf []byte) ([]int64, []byte) {
	if len(w) > t.maxChars && utf8.RuneCountInString(w) > t.maxChars {
		return append(ids, t.unkID), buf
	}
	if t.pieces.long {
		return t.wordPieceUnindexed(ids, w, buf)
	}
	n0 := len(ids)
	var ends [maxIndexedRunes]int
	for start := 0; start < len(w); {
		cont := start > 0
		if cont {
			buf = append(append(buf[:0], "##"...), w[start:]...)
		}
		// Candidate ends, one per rune, up to the longest piece in the vocab.
		n := 0
		for e := start; e < len(w) && n < t.pieces.maxRunes; n++ {
			e += runeLen[w[e]>>4] // w is valid UTF-8 (Clean's output)
			ends[n] = e
		}
		// Only lengths some piece starting with this rune has are looked up.
		r, _ := utf8.DecodeRuneInString(w[start:])
		mask := t.pieces.lengths(r, cont)
		found := false
		for k := n - 1; k >= 0; k-- {
			if mask&(1<<k) == 0 {
				continue
			}
			end := ends[k]
			var id int64
			var ok bool
			if cont {
				id, ok = t.vocab[string(buf[:2+end-start])]
			} else {
				id, ok = t.vocab[w[:end]]
			}
			if ok {
				ids = append(ids, id)
				found = true
				start = end
				break
			}
		}
		if !found {
			return append(ids[:n0], t.unkID), buf
		}
	}
	return ids, buf
}

// wordPieceUnindexed is wordPiece without the piece-length index, for vocabs
// with an entry longer than maxIndexedRunes: every candidate end, longest
// first, one rune at a time.
func (t *Tokenizer) wordPieceUnindexed(ids []int64, w string, buf []byte) ([]int64, []byte) {
	n0 := len(ids)
	for start := 0; start < len(w); {
		if start > 0 {
			buf = append(append(buf[:0], "##"...), w[start:]...)
		}
		found := false
		for end := len(w); end > start; {
			var id int64
			var ok bool
			if start > 0 {
				id, ok = t.vocab[string(buf[:2+end-start])]
			} else {
				id, ok = t.vocab[w[:end]]
			}
			if ok {
				ids = append(ids, id)
				found, start = true, end
				break
			}
			_, size := utf8.DecodeLastRuneInString(w[start:end])
			end -= size
		}
		if !found {
			return append(ids[:n0], t.unkID), buf
		}
	}
	return ids, buf
}

// runeLen is the length of a UTF-8 sequence by the high nibble of its first
// byte (continuation nibbles 8–B never start one in valid UTF-8).
var runeLen = [16]int{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4}

// maxIndexedRunes bounds pieceIndex: a vocab with a longer entry is
// tokenized without the index (WordPiece vocabs for STT text have entries of
// a few syllables; HF's English vocabs of at most a few dozen characters).
const maxIndexedRunes = 64

// pieceIndex records, for each rune, which lengths (in runes) the vocab's
// pieces starting with that rune have, separately for word-initial pieces and
// "##" continuations. Greedy longest-match then skips every lookup that cannot
// succeed, which is most of them for Korean eojeols (stem + particle).
type pieceIndex struct {
	long     bool // some entry is longer than maxIndexedRunes: index unused
	maxRunes int
	hangul   [2][hangulCount]uint64 // [cont][syllable - 가]
	other    [2]map[rune]uint64
}

const hangulCount = 0xD7A4 - 0xAC00

func (p *pieceIndex) lengths(r rune, cont bool) uint64 {
	c := 0
	if cont {
		c = 1
	}
	if r >= 0xAC00 && r < 0xD7A4 {
		return p.hangul[c][r-0xAC00]
	}
	return p.other[c][r]
}

func (p *pieceIndex) add(tok string) {
	c := 0
	if rest, ok := strings.CutPrefix(tok, "##"); ok && rest != "" {
		tok, c = rest, 1
	}
	n := utf8.RuneCountInString(tok)
	if n > maxIndexedRunes {
		p.long = true
		return
	}
	p.maxRunes = max(p.maxRunes, n)
	r, _ := utf8.DecodeRuneInString(tok)
	bit := uint64(1) << (n - 1)
	if r >= 0xAC00 && r < 0xD7A4 {
		p.hangul[c][r-0xAC00] |= bit
		return
	}
	if p.other[c] == nil {
		p.other[c] = map[rune]uint64{}
	}
	p.other[c][r] |= bit
}

// EncodeBatch encodes texts in parallel. ids[i] and errs[i] belong to
// texts[i]; errs[i] is nil on success.
func (t *Tokenizer) EncodeBatch(texts []string) ([][]int64, []error) {
	ids := make([][]int64, len(texts))
	errs := make([]error, len(texts))
	workers := min(runtime.GOMAXPROCS(0), len(texts))
	var wg sync.WaitGroup
	next := make(chan int)
	for range workers {
		wg.Go(func() {
			for i := range next {
				ids[i], errs[i] = t.Encode(texts[i])
			}
		})
	}
	for i := range texts {
		next <- i
	}
	close(next)
	wg.Wait()
	return ids, errs
}

// isBoundary reports whether r is always a pre-token of its own in HF, so
// that text can be cut right before or after it without changing the ids.
func (t *Tokenizer) isBoundary(r rune) bool {
	switch {
	case r < 0x80: // fast paths for the bulk of the text; same answers
		return isASCIIPunct(r) || (t.pretok == PreTokSequence && '0' <= r && r <= '9')
	case r >= 0xAC00 && r <= 0xD7A3: // Hangul syllables (Lo)
		return false
	}
	return isPunct(r) || (t.pretok == PreTokSequence && isDigit(r))
}

// isASCIIPunct is asciiPunct without the table search.
func isASCIIPunct(r rune) bool {
	return ('!' <= r && r <= '/') || (':' <= r && r <= '@') || ('[' <= r && r <= '`') || ('{' <= r && r <= '~')
}
