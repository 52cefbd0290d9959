package server

import (
	"encoding/base64"

	"github.com/callwatch/callwatch"
)

// Test hooks: the token's sealed format, for tests that forge states.

func SealToken(key StateKey, callID, handle, chain string, st callwatch.SessionState) (string, error) {
	d, err := parseDigest(chain)
	if err != nil {
		return "", err
	}
	return signer{keys: []StateKey{key}}.sign(callID, handle, d, st)
}

func OpenToken(keys []StateKey, tok string) (callID, handle, chain string, st callwatch.SessionState, err error) {
	p, _, err := signer{keys: keys}.verify(tok)
	return p.CallID, p.Handle, p.Chain, p.State, err
}

// SealPlain seals arbitrary plaintext as a token of key.
func SealPlain(key StateKey, plain []byte) string {
	head := tokenPrefix + key.ID + "."
	salt := make([]byte, saltLen)
	sealed := tokenAEAD(key.Key, salt).Seal(append([]byte(nil), salt...), zeroNonce[:], plain, []byte(head))
	return head + base64.RawURLEncoding.EncodeToString(sealed)
}
