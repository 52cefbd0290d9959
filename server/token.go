package server

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"

	"github.com/callwatch/callwatch"
)

// The state token carries a call's whole streaming state to the client and
// back, so that any replica holding the same key can continue the call:
//
//	base64url(JSON{"v":1,"call_id","state"}) "." base64url(HMAC-SHA256(key, first part))
//
// It is signed, not encrypted: the LSTM state reveals little, but the kept
// reason segments hold transcript text, so clients should treat a token
// like the transcript itself.

const tokenVersion = 1

type tokenPayload struct {
	V      int                    `json:"v"`
	CallID string                 `json:"call_id"`
	State  callwatch.SessionState `json:"state"`
}

// ErrBadToken is wrapped by every token verification failure.
var ErrBadToken = errors.New("invalid state token")

type signer struct{ key []byte }

func (s signer) sign(callID string, st callwatch.SessionState) (string, error) {
	js, err := json.Marshal(tokenPayload{V: tokenVersion, CallID: callID, State: st})
	if err != nil {
		return "", err
	}
	body := base64.RawURLEncoding.EncodeToString(js)
	return body + "." + base64.RawURLEncoding.EncodeToString(s.mac(body)), nil
}

func (s signer) mac(body string) []byte {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(body))
	return m.Sum(nil)
}

// verify checks the signature before decoding anything, so a forged token
// never reaches the JSON decoder or Resume.
func (s signer) verify(tok string) (tokenPayload, error) {
	var p tokenPayload
	body, sig, ok := strings.Cut(tok, ".")
	if !ok {
		return p, errors.Join(ErrBadToken, errors.New("no signature part"))
	}
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || !hmac.Equal(got, s.mac(body)) {
		return p, errors.Join(ErrBadToken, errors.New("signature does not verify (tampered, or signed with another key)"))
	}
	js, err := base64.RawURLEncoding.DecodeString(body)
	if err != nil {
		return p, errors.Join(ErrBadToken, err)
	}
	if err := json.Unmarshal(js, &p); err != nil {
		return p, errors.Join(ErrBadToken, err)
	}
	if p.V != tokenVersion {
		return p, errors.Join(ErrBadToken, errors.New("unknown token version"))
	}
	return p, nil
}
