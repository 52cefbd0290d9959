package server

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"math"

	"github.com/callwatch/callwatch"
)

// The binary form of a token's plaintext (version 2):
//
//	version byte (2), flags byte (bit 0: started; bit 1: model sha256 as 32
//	raw bytes, else a string)
//	model sha256, call id (string), handle (16 bytes), chain (16 bytes)
//	score f64, level (string), family (string), family_prob f64
//	recent: uvarint n, n × f64; segments, tokens: varint
//	state: tensors as f32; top: uvarint n, n × {flags byte (bit 0: phrase
//	found), text (string), start f64, end f64, index varint, delta f64,
//	then the phrase's first word and word count (uvarints) if found, else
//	prior f64 and the state before the segment (tensors as f32)}
//
// strings are uvarint length + bytes; tensors are uvarint count, then per
// tensor uvarint length + values, little-endian. Every number is exact:
// a call continued from a token scores as it would have in one process.
// The server finds each reason's phrase before it seals (ResolveReasons),
// so a token carries two small numbers per reason instead of a model state
// (version 1 carried those states as float16: 8 KB for 3 reasons).

const codecVersion = 2

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendF64(b []byte, f float64) []byte {
	return binary.LittleEndian.AppendUint64(b, math.Float64bits(f))
}

func appendTensors(b []byte, ts [][]float32) []byte {
	b = binary.AppendUvarint(b, uint64(len(ts)))
	for _, t := range ts {
		b = binary.AppendUvarint(b, uint64(len(t)))
		for _, v := range t {
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
		}
	}
	return b
}

func encodeState(callID, handle string, chain digest, st callwatch.SessionState) ([]byte, error) {
	h, err := base64.RawURLEncoding.DecodeString(handle)
	if err != nil || len(h) != 16 {
		return nil, errors.New("bad handle")
	}
	for _, f := range append([]float64{st.Score, st.FamilyProb}, st.Recent...) {
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, errors.New("a score is not finite")
		}
	}
	n := 128 + len(callID) + len(st.Family)
	for _, t := range st.State {
		n += 4*len(t) + 4
	}
	for _, t := range st.Top {
		n += len(t.Text) + 56
		for _, s := range t.State {
			n += 4*len(s) + 4
		}
	}
	b := make([]byte, 0, n)
	var flags byte
	if st.Started {
		flags |= 1
	}
	sha, err := hex.DecodeString(st.ModelSHA256)
	if err == nil && len(sha) == 32 && hex.EncodeToString(sha) == st.ModelSHA256 {
		flags |= 2
	}
	b = append(b, codecVersion, flags)
	if flags&2 != 0 {
		b = append(b, sha...)
	} else {
		b = appendString(b, st.ModelSHA256)
	}
	b = appendString(b, callID)
	b = append(b, h...)
	b = append(b, chain[:]...)
	b = appendF64(b, st.Score)
	b = appendString(b, string(st.Level))
	b = appendString(b, st.Family)
	b = appendF64(b, st.FamilyProb)
	b = binary.AppendUvarint(b, uint64(len(st.Recent)))
	for _, r := range st.Recent {
		b = appendF64(b, r)
	}
	b = binary.AppendVarint(b, int64(st.Segments))
	b = binary.AppendVarint(b, int64(st.Tokens))
	b = appendTensors(b, st.State)
	b = binary.AppendUvarint(b, uint64(len(st.Top)))
	for _, t := range st.Top {
		for _, f := range []float64{t.Start, t.End, t.Delta, t.Prior} {
			if math.IsNaN(f) || math.IsInf(f, 0) {
				return nil, errors.New("a reason's number is not finite")
			}
		}
		if t.PhraseAt < 0 || t.PhraseWords < 0 {
			return nil, errors.New("a reason's phrase is out of range")
		}
		found := t.PhraseWords > 0
		b = append(b, b2u8(found))
		b = appendString(b, t.Text)
		b = appendF64(b, t.Start)
		b = appendF64(b, t.End)
		b = binary.AppendVarint(b, int64(t.Index))
		b = appendF64(b, t.Delta)
		if found {
			b = binary.AppendUvarint(b, uint64(t.PhraseAt))
			b = binary.AppendUvarint(b, uint64(t.PhraseWords))
		} else {
			b = appendF64(b, t.Prior)
			b = appendTensors(b, t.State)
		}
	}
	return b, nil
}

func b2u8(v bool) byte {
	if v {
		return 1
	}
	return 0
}

var errShort = errors.New("truncated")

type reader struct {
	b   []byte
	err error
}

func (r *reader) bytes(n int) []byte {
	if r.err != nil || n < 0 || n > len(r.b) {
		r.err = errShort
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errShort
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 || v > math.MaxInt32 || v < math.MinInt32 {
		r.err = errShort
		return 0
	}
	r.b = r.b[n:]
	return int(v)
}

// count reads a length that cannot exceed what is left at size bytes each.
func (r *reader) count(size int) int {
	v := r.uvarint()
	if r.err == nil && v > uint64(len(r.b)/max(size, 1)) {
		r.err = errShort
		return 0
	}
	return int(v)
}

func (r *reader) str() string { return string(r.bytes(r.count(1))) }

func (r *reader) f64() float64 {
	b := r.bytes(8)
	if b == nil {
		return 0
	}
	return math.Float64frombits(binary.LittleEndian.Uint64(b))
}

// small reads a uvarint that must be a small count (a word index).
func (r *reader) small() int {
	v := r.uvarint()
	if v > math.MaxInt32 {
		r.err = errShort
		return 0
	}
	return int(v)
}

func (r *reader) tensors() [][]float32 {
	const size = 4
	n := r.count(1)
	if n == 0 {
		return nil
	}
	out := make([][]float32, 0, n)
	for range n {
		m := r.count(size)
		raw := r.bytes(m * size)
		if r.err != nil {
			return nil
		}
		t := make([]float32, m)
		for i := range t {
			t[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
		out = append(out, t)
	}
	return out
}

func decodeState(b []byte) (tokenPayload, digest, error) {
	var p tokenPayload
	var chain digest
	r := &reader{b: b}
	head := r.bytes(2)
	switch {
	case r.err != nil:
		return p, chain, r.err
	case head[0] == 1:
		return p, chain, errors.New("an older encoding (version 1, reason states as float16), no longer read; start the call again with seq 0")
	case head[0] != codecVersion:
		return p, chain, errors.New("unknown encoding")
	}
	flags := head[1]
	st := &p.State
	st.Started = flags&1 != 0
	if flags&2 != 0 {
		st.ModelSHA256 = hex.EncodeToString(r.bytes(32))
	} else {
		st.ModelSHA256 = r.str()
	}
	p.CallID = r.str()
	p.Handle = base64.RawURLEncoding.EncodeToString(r.bytes(16))
	copy(chain[:], r.bytes(16))
	p.Chain = chain.String()
	st.Score = r.f64()
	st.Level = callwatch.Level(r.str())
	st.Family = r.str()
	st.FamilyProb = r.f64()
	if n := r.count(8); n > 0 {
		st.Recent = make([]float64, n)
		for i := range st.Recent {
			st.Recent[i] = r.f64()
		}
	}
	st.Segments = r.varint()
	st.Tokens = r.varint()
	st.State = r.tensors()
	if n := r.count(28); n > 0 {
		st.Top = make([]callwatch.TopSegment, n)
		for i := range st.Top {
			t := &st.Top[i]
			flags := r.bytes(1)
			if r.err != nil || flags[0] > 1 {
				return p, chain, errors.New("bad reason flags")
			}
			t.Text = r.str()
			t.Start, t.End = r.f64(), r.f64()
			t.Index = r.varint()
			t.Delta = r.f64()
			if flags[0] == 1 {
				t.PhraseAt, t.PhraseWords = r.small(), r.small()
				if r.err == nil && t.PhraseWords == 0 {
					return p, chain, errors.New("a found phrase of no words")
				}
			} else {
				t.Prior = r.f64()
				t.State = r.tensors()
			}
		}
	}
	if r.err != nil {
		return p, chain, r.err
	}
	if len(r.b) != 0 {
		return p, chain, errors.New("trailing bytes")
	}
	if !validHandle(p.Handle) {
		return p, chain, errors.New("no valid call handle")
	}
	return p, chain, nil
}
