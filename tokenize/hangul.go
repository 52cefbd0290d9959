package tokenize

import (
	"fmt"
	"unicode/utf8"

	"golang.org/x/text/encoding/korean"
)

// Hangul2350 returns the 2,350 Hangul syllables of KS X 1001 (the EUC-KR
// repertoire, the syllables ordinary Korean text uses), in code order.
// They are decoded from EUC-KR rows 0xB0–0xC8, cells 0xA1–0xFE rather than
// typed in, so the list cannot drift from the standard.
func Hangul2350() []rune {
	out, err := hangul2350()
	if err != nil {
		// The decoder is a fixed table; failure means a broken x/text build.
		panic(err)
	}
	return out
}

func hangul2350() ([]rune, error) {
	src := make([]byte, 0, 2350*2)
	for hi := 0xB0; hi <= 0xC8; hi++ {
		for lo := 0xA1; lo <= 0xFE; lo++ {
			src = append(src, byte(hi), byte(lo))
		}
	}
	dst, err := korean.EUCKR.NewDecoder().Bytes(src)
	if err != nil {
		return nil, fmt.Errorf("decode EUC-KR Hangul block: %w", err)
	}
	out := make([]rune, 0, 2350)
	for len(dst) > 0 {
		r, n := utf8.DecodeRune(dst)
		dst = dst[n:]
		if r < 0xAC00 || r > 0xD7A3 {
			return nil, fmt.Errorf("EUC-KR Hangul block decoded to non-syllable %U", r)
		}
		out = append(out, r)
	}
	return out, nil
}
