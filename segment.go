package callwatch

import (
	"strings"
	"unicode"

	"github.com/callwatch/callwatch/tokenize"
)

// SpeechRate is the default speaking rate used to give times to transcripts
// that have none: Korean speech runs at about 4–5 syllables per second.
const SpeechRate = 4.5

// segmentPause is the silence assumed between two segments, in seconds.
const segmentPause = 0.3

// maxSegmentWords caps a segment when the text has no sentence punctuation
// (STT often emits none): about one spoken sentence.
const maxSegmentWords = 12

// SplitSegments cuts a transcript without timestamps into sentence-sized
// segments and gives them times from rate (syllables per second; <= 0 means
// SpeechRate). A segment ends at sentence punctuation or after
// maxSegmentWords words. Joining the segments' texts with spaces gives the
// cleaned transcript, so streamed and whole-call scores agree.
func SplitSegments(text string, rate float64) []Segment {
	if rate <= 0 {
		rate = SpeechRate
	}
	words := strings.Fields(tokenize.Clean(text))
	var segs []Segment
	t := 0.0
	var cur []string
	flush := func() {
		if len(cur) == 0 {
			return
		}
		s := strings.Join(cur, " ")
		dur := syllables(s) / rate
		segs = append(segs, Segment{Text: s, Start: round2(t), End: round2(t + dur)})
		t += dur + segmentPause
		cur = cur[:0]
	}
	for _, w := range words {
		cur = append(cur, w)
		last, _ := lastRune(w)
		if last == '.' || last == '?' || last == '!' || last == '。' || len(cur) >= maxSegmentWords {
			flush()
		}
	}
	flush()
	return segs
}

// syllables approximates spoken syllables: one per Hangul syllable or
// digit, one per two Latin letters.
func syllables(s string) float64 {
	n := 0.0
	for _, r := range s {
		switch {
		case r >= 0xAC00 && r <= 0xD7A3, unicode.IsDigit(r):
			n++
		case unicode.IsLetter(r):
			n += 0.5
		}
	}
	if n < 1 {
		n = 1
	}
	return n
}

func lastRune(s string) (rune, bool) {
	r := []rune(s)
	if len(r) == 0 {
		return 0, false
	}
	return r[len(r)-1], true
}

func round2(f float64) float64 { return float64(int64(f*100+0.5)) / 100 }
