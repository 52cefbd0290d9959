package server

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"math"
	"strings"
	"unicode/utf8"

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
//
// With server.state_precision float16, flags bit 2 says the model state's
// tensors are written as uvarint count, then per tensor uvarint
// (length<<1 | half) and the values as float16 (half = 1, every value in
// range) or float32, little-endian. That form also writes scores (score, family_prob,
// recent, a reason's delta and prior) as f32, the level as one byte
// (0 none, 1 suspicious, 2 dangerous, 3 a string follows), a reason's text
// packed (appendText: a Hangul syllable in 2 bytes instead of 3) and its
// times as whole milliseconds where that is exact (appendTime). The server
// rounds the state and the scores before it seals (roundStateHalf), so the
// encoding itself loses nothing.

const codecVersion = 2

// Flag bits of the header's second byte.
const (
	flagStarted = 1
	flagSHA     = 2
	flagHalf    = 4
)

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendF64(b []byte, f float64) []byte {
	return binary.LittleEndian.AppendUint64(b, math.Float64bits(f))
}

func appendF32(b []byte, f float64) []byte {
	return binary.LittleEndian.AppendUint32(b, math.Float32bits(float32(f)))
}

// appendText writes s as uvarint(length<<1) + bytes where each byte below
// 0x80 is that ASCII character, a byte 0x80-0xAB and the next are a Hangul
// syllable (U+AC00 + 14 bits), and 0xFF is followed by any other rune as a
// uvarint; a text that is not valid UTF-8 is written as
// uvarint(length<<1 | 1) + its bytes. Korean transcript text shrinks by
// about a quarter.
func appendText(b []byte, s string) []byte {
	if !utf8.ValidString(s) {
		return append(binary.AppendUvarint(b, uint64(len(s))<<1|1), s...)
	}
	var p []byte
	for _, r := range s {
		switch {
		case r < 0x80:
			p = append(p, byte(r))
		case r >= hangulFirst && r <= hangulLast:
			i := r - hangulFirst
			p = append(p, byte(0x80+i>>8), byte(i))
		default:
			p = binary.AppendUvarint(append(p, 0xFF), uint64(r))
		}
	}
	return append(binary.AppendUvarint(b, uint64(len(p))<<1), p...)
}

const hangulFirst, hangulLast = 0xAC00, 0xD7A3

// appendTime writes t as uvarint(ms<<1) when t is a whole number of
// milliseconds in [0, 2^52) (t == ms/1000 exactly, as STT times are), else
// as uvarint(1) + f64.
func appendTime(b []byte, t float64) []byte {
	if ms := math.Round(t * 1000); ms >= 0 && ms < 1<<52 && ms/1000 == t {
		return binary.AppendUvarint(b, uint64(ms)<<1)
	}
	return appendF64(binary.AppendUvarint(b, 1), t)
}

// Levels as one byte in a float16 token.
const (
	levelNone byte = iota
	levelSuspicious
	levelDangerous
	levelOther // a string follows
)

func levelCode(l callwatch.Level) byte {
	switch l {
	case callwatch.LevelNone:
		return levelNone
	case callwatch.LevelSuspicious:
		return levelSuspicious
	case callwatch.LevelDangerous:
		return levelDangerous
	}
	return levelOther
}

// appendTensors writes ts as float32, or with half as float16 where a
// tensor fits (its length then carries the choice in its low bit).
func appendTensors(b []byte, ts [][]float32, half bool) []byte {
	b = binary.AppendUvarint(b, uint64(len(ts)))
	for _, t := range ts {
		h := half && halfable(t)
		if half {
			b = binary.AppendUvarint(b, uint64(len(t))<<1|uint64(b2u8(h)))
		} else {
			b = binary.AppendUvarint(b, uint64(len(t)))
		}
		for _, v := range t {
			if h {
				b = binary.LittleEndian.AppendUint16(b, toHalf(v))
			} else {
				b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
			}
		}
	}
	return b
}

// encodeState writes a token's plaintext; half writes the float16 form.
func encodeState(callID, handle string, chain digest, st callwatch.SessionState, half bool) ([]byte, error) {
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
		flags |= flagStarted
	}
	sha, err := hex.DecodeString(st.ModelSHA256)
	if err == nil && len(sha) == 32 && hex.EncodeToString(sha) == st.ModelSHA256 {
		flags |= flagSHA
	}
	if half {
		flags |= flagHalf
	}
	b = append(b, codecVersion, flags)
	if flags&flagSHA != 0 {
		b = append(b, sha...)
	} else {
		b = appendString(b, st.ModelSHA256)
	}
	b = appendString(b, callID)
	b = append(b, h...)
	b = append(b, chain[:]...)
	// Scores as float32 in a float16 token (roundStateHalf rounded them).
	score := appendF64
	if half {
		score = appendF32
	}
	b = score(b, st.Score)
	if k := levelCode(st.Level); half && k != levelOther {
		b = append(b, k)
	} else {
		if half {
			b = append(b, levelOther)
		}
		b = appendString(b, string(st.Level))
	}
	b = appendString(b, st.Family)
	b = score(b, st.FamilyProb)
	b = binary.AppendUvarint(b, uint64(len(st.Recent)))
	for _, r := range st.Recent {
		b = score(b, r)
	}
	b = binary.AppendVarint(b, int64(st.Segments))
	b = binary.AppendVarint(b, int64(st.Tokens))
	b = appendTensors(b, st.State, half)
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
		if half {
			b = appendText(b, t.Text)
			b = appendTime(b, t.Start)
			b = appendTime(b, t.End)
		} else {
			b = appendString(b, t.Text)
			b = appendF64(b, t.Start)
			b = appendF64(b, t.End)
		}
		b = binary.AppendVarint(b, int64(t.Index))
		b = score(b, t.Delta)
		if found {
			b = binary.AppendUvarint(b, uint64(t.PhraseAt))
			b = binary.AppendUvarint(b, uint64(t.PhraseWords))
		} else {
			b = score(b, t.Prior)
			b = appendTensors(b, t.State, false)
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

func (r *reader) text() string {
	v := r.uvarint()
	if r.err == nil && v>>1 > uint64(len(r.b)) {
		r.err = errShort
	}
	p := r.bytes(int(v >> 1))
	if r.err != nil {
		return ""
	}
	if v&1 == 1 {
		return string(p)
	}
	var sb strings.Builder
	for len(p) > 0 {
		c := p[0]
		switch {
		case c < 0x80:
			sb.WriteByte(c)
			p = p[1:]
		case c <= 0xAB && len(p) >= 2:
			i := rune(c-0x80)<<8 | rune(p[1])
			if i > hangulLast-hangulFirst {
				r.err = errors.New("bad packed text")
				return ""
			}
			sb.WriteRune(hangulFirst + i)
			p = p[2:]
		case c == 0xFF:
			v, n := binary.Uvarint(p[1:])
			if n <= 0 || v > utf8.MaxRune || !utf8.ValidRune(rune(v)) {
				r.err = errors.New("bad packed text")
				return ""
			}
			sb.WriteRune(rune(v))
			p = p[1+n:]
		default:
			r.err = errors.New("bad packed text")
			return ""
		}
	}
	return sb.String()
}

func (r *reader) time() float64 {
	v := r.uvarint()
	switch {
	case v == 1:
		return r.f64()
	case v&1 == 0 && v>>1 < 1<<52:
		return float64(v>>1) / 1000
	}
	if r.err == nil {
		r.err = errors.New("bad time")
	}
	return 0
}

func (r *reader) f32() float64 {
	b := r.bytes(4)
	if b == nil {
		return 0
	}
	return float64(math.Float32frombits(binary.LittleEndian.Uint32(b)))
}

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

// tensors reads what appendTensors wrote with the same half.
func (r *reader) tensors(half bool) [][]float32 {
	n := r.count(1)
	if n == 0 {
		return nil
	}
	out := make([][]float32, 0, n)
	for range n {
		m, size := r.uvarint(), uint64(4)
		if half {
			if m&1 == 1 {
				size = 2
			}
			m >>= 1
		}
		if r.err == nil && m > uint64(len(r.b))/size {
			r.err = errShort
		}
		raw := r.bytes(int(m * size))
		if r.err != nil {
			return nil
		}
		t := make([]float32, m)
		for i := range t {
			if size == 2 {
				t[i] = fromHalf(binary.LittleEndian.Uint16(raw[2*i:]))
			} else {
				t[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
			}
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
	if flags&^(flagStarted|flagSHA|flagHalf) != 0 {
		return p, chain, errors.New("unknown flags")
	}
	st := &p.State
	st.Started = flags&flagStarted != 0
	if flags&flagSHA != 0 {
		st.ModelSHA256 = hex.EncodeToString(r.bytes(32))
	} else {
		st.ModelSHA256 = r.str()
	}
	p.CallID = r.str()
	p.Handle = base64.RawURLEncoding.EncodeToString(r.bytes(16))
	copy(chain[:], r.bytes(16))
	p.Chain = chain.String()
	half := flags&flagHalf != 0
	score, size := r.f64, 8
	if half {
		score, size = r.f32, 4
	}
	st.Score = score()
	if half {
		switch k := r.bytes(1); {
		case k == nil:
		case k[0] < levelOther:
			st.Level = []callwatch.Level{callwatch.LevelNone, callwatch.LevelSuspicious, callwatch.LevelDangerous}[k[0]]
		case k[0] == levelOther:
			st.Level = callwatch.Level(r.str())
		default:
			return p, chain, errors.New("bad level")
		}
	} else {
		st.Level = callwatch.Level(r.str())
	}
	st.Family = r.str()
	st.FamilyProb = score()
	if n := r.count(size); n > 0 {
		st.Recent = make([]float64, n)
		for i := range st.Recent {
			st.Recent[i] = score()
		}
	}
	st.Segments = r.varint()
	st.Tokens = r.varint()
	st.State = r.tensors(half)
	if n := r.count(28); n > 0 {
		st.Top = make([]callwatch.TopSegment, n)
		for i := range st.Top {
			t := &st.Top[i]
			flags := r.bytes(1)
			if r.err != nil || flags[0] > 1 {
				return p, chain, errors.New("bad reason flags")
			}
			if half {
				t.Text = r.text()
				t.Start, t.End = r.time(), r.time()
			} else {
				t.Text = r.str()
				t.Start, t.End = r.f64(), r.f64()
			}
			t.Index = r.varint()
			t.Delta = score()
			if flags[0] == 1 {
				t.PhraseAt, t.PhraseWords = r.small(), r.small()
				if r.err == nil && t.PhraseWords == 0 {
					return p, chain, errors.New("a found phrase of no words")
				}
			} else {
				t.Prior = score()
				t.State = r.tensors(false)
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
