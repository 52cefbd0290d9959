package callwatch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/callwatch/callwatch/runtime"
	"github.com/callwatch/callwatch/tokenize"
)

// tokenCounter counts the token slots (rows × window length) a backend runs.
type tokenCounter struct {
	runtime.Backend
	slots atomic.Int64
}

func (c *tokenCounter) Run(ctx context.Context, in runtime.Input) (runtime.Output, error) {
	c.slots.Add(int64(in.Batch * in.Seq))
	return c.Backend.Run(ctx, in)
}

// phraseQuadratic is the reason-phrase search as it was: every word prefix
// of the whole segment scored from the state before it. The reference for
// TestPhraseLinear.
func (s *Session) phraseQuadratic(ctx context.Context, sg segRecord) string {
	words := strings.Fields(tokenize.Clean(sg.Text))
	if len(words) <= 1 {
		return strings.Join(words, " ")
	}
	var prefixes [][]int64
	var inits []State
	var cur []int64
	for _, w := range words {
		if ids, err := s.d.tok.Encode(w); err == nil {
			cur = append(cur, ids...)
		}
		prefixes = append(prefixes, append([]int64(nil), cur...))
		inits = append(inits, sg.Before)
	}
	scores, _, err := s.d.ScoreIDs(ctx, prefixes, inits)
	if err != nil {
		return ""
	}
	after := func(k int) float64 {
		if k < 0 || len(prefixes[k]) == 0 {
			return sg.Prior
		}
		return float64(scores[k])
	}
	bestGain, bestA, bestB := math.Inf(-1), 0, 0
	for a := 0; a < len(words); a++ {
		for b := a; b < len(words) && b < a+4; b++ {
			if g := after(b) - after(a-1); g > bestGain {
				bestGain, bestA, bestB = g, a, b
			}
		}
	}
	return strings.Join(words[bestA:bestB+1], " ")
}

// longWords returns n words cut from the parity calls.
func longWords(t testing.TB, n int) string {
	base := strings.Fields(strings.Join(parityTexts(t), " "))
	words := make([]string, n)
	for i := range words {
		words[i] = base[(i*7)%len(base)]
	}
	return strings.Join(words, " ")
}

// TestPhraseLinear: the chunked reason-phrase search names the same phrase
// as scoring every prefix did, from a fresh and from a mid-call state, and
// its backend work grows linearly with the segment: 8x the words costs
// about 8x the token slots (the old search: about 64x).
func TestPhraseLinear(t *testing.T) {
	d := openDetector(t, BackendNative)
	ctx := context.Background()
	s, _ := d.NewSession(d.DefaultPolicy())
	if _, err := s.Feed(ctx, Segment{Text: "여보세요 서울중앙지검 수사관입니다 본인 명의 통장이 사건에 연루됐습니다"}); err != nil {
		t.Fatal(err)
	}
	mid := s.State()
	texts := parityTexts(t)
	for i, tx := range texts[:16] {
		words := strings.Fields(tx)
		seg := strings.Join(words[:min(len(words), 5+i*9)], " ")
		for _, before := range []State{nil, mid} {
			sg := segRecord{Segment: Segment{Text: seg}, Before: before, Prior: 0.5}
			sp, err := s.phrase(ctx, sg)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := sp.text(tokenize.Clean(seg)), s.phraseQuadratic(ctx, sg); got != want {
				t.Errorf("text %d (%d words): phrase %q, every-prefix search %q", i, len(strings.Fields(seg)), got, want)
			}
		}
	}

	cb := &tokenCounter{Backend: d.be}
	d.be = cb
	slots := map[int]int64{}
	for _, n := range []int{150, 1200} {
		sg := segRecord{Segment: Segment{Text: longWords(t, n)}, Before: mid, Prior: 0.5}
		before := cb.slots.Load()
		if _, err := s.phrase(ctx, sg); err != nil {
			t.Fatal(err)
		}
		slots[n] = cb.slots.Load() - before
	}
	ratio := float64(slots[1200]) / float64(slots[150])
	t.Logf("token slots run: 150 words %d, 1,200 words %d (x%.1f for 8x the words)", slots[150], slots[1200], ratio)
	if ratio > 12 {
		t.Fatalf("phrase search grows x%.1f for 8x the words: not linear", ratio)
	}
}

// TestReasonsCancel: finding reasons stops with the caller's context.
func TestReasonsCancel(t *testing.T) {
	d := openDetector(t, BackendNative)
	s, _ := d.NewSession(d.DefaultPolicy())
	s.top = []segRecord{{Segment: Segment{Text: longWords(t, 600)}, Delta: 0.3, Prior: 0.5}}
	if r, err := s.Reasons(context.Background()); err != nil || len(r) != 1 || r[0].Phrase == "" {
		t.Fatalf("Reasons: %+v %v", r, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Reasons(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Reasons with a cancelled context: %v", err)
	}
}

// TestResumeValidates: a state no real call reaches is refused with
// ErrInvalidState, whatever signed it.
func TestResumeValidates(t *testing.T) {
	d := openDetector(t, BackendNative)
	pol := d.DefaultPolicy()
	s, _ := d.NewSession(pol)
	for _, tx := range []string{"여보세요 서울중앙지검 수사관입니다", "본인 명의 통장이 사건에 연루됐습니다", "안전계좌로 이체하셔야 합니다"} {
		if _, err := s.Feed(context.Background(), Segment{Text: tx, End: 3}); err != nil {
			t.Fatal(err)
		}
	}
	good := s.Snapshot()
	if len(good.Top) == 0 {
		t.Fatal("the sample call kept no reason candidates")
	}
	if _, err := d.Resume(pol, good); err != nil {
		t.Fatalf("a real snapshot: %v", err)
	}
	clone := func() SessionState {
		var c SessionState
		b, _ := json.Marshal(good)
		if err := json.Unmarshal(b, &c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	for _, c := range []struct {
		name string
		edit func(*SessionState)
	}{
		{"score 1e308", func(st *SessionState) { st.Score = 1e308 }},
		{"score -0.1", func(st *SessionState) { st.Score = -0.1 }},
		{"score NaN", func(st *SessionState) { st.Score = math.NaN() }},
		{"segment -1", func(st *SessionState) { st.Segments = -1 }},
		{"segments absurd", func(st *SessionState) { st.Segments = MaxSegments + 1 }},
		{"tokens -5", func(st *SessionState) { st.Tokens = -5 }},
		{"5,000 reasons", func(st *SessionState) {
			for len(st.Top) < 5000 {
				st.Top = append(st.Top, st.Top[0])
			}
		}},
		{"one reason over the policy", func(st *SessionState) {
			for len(st.Top) <= pol.Reasons {
				st.Top = append(st.Top, st.Top[0])
			}
		}},
		{"reason index past the call", func(st *SessionState) { st.Top[0].Index = st.Segments }},
		{"reason delta 5", func(st *SessionState) { st.Top[0].Delta = 5 }},
		{"reason prior NaN", func(st *SessionState) { st.Top[0].Prior = math.NaN() }},
		{"reason time Inf", func(st *SessionState) { st.Top[0].End = math.Inf(1) }},
		{"recent 2", func(st *SessionState) { st.Recent = []float64{2} }},
		{"family prob 3", func(st *SessionState) { st.FamilyProb = 3 }},
		{"unknown family", func(st *SessionState) { st.Family = "no-such-family" }},
		{"state 1e30", func(st *SessionState) { st.State[0][0] = 1e30 }},
		{"level high", func(st *SessionState) { st.Level = "high" }},
		{"no segments but a level", func(st *SessionState) {
			st.Segments, st.Top, st.Recent, st.Started, st.State, st.Tokens = 0, nil, nil, false, nil, 0
			st.Level = LevelDangerous
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			st := clone()
			c.edit(&st)
			if _, err := d.Resume(pol, st); !errors.Is(err, ErrInvalidState) {
				t.Fatalf("Resume: %v, want ErrInvalidState", err)
			}
		})
	}
}

var (
	fuzzOnce sync.Once
	fuzzDet  *Detector
	fuzzSeed []byte
)

// FuzzResume: any state, however odd, is refused or resumes into a call
// that scores its next segment to a probability and snapshots to a state
// that resumes again. Never a panic.
func FuzzResume(f *testing.F) {
	fuzzOnce.Do(func() {
		fuzzDet = openDetector(f, BackendNative)
		s, _ := fuzzDet.NewSession(fuzzDet.DefaultPolicy())
		for _, tx := range []string{"여보세요 검찰청입니다", "안전계좌로 이체하세요"} {
			if _, err := s.Feed(context.Background(), Segment{Text: tx, End: 2}); err != nil {
				f.Fatal(err)
			}
		}
		fuzzSeed, _ = json.Marshal(s.Snapshot())
	})
	d := fuzzDet
	f.Add(fuzzSeed)
	f.Add([]byte(`{"model_sha256":"` + d.bundle.ModelSHA256 + `","score":0,"level":"none","segments":0,"tokens":0}`))
	f.Add([]byte(`{"model_sha256":"` + d.bundle.ModelSHA256 + `","score":1e308,"level":"dangerous","segments":-1,"tokens":0}`))
	f.Add([]byte(`{}`))
	pol := d.DefaultPolicy()
	f.Fuzz(func(t *testing.T, b []byte) {
		var st SessionState
		if json.Unmarshal(b, &st) != nil {
			return
		}
		s, err := d.Resume(pol, st)
		if err != nil {
			if !errors.Is(err, ErrInvalidState) && !errors.Is(err, ErrStateMismatch) {
				t.Fatalf("Resume failed with an unclassified error: %v", err)
			}
			return
		}
		u, err := s.Feed(context.Background(), Segment{Text: "계좌 번호 불러주세요", End: 1})
		if err == nil && !(u.Score >= 0 && u.Score <= 1) {
			t.Fatalf("score %v after resuming", u.Score)
		}
		if _, err := d.Resume(pol, s.Snapshot()); err != nil {
			t.Fatalf("the resumed call's snapshot does not resume: %v", err)
		}
	})
}

// TestResolveReasons: a call whose reason phrases were found while it
// streamed (what the server does before sealing a token) carries no model
// state per reason, and names the same reasons as a call that kept the
// states and searched at the end, without backend work, on another
// detector. Phrases that do not fit their text are refused.
func TestResolveReasons(t *testing.T) {
	ctx := context.Background()
	d := openDetector(t, BackendNative)
	pol := d.DefaultPolicy()
	lazy, _ := d.NewSession(pol)
	eager, _ := d.NewSession(pol)
	// batched: fed and resolved in one batch with another call, as the
	// server's segment batches do
	batched, _ := d.NewSession(pol)
	side, _ := d.NewSession(pol)
	for i, tx := range []string{"여보세요 서울중앙지검 수사관입니다", "본인 명의 통장이 사건에 연루됐습니다",
		"네 알겠습니다", "안전계좌로 이체하셔야 합니다 지금 바로요", "다른 사람에게 말하면 안 됩니다"} {
		seg := Segment{Text: tx, End: 3}
		if _, err := lazy.Feed(ctx, seg); err != nil {
			t.Fatal(err)
		}
		if _, err := eager.Feed(ctx, seg); err != nil {
			t.Fatal(err)
		}
		if err := eager.ResolveReasons(ctx); err != nil {
			t.Fatal(err)
		}
		sideSeg := Segment{Text: []string{"안녕하세요 고객님 카드 배송 건으로 연락드렸습니다", "대출 상담 원하셔서 전화드렸어요"}[i%2]}
		if _, err := d.FeedBatchScores(ctx, []*Session{side, batched}, []Segment{sideSeg, seg}); err != nil {
			t.Fatal(err)
		}
		if err := d.ResolveReasonsBatch(ctx, []*Session{side, batched}); err != nil {
			t.Fatal(err)
		}
		// carried through a snapshot after every segment, as tokens are
		var err error
		if eager, err = d.Resume(pol, eager.Snapshot()); err != nil {
			t.Fatal(err)
		}
	}
	want, err := lazy.Reasons(ctx)
	if err != nil || len(want) < 2 {
		t.Fatalf("reasons %v, %v", want, err)
	}
	if got, err := batched.Reasons(ctx); err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("reasons resolved in batches %+v (%v)\nsearched at the end %+v", got, err, want)
	}
	snap := eager.Snapshot()
	for _, r := range append(snap.Top, batched.Snapshot().Top...) {
		if r.State != nil || r.PhraseWords == 0 {
			t.Fatalf("a resolved reason carries state %v, phrase of %d words", r.State != nil, r.PhraseWords)
		}
	}
	other := openDetector(t, BackendNative)
	cb := &tokenCounter{Backend: other.be}
	other.be = cb
	resumed, err := other.Resume(pol, snap)
	if err != nil {
		t.Fatal(err)
	}
	got, err := resumed.Reasons(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("resolved reasons %+v\nsearched at the end %+v", got, want)
	}
	if n := cb.slots.Load(); n != 0 {
		t.Fatalf("resolved reasons ran %d token slots", n)
	}
	for _, c := range []struct {
		name string
		edit func(*TopSegment)
	}{
		{"phrase past the text", func(r *TopSegment) { r.PhraseAt = 40 }},
		{"phrase of 9 words", func(r *TopSegment) { r.PhraseWords = 9 }},
		{"phrase at -1", func(r *TopSegment) { r.PhraseAt = -1 }},
		{"phrase and state", func(r *TopSegment) { r.State = lazy.Snapshot().State }},
	} {
		t.Run(c.name, func(t *testing.T) {
			st := eager.Snapshot()
			c.edit(&st.Top[0])
			if _, err := d.Resume(pol, st); !errors.Is(err, ErrInvalidState) {
				t.Fatalf("Resume: %v, want ErrInvalidState", err)
			}
		})
	}
}

// halfRound rounds f to the nearest IEEE 754 half (ties to even),
// saturating at ±65504: what a float16 token would carry.
func halfRound(f float32) float32 {
	a := math.Abs(float64(f))
	if a >= 65504 {
		return float32(math.Copysign(65504, float64(f)))
	}
	if a == 0 {
		return f
	}
	e := max(math.Floor(math.Log2(a)), -14)
	q := math.Exp2(e - 10)
	return float32(math.RoundToEven(float64(f)/q) * q)
}

// TestHalfModelState measures what carrying the model state as float16
// would cost (the only way to a state token under 2 KB on the shipped
// model): every parity call streamed twice, once exactly and once through
// a float16 round trip of its state after every segment, as tokens would
// carry it. The server keeps the state exact; this test is the evidence.
// It logs the largest score difference and the level changes, and fails
// only if the exact path itself drifts.
func TestHalfModelState(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: 252 calls streamed twice")
	}
	d := openDetector(t, BackendNative)
	pol := d.DefaultPolicy()
	ctx := context.Background()
	var maxDiff float64
	var worst string
	levelDiffs, alertDiffs, segs := 0, 0, 0
	for ci, text := range parityTexts(t) {
		exact, _ := d.NewSession(pol)
		half, _ := d.NewSession(pol)
		for _, sg := range SplitSegments(text, 0) {
			ue, err := exact.Feed(ctx, sg)
			if err != nil {
				t.Fatal(err)
			}
			uh, err := half.Feed(ctx, sg)
			if err != nil {
				t.Fatal(err)
			}
			segs++
			if diff := math.Abs(ue.Score - uh.Score); diff > maxDiff {
				maxDiff, worst = diff, fmt.Sprintf("call %d segment %d: %.6f vs %.6f", ci, ue.Segment, ue.Score, uh.Score)
			}
			if ue.Level != uh.Level {
				levelDiffs++
			}
			if ue.Alert != uh.Alert {
				alertDiffs++
			}
			st := half.Snapshot()
			for _, x := range st.State {
				for i := range x {
					x[i] = halfRound(x[i])
				}
			}
			if half, err = d.Resume(pol, st); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Logf("model state as float16 between segments, %d segments of %d calls: largest score difference %.2g (%s); %d segments at another level, %d alerts differ",
		segs, len(parityTexts(t)), maxDiff, worst, levelDiffs, alertDiffs)
}
