package callwatch

import (
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestStreamMatchesWhole: a call fed as N segments ends at the same score as
// the joined text scored at once, for many calls and random segmentations,
// on both backends.
func TestStreamMatchesWhole(t *testing.T) {
	texts := parityTexts(t)
	rng := rand.New(rand.NewPCG(1, 2))
	for _, backend := range []string{BackendORT, BackendNative} {
		t.Run(backend, func(t *testing.T) {
			d := openDetector(t, backend)
			worst := 0.0
			calls := 0
			for i := 0; i < len(texts); i += 3 {
				words := strings.Fields(texts[i])
				if len(words) < 2 {
					continue
				}
				// random cut points, 1..12 segments
				n := 1 + rng.IntN(min(12, len(words)))
				cuts := map[int]bool{}
				for len(cuts) < n-1 {
					cuts[1+rng.IntN(len(words)-1)] = true
				}
				var segs []Segment
				start := 0
				for k := 1; k <= len(words); k++ {
					if k == len(words) || cuts[k] {
						segs = append(segs, Segment{Text: strings.Join(words[start:k], " ")})
						start = k
					}
				}
				s, err := d.NewSession(d.DefaultPolicy())
				if err != nil {
					t.Fatal(err)
				}
				for _, sg := range segs {
					if _, err := s.Feed(context.Background(), sg); err != nil {
						t.Fatal(err)
					}
				}
				whole, err := d.Classify(context.Background(), []string{strings.Join(words, " ")})
				if err != nil || whole[0].Err != nil {
					t.Fatalf("whole: %v %v", err, whole[0].Err)
				}
				worst = math.Max(worst, math.Abs(s.Score()-whole[0].Score))
				calls++
			}
			if worst > 1e-5 {
				t.Fatalf("streamed vs whole: max diff %.3g over %d calls", worst, calls)
			}
			t.Logf("%s: %d calls streamed in 1–12 segments vs whole: max diff %.3g", backend, calls, worst)
		})
	}
}

// TestFeedBatchEqualsAlone: sessions fed together in one batch score exactly
// as each fed alone.
func TestFeedBatchEqualsAlone(t *testing.T) {
	d := openDetector(t, BackendORT)
	texts := parityTexts(t)[:12]
	var calls [][]Segment
	for _, tx := range texts {
		calls = append(calls, SplitSegments(tx, 0))
	}
	alone := make([]float64, len(calls))
	for i, segs := range calls {
		s, _ := d.NewSession(d.DefaultPolicy())
		for _, sg := range segs {
			if _, err := s.Feed(context.Background(), sg); err != nil {
				t.Fatal(err)
			}
		}
		alone[i] = s.Score()
	}
	sess := make([]*Session, len(calls))
	for i := range sess {
		sess[i], _ = d.NewSession(d.DefaultPolicy())
	}
	for k := 0; ; k++ {
		var ss []*Session
		var segs []Segment
		for i, c := range calls {
			if k < len(c) {
				ss, segs = append(ss, sess[i]), append(segs, c[k])
			}
		}
		if len(ss) == 0 {
			break
		}
		if _, err := d.FeedBatch(context.Background(), ss, segs); err != nil {
			t.Fatal(err)
		}
	}
	for i := range calls {
		if diff := math.Abs(sess[i].Score() - alone[i]); diff > 1e-5 {
			t.Errorf("call %d: batched %v vs alone %v", i, sess[i].Score(), alone[i])
		}
	}
	if _, err := d.FeedBatch(context.Background(), []*Session{sess[0], sess[0]}, []Segment{{Text: "a"}, {Text: "b"}}); err == nil {
		t.Error("a session twice in one batch was accepted")
	}
}

// TestSnapshotResume: a call continued from a snapshot (as another server
// replica would) ends exactly where the uninterrupted call ends.
func TestSnapshotResume(t *testing.T) {
	d := openDetector(t, BackendNative)
	segs := SplitSegments(parityTexts(t)[5], 0)
	if len(segs) < 3 {
		t.Fatalf("need a longer call, got %d segments", len(segs))
	}
	full, _ := d.NewSession(d.DefaultPolicy())
	half, _ := d.NewSession(d.DefaultPolicy())
	var lastFull, lastResumed Update
	for i, sg := range segs {
		u, err := full.Feed(context.Background(), sg)
		if err != nil {
			t.Fatal(err)
		}
		lastFull = u
		if i < len(segs)/2 {
			if _, err := half.Feed(context.Background(), sg); err != nil {
				t.Fatal(err)
			}
		}
	}
	other := openDetector(t, BackendORT) // a different process would load its own detector
	resumed, err := other.Resume(other.DefaultPolicy(), half.Snapshot())
	if err != nil {
		t.Fatal(err)
	}
	for _, sg := range segs[len(segs)/2:] {
		if lastResumed, err = resumed.Feed(context.Background(), sg); err != nil {
			t.Fatal(err)
		}
	}
	if diff := math.Abs(lastFull.Score - lastResumed.Score); diff > 1e-5 || lastFull.Level != lastResumed.Level {
		t.Fatalf("resumed call ends at %v/%s, uninterrupted at %v/%s", lastResumed.Score, lastResumed.Level, lastFull.Score, lastFull.Level)
	}
	bad := half.Snapshot()
	bad.ModelSHA256 = strings.Repeat("0", 64)
	if _, err := other.Resume(other.DefaultPolicy(), bad); err == nil {
		t.Fatal("state of another model was accepted")
	}
	bad = half.Snapshot()
	bad.State[0] = bad.State[0][:3]
	if _, err := other.Resume(other.DefaultPolicy(), bad); err == nil {
		t.Fatal("truncated state was accepted")
	}
	bad = half.Snapshot()
	bad.State = bad.State[:1]
	if _, err := other.Resume(other.DefaultPolicy(), bad); err == nil {
		t.Fatal("state with a missing tensor was accepted")
	}
	bad = half.Snapshot()
	bad.State[1][0] = float32(math.NaN())
	if _, err := other.Resume(other.DefaultPolicy(), bad); err == nil {
		t.Fatal("non-finite state was accepted")
	}
}

// TestPolicy drives the level logic with fixed scores.
func TestPolicy(t *testing.T) {
	d := openDetector(t, BackendNative)
	p := Policy{Suspicious: 0.6, Dangerous: 0.9, Smooth: 2, Hysteresis: 0.1, Reasons: 3}
	tests := []struct {
		name   string
		scores []float64
		levels []Level
		alerts []Level
	}{
		{"one spike does not alert", []float64{0.1, 0.95, 0.1, 0.1}, []Level{"none", "none", "none", "none"}, []Level{"", "", "", ""}},
		{"sustained rise", []float64{0.5, 0.7, 0.8, 0.95, 0.97}, []Level{"none", "suspicious", "suspicious", "suspicious", "dangerous"}, []Level{"", "suspicious", "", "", "dangerous"}},
		{"dangerous sticks", []float64{0.95, 0.95, 0.1, 0.1, 0.1}, []Level{"dangerous", "dangerous", "dangerous", "dangerous", "dangerous"}, []Level{"dangerous", "", "", "", ""}},
		{"hysteresis holds suspicious", []float64{0.7, 0.7, 0.55, 0.55, 0.3, 0.3}, []Level{"suspicious", "suspicious", "suspicious", "suspicious", "none", "none"}, []Level{"suspicious", "", "", "", "", ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := d.NewSession(p)
			if err != nil {
				t.Fatal(err)
			}
			for i, sc := range tt.scores {
				s.score, s.started = sc, true
				var u Update
				s.applyPolicy(&u)
				if u.Level != tt.levels[i] || u.Alert != tt.alerts[i] {
					t.Fatalf("step %d (score %v): level %s alert %q, want %s %q", i, sc, u.Level, u.Alert, tt.levels[i], tt.alerts[i])
				}
			}
		})
	}
	if err := (Policy{Suspicious: 0.9, Dangerous: 0.5, Smooth: 1}).Validate(); err == nil {
		t.Error("inverted thresholds accepted")
	}
}

// TestAlertReasons: a scam call's alert names segments and phrases from it.
func TestAlertReasons(t *testing.T) {
	d := openDetector(t, BackendORT)
	s, _ := d.NewSession(d.DefaultPolicy())
	segs := []Segment{
		{Text: "여보세요 네 안녕하세요", End: 2},
		{Text: "서울중앙지검 수사관입니다 본인 명의 통장이 사건에 연루됐습니다", End: 6},
		{Text: "지금 통화 녹취 중이니까 가족한테도 말씀하시면 안 됩니다", End: 10},
		{Text: "자산 보호를 위해서 안전계좌로 이체하셔야 합니다", End: 14},
		{Text: "현금을 인출해서 저희 직원한테 전달하세요", End: 18},
	}
	var alert *Update
	for _, sg := range segs {
		u, err := s.Feed(context.Background(), sg)
		if err != nil {
			t.Fatal(err)
		}
		if u.Alert != "" && alert == nil {
			alert = &u
		}
	}
	if alert == nil {
		t.Fatalf("no alert on an obvious scam; final score %v level %s", s.Score(), s.Level())
	}
	if len(alert.Reasons) == 0 {
		t.Fatal("alert without reasons")
	}
	for _, r := range alert.Reasons {
		if r.Delta <= 0 || r.Phrase == "" || !strings.Contains(r.Text, r.Phrase) {
			t.Errorf("bad reason %+v", r)
		}
	}
	t.Logf("alert %s at segment %d: %+v", alert.Alert, alert.Segment, alert.Reasons)
}

func TestSplitSegments(t *testing.T) {
	text := "네 여보세요. 검찰청입니다 " + strings.Repeat("단어 ", 30)
	segs := SplitSegments(text, 4.5)
	var words []string
	for i, sg := range segs {
		if sg.End <= sg.Start || (i > 0 && sg.Start < segs[i-1].End) {
			t.Fatalf("segment %d times %v..%v", i, sg.Start, sg.End)
		}
		words = append(words, sg.Text)
	}
	if strings.Join(words, " ") != strings.Join(strings.Fields(text), " ") {
		t.Fatal("segments do not join back to the text")
	}
	if segs[0].Text != "네 여보세요." || len(segs) < 3 {
		t.Fatalf("segments: %+v", segs)
	}
}

// BenchmarkSegmentCost feeds segment 1 and segment 50 of a long call: the
// cost per segment must not grow with the call's length.
func BenchmarkSegmentCost(b *testing.B) {
	d := openDetector(b, BackendORT)
	segs := SplitSegments(strings.Join(parityTexts(b)[:20], " "), 0)
	if len(segs) < 60 {
		b.Fatalf("need 60 segments, got %d", len(segs))
	}
	for _, at := range []int{1, 50} {
		b.Run("segment"+map[int]string{1: "1", 50: "50"}[at], func(b *testing.B) {
			s, _ := d.NewSession(Policy{Suspicious: 0.99, Dangerous: 0.999, Smooth: 1, Reasons: 0})
			for _, sg := range segs[:at-1] {
				s.Feed(context.Background(), sg)
			}
			snap := s.Snapshot()
			for b.Loop() {
				r, _ := d.Resume(s.policy, snap)
				if _, err := r.Feed(context.Background(), segs[at-1]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkFeedBatch64 feeds one segment of each of 64 calls in one
// FeedBatch (what `stream` and the server do with concurrent calls): the
// latency of one batched run, per backend.
func BenchmarkFeedBatch64(b *testing.B) {
	texts := parityTexts(b)
	for _, backend := range []string{BackendORT, BackendNative} {
		b.Run(backend, func(b *testing.B) {
			d := openDetector(b, backend)
			const calls = 64
			segs := make([]Segment, calls)
			for i := range segs {
				s := SplitSegments(texts[i%len(texts)], 0)
				segs[i] = s[len(s)/2]
			}
			sessions := make([]*Session, calls)
			for b.Loop() {
				b.StopTimer()
				for i := range sessions {
					sessions[i], _ = d.NewSession(Policy{Suspicious: 0.99, Dangerous: 0.999, Smooth: 1})
				}
				b.StartTimer()
				if _, err := d.FeedBatch(context.Background(), sessions, segs); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestFeedBatchOppositeOrders feeds the same sessions in opposite orders from
// many goroutines at once. FeedBatch used to lock sessions in the caller's
// order and could deadlock here; it must finish, and every call must end with
// all of its segments applied exactly once.
func TestFeedBatchOppositeOrders(t *testing.T) {
	d := openDetector(t, BackendNative)
	const nsess, rounds, workers = 4, 10, 8
	sessions := make([]*Session, nsess)
	for i := range sessions {
		s, err := d.NewSession(d.DefaultPolicy())
		if err != nil {
			t.Fatal(err)
		}
		sessions[i] = s
	}
	done := make(chan error, workers)
	for w := range workers {
		go func(w int) {
			for r := range rounds {
				order := append([]*Session(nil), sessions...)
				if (w+r)%2 == 1 {
					slices.Reverse(order)
				}
				segs := make([]Segment, len(order))
				for i := range segs {
					segs[i] = Segment{Text: "네 고객님 계좌 확인 부탁드립니다"}
				}
				if _, err := d.FeedBatch(context.Background(), order, segs); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}(w)
	}
	timeout := time.After(2 * time.Minute)
	for range workers {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-timeout:
			t.Fatal("FeedBatch deadlocked: batches over the same sessions in opposite orders did not finish")
		}
	}
	for i, s := range sessions {
		if got := s.Snapshot().Segments; got != workers*rounds {
			t.Errorf("session %d saw %d segments, want %d", i, got, workers*rounds)
		}
	}
}
