package tokenize

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"
)

func readCorpus(t testing.TB) []string {
	t.Helper()
	b, err := os.ReadFile("testdata/vocab_corpus.txt")
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(string(b), "\n")
}

func writeJSON(t testing.TB, v *Vocab) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := v.WriteTokenizerJSON(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// The committed test tokenizer.json is what BuildVocab makes today from the
// committed corpus with regen.sh's options: any change to the builder shows
// up here (and then the HF goldens must be regenerated).
func TestBuildVocabMatchesCommittedTokenizer(t *testing.T) {
	v, err := BuildVocab(readCorpus(t), VocabOptions{Size: 5600, MinFreq: 1})
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(testTokenizer)
	if err != nil {
		t.Fatal(err)
	}
	if got := writeJSON(t, v); !bytes.Equal(got, want) {
		t.Fatalf("BuildVocab output differs from %s; run scripts/tokgolden/regen.sh (or go test ./tokenize -run TestGoldenIDs -update)", testTokenizer)
	}
}

func TestBuildVocabDeterministic(t *testing.T) {
	corpus := readCorpus(t)
	opt := VocabOptions{Size: 5300, MinFreq: 1}
	v1, err := BuildVocab(corpus, opt)
	if err != nil {
		t.Fatal(err)
	}
	first := writeJSON(t, v1)
	// Same multiset of texts in another order, several times: byte-identical.
	rng := rand.New(rand.NewPCG(1, 2))
	for range 5 {
		shuffled := slices.Clone(corpus)
		rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		v, err := BuildVocab(shuffled, opt)
		if err != nil {
			t.Fatal(err)
		}
		if got := writeJSON(t, v); !bytes.Equal(got, first) {
			t.Fatal("BuildVocab is not deterministic")
		}
	}
}

func TestBuildVocabContents(t *testing.T) {
	corpus := append(readCorpus(t), "ㅋㅋㅋ ㅋㅋ", "ㅋㅋ", "뷁") // ㅋ seen 5 times, 뷁 once
	v, err := BuildVocab(corpus, VocabOptions{Size: 5200})
	if err != nil {
		t.Fatal(err)
	}
	toks := v.Tokens()
	if v.Size() != len(toks) || len(toks) > 5200 {
		t.Fatalf("size %d / %d", v.Size(), len(toks))
	}
	if toks[PadID] != PadToken || toks[UnkID] != UnkToken {
		t.Fatalf("specials %q", toks[:2])
	}
	set := make(map[string]bool)
	for _, tok := range toks {
		if set[tok] {
			t.Fatalf("duplicate token %q", tok)
		}
		set[tok] = true
	}
	for _, r := range Hangul2350() {
		if !set[string(r)] || !set["##"+string(r)] {
			t.Fatalf("Hangul %c missing in some form", r)
		}
	}
	for r := rune(0x21); r <= 0x7e; r++ {
		if !set[string(r)] {
			t.Fatalf("ASCII %q missing", r)
		}
	}
	for _, tok := range []string{"##a", "##Z", "ㅋ", "##ㅋ"} {
		if !set[tok] {
			t.Errorf("%q missing", tok)
		}
	}
	for _, tok := range []string{"뷁", "##뷁", "##1", "##!"} {
		if set[tok] {
			t.Errorf("%q should not be in the vocab", tok)
		}
	}
	if v.AlphabetSize() >= v.Size() {
		t.Fatalf("no subwords learned: alphabet %d, size %d", v.AlphabetSize(), v.Size())
	}
	// Learned subwords come from the corpus, e.g. frequent words.
	for _, tok := range []string{"통장", "대출"} {
		if !set[tok] {
			t.Errorf("learned subword %q missing", tok)
		}
	}

	// The written file loads and encodes with the learned subwords.
	tk, err := LoadBytes(writeJSON(t, v))
	if err != nil {
		t.Fatal(err)
	}
	ids, err := tk.Encode("통장 ㅋㅋ 뷁") // ㅋㅋ is a learned merge
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, id := range ids {
		s, _ := tk.IDToToken(id)
		got = append(got, s)
	}
	if want := []string{"통장", "ㅋㅋ", UnkToken}; !slices.Equal(got, want) {
		t.Fatalf("tokens %q, want %q", got, want)
	}
}

func TestBuildVocabErrors(t *testing.T) {
	corpus := readCorpus(t)
	for _, opt := range []VocabOptions{{Size: 0}, {Size: 100}, {Size: 6000, MinFreq: -1}} {
		if _, err := BuildVocab(corpus, opt); !errors.Is(err, ErrVocabOptions) {
			t.Errorf("%+v: err = %v, want ErrVocabOptions", opt, err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := BuildVocabContext(ctx, corpus, VocabOptions{Size: 6000}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: err = %v", err)
	}
	// Empty input still gives the full alphabet.
	v, err := BuildVocab(nil, VocabOptions{Size: 6000})
	if err != nil {
		t.Fatal(err)
	}
	if v.Size() != v.AlphabetSize() || v.Size() < 2+2*2350+94 {
		t.Errorf("empty corpus: size %d alphabet %d", v.Size(), v.AlphabetSize())
	}
}

func TestPreTokenizeMatchesSugarme(t *testing.T) {
	// preTokenize must split exactly where the written pre-tokenizer does;
	// check by encoding each word alone vs the whole text.
	tk := loadSugarRef(t, 0)
	for _, g := range readGolden(t, "testdata/golden_ids.jsonl") {
		if g.Clean == "" {
			continue
		}
		var ids []int64
		preTokenize(g.Clean, func(w string) {
			got, err := tk.encodeRaw(w)
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, toInt64(got)...)
		})
		if !slices.Equal(ids, g.IDs) {
			t.Fatalf("%q: per-word %v, whole %v", g.Clean, ids, g.IDs)
		}
	}
}

func BenchmarkBuildVocab(b *testing.B) {
	corpus := readCorpus(b)
	var big []string
	for i := range 200 {
		for _, s := range corpus {
			big = append(big, s+" "+strings.Repeat("네", i%7))
		}
	}
	for b.Loop() {
		if _, err := BuildVocab(big, VocabOptions{Size: 8000, MinFreq: 2}); err != nil {
			b.Fatal(err)
		}
	}
}
