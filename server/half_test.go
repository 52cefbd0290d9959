package server

import (
	"math"
	"testing"
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
