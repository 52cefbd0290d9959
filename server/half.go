package server

import (
	"math"
	"slices"

	"github.com/callwatch/callwatch"
)

// State precision of stream tokens (server.state_precision).
const (
	// PrecisionFloat32 carries the model state exactly: a call continued
	// from a token scores as it would have in one process.
	PrecisionFloat32 = "float32"
	// PrecisionFloat16 carries it as IEEE half floats, and the server
	// rounds the state to them after every segment, whichever replica
	// continues the call, so that scores never depend on where a segment
	// was served. They differ from scoring the call whole by the rounding
	// (TestHalfTokens measures it); the token is about half the size.
	PrecisionFloat16 = "float16"
)

// halfMax is the largest finite float16. A tensor with a value beyond it
// (a pooled sum of a very long call) travels as float32.
const halfMax = 65504

// toHalf rounds f to the nearest float16 (ties to even) and returns its bits.
// f must be finite and |f| <= halfMax.
func toHalf(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int(b>>23&0xff) - 127 + 15
	mant := b & 0x7fffff
	switch {
	case exp >= 31: // beyond the range; callers keep such tensors as float32
		return sign | 0x7c00
	case exp <= 0: // subnormal half (or zero)
		if exp < -10 {
			return sign
		}
		mant |= 0x800000
		shift := uint32(14 - exp)
		h := mant >> shift
		rem := mant & (1<<shift - 1)
		half := uint32(1) << (shift - 1)
		if rem > half || rem == half && h&1 == 1 {
			h++
		}
		return sign | uint16(h)
	}
	h := uint32(exp)<<10 | mant>>13
	rem := mant & 0x1fff
	if rem > 0x1000 || rem == 0x1000 && h&1 == 1 {
		h++ // may carry into the exponent, which is the correct rounding
	}
	return sign | uint16(h)
}

// fromHalf returns the float32 value of the float16 bits h.
func fromHalf(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h >> 10 & 0x1f)
	mant := uint32(h & 0x3ff)
	switch {
	case exp == 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case exp == 0:
		if mant == 0 {
			return math.Float32frombits(sign)
		}
		f := float32(mant) / (1 << 24) // subnormal: mant × 2^-24
		if sign != 0 {
			f = -f
		}
		return f
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
}

// halfable reports whether every value of t is a finite float16 magnitude.
func halfable(t []float32) bool {
	for _, v := range t {
		if !(math.Abs(float64(v)) <= halfMax) {
			return false
		}
	}
	return true
}

// roundStateHalf rounds a session's model state to float16 (each tensor
// that fits) and its scores to float32, exactly as a float16 token carries
// them.
func roundStateHalf(st *callwatch.SessionState) {
	f32 := func(f float64) float64 { return float64(float32(f)) }
	st.Score, st.FamilyProb = f32(st.Score), f32(st.FamilyProb)
	// Copies: the snapshot's slices may be shared with the session.
	st.Recent = slices.Clone(st.Recent)
	for i, r := range st.Recent {
		st.Recent[i] = f32(r)
	}
	st.Top = slices.Clone(st.Top)
	for i := range st.Top {
		st.Top[i].Delta, st.Top[i].Prior = f32(st.Top[i].Delta), f32(st.Top[i].Prior)
	}
	st.State = slices.Clone(st.State)
	for i, t := range st.State {
		if !halfable(t) {
			continue
		}
		r := make([]float32, len(t))
		for j, v := range t {
			r[j] = fromHalf(toHalf(v))
		}
		st.State[i] = r
	}
}
