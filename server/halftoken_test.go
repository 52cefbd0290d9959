package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"math"
	"os"
	"strings"
	"testing"

	"github.com/callwatch/callwatch/server"
)

// TestHalfTokens: with server.state_precision float16 a 3-reason call's
// token fits in 2 KB, a call scores the same whichever replica serves each
// segment (token) or the one that holds it (store), and its scores stay
// within 1e-3 of the exact (float32) service with the same levels.
func TestHalfTokens(t *testing.T) {
	half := testConfig()
	half.StatePrecision = server.PrecisionFloat16
	exact := newTestServer(t, testConfig(), true)
	r1, r2 := newTestServer(t, half, true), newTestServer(t, half, true)
	ctx := context.Background()
	texts := []string{"여보세요 서울중앙지검 수사관입니다", "본인 명의 통장이 범죄에 연루됐습니다", "안전계좌로 돈을 옮기셔야 합니다",
		"지금 바로 이체하지 않으면 구속됩니다", "다른 사람에게 말하면 안 됩니다", "계좌번호 불러드릴게요",
		"네 알겠습니다 잠시만요", "은행 앱을 열어서 이체 화면으로 가세요", "금액은 전부 다 옮기셔야 합니다",
		"오늘 저녁까지 처리하셔야 해요"}
	var tokExact, tokHalf, handle string
	maxDiff := 0.0
	for i, tx := range texts {
		ex, err := exact.C.Segment(ctx, "half", server.SegmentRequest{Text: tx, Seq: new(i), State: tokExact})
		if err != nil {
			t.Fatal(err)
		}
		tokExact = ex.State
		// Alternate replicas through tokens.
		rep := []*testServer{r1, r2}[i%2]
		hr, err := rep.C.Segment(ctx, "half-token", server.SegmentRequest{Text: tx, Seq: new(i), State: tokHalf})
		if err != nil {
			t.Fatal(err)
		}
		tokHalf = hr.State
		if i == 5 {
			t.Logf("after 6 segments (TestTokenSize's call): float16 token %d bytes, float32 %d", len(tokHalf), len(tokExact))
		}
		// One replica holding the call (its store).
		sr, err := r1.C.Segment(ctx, "half-store", server.SegmentRequest{Text: tx, Seq: new(i), Handle: handle})
		if err != nil {
			t.Fatal(err)
		}
		handle = sr.Handle
		if hr.Score != sr.Score || hr.Level != sr.Level || hr.Family != sr.Family {
			t.Fatalf("segment %d: token path %v/%s/%s, store path %v/%s/%s: the call forks by replica", i, hr.Score, hr.Level, hr.Family, sr.Score, sr.Level, sr.Family)
		}
		d := math.Abs(hr.Score - ex.Score)
		maxDiff = max(maxDiff, d)
		if d > 1e-3 || hr.Level != ex.Level || hr.Alert != ex.Alert {
			t.Errorf("segment %d: float16 %v/%s/%q, float32 %v/%s/%q", i, hr.Score, hr.Level, hr.Alert, ex.Score, ex.Level, ex.Alert)
		}
	}
	_, _, _, st, err := server.OpenToken([]server.StateKey{testKey}, tokHalf)
	if err != nil {
		t.Fatal(err)
	}
	for i, ts := range st.State {
		for j, v := range ts {
			if server.HalfRound(v) != v {
				t.Fatalf("state tensor %d value %d = %v is not a float16 value", i, j, v)
			}
		}
	}
	t.Logf("%d segments, %d reasons: float16 token %d bytes, float32 token %d bytes; largest score difference %.2g",
		len(texts), len(st.Top), len(tokHalf), len(tokExact), maxDiff)
	if len(st.Top) < 3 || len(tokHalf) > 2048 {
		t.Errorf("float16 token %d bytes with %d reasons: want <= 2048 with >= 3", len(tokHalf), len(st.Top))
	}
}

// TestHalfTokensDrift streams the parity fixture's calls in 8-word
// segments through the exact and the float16 service, continuing every
// segment from its token, and bounds how far float16 moves the scores.
func TestHalfTokensDrift(t *testing.T) {
	half := testConfig()
	half.StatePrecision = server.PrecisionFloat16
	exact, h := newTestServer(t, testConfig(), true), newTestServer(t, half, true)
	f, err := os.Open("../testdata/parity_calls.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ctx := context.Background()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	segs, calls, maxDiff, levels := 0, 0, 0.0, 0
	for sc.Scan() && calls < 24 {
		var rec struct{ ID, Text string }
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatal(err)
		}
		calls++
		words := strings.Fields(rec.Text)
		var te, th string
		for i := 0; i*8 < len(words); i++ {
			tx := strings.Join(words[i*8:min(len(words), i*8+8)], " ")
			re, err := exact.C.Segment(ctx, rec.ID, server.SegmentRequest{Text: tx, Seq: new(i), State: te})
			if err != nil {
				t.Fatal(err)
			}
			rh, err := h.C.Segment(ctx, rec.ID, server.SegmentRequest{Text: tx, Seq: new(i), State: th})
			if err != nil {
				t.Fatal(err)
			}
			te, th = re.State, rh.State
			segs++
			maxDiff = max(maxDiff, math.Abs(re.Score-rh.Score))
			if re.Level != rh.Level {
				levels++
			}
		}
	}
	t.Logf("%d calls, %d segments: largest score difference float16 vs float32 %.2g, %d levels differ", calls, segs, maxDiff, levels)
	if segs < 100 || maxDiff > 2e-3 || levels > 0 {
		t.Errorf("%d segments: largest difference %.2g (want <= 2e-3), %d levels differ (want 0)", segs, maxDiff, levels)
	}
}
