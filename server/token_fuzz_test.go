package server

import (
	"encoding/base64"
	"errors"
	"testing"

	"github.com/callwatch/callwatch"
)

var fuzzSigner = signer{keys: []StateKey{
	{ID: "f1", Key: []byte("0123456789abcdefghijklmnopqrstuv")},
	{ID: "f0", Key: []byte("vutsrqponmlkjihgfedcba9876543210")},
}}

// FuzzStateToken: the token parser never panics, refuses everything it
// cannot vouch for with ErrBadToken, and what it accepts (any payload sealed
// with a key it holds) re-signs to a token that parses to the same call.
// Resume, which checks the state inside, has its own fuzz target.
func FuzzStateToken(f *testing.F) {
	h := "AAAAAAAAAAAAAAAAAAAAAA"
	st := callwatch.SessionState{ModelSHA256: "x", Level: callwatch.LevelNone, Segments: 2, Score: 0.3}
	good, err := fuzzSigner.sign("c1", h, chainStart(h), st)
	if err != nil {
		f.Fatal(err)
	}
	plain, _ := encodeState("c1", h, chainStart(h), st, false)
	f.Add(good, plain)
	st.State = [][]float32{{0.5, -1, 3e5}, {1e-6}}
	halfPlain, _ := encodeState("c1", h, chainStart(h), st, true)
	f.Add(good, halfPlain)
	f.Add(good, halfPlain[:len(halfPlain)-2])
	f.Add(good, plain[:len(plain)-1])
	f.Add("", []byte(`{}`))
	f.Add("eyJ2IjoxfQ.c2ln", []byte(`null`))
	f.Add("cw2.f9.e30.c2ln", []byte(`{"handle":7}`))
	f.Add("cw2..", []byte(`{"state":{"state":[[1e400]]}}`))
	f.Fuzz(func(t *testing.T, tok string, payload []byte) {
		check := func(tok string) {
			p, chain, err := fuzzSigner.verify(tok)
			if err != nil {
				if !errors.Is(err, ErrBadToken) {
					t.Fatalf("verify(%q): %v is not ErrBadToken", tok, err)
				}
				return
			}
			if !validHandle(p.Handle) {
				t.Fatalf("accepted a token without a valid handle: %q", p.Handle)
			}
			again, err := fuzzSigner.sign(p.CallID, p.Handle, chain, p.State)
			if err != nil {
				return // a state JSON cannot encode (it decoded, so only NaN-free floats get here)
			}
			q, chain2, err := fuzzSigner.verify(again)
			if err != nil || q.CallID != p.CallID || q.Handle != p.Handle || chain2 != chain {
				t.Fatalf("re-signed token does not parse back: %v", err)
			}
		}
		check(tok)
		// Any plaintext sealed with a key it holds must decode or be refused.
		head := tokenPrefix + "f0."
		salt := make([]byte, saltLen)
		sealed := tokenAEAD(fuzzSigner.keys[1].Key, salt).Seal(append([]byte(nil), salt...), zeroNonce[:], payload, []byte(head))
		check(head + base64.RawURLEncoding.EncodeToString(sealed))
	})
}
