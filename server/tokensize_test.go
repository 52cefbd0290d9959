package server_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/callwatch/callwatch/server"
)

// TestTokenSize measures the sealed binary token against the signed JSON
// token it replaced (cw2: base64url(JSON)), for a call with 3 reasons,
// and checks it opens only with the key and shows no transcript text.
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
	// The floor: the state as float32 and the reason states as float16.
	floor := base64.RawURLEncoding.EncodedLen(4*floats + 2*reasonFloats)
	if len(tok) > floor+600 || len(tok)*2 > old {
		t.Errorf("token %d bytes: over its float floor %d + 600, or not under half the JSON token's %d", len(tok), floor, old)
	}
	for _, tx := range texts {
		if strings.Contains(tok, base64.RawURLEncoding.EncodeToString([]byte(tx))[:12]) {
			t.Errorf("the token shows %q", tx)
		}
	}
}
