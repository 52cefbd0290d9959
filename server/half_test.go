package server

import (
	"math"
	"strings"
	"testing"
	"unicode/utf8"
)

// TestHalfConversion checks the float16 rounding against known encodings
// and exhaustively against every float16 value (round trip, and that
// rounding a value between two neighbours picks the nearer, ties to even).
func TestHalfConversion(t *testing.T) {
	known := []struct {
		f float32
		h uint16
	}{
		{0, 0}, {1, 0x3c00}, {-2, 0xc000}, {65504, 0x7bff}, {0.5, 0x3800},
		{5.960464477539063e-08, 0x0001}, {6.097555160522461e-05, 0x03ff}, {6.103515625e-05, 0x0400},
		{0.333333333, 0x3555}, {1.0009765625 / 2 * 2, 0x3c01}, {2.9802322e-08, 0}, {2049, 0x6800}, {2051, 0x6802},
	}
	for _, k := range known {
		if got := toHalf(k.f); got != k.h {
			t.Errorf("toHalf(%v) = %#04x, want %#04x", k.f, got, k.h)
		}
	}
	for h := 0; h < 0x7c00; h++ { // every finite non-negative half
		f := fromHalf(uint16(h))
		if got := toHalf(f); got != uint16(h) {
			t.Fatalf("round trip %#04x -> %v -> %#04x", h, f, got)
		}
		if got := toHalf(-f); got != uint16(h)|0x8000 {
			t.Fatalf("round trip of -%v: %#04x", f, got)
		}
		if h == 0x7bff {
			continue
		}
		next := fromHalf(uint16(h + 1))
		mid := float32((float64(f) + float64(next)) / 2)
		want := uint16(h)
		if h&1 == 1 {
			want = uint16(h + 1)
		}
		if got := toHalf(mid); got != want {
			t.Fatalf("toHalf(%v) between %#04x and %#04x = %#04x, want %#04x (ties to even)", mid, h, h+1, got, want)
		}
		if got := toHalf(math.Nextafter32(mid, 0)); got != uint16(h) {
			t.Fatalf("just below the midpoint after %#04x: %#04x", h, got)
		}
		if got := toHalf(math.Nextafter32(mid, 1e9)); got != uint16(h+1) {
			t.Fatalf("just above the midpoint after %#04x: %#04x", h, got)
		}
	}
	if halfable([]float32{1, 70000}) || !halfable([]float32{-65504, 3}) || halfable([]float32{float32(math.NaN())}) {
		t.Error("halfable")
	}
}

// TestPackedTextAndTimes: the float16 token's text and time encodings give
// back exactly what went in, and refuse malformed input.
func TestPackedTextAndTimes(t *testing.T) {
	texts := []string{"", "abc 123", "여보세요 서울중앙지검 수사관입니다", "가힣", "mixed 한글 and ascii!", "emoji 😀 and 中文 and ㄱ",
		"\xff\xfe invalid utf8", string([]byte{0xed, 0xa0, 0x80})}
	for _, tx := range texts {
		b := appendText(nil, tx)
		r := &reader{b: b}
		if got := r.text(); r.err != nil || got != tx || len(r.b) != 0 {
			t.Errorf("text %q: got %q, err %v, %d bytes left", tx, got, r.err, len(r.b))
		}
		if len(tx) > 20 && utf8.ValidString(tx) && len(b) >= len(tx) && strings.Contains(tx, "여") {
			t.Errorf("text %q packed to %d bytes, no smaller than %d", tx, len(b), len(tx))
		}
	}
	for _, v := range []float64{0, 12.34, 0.001, 3600.5, 1e-9, 12.3456, -1, 1e300, math.MaxFloat64} {
		b := appendTime(nil, v)
		r := &reader{b: b}
		if got := r.time(); r.err != nil || got != v || len(r.b) != 0 {
			t.Errorf("time %v: got %v, err %v", v, got, r.err)
		}
	}
	if n := len(appendTime(nil, 12.34)); n > 3 {
		t.Errorf("12.34 s took %d bytes", n)
	}
	long := strings.Repeat("가", 63) // 126 packed bytes: the length's first byte is 0xFC
	if r := (&reader{b: appendText(nil, long)}); r.text() != long || r.err != nil {
		t.Errorf("63 syllables: %v", r.err)
	}
	for _, bad := range [][]byte{{4, 0xAB, 0xFF}, {2, 0xC0}, {4, 0xFF, 0xFF}, {2, 0x80}, {6}, {7, 'a'}} {
		r := &reader{b: bad}
		if r.text(); r.err == nil {
			t.Errorf("packed text % x accepted", bad)
		}
	}
	for _, bad := range [][]byte{{3}, {1}, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}} {
		r := &reader{b: bad}
		if r.time(); r.err == nil {
			t.Errorf("time % x accepted", bad)
		}
	}
}

// FuzzPackedText: any string round-trips; any bytes decode or are refused.
func FuzzPackedText(f *testing.F) {
	f.Add("여보세요 😀", []byte{8, 0x80, 0x00, 'a', 0xFF})
	f.Fuzz(func(t *testing.T, s string, raw []byte) {
		r := &reader{b: appendText(nil, s)}
		if got := r.text(); r.err != nil || got != s {
			t.Fatalf("%q: got %q, %v", s, got, r.err)
		}
		r = &reader{b: raw}
		got := r.text()
		if r.err == nil && !utf8.ValidString(got) && (len(raw) == 0 || raw[0]&1 == 0) {
			t.Fatalf("% x decoded to invalid UTF-8 %q", raw, got)
		}
	})
}
