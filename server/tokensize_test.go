package server_test

import (
	"bytes"
	"compress/flate"
	"context"
	"encoding/base64"
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/callwatch/callwatch"
	"github.com/callwatch/callwatch/server"
)

// TestTokenSize measures the sealed binary token against the signed JSON
// token it replaced (cw2: base64url(JSON)), for a call with 3 reasons,
// checks that reasons carry no model state, and that the token shows no
// transcript text. The first cw3 (reason states as float16) took 8,281
// bytes for this call, cw2 35,196.
func TestTokenSize(t *testing.T) {
	ts := newTestServer(t, testConfig(), true)
	ctx := context.Background()
	var tok string
	var reasons int
	texts := []string{"여보세요 서울중앙지검 수사관입니다", "본인 명의 통장이 범죄에 연루됐습니다", "안전계좌로 돈을 옮기셔야 합니다",
		"지금 바로 이체하지 않으면 구속됩니다", "다른 사람에게 말하면 안 됩니다", "계좌번호 불러드릴게요"}
	for i, tx := range texts {
		r, err := ts.C.Segment(ctx, "size", server.SegmentRequest{Text: tx, Seq: new(i), State: tok})
		if err != nil {
			t.Fatal(err)
		}
		tok = r.State
		reasons = max(reasons, len(r.Reasons))
	}
	callID, handle, chain, st, err := server.OpenToken([]server.StateKey{testKey}, tok)
	if err != nil {
		t.Fatal(err)
	}
	js, _ := json.Marshal(map[string]any{"call_id": callID, "handle": handle, "chain": chain, "state": st})
	old := len("cw2.test1.") + base64.RawURLEncoding.EncodedLen(len(js)) + 44
	floats, reasonFloats := 0, 0
	for _, s := range st.State {
		floats += len(s)
	}
	for _, r := range st.Top {
		for _, s := range r.State {
			reasonFloats += len(s)
		}
	}
	t.Logf("after %d segments, %d reasons kept (%d floats of state, %d of reason states): cw3 token %d bytes, cw2 (signed JSON) %d bytes",
		len(texts), len(st.Top), floats, reasonFloats, len(tok), old)
	if len(st.Top) < 3 {
		t.Fatalf("only %d reasons kept", len(st.Top))
	}
	// Reasons carry their phrase's place, not a state; what is left is the
	// model state as exact float32 (2,308 bytes on the shipped model, 3,077
	// as base64) and about 370 bytes of call, scores and reason texts. ≤ 2 KB
	// needs the model state as float16 (lossy; logTokenOptions measures it).
	floor := base64.RawURLEncoding.EncodedLen(4 * floats)
	if reasonFloats != 0 || len(tok) > floor+600 || len(tok) > 3800 {
		t.Errorf("token %d bytes with %d floats of reason states: want none, and at most its float floor %d + 600 and 3,800", len(tok), reasonFloats, floor)
	}
	logTokenOptions(t, callID, handle, chain, st)
	for _, tx := range texts {
		if strings.Contains(tok, base64.RawURLEncoding.EncodeToString([]byte(tx))[:12]) {
			t.Errorf("the token shows %q", tx)
		}
	}
}

// logTokenOptions measures what else could shrink the token: lossless
// compression of the plaintext (flate; flate after grouping the float32
// bytes by significance) and, lossy, the model state as float16.
func logTokenOptions(t *testing.T, callID, handle, chain string, st callwatch.SessionState) {
	plain, err := server.EncodeState(callID, handle, chain, st)
	if err != nil {
		t.Fatal(err)
	}
	deflate := func(b []byte) int {
		var buf bytes.Buffer
		w, _ := flate.NewWriter(&buf, flate.BestCompression)
		w.Write(b)
		w.Close()
		return buf.Len()
	}
	var floats []float32
	for _, x := range st.State {
		floats = append(floats, x...)
	}
	n := len(floats)
	stateBytes := 4 * n
	// the plaintext with the state's bytes grouped by significance (all
	// low bytes, then the next...), which is what compresses in floats
	shuffled := make([]byte, 0, len(plain))
	for k := range 4 {
		for _, f := range floats {
			shuffled = append(shuffled, byte(math.Float32bits(f)>>(8*k)))
		}
	}
	shuffled = append(shuffled, plain[:len(plain)-stateBytes]...) // the rest, in any order, for its size
	half := len(plain) - 2*n
	halves := make([]byte, 0, half)
	for k := range 2 {
		for _, f := range floats {
			halves = append(halves, byte(math.Float32bits(f)>>(16+8*k)))
		}
	}
	halves = append(halves, plain[:len(plain)-stateBytes]...)
	kid := len(testKey.ID)
	for _, o := range []struct {
		name  string
		plain int
	}{
		{"exact, as sealed", len(plain)},
		{"exact + flate", deflate(plain)},
		{"exact + float32 bytes grouped + flate", deflate(shuffled)},
		{"lossy: model state float16 (approx. as truncated bytes)", half},
		{"lossy: model state float16 + flate", deflate(halves)},
	} {
		t.Logf("%-58s plaintext %5d bytes, token %5d bytes", o.name, o.plain, server.TokenLen(kid, o.plain))
	}
}
