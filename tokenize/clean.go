package tokenize

import (
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// Clean normalises STT output before tokenization:
//
//  1. invalid UTF-8 bytes become a space (sugarme panics on them);
//  2. every Unicode space (tab, CR, LF, NBSP, U+3000, ...) becomes ' ';
//  3. control (Cc) and format (Cf) characters are dropped: NUL, BOM, zero-width
//     space/joiner/non-joiner, bidi marks. Dropping ZWJ splits emoji ZWJ
//     sequences into their parts, which is fine for a text classifier;
//  4. NFC, so decomposed Hangul (NFD jamo) becomes syllables; sugarme's own
//     NFC normalizer does not recompose such input;
//  5. runs of spaces collapse to one, and the ends are trimmed.
//
// Steps 2–3 run before NFC so that removing a character can never create a
// new composable pair afterwards; this keeps Clean idempotent
// (Clean(Clean(s)) == Clean(s)), which the fuzz test checks.
func Clean(s string) string {
	if plain(s) {
		// Already valid, space-normal, control-free and NFC: only step 5.
		return collapseSpaces(s)
	}
	s = strings.ToValidUTF8(s, " ")
	s = strings.Map(cleanRune, s)
	if !norm.NFC.IsNormalString(s) {
		s = norm.NFC.String(s)
		// NFC maps some spaces to other spaces (U+2000 → U+2002) and could in
		// principle surface other characters we remove; map again.
		s = strings.Map(cleanRune, s)
	}
	return collapseSpaces(s)
}

// plain reports whether s holds only ' ', printable ASCII and precomposed
// Hangul syllables (U+AC00–U+D7A3), the bulk of STT output. Such text is
// valid UTF-8, has no other spaces and no Cc/Cf characters, and is NFC (only
// conjoining jamo compose with syllables), so steps 1–4 leave it unchanged.
func plain(s string) bool {
	for i := 0; i < len(s); {
		c := s[i]
		if c < 0x80 {
			if c < ' ' || c == 0x7f {
				return false
			}
			i++
			continue
		}
		// Hangul syllables are EA B0 80 (U+AC00) .. ED 9E A3 (U+D7A3).
		if i+2 >= len(s) || c < 0xEA || c > 0xED {
			return false
		}
		r := rune(c&0x0F)<<12 | rune(s[i+1]&0x3F)<<6 | rune(s[i+2]&0x3F)
		if s[i+1]&0xC0 != 0x80 || s[i+2]&0xC0 != 0x80 || r < 0xAC00 || r > 0xD7A3 {
			return false
		}
		i += 3
	}
	return true
}

// cleanRune maps a rune for Clean: spaces to ' ', Cc/Cf dropped (-1).
func cleanRune(r rune) rune {
	switch {
	case r == ' ':
		return r
	case unicode.IsSpace(r):
		return ' '
	case unicode.In(r, unicode.Cc, unicode.Cf):
		return -1
	}
	return r
}

// collapseSpaces collapses runs of ' ' into one and trims both ends.
func collapseSpaces(s string) string {
	s = strings.Trim(s, " ")
	if !strings.Contains(s, "  ") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	prevSpace := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == ' ' {
			if prevSpace {
				continue
			}
			prevSpace = true
		} else {
			prevSpace = false
		}
		b.WriteByte(c)
	}
	return b.String()
}
