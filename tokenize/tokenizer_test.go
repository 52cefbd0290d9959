package tokenize

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"unicode"

	"github.com/sugarme/tokenizer/model"
	"github.com/sugarme/tokenizer/model/wordpiece"
)

var update = flag.Bool("update", false, "regenerate testdata/tokenizer.json and golden_ids.jsonl (runs scripts/tokgolden/regen.sh; needs node and npm)")

const testTokenizer = "testdata/tokenizer.json"

func loadTest(t testing.TB, opts ...Option) *Tokenizer {
	t.Helper()
	tk, err := Load(testTokenizer, opts...)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return tk
}

type goldenRecord struct {
	Raw    *string `json:"raw"`
	RawB64 *string `json:"raw_b64"`
	Clean  string  `json:"clean"`
	IDs    []int64 `json:"ids"`
}

func (g goldenRecord) raw(t testing.TB) string {
	switch {
	case g.Raw != nil:
		return *g.Raw
	case g.RawB64 != nil:
		b, err := base64.StdEncoding.DecodeString(*g.RawB64)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	t.Fatal("golden record without raw or raw_b64")
	return ""
}

func readGolden(t testing.TB, path string) []goldenRecord {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []goldenRecord
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var g goldenRecord
		if err := json.Unmarshal(sc.Bytes(), &g); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, g)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestGoldenIDs checks Clean and Encode against ids produced by the Rust HF
// tokenizers library (scripts/tokgolden). No tolerance: every line must match.
// CALLWATCH_GOLDEN_TOKENIZER and CALLWATCH_GOLDEN_IDS point it at another
// tokenizer.json and its goldens (see scripts/tokgolden/regen.sh).
func TestGoldenIDs(t *testing.T) {
	if *update {
		cmd := exec.Command("bash", "../scripts/tokgolden/regen.sh")
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("regen.sh: %v", err)
		}
	}
	tokPath, idsPath := testTokenizer, "testdata/golden_ids.jsonl"
	if p := os.Getenv("CALLWATCH_GOLDEN_TOKENIZER"); p != "" {
		tokPath, idsPath = p, os.Getenv("CALLWATCH_GOLDEN_IDS")
	}
	golden := readGolden(t, idsPath)
	if idsPath == "testdata/golden_ids.jsonl" && len(golden) < 500 {
		t.Fatalf("only %d golden lines", len(golden))
	}
	raw, err := os.ReadFile(tokPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range []string{"fast", "pipeline"} {
		t.Run(mode, func(t *testing.T) {
			var tk encoder
			var err error
			if mode == "fast" {
				tk, err = LoadBytes(raw)
			} else {
				tk, err = newSugarRef(raw, 0) // sugarme's pipeline (sugarme_test.go)
			}
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, tk, golden, idsPath == "testdata/golden_ids.jsonl")
		})
	}
}

// encoder is the fast path (*Tokenizer) or the sugarme reference (*sugarRef).
type encoder interface {
	Encode(text string) ([]int64, error)
	UnkID() int64
}

func checkGolden(t *testing.T, tk encoder, golden []goldenRecord, ours bool) {
	var empty, unk, bad int
	for i, g := range golden {
		raw := g.raw(t)
		if got := Clean(raw); got != g.Clean {
			t.Errorf("line %d: Clean(%q) = %q, golden %q", i+1, raw, got, g.Clean)
			bad++
			continue
		}
		ids, err := tk.Encode(raw)
		if g.Clean == "" {
			empty++
			if !errors.Is(err, ErrEmpty) || len(g.IDs) != 0 {
				t.Errorf("line %d: empty after cleaning: err %v, HF ids %v", i+1, err, g.IDs)
			}
			continue
		}
		if err != nil {
			t.Errorf("line %d: Encode(%q): %v", i+1, raw, err)
			bad++
			continue
		}
		if !slices.Equal(ids, g.IDs) {
			t.Errorf("line %d: Encode(%q)\n  got  %v\n  HF   %v", i+1, g.Clean, ids, g.IDs)
			bad++
		}
		if slices.Contains(ids, tk.UnkID()) {
			unk++
		}
	}
	t.Logf("%d lines: %d mismatched, %d empty after cleaning, %d with [UNK]", len(golden), bad, empty, unk)
	if ours && (empty == 0 || unk == 0) {
		t.Errorf("golden set should cover empty lines and [UNK] (empty %d, unk %d)", empty, unk)
	}
}

func TestLoadRefusesUnsafeConfigs(t *testing.T) {
	base, err := os.ReadFile(testTokenizer)
	if err != nil {
		t.Fatal(err)
	}
	// mutate returns the test tokenizer.json with one top-level field replaced.
	mutate := func(field, value string) []byte {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(base, &m); err != nil {
			t.Fatal(err)
		}
		m[field] = json.RawMessage(value)
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	model := func(edit func(m map[string]json.RawMessage)) []byte {
		var top map[string]json.RawMessage
		if err := json.Unmarshal(base, &top); err != nil {
			t.Fatal(err)
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(top["model"], &m); err != nil {
			t.Fatal(err)
		}
		edit(m)
		mb, _ := json.Marshal(m)
		top["model"] = mb
		b, _ := json.Marshal(top)
		return b
	}
	tests := []struct {
		name string
		cfg  []byte
		want string // substring of the error
	}{
		{"bert normalizer", mutate("normalizer", `{"type":"BertNormalizer","clean_text":true,"handle_chinese_chars":true,"strip_accents":null,"lowercase":true}`), `normalizer "BertNormalizer"`},
		{"nfkc", mutate("normalizer", `{"type":"NFKC"}`), `normalizer "NFKC"`},
		{"nfd", mutate("normalizer", `{"type":"NFD"}`), `normalizer "NFD"`},
		{"normalizer sequence", mutate("normalizer", `{"type":"Sequence","normalizers":[{"type":"NFC"}]}`), `normalizer "Sequence"`},
		{"no pre-tokenizer", mutate("pre_tokenizer", `null`), "pre_tokenizer null"},
		{"metaspace", mutate("pre_tokenizer", `{"type":"Metaspace","replacement":"▁","prepend_scheme":"always","split":true}`), `pre_tokenizer "Metaspace"`},
		{"whitespace only", mutate("pre_tokenizer", `{"type":"Whitespace"}`), `pre_tokenizer "Whitespace"`},
		{"digits grouped", mutate("pre_tokenizer", `{"type":"Sequence","pretokenizers":[{"type":"WhitespaceSplit"},{"type":"Digits","individual_digits":false},{"type":"Punctuation","behavior":"Isolated"}]}`), "individual_digits"},
		{"punctuation contiguous", mutate("pre_tokenizer", `{"type":"Sequence","pretokenizers":[{"type":"WhitespaceSplit"},{"type":"Digits","individual_digits":true},{"type":"Punctuation","behavior":"Contiguous"}]}`), `behavior "Contiguous"`},
		{"sequence order", mutate("pre_tokenizer", `{"type":"Sequence","pretokenizers":[{"type":"Punctuation","behavior":"Isolated"},{"type":"WhitespaceSplit"},{"type":"Digits","individual_digits":true}]}`), "part 1"},
		{"padding", mutate("padding", `{"strategy":"BatchLongest","direction":"Left","pad_to_multiple_of":null,"pad_id":0,"pad_type_id":0,"pad_token":"[PAD]"}`), "padding"},
		{"truncation", mutate("truncation", `{"direction":"Right","max_length":512,"strategy":"LongestFirst","stride":0}`), "truncation"},
		{"post processor", mutate("post_processor", `{"type":"BertProcessing","sep":["[SEP]",102],"cls":["[CLS]",101]}`), "post_processor"},
		{"added tokens", mutate("added_tokens", `[{"id":0,"content":"[PAD]","single_word":false,"lstrip":false,"rstrip":false,"normalized":false,"special":true}]`), "added_tokens"},
		{"unigram", mutate("model", `{"type":"Unigram","unk_id":0,"vocab":[["<unk>",0.0]]}`), `model type "Unigram"`},
		{"bpe", mutate("model", `{"type":"BPE","vocab":{"a":0},"merges":[]}`), `model type "BPE"`},
		{"prefix", model(func(m map[string]json.RawMessage) { m["continuing_subword_prefix"] = json.RawMessage(`"@@"`) }), `continuing_subword_prefix "@@"`},
		{"unk missing", model(func(m map[string]json.RawMessage) { m["unk_token"] = json.RawMessage(`"<unk>"`) }), `unk_token "<unk>" is not in the vocab`},
		{"no unk", model(func(m map[string]json.RawMessage) { delete(m, "unk_token") }), "without unk_token"},
		{"sparse ids", model(func(m map[string]json.RawMessage) { m["vocab"] = json.RawMessage(`{"[UNK]":0,"a":5}`) }), "permutation"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadBytes(tc.cfg)
			if !errors.Is(err, ErrUnsupported) {
				t.Fatalf("err = %v, want ErrUnsupported", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %q, want it to mention %q", err, tc.want)
			}
		})
	}

	t.Run("bert pre-tokenizer accepted", func(t *testing.T) {
		tk, err := LoadBytes(mutate("pre_tokenizer", `{"type":"BertPreTokenizer"}`))
		if err != nil {
			t.Fatal(err)
		}
		if tk.PreTokenizer() != PreTokBert {
			t.Fatalf("kind %v", tk.PreTokenizer())
		}
		if _, err := tk.Encode("통장 123 가!"); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("null normalizer accepted", func(t *testing.T) {
		if _, err := LoadBytes(mutate("normalizer", `null`)); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("not json", func(t *testing.T) {
		if _, err := LoadBytes([]byte("{")); err == nil || errors.Is(err, ErrUnsupported) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("missing file", func(t *testing.T) {
		if _, err := Load("testdata/does-not-exist.json"); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestHFCharTablesSorted(t *testing.T) {
	for name, rs := range map[string][]rune{"hfNotSplit": hfNotSplit, "hfExtraSplit": hfExtraSplit} {
		if len(rs) == 0 || !slices.IsSorted(rs) {
			t.Errorf("%s: %d entries, sorted %v", name, len(rs), slices.IsSorted(rs))
		}
	}
	// Spot checks: U+2E4F CORNISH VERSE DIVIDER is P* for Go but not for HF;
	// U+10D40 GARAY DIGIT ZERO (Unicode 16) is numeric for Rust only.
	if isPunct(0x2E4F) || !isSugarPunct(0x2E4F) {
		t.Error("U+2E4F")
	}
	if !isPunct(0x10D40) {
		t.Error("U+10D40")
	}
}

func TestEncodeErrors(t *testing.T) {
	tk := loadTest(t, WithMaxBytes(64))
	for _, in := range []string{"", "   ", "\x00\u200b", "\xff\xfe", "\t\r\n\u3000"} {
		if _, err := tk.Encode(in); !errors.Is(err, ErrEmpty) {
			t.Errorf("Encode(%q) err = %v, want ErrEmpty", in, err)
		}
	}
	// 21 syllables = 63 bytes fits; 22 does not. Spaces removed by Clean do
	// not count.
	if _, err := tk.Encode(strings.Repeat("가", 21) + strings.Repeat(" ", 1000)); err != nil {
		t.Errorf("63 bytes: %v", err)
	}
	_, err := tk.Encode(strings.Repeat("가", 22))
	if !errors.Is(err, ErrTooLong) {
		t.Fatalf("66 bytes: err = %v, want ErrTooLong", err)
	}
	if !strings.Contains(err.Error(), "66 bytes") {
		t.Errorf("error should give the size: %v", err)
	}
	if got := loadTest(t).opts.maxBytes; got != DefaultMaxBytes {
		t.Errorf("default max bytes %d", got)
	}
}

func TestEncodeBasics(t *testing.T) {
	tk := loadTest(t)
	if tk.VocabSize() < 4700 {
		t.Fatalf("vocab size %d", tk.VocabSize())
	}
	if tk.UnkID() != UnkID {
		t.Fatalf("unk id %d", tk.UnkID())
	}
	for tok, want := range map[string]int64{PadToken: PadID, UnkToken: UnkID} {
		if id, ok := tk.TokenToID(tok); !ok || id != want {
			t.Errorf("TokenToID(%q) = %d, %v", tok, id, ok)
		}
		if s, ok := tk.IDToToken(want); !ok || s != tok {
			t.Errorf("IDToToken(%d) = %q, %v", want, s, ok)
		}
	}
	if _, ok := tk.IDToToken(-1); ok {
		t.Error("IDToToken(-1) ok")
	}
	if _, ok := tk.IDToToken(int64(tk.VocabSize())); ok {
		t.Error("IDToToken(size) ok")
	}
	ids, err := tk.Encode("통장 1234 ! 😀")
	if err != nil {
		t.Fatal(err)
	}
	var toks []string
	for _, id := range ids {
		s, _ := tk.IDToToken(id)
		toks = append(toks, s)
	}
	want := []string{"통장", "1", "2", "3", "4", "!", UnkToken}
	if !slices.Equal(toks, want) {
		t.Fatalf("tokens %q, want %q", toks, want)
	}
	// No special tokens are ever added.
	ids, _ = tk.Encode("네")
	if len(ids) != 1 {
		t.Fatalf("Encode(네) = %v", ids)
	}
}

// TestChunkedEqualsWhole proves that cutting text into chunks for sugarme's
// pipeline (spaces first, then around punctuation and digits, one [UNK] for
// an over-long word) gives the ids of encoding the whole text in one sugarme
// call, and that the fast path (Go pre-tokenization and WordPiece) gives them
// too.
func TestChunkedEqualsWhole(t *testing.T) {
	var texts []string
	for _, g := range readGolden(t, "testdata/golden_ids.jsonl") {
		if g.Clean != "" {
			texts = append(texts, g.Clean)
		}
	}
	// Long texts with every kind of cut: no spaces, digit runs, punctuation
	// runs, over-long words (one [UNK]) and words just under the limit.
	var joined strings.Builder
	for _, s := range texts {
		joined.WriteString(s)
		joined.WriteByte(' ')
	}
	texts = append(texts,
		joined.String(),
		strings.ReplaceAll(joined.String(), " ", ""),
		strings.Repeat("통장123계좌!?", 300),
		strings.Repeat("가", 3000)+" 네 "+strings.Repeat("나", 99)+strings.Repeat("1", 700),
		strings.Repeat("가", 100)+"."+strings.Repeat("다", 101),
		strings.Repeat("abc", 2000),
	)
	seqCfg, err := os.ReadFile(testTokenizer)
	if err != nil {
		t.Fatal(err)
	}
	bertCfg := withPreTokenizer(t, `{"type":"BertPreTokenizer"}`)
	for _, bert := range []bool{false, true} {
		cfg := seqCfg
		if bert {
			cfg = bertCfg // BertPreTokenizer keeps digit runs together: fewer cuts
		}
		ref, err := newSugarRef(cfg, 0)
		if err != nil {
			t.Fatal(err)
		}
		wants := make([][]int64, len(texts))
		for i, s := range texts {
			ids, err := ref.encodeRaw(Clean(s))
			if err != nil {
				t.Fatal(err)
			}
			wants[i] = toInt64(ids)
		}
		// chunk 0 is the fast path, which must agree too.
		for _, chunk := range []int{0, 4, 7, 16, 61, defaultChunkBytes} {
			var tk encoder
			if chunk == 0 {
				tk, err = LoadBytes(cfg)
			} else {
				tk, err = newSugarRef(cfg, chunk)
			}
			if err != nil {
				t.Fatal(err)
			}
			for i, s := range texts {
				got, err := tk.Encode(s)
				if err != nil {
					t.Fatalf("chunk %d, text %d: %v", chunk, i, err)
				}
				if !slices.Equal(got, wants[i]) {
					t.Fatalf("chunk %d (bert %v), text %d (%.60q...): chunked ids differ from whole\n got  %v\n want %v", chunk, bert, i, Clean(s), head(got), head(wants[i]))
				}
			}
		}
	}
}

// withPreTokenizer returns the test tokenizer.json with another pre_tokenizer.
func withPreTokenizer(t testing.TB, pretok string) []byte {
	t.Helper()
	b, err := os.ReadFile(testTokenizer)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	m["pre_tokenizer"] = json.RawMessage(pretok)
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func toInt64(ids []int) []int64 {
	out := make([]int64, len(ids))
	for i, id := range ids {
		out[i] = int64(id)
	}
	return out
}

func head(ids []int64) []int64 { return ids[:min(len(ids), 40)] }

func TestEncodeBatch(t *testing.T) {
	tk := loadTest(t)
	texts := []string{"여보세요", "", "통장 123", "\xff", "네네 어 음"}
	ids, errs := tk.EncodeBatch(texts)
	if len(ids) != len(texts) || len(errs) != len(texts) {
		t.Fatalf("lengths %d %d", len(ids), len(errs))
	}
	for i, s := range texts {
		want, wantErr := tk.Encode(s)
		if !errors.Is(errs[i], wantErr) && errs[i] != wantErr {
			t.Errorf("%d: err %v, want %v", i, errs[i], wantErr)
		}
		if !slices.Equal(ids[i], want) {
			t.Errorf("%d: %v, want %v", i, ids[i], want)
		}
	}
	if !errors.Is(errs[1], ErrEmpty) || !errors.Is(errs[3], ErrEmpty) {
		t.Errorf("errs %v", errs)
	}
	if ids, errs := tk.EncodeBatch(nil); len(ids) != 0 || len(errs) != 0 {
		t.Error("nil batch")
	}
}

// TestConcurrentEncode runs many goroutines on one Tokenizer; run with -race.
func TestConcurrentEncode(t *testing.T) {
	fast := loadTest(t)
	pipe := loadSugarRef(t, 64)
	golden := readGolden(t, "testdata/golden_ids.jsonl")
	var wg sync.WaitGroup
	errc := make(chan error, 32)
	for g := range 32 {
		var tk encoder = fast
		if g%2 == 1 {
			tk = pipe
		}
		wg.Go(func() {
			for k := range 40 {
				rec := golden[(g*40+k)%len(golden)]
				if rec.Clean == "" {
					continue
				}
				ids, err := tk.Encode(rec.Clean)
				if err != nil {
					errc <- err
					return
				}
				if !slices.Equal(ids, rec.IDs) {
					errc <- fmt.Errorf("goroutine %d: %q: %v, want %v", g, rec.Clean, ids, rec.IDs)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
}

func FuzzEncode(f *testing.F) {
	for _, s := range []string{"여보세요 통장 123", "\xff\xfe", "\x00", strings.Repeat(" ", 10000), "😀👍🏽", "👨\u200d👩\u200d👧", "ＡＢＣ１２３", strings.Repeat("가", 150), "[UNK]##가"} {
		f.Add(s)
	}
	whole := loadSugarRef(f, 0)
	fast := loadTest(f, WithMaxBytes(1<<16))
	small := loadSugarRef(f, 5, WithMaxBytes(1<<16))
	f.Fuzz(func(t *testing.T, in string) {
		fastIDs, fastErr := fast.Encode(in)
		ids, err := small.Encode(in)
		// sugarme's pipeline differs from HF (and the fast path) only on the
		// code points where Go's and HF's Unicode tables disagree.
		hfDiffers := strings.ContainsFunc(in, func(r rune) bool { return inRunes(hfNotSplit, r) || inRunes(hfExtraSplit, r) })
		if !hfDiffers && (!slices.Equal(fastIDs, ids) || !errors.Is(fastErr, err) && fastErr != err) {
			t.Fatalf("Encode(%q): fast %v %v, pipeline %v %v", in, fastIDs, fastErr, ids, err)
		}
		c := Clean(in)
		switch {
		case c == "":
			if !errors.Is(err, ErrEmpty) {
				t.Fatalf("Encode(%q) err %v, want ErrEmpty", in, err)
			}
			return
		case len(c) > 1<<16:
			if !errors.Is(err, ErrTooLong) {
				t.Fatalf("err %v, want ErrTooLong", err)
			}
			return
		case err != nil:
			t.Fatalf("Encode(%q): %v", in, err)
		}
		if len(ids) == 0 {
			t.Fatalf("Encode(%q): no ids for non-empty text", in)
		}
		for _, id := range ids {
			if id < 0 || id >= int64(small.VocabSize()) {
				t.Fatalf("id %d out of range", id)
			}
		}
		want, err := whole.encodeRaw(c)
		if err != nil {
			t.Fatalf("whole encode %q: %v", c, err)
		}
		if !slices.Equal(ids, toInt64(want)) {
			t.Fatalf("Encode(%q): chunked %v, whole %v", in, ids, want)
		}
	})
}

var benchSentences = []string{
	"여보세요 서울중앙지검 수사관 박진우 라고 합니다 본인 맞으세요",
	"고객님 명의로 개설된 대포 통장이 범죄에 이용돼서요",
	"네 고객님 하나은행 고객센터 상담원 이지은 입니다",
	"법무사 계좌로 일천 오백만원 입금 하시면 바로 승인 나요",
	"2024년 3월 15일 오후 2시 30분 010 1234 5678",
	"어 어 음 네네 네 그니까 그게 음",
	"카드 뒷번호 네자리 확인 되셨구요 분실 신고 접수 해 드렸습니다",
	"OTP 번호 여섯 자리 알려 주세요",
}

// BenchmarkEncode reports sentences/s on STT-like sentences (~25 chars).
func BenchmarkEncode(b *testing.B) {
	tk := loadTest(b)
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		if _, err := tk.Encode(benchSentences[n%len(benchSentences)]); err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "sentences/s")
}

// BenchmarkEncodeCall encodes a whole call (~6 KB, so several chunks).
func BenchmarkEncodeCall(b *testing.B) {
	tk := loadTest(b)
	call := strings.Repeat(strings.Join(benchSentences, " ")+" ", 16)
	b.SetBytes(int64(len(call)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tk.Encode(call); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncodeCallPolite is BenchmarkEncodeCall with the polite-endings
// normalizer (card text_normalizer), for its cost beside it.
func BenchmarkEncodeCallPolite(b *testing.B) {
	tk, err := Load(testTokenizer, WithNormalizer(NormalizerPoliteEndings))
	if err != nil {
		b.Fatal(err)
	}
	call := strings.Repeat(strings.Join(benchSentences, " ")+" ", 16)
	b.SetBytes(int64(len(call)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tk.Encode(call); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncodePipeline is BenchmarkEncode through sugarme's full pipeline
// (the test reference, sugarme_test.go).
func BenchmarkEncodePipeline(b *testing.B) {
	tk := loadSugarRef(b, 0)
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		if _, err := tk.Encode(benchSentences[n%len(benchSentences)]); err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "sentences/s")
}

func BenchmarkEncodeParallel(b *testing.B) {
	tk := loadTest(b)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		n := 0
		for pb.Next() {
			if _, err := tk.Encode(benchSentences[n%len(benchSentences)]); err != nil {
				b.Error(err)
				return
			}
			n++
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sentences/s")
}

// TestBoundaryFastPath checks isBoundary's ASCII and Hangul fast paths
// against the table tests on every code point, for both pre-tokenizers.
func TestBoundaryFastPath(t *testing.T) {
	for _, kind := range []PreTokenizerKind{PreTokBert, PreTokSequence} {
		tk := &Tokenizer{pretok: kind}
		for r := rune(0); r <= unicode.MaxRune; r++ {
			want := isPunct(r) || (kind == PreTokSequence && isDigit(r))
			if got := tk.isBoundary(r); got != want {
				t.Fatalf("pre-tokenizer %d: isBoundary(%U) = %v, want %v", kind, r, got, want)
			}
		}
	}
}

// TestWordPieceMatchesSugarme runs the fast path's WordPiece and sugarme's
// WordPiece model (built from the same vocab and settings, as sugarme's loader
// would) on every pre-token of every text the project has, plus words built
// to hit the edges: multi-piece splits, an unknown piece mid-word, words at
// and over max_input_chars_per_word, and vocab entries that look special.
func TestWordPieceMatchesSugarme(t *testing.T) {
	var texts []string
	for _, g := range readGolden(t, "testdata/golden_lines.jsonl") {
		texts = append(texts, g.Clean)
	}
	files, _ := filepath.Glob("../corpus/base/*/*.txt")
	files = append(files, "testdata/vocab_corpus.txt", "../testdata/parity_calls.jsonl", "../corpus/samples/calls.jsonl")
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatalf("%v (the corpus is part of the repository)", err)
		}
		texts = append(texts, strings.Split(string(b), "\n")...)
	}
	for _, path := range []string{testTokenizer, "../models/ko-vishing-lstm/tokenizer.json"} {
		tk, err := Load(path)
		if err != nil {
			t.Fatal(err)
		}
		vocab := make(model.Vocab, len(tk.vocab))
		for k, v := range tk.vocab {
			vocab[k] = int(v)
		}
		ref := wordpiece.NewWordPieceBuilder().Vocab(&vocab).UnkToken(tk.inverse[tk.unkID]).
			ContinuingSubwordPrefix("##").MaxInputCharsPerWord(tk.maxChars).Build()
		words := map[string]bool{}
		for _, text := range texts {
			splitWords(Clean(text), tk.isBoundary, func(w string) { words[w] = true })
		}
		// Edge words from the vocab itself: joined pieces split again, an
		// unknown character inside, and the length limit.
		var pieces []string
		for _, tok := range tk.inverse {
			pieces = append(pieces, strings.TrimPrefix(tok, "##"))
		}
		for i := 0; i+2 < len(pieces); i += 7 {
			words[pieces[i]+pieces[i+1]+pieces[i+2]] = true
			words[pieces[i]+"\u0fff"+pieces[i+1]] = true
		}
		words[strings.Repeat("가", tk.maxChars)] = true
		words[strings.Repeat("가", tk.maxChars+1)] = true
		words["##"] = true
		words["[UNK]"] = true
		var buf []byte
		for w := range words {
			var got, slow []int64
			got, buf = tk.wordPiece(nil, w, buf)
			// The path for vocabs with entries too long to index, same ids.
			tk.pieces.long = true
			slow, buf = tk.wordPiece(nil, w, buf)
			tk.pieces.long = false
			if !slices.Equal(got, slow) {
				t.Fatalf("%s: wordPiece(%q) = %v indexed, %v unindexed", path, w, got, slow)
			}
			toks, err := ref.Tokenize(w)
			if err != nil {
				t.Fatalf("sugarme Tokenize(%q): %v", w, err)
			}
			want := make([]int64, len(toks))
			for k, tok := range toks {
				want[k] = int64(tok.Id)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("%s: wordPiece(%q) = %v, sugarme %v", path, w, got, want)
			}
		}
		if len(words) < 10000 {
			t.Fatalf("%s: only %d distinct words compared; the corpora did not load", path, len(words))
		}
		t.Logf("%s: %d distinct words, ids identical to sugarme", path, len(words))
	}
}

// TestLongVocabEntry: a vocab entry longer than the piece index covers is
// still matched (the unindexed path), and the file loads.
func TestLongVocabEntry(t *testing.T) {
	raw, err := os.ReadFile(testTokenizer)
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	vocab := cfg["model"].(map[string]any)["vocab"].(map[string]any)
	long := strings.Repeat("가나", 40) // 80 characters
	vocab[long] = float64(len(vocab))
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tk, err := LoadBytes(b)
	if err != nil {
		t.Fatalf("a vocab with an 80-character entry: %v", err)
	}
	if !tk.pieces.long {
		t.Fatal("the long entry did not switch off the piece index")
	}
	ids, err := tk.Encode(long + " 통장")
	if err != nil {
		t.Fatal(err)
	}
	want, _ := tk.TokenToID(long)
	if len(ids) < 2 || ids[0] != want {
		t.Fatalf("Encode: %v, want the long entry's id %d first", ids, want)
	}
}

// TestWordCacheSameIDs encodes the same text twice (cold then cached) and
// once through a fresh tokenizer, and wants the same ids each time.
func TestWordCacheSameIDs(t *testing.T) {
	text := strings.Join(benchSentences, " ")
	a := loadTest(t)
	first, err := a.Encode(text)
	if err != nil {
		t.Fatal(err)
	}
	if a.words.n.Load() == 0 {
		t.Fatal("word cache is empty after an encode")
	}
	again, err := a.Encode(text)
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := loadTest(t).Encode(text)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(first, again) || !slices.Equal(first, fresh) {
		t.Fatalf("ids differ: cold %v, cached %v, fresh %v", first, again, fresh)
	}
}

// TestWordPieceAllocs: the fast path allocates only the id slice.
func TestWordPieceAllocs(t *testing.T) {
	tk := loadTest(t)
	text := strings.Join(benchSentences, " ")
	if n := testing.AllocsPerRun(50, func() { tk.encodeWords(text) }); n > 1 {
		t.Fatalf("encodeWords allocates %.0f times per call, want 1 (the id slice)", n)
	}
}

// BenchmarkEncodeCorpus encodes the 252 parity transcripts (real call
// lengths, many distinct words) per iteration on one tokenizer.
func BenchmarkEncodeCorpus(b *testing.B) {
	tk, err := Load("../models/ko-vishing-lstm/tokenizer.json")
	if err != nil {
		b.Fatal(err)
	}
	f, err := os.ReadFile("../testdata/parity_calls.jsonl")
	if err != nil {
		b.Fatal(err)
	}
	var texts []string
	var size int64
	for line := range strings.SplitSeq(strings.TrimSpace(string(f)), "\n") {
		var r struct {
			Text string `json:"text"`
		}
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			b.Fatal(err)
		}
		texts = append(texts, r.Text)
		size += int64(len(r.Text))
	}
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		for _, s := range texts {
			if _, err := tk.Encode(s); err != nil {
				b.Fatal(err)
			}
		}
	}
}
