package tokenize

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// asciiPunct is Rust's char::is_ascii_punctuation: ! to /, : to @, [ to `, { to ~.
var asciiPunct = &unicode.RangeTable{
	R16: []unicode.Range16{
		{Lo: 0x21, Hi: 0x2f, Stride: 1},
		{Lo: 0x3a, Hi: 0x40, Stride: 1},
		{Lo: 0x5b, Hi: 0x60, Stride: 1},
		{Lo: 0x7b, Hi: 0x7e, Stride: 1},
	},
	LatinOffset: 4,
}

// isPunct is the punctuation test of HF's Punctuation and BertPreTokenizer
// (is_bert_punc: ASCII punctuation or Unicode P*), the same as sugarme's.
func isPunct(r rune) bool { return unicode.In(r, asciiPunct, unicode.P) }

// isDigit is HF's Digits test (char::is_numeric: Nd, Nl, No), the same as
// sugarme's unicode.IsNumber.
func isDigit(r rune) bool { return unicode.IsNumber(r) }

// preTokenize splits cleaned text exactly like the pre-tokenizer written by
// WriteTokenizerJSON: Sequence[WhitespaceSplit, Digits(individual_digits),
// Punctuation(Isolated)]. Every digit and every punctuation character is a
// word of its own. Text must already be cleaned (only ' ' as space).
func preTokenize(text string, emit func(word string)) {
	splitWords(text, func(r rune) bool { return isDigit(r) || isPunct(r) }, emit)
}

// splitWords splits cleaned text at spaces (removed) and around every rune
// for which isolated reports true (kept as a word of its own).
func splitWords(text string, isolated func(rune) bool, emit func(word string)) {
	for field := range strings.SplitSeq(text, " ") {
		start := 0
		for i := 0; i < len(field); {
			r, n := utf8.DecodeRuneInString(field[i:])
			if isolated(r) {
				if i > start {
					emit(field[start:i])
				}
				emit(field[i : i+n])
				start = i + n
			}
			i += n
		}
		if start < len(field) {
			emit(field[start:])
		}
	}
}
