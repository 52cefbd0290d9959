package server

import (
	"encoding/base64"

	"github.com/callwatch/callwatch"
)

// Test hooks: the token's sealed format, for tests that forge states.

var (
	SealToken = SealState
	OpenToken = OpenState
)

// SealPlain seals arbitrary plaintext as a token of key.
func SealPlain(key StateKey, plain []byte) string {
	head := tokenPrefix + key.ID + "."
	salt := make([]byte, saltLen)
	sealed := tokenAEAD(key.Key, salt).Seal(append([]byte(nil), salt...), zeroNonce[:], plain, []byte(head))
	return head + base64.RawURLEncoding.EncodeToString(sealed)
}

// EncodeState is a token's plaintext before sealing.
func EncodeState(callID, handle, chain string, st callwatch.SessionState) ([]byte, error) {
	d, err := parseDigest(chain)
	if err != nil {
		return nil, err
	}
	return encodeState(callID, handle, d, st, false)
}

// TokenLen is the length of a token sealing n bytes of plaintext under a
// key id of kidLen bytes.
func TokenLen(kidLen, n int) int {
	return len(tokenPrefix) + kidLen + 1 + base64.RawURLEncoding.EncodedLen(saltLen+n+16)
}

// HalfRound rounds v to the nearest float16 value.
func HalfRound(v float32) float32 { return fromHalf(toHalf(v)) }
