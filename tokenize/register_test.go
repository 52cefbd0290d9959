package tokenize

import (
	"bufio"
	"os"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestPoliteEndings(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"합니다", "해요"},
		{"확인하겠습니다", "확인할게요"},
		{"보내드리겠습니다", "보내드릴게요"},
		{"기다리십시오", "기다리세요"},
		{"맞으십니까", "맞으세요"},
		{"경찰청입니다", "경찰청이에요"}, // consonant before 입니다
		{"저입니다", "저예요"},      // vowel before 입니다
		{"갑니다", "가요"},        // other final ㅂ before 니다
		{"있습니다", "있어요"},
		{"있습니까", "있어요"},
		{"좋다", "좋다"}, // 반말 stays
		{"했어", "했어"}, // 반말 stays
		{"해요", "해요"}, // already polite
		{"니다", "니다"}, // nothing before 니다
		{"다", "다"},
		{"", ""},
		{"abc다", "abc다"},
	} {
		if got := PoliteEndings(c.in); got != c.want {
			t.Errorf("PoliteEndings(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// TestPoliteEndingsGolden: the Go rules give what scripts/corpus/register.py's
// shift_down gives on the same words (test_register.py checks the Python
// side against the same file), so a corpus shifted in Python and text
// normalized here agree.
func TestPoliteEndingsGolden(t *testing.T) {
	f, err := os.Open("testdata/polite_endings.tsv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	n, changed := 0, 0
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") || line == "" {
			continue
		}
		word, want, ok := strings.Cut(line, "\t")
		if !ok {
			t.Fatalf("malformed line %q", line)
		}
		n++
		if want != word {
			changed++
		}
		if got := PoliteEndings(word); got != want {
			t.Errorf("PoliteEndings(%q) = %q, Python gives %q", word, got, want)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if n < 300 || changed < 200 {
		t.Fatalf("golden file holds %d words, %d rewritten; want a few hundred of each kind", n, changed)
	}
}

func TestTokenizerPoliteEndings(t *testing.T) {
	plain, err := Load(testTokenizer)
	if err != nil {
		t.Fatal(err)
	}
	polite, err := Load(testTokenizer, WithNormalizer(NormalizerPoliteEndings))
	if err != nil {
		t.Fatal(err)
	}
	b, err := plain.Encode("네 고객님 확인할게요. 경찰청이에요!")
	if err != nil {
		t.Fatal(err)
	}
	var a []int64
	for range 2 { // the second time from the word cache
		if a, err = polite.Encode("네 고객님 확인하겠습니다. 경찰청입니다!"); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(a, b) {
			t.Fatalf("normalized formal text encodes as %v, its polite form as %v", a, b)
		}
	}
	c, _ := plain.Encode("네 고객님 확인하겠습니다. 경찰청입니다!")
	if slices.Equal(a, c) {
		t.Fatal("the normalizer changed nothing")
	}
	if _, err := Load(testTokenizer, WithNormalizer("shout")); err == nil || !strings.Contains(err.Error(), "shout") {
		t.Fatalf("unknown normalizer: %v", err)
	}
}

func FuzzPoliteEndings(f *testing.F) {
	for _, s := range []string{"합니다", "경찰청입니다", "갑니다", "니까", "오", "\xff다", "입니다"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, w string) {
		got := PoliteEndings(w)
		if utf8.ValidString(w) && !utf8.ValidString(got) {
			t.Fatalf("%q -> invalid UTF-8 %q", w, got)
		}
		if again := PoliteEndings(got); again != got {
			t.Fatalf("not idempotent: %q -> %q -> %q", w, got, again)
		}
		if got != w {
			// Only the ending changes: the two share all but the last few runes.
			i := 0
			for i < len(w) && i < len(got) && w[i] == got[i] {
				i++
			}
			if utf8.RuneCountInString(w[i:]) > 6 {
				t.Fatalf("%q -> %q rewrote more than an ending", w, got)
			}
		}
	})
}
