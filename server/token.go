package server

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/callwatch/callwatch"
)

// The state token carries a call's whole streaming state to the client and
// back, so that any replica holding the key can continue the call:
//
//	"cw2." kid "." base64url(JSON{"call_id","handle","chain","state"}) "." base64url(HMAC-SHA256(key[kid], everything before the last dot))
//
// kid names the key that signed it (server.state_keys), so keys rotate
// without breaking calls in progress. handle is the call's random identity,
// chosen when its first segment was scored; chain is a digest of every
// segment the call has read, so a replica that saw the call continue one way
// refuses a token that continued it another (a fork). The state's segment
// count is the call's sequence number.
//
// It is signed, not encrypted: the kept reason segments hold transcript
// text, so clients should treat a token like the transcript itself.

const tokenPrefix = "cw2."

type tokenPayload struct {
	CallID string                 `json:"call_id"`
	Handle string                 `json:"handle"`
	Chain  string                 `json:"chain"`
	State  callwatch.SessionState `json:"state"`
}

// ErrBadToken is wrapped by every token verification failure.
var ErrBadToken = errors.New("invalid state token")

type signer struct {
	keys []StateKey // keys[0] signs
}

func (s signer) sign(callID, handle string, chain digest, st callwatch.SessionState) (string, error) {
	js, err := json.Marshal(tokenPayload{CallID: callID, Handle: handle, Chain: chain.String(), State: st})
	if err != nil {
		return "", err
	}
	k := s.keys[0]
	head := tokenPrefix + k.ID + "." + base64.RawURLEncoding.EncodeToString(js)
	return head + "." + base64.RawURLEncoding.EncodeToString(mac(k.Key, head)), nil
}

func mac(key []byte, head string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(head))
	return m.Sum(nil)
}

func badToken(format string, a ...any) error {
	return errors.Join(ErrBadToken, fmt.Errorf(format, a...))
}

// verify checks the signature before decoding anything, so a forged token
// never reaches the JSON decoder or Resume.
func (s signer) verify(tok string) (tokenPayload, digest, error) {
	var p tokenPayload
	if !strings.HasPrefix(tok, tokenPrefix) {
		if body, _, ok := strings.Cut(tok, "."); ok && strings.HasPrefix(body, "eyJ") {
			return p, digest{}, badToken("this is an old-format token (v1, before sequence numbers and key ids), no longer accepted; start the call again with seq 0")
		}
		return p, digest{}, badToken("not a callwatch state token")
	}
	head, sig, ok := cutLast(tok, ".")
	if !ok {
		return p, digest{}, badToken("no signature part")
	}
	kid, body, ok := strings.Cut(head[len(tokenPrefix):], ".")
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
		return p, digest{}, badToken("signed with key id %q, which this replica does not hold (server.state_keys)", clip(kid, 40))
	}
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || !hmac.Equal(got, mac(key, head)) {
		return p, digest{}, badToken("signature does not verify (tampered, or signed with another key of the same id)")
	}
	js, err := base64.RawURLEncoding.DecodeString(body)
	if err != nil {
		return p, digest{}, badToken("payload is not base64url: %v", err)
	}
	if err := json.Unmarshal(js, &p); err != nil {
		return p, digest{}, badToken("payload is not a state: %v", err)
	}
	if !validHandle(p.Handle) {
		return p, digest{}, badToken("no valid call handle in the token")
	}
	chain, err := parseDigest(p.Chain)
	if err != nil {
		return p, digest{}, badToken("no valid history digest in the token")
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
