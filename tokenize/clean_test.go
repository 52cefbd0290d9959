package tokenize

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

func TestClean(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", ""},
		{"plain", "여보세요 네", "여보세요 네"},
		{"trim and collapse", "  여보세요   네  ", "여보세요 네"},
		{"tab cr lf", "네\t네\r\n통장\n", "네 네 통장"},
		{"nbsp ideographic em space", "네\u00a0네\u3000통장\u2003계좌", "네 네 통장 계좌"},
		{"line and paragraph separators, NEL", "가\u2028나\u2029다\u0085라", "가 나 다 라"},
		{"vertical tab form feed", "가\v나\f다", "가 나 다"},
		{"NUL dropped", "\x00통\x00장\x00", "통장"},
		{"zero width chars dropped", "대\u200b포\u200c통\u200d장\ufeff", "대포통장"},
		{"bidi marks and soft hyphen dropped", "\u202e계좌\u200e\u00ad", "계좌"},
		{"DEL and ESC dropped", "a\x7fb\x1bc", "abc"},
		{"emoji ZWJ sequence split", "👨\u200d👩\u200d👧", "👨👩👧"},
		{"skin tone kept", "👍🏽", "👍🏽"},
		{"NFD Hangul recomposed", norm.NFD.String("대포통장"), "대포통장"},
		{"conjoining jamo composed", "\u1100\u1161\u11a8", "각"},
		{"jamo across dropped ZWJ compose", "\u1100\u200d\u1161", "가"},
		{"jamo across space stay apart", "\u1100 \u1161", "\u1100 \u1161"},
		{"latin combining", "e\u0301", "é"},
		{"full width kept (no NFKC)", "ＡＢＣ１２３", "ＡＢＣ１２３"},
		{"invalid byte to space", "abc\x80def", "abc def"},
		{"invalid run to one space", "카드\xff\xff\xff발급", "카드 발급"},
		{"truncated sequence", "여보\xea\xb0세요", "여보 세요"},
		{"only invalid", "\xff\xfe", ""},
		{"only spaces", " \t\r\n\u3000\u00a0", ""},
		{"replacement char kept", "a\ufffdb", "a\ufffdb"},
		{"private use kept", "a\ue000b", "a\ue000b"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Clean(tc.in)
			if got != tc.want {
				t.Errorf("Clean(%q) = %q, want %q", tc.in, got, tc.want)
			}
			if again := Clean(got); again != got {
				t.Errorf("not idempotent: Clean(%q) = %q", got, again)
			}
		})
	}
}

func TestCleanLongSpaces(t *testing.T) {
	in := "네" + strings.Repeat(" ", 10000) + "네" + strings.Repeat("\u3000", 10000)
	if got := Clean(in); got != "네 네" {
		t.Fatalf("Clean = %q", got)
	}
}

// checkCleanInvariants asserts what every caller of Clean may rely on.
func checkCleanInvariants(t *testing.T, in, out string) {
	t.Helper()
	if !utf8.ValidString(out) {
		t.Fatalf("Clean(%q) = %q: invalid UTF-8", in, out)
	}
	if !norm.NFC.IsNormalString(out) {
		t.Fatalf("Clean(%q) = %q: not NFC", in, out)
	}
	if strings.HasPrefix(out, " ") || strings.HasSuffix(out, " ") || strings.Contains(out, "  ") {
		t.Fatalf("Clean(%q) = %q: untrimmed or uncollapsed spaces", in, out)
	}
	for _, r := range out {
		if r != ' ' && unicode.IsSpace(r) || unicode.In(r, unicode.Cc, unicode.Cf) {
			t.Fatalf("Clean(%q) = %q: contains %U", in, out, r)
		}
	}
	if again := Clean(out); again != out {
		t.Fatalf("not idempotent: Clean(%q) = %q, Clean of that = %q", in, out, again)
	}
}

func FuzzClean(f *testing.F) {
	for _, s := range []string{"", "여보세요", "\xff\xfe", "\x00", strings.Repeat(" ", 10000), "😀👍🏽👨\u200d👩\u200d👧", norm.NFD.String("대포통장"), "\u1100\u200d\u1161", "ＡＢＣ１２３", "a\r\n\tb\u00a0c\u3000"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		checkCleanInvariants(t, in, Clean(in))
	})
}

func TestHangul2350(t *testing.T) {
	h := Hangul2350()
	if len(h) != 2350 {
		t.Fatalf("got %d syllables, want 2350", len(h))
	}
	seen := make(map[rune]bool)
	for i, r := range h {
		if r < 0xAC00 || r > 0xD7A3 {
			t.Fatalf("%d: %U is not a Hangul syllable", i, r)
		}
		if seen[r] {
			t.Fatalf("duplicate %c", r)
		}
		seen[r] = true
		if i > 0 && h[i-1] >= r {
			t.Fatalf("not in code order at %d", i)
		}
	}
	// First and last of KS X 1001, and two common syllables that must be in
	// it, and one that is not (똠 is the classic missing one).
	if h[0] != '가' || h[2349] != '힝' {
		t.Errorf("first/last = %c/%c, want 가/힝", h[0], h[2349])
	}
	for _, r := range "통장대출" {
		if !seen[r] {
			t.Errorf("%c missing", r)
		}
	}
	if seen['똠'] {
		t.Errorf("똠 is not in KS X 1001")
	}
}

// TestPlainFastPath checks that Clean's fast path agrees with the full path
// on every boundary of the plain character set.
func TestPlainFastPath(t *testing.T) {
	full := func(s string) string { return collapseSpaces(slowClean(s)) }
	cases := []string{
		"", " ", "  a  b ", "가", "힣", "\uABFF", "\uD7A4", "가\u11A8", "\u1100\u1161", "a\x7fb", "a\tb",
		"~", "\x1f", "고객님 대포  통장", "\xed\x9e", "\xea\xb0", "가\xff", "ㄱ", "\u00a0",
	}
	for r := rune(0); r < 0x11000; r += 7 {
		cases = append(cases, "가"+string(r)+" x")
	}
	for _, s := range cases {
		if got, want := Clean(s), full(s); got != want {
			t.Errorf("Clean(%q) = %q, full path %q", s, got, want)
		}
	}
}

// slowClean is Clean without the plain fast path (steps 1–4).
func slowClean(s string) string {
	s = strings.ToValidUTF8(s, " ")
	s = strings.Map(cleanRune, s)
	if !norm.NFC.IsNormalString(s) {
		s = norm.NFC.String(s)
		s = strings.Map(cleanRune, s)
	}
	return s
}
