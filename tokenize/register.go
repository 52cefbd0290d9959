package tokenize

import (
	"strings"
	"unicode/utf8"
)

// NormalizerPoliteEndings names the register normalizer in card.json
// ("text_normalizer"): formal sentence endings (하십시오체: 합니다, 십니까,
// 입니다) are rewritten to the polite level (해요체: 해요, 세요, 이에요)
// before WordPiece, in training and at inference alike.
//
// Why: on real calls the speech level ranks calls in opposite directions
// (scripts/README.md, round 15): call-centre normals are the most formal calls
// of one file, scams the most formal of the others. Formal and polite are the
// two levels an agent, real or fake, speaks in, so the difference between them
// says who is calling (a call centre) and not what they want; folding them
// leaves the model the request itself. Casual speech (반말) is kept.
const NormalizerPoliteEndings = "polite-endings"

// normalizers lists the text normalizers this package implements.
var normalizers = []string{NormalizerPoliteEndings}

// KnownNormalizer reports whether name is "" (none) or a normalizer this
// package implements.
func KnownNormalizer(name string) bool {
	if name == "" {
		return true
	}
	for _, n := range normalizers {
		if n == name {
			return true
		}
	}
	return false
}

// politeSuffixes maps formal word endings to polite ones, longest first so
// the first match is the longest.
var politeSuffixes = [...]struct{ from, to string }{
	{"드리겠습니다", "드릴게요"},
	{"하겠습니다", "할게요"}, {"하겠습니까", "할까요"},
	{"하십시오", "하세요"},
	{"겠습니다", "겠어요"}, {"겠습니까", "겠어요"},
	{"십시오", "세요"},
	{"합니다", "해요"}, {"됩니다", "돼요"}, {"십니다", "세요"}, {"립니다", "려요"},
	{"합니까", "해요"}, {"됩니까", "돼요"}, {"십니까", "세요"}, {"습니까", "어요"},
	{"습니다", "어요"},
}

// politeCandidate reports whether PoliteEndings may rewrite word: it ends
// in 다, 까 or 오.
func politeCandidate(word string) bool {
	last, _ := utf8.DecodeLastRuneInString(word)
	return last == '다' || last == '까' || last == '오'
}

const (
	hangulFirst, hangulLast = 0xAC00, 0xD7A3
	finalB                  = 17 // ㅂ as a syllable's final consonant
)

func finalOf(r rune) int {
	if r < hangulFirst || r > hangulLast {
		return -1
	}
	return int(r-hangulFirst) % 28
}

// PoliteEndings rewrites a formal ending at the end of word (one
// pre-tokenized word: no spaces, digits or punctuation inside) to the polite
// level, and returns word unchanged otherwise. It is idempotent, and a word
// that does not end in 다, 까 or 오 is returned at once.
//
// The rules are those of scripts/corpus/register.py's shift_down: a table of
// fixed endings; 입니다/입니까 after a syllable → 예요 after a vowel, 이에요
// after a consonant; any other syllable with a final ㅂ before 니다/니까
// (갑니다) loses the ㅂ and takes 요 (가요).
func PoliteEndings(word string) string {
	if !politeCandidate(word) {
		return word
	}
	last, n := utf8.DecodeLastRuneInString(word)
	for _, s := range politeSuffixes {
		if strings.HasSuffix(word, s.from) {
			return word[:len(word)-len(s.from)] + s.to
		}
	}
	if last == '오' {
		return word
	}
	stem := word[:len(word)-n] // word without 다/까
	ni, m := utf8.DecodeLastRuneInString(stem)
	if ni != '니' {
		return word
	}
	stem = stem[:len(stem)-m] // without 니다/니까
	prev, k := utf8.DecodeLastRuneInString(stem)
	if prev == '입' && len(stem) > k {
		if p, _ := utf8.DecodeLastRuneInString(stem[:len(stem)-k]); finalOf(p) >= 0 {
			if finalOf(p) == 0 {
				return stem[:len(stem)-k] + "예요"
			}
			return stem[:len(stem)-k] + "이에요"
		}
	}
	if finalOf(prev) != finalB {
		return word
	}
	return stem[:len(stem)-k] + string(prev-finalB) + "요"
}
