package server

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/callwatch/callwatch"
)

// The state token carries a call's whole streaming state to the client and
// back, so that any replica holding the key can continue the call:
//
//	"cw3." kid "." base64url(salt[16] || AES-256-GCM(k, nonce 0, binary state, ad "cw3." kid))
//
// with k = HMAC-SHA256(key[kid], "callwatch cw3\x00" || salt) and salt =
// HMAC-SHA256(key[kid], "callwatch cw3 salt\x00" || plaintext)[:16]: a key
// per distinct state, so the GCM nonce never repeats under one key however
// many tokens a key seals, and a state seals to the same token every time. The state
// is encrypted, so the transcript text of reason candidates is not
// readable, and authenticated, so a token that was changed does not open.
//
// kid names the key that sealed it (server.state_keys), so keys rotate
// without breaking calls in progress. The plaintext is a compact binary
// encoding (encodeState): varints, float64 scalars, the model state as
// float32, and each reason candidate as its text, times, score rise and the
// place of its phrase (found before sealing), all exact. It binds the call
// id, the call's random handle (its identity, chosen when its first segment
// was scored) and chain, a digest of every segment the call has read, so a
// replica that saw the call continue one way refuses a token that continued
// it another (a fork). The state's segment count is the call's sequence
// number.

const tokenPrefix = "cw3."

type tokenPayload struct {
	CallID string
	Handle string
	Chain  string
	State  callwatch.SessionState
}

// ErrBadToken is wrapped by every token verification failure.
var ErrBadToken = errors.New("invalid state token")

type signer struct {
	keys []StateKey // keys[0] seals
	half bool       // model state as float16 (server.state_precision), already rounded by the caller
}

const saltLen = 16

func tokenAEAD(key, salt []byte) cipher.AEAD {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("callwatch cw3\x00"))
	m.Write(salt)
	block, err := aes.NewCipher(m.Sum(nil))
	if err != nil {
		panic(err) // a 32-byte key always makes a cipher
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic(err)
	}
	return aead
}

var zeroNonce [12]byte

func (s signer) sign(callID, handle string, chain digest, st callwatch.SessionState) (string, error) {
	plain, err := encodeState(callID, handle, chain, st, s.half)
	if err != nil {
		return "", err
	}
	k := s.keys[0]
	head := tokenPrefix + k.ID + "."
	// The salt is a MAC of the plaintext (as in SIV): the same state seals
	// to the same token (a retried segment answers the same bytes), and two
	// different states never share a salt, so never a key and nonce.
	m := hmac.New(sha256.New, k.Key)
	m.Write([]byte("callwatch cw3 salt\x00"))
	m.Write(plain)
	sealed := make([]byte, saltLen, saltLen+len(plain)+16)
	copy(sealed, m.Sum(nil)[:saltLen])
	sealed = tokenAEAD(k.Key, sealed[:saltLen]).Seal(sealed, zeroNonce[:], plain, []byte(head))
	out := make([]byte, len(head)+base64.RawURLEncoding.EncodedLen(len(sealed)))
	copy(out, head)
	base64.RawURLEncoding.Encode(out[len(head):], sealed)
	return string(out), nil
}

// SealState seals a call's state as a token under key, exactly as a
// replica holding the key would. chain is the call's history digest as
// OpenState gives it. It is for tools that test a deployment as an insider
// with the key could (scripts/abuse forges impossible states with it) and
// for tests; a server seals its own tokens.
func SealState(key StateKey, callID, handle, chain string, st callwatch.SessionState) (string, error) {
	d, err := parseDigest(chain)
	if err != nil {
		return "", err
	}
	return signer{keys: []StateKey{key}}.sign(callID, handle, d, st)
}

// OpenState opens a token with keys and decodes what it carries; an error
// wraps ErrBadToken. Like SealState, it is for tools and tests.
func OpenState(keys []StateKey, tok string) (callID, handle, chain string, st callwatch.SessionState, err error) {
	p, _, err := signer{keys: keys}.verify(tok)
	return p.CallID, p.Handle, p.Chain, p.State, err
}

func badToken(format string, a ...any) error {
	return errors.Join(ErrBadToken, fmt.Errorf(format, a...))
}

// verify opens the token before decoding anything, so a forged token never
// reaches the decoder or Resume.
func (s signer) verify(tok string) (tokenPayload, digest, error) {
	var p tokenPayload
	if !strings.HasPrefix(tok, tokenPrefix) {
		if strings.HasPrefix(tok, "cw2.") {
			return p, digest{}, badToken("this is an old-format token (cw2, signed JSON, before encrypted tokens), no longer accepted; start the call again with seq 0")
		}
		if body, _, ok := strings.Cut(tok, "."); ok && strings.HasPrefix(body, "eyJ") {
			return p, digest{}, badToken("this is an old-format token (v1, before sequence numbers and key ids), no longer accepted; start the call again with seq 0")
		}
		return p, digest{}, badToken("not a callwatch state token")
	}
	kid, body, ok := strings.Cut(tok[len(tokenPrefix):], ".")
	if !ok {
		return p, digest{}, badToken("no key id part")
	}
	var key []byte
	for _, k := range s.keys {
		if k.ID == kid {
			key = k.Key
		}
	}
	if key == nil {
		return p, digest{}, badToken("sealed with key id %q, which this replica does not hold (server.state_keys)", clip(kid, 40))
	}
	sealed, err := base64.RawURLEncoding.DecodeString(body)
	if err != nil || len(sealed) < saltLen+16 {
		return p, digest{}, badToken("the sealed part is not base64url of a sealed state")
	}
	head := tok[:len(tokenPrefix)+len(kid)+1]
	plain, err := tokenAEAD(key, sealed[:saltLen]).Open(nil, zeroNonce[:], sealed[saltLen:], []byte(head))
	if err != nil {
		return p, digest{}, badToken("the token does not open: its signature does not verify (tampered, or sealed with another key of the same id)")
	}
	var chain digest
	p, chain, err = decodeState(plain)
	if err != nil {
		return p, digest{}, badToken("the sealed state does not decode: %v", err)
	}
	return p, chain, nil
}

func cutLast(s, sep string) (before, after string, ok bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+len(sep):], true
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// A handle is a call's random identity: 16 bytes, base64url.
const handleLen = 22

func newHandle() string {
	var b [16]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func validHandle(h string) bool {
	if len(h) != handleLen {
		return false
	}
	b, err := base64.RawURLEncoding.DecodeString(h)
	return err == nil && len(b) == 16
}

// digest summarizes a call's history: chain(0) depends on the handle only,
// and each segment read extends it with the segment's text and times.
type digest [16]byte

func (d digest) String() string { return base64.RawURLEncoding.EncodeToString(d[:]) }

func parseDigest(s string) (digest, error) {
	var d digest
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) != len(d) {
		return d, errors.New("bad digest")
	}
	copy(d[:], b)
	return d, nil
}

func chainStart(handle string) digest {
	sum := sha256.Sum256([]byte("callwatch call\x00" + handle))
	return digest(sum[:16])
}

func (d digest) extend(seg callwatch.Segment) digest {
	h := sha256.New()
	h.Write(d[:])
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], math.Float64bits(seg.Start))
	binary.LittleEndian.PutUint64(b[8:], math.Float64bits(seg.End))
	h.Write(b[:])
	h.Write([]byte(seg.Text))
	var out digest
	copy(out[:], h.Sum(nil))
	return out
}
