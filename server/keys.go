package server

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// StateKey is one key that signs state tokens, with the id tokens name it
// by. Replicas that share calls share their keys; during a rotation every
// replica verifies with the old and the new key and signs with the first.
type StateKey struct {
	ID  string
	Key []byte
}

// MinStateKeyBytes is the shortest state key accepted: 32 random bytes,
// the HMAC-SHA256 block's worth of entropy.
const MinStateKeyBytes = 32

const maxKeyID = 32

// ParseStateKeys reads server.state_keys (env CALLWATCH_SERVER_STATE_KEYS):
// comma-separated "id:base64" pairs, the first of which signs. Each key must
// decode (standard or URL base64, padded or not) to at least 32 bytes that
// look random; ids are 1-32 letters, digits, '-' or '_', and unique.
func ParseStateKeys(spec string) ([]StateKey, error) {
	var keys []StateKey
	seen := map[string]bool{}
	for i, part := range strings.Split(spec, ",") {
		part = strings.TrimSpace(part)
		id, b64, ok := strings.Cut(part, ":")
		if !ok || id == "" {
			return nil, fmt.Errorf("state_keys entry %d: want id:base64 (e.g. k2025:$(head -c 32 /dev/urandom | base64))", i+1)
		}
		if !validKeyID(id) {
			return nil, fmt.Errorf("state_keys entry %d: key id %q must be 1-%d letters, digits, '-' or '_'", i+1, id, maxKeyID)
		}
		if seen[id] {
			return nil, fmt.Errorf("state_keys: key id %q appears twice", id)
		}
		seen[id] = true
		key, err := decodeKey(b64)
		if err != nil {
			return nil, fmt.Errorf("state_keys entry %d (%s): %w", i+1, id, err)
		}
		keys = append(keys, StateKey{ID: id, Key: key})
	}
	return keys, nil
}

// ParseStateKey reads the single-key setting server.state_key (env
// CALLWATCH_SERVER_STATE_KEY): one base64 key of at least 32 random bytes.
// Its id is derived from the key, so replicas sharing it agree on it.
func ParseStateKey(b64 string) (StateKey, error) {
	key, err := decodeKey(b64)
	if err != nil {
		return StateKey{}, fmt.Errorf("state_key: %w", err)
	}
	return StateKey{ID: derivedKeyID(key), Key: key}, nil
}

func derivedKeyID(key []byte) string {
	sum := sha256.Sum256(append([]byte("callwatch state key id\x00"), key...))
	return "k" + hex.EncodeToString(sum[:4])
}

func validKeyID(id string) bool {
	if len(id) == 0 || len(id) > maxKeyID {
		return false
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

var errKeyFormat = errors.New("the key must be base64 of at least 32 random bytes: generate one with `head -c 32 /dev/urandom | base64`")

func decodeKey(b64 string) ([]byte, error) {
	b64 = strings.TrimSpace(b64)
	var key []byte
	var err error
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if key, err = enc.Strict().DecodeString(b64); err == nil {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("not base64 (%v); %w", err, errKeyFormat)
	}
	return key, checkKey(key)
}

// checkKey refuses short keys and keys that are plainly not random (a
// repeated character, a word): 32 random bytes hold 16 or more distinct
// values with overwhelming probability.
func checkKey(key []byte) error {
	if len(key) < MinStateKeyBytes {
		return fmt.Errorf("it decodes to %d bytes; %w", len(key), errKeyFormat)
	}
	distinct := map[byte]bool{}
	for _, b := range key {
		distinct[b] = true
	}
	if len(distinct) < 16 {
		return fmt.Errorf("its %d bytes hold only %d distinct values, which is not random; %w", len(key), len(distinct), errKeyFormat)
	}
	return nil
}
