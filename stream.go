package callwatch

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"sync"

	"github.com/callwatch/callwatch/api"
	"github.com/callwatch/callwatch/tokenize"
)

// Streaming: a call is scored after every STT segment. The LSTM reads left
// to right, so a Session keeps its (h, c) state and feeding a segment runs
// only that segment's tokens; the cost per segment does not grow with the
// call's length.
//
// Tokenization is per segment, and a segment boundary is a word boundary:
// the ids of a call are the concatenation of its segments' ids, which are
// exactly the ids of the segments joined with spaces (the pre-tokenizer
// splits on whitespace first). So a call fed as N segments ends at the same
// score as the joined text scored at once.

// Policy turns per-segment scores into alert levels.
type Policy struct {
	Suspicious float64 `json:"suspicious"` // thresholds, from the model card
	Dangerous  float64 `json:"dangerous"`
	// Smooth is how many recent segment scores are averaged before comparing
	// with the thresholds, so one odd segment does not flap the level.
	Smooth int `json:"smooth"`
	// Hysteresis: a suspicious call drops back to none only when the
	// smoothed score falls below Suspicious-Hysteresis. Dangerous never
	// drops for the rest of the call.
	Hysteresis float64 `json:"hysteresis"`
	// Reasons is how many segments an alert names.
	Reasons int `json:"reasons"`
}

// DefaultPolicy is the policy for a detector's card thresholds.
func (d *Detector) DefaultPolicy() Policy {
	t := d.bundle.Card.Thresholds
	return Policy{Suspicious: t.Suspicious, Dangerous: t.Dangerous, Smooth: 2, Hysteresis: 0.1, Reasons: 3}
}

// Validate checks the policy's values.
func (p Policy) Validate() error {
	if !(p.Suspicious > 0 && p.Suspicious <= p.Dangerous && p.Dangerous <= 1) {
		return fmt.Errorf("stream policy: need 0 < suspicious (%g) <= dangerous (%g) <= 1", p.Suspicious, p.Dangerous)
	}
	if p.Smooth < 1 || p.Smooth > 100 {
		return fmt.Errorf("stream policy: smooth must be 1..100 segments, got %d", p.Smooth)
	}
	if p.Hysteresis < 0 || p.Hysteresis >= 1 {
		return fmt.Errorf("stream policy: hysteresis must be in [0, 1), got %g", p.Hysteresis)
	}
	if p.Reasons < 0 {
		return fmt.Errorf("stream policy: reasons must be >= 0, got %d", p.Reasons)
	}
	return nil
}

// Reason is a segment (and the phrase within it) that raised the score.
type Reason = api.Reason

// Update is the outcome of feeding one segment.
type Update struct {
	Segment int     // 0-based index of the segment in the call
	Score   float64 // P(phishing) after this segment
	Delta   float64 // change caused by this segment
	Level   Level   // level after the policy
	// Family and FamilyProb: the most likely scenario family after this
	// segment (models with a family head; empty otherwise).
	Family     string
	FamilyProb float64
	// Alert is the new level when the level rose with this segment, else "".
	Alert   Level
	Reasons []Reason // set with Alert
	Tokens  int      // tokens in this segment
	Err     error    // per-segment failure (e.g. invalid text); state unchanged
}

// Segment is one piece of a call's transcript with its audio times.
type Segment struct {
	Text       string
	Start, End float64
}

// segRecord is a segment kept as a candidate reason: one of the largest
// score rises so far, with the state before it so that its phrase can be
// found without replaying the call.
type segRecord struct {
	Segment
	Index  int
	Delta  float64
	Before State
	Prior  float64 // score before the segment
}

// Session is one call being scored as it happens. Methods are safe for
// concurrent use, but segments of one call must be fed in order.
type Session struct {
	d      *Detector
	policy Policy
	// id orders lock acquisition in FeedBatch, so that two batches holding
	// the same sessions in opposite orders cannot deadlock.
	id uint64

	mu      sync.Mutex
	state   State
	started bool
	score   float64
	level   Level
	family  string
	famProb float64
	recent  []float64
	top     []segRecord // at most policy.Reasons, largest Delta first
	nseg    int
	tokens  int
}

// NewSession starts a call with policy p (use DefaultPolicy for the card's).
func (d *Detector) NewSession(p Policy) (*Session, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return &Session{d: d, policy: p, level: LevelNone, id: d.sessionIDs.Add(1)}, nil
}

// Score is the call's current P(phishing); Level its current level.
func (s *Session) Score() float64 { s.mu.Lock(); defer s.mu.Unlock(); return s.score }

// Level is the call's current alert level.
func (s *Session) Level() Level { s.mu.Lock(); defer s.mu.Unlock(); return s.level }

// State returns a copy of the recurrent state (nil before any token).
func (s *Session) State() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state.Clone()
}

// Feed scores one segment of this call.
func (s *Session) Feed(ctx context.Context, seg Segment) (Update, error) {
	ups, err := s.d.FeedBatch(ctx, []*Session{s}, []Segment{seg})
	if err != nil {
		return Update{}, err
	}
	return ups[0], ups[0].Err
}

// FeedBatch feeds one segment to each of several sessions in one backend
// call (sessions must be distinct). Per-segment problems are reported in
// each Update's Err; the error return is for whole-batch failures.
func (d *Detector) FeedBatch(ctx context.Context, sessions []*Session, segs []Segment) ([]Update, error) {
	if len(sessions) != len(segs) {
		return nil, fmt.Errorf("FeedBatch: %d sessions, %d segments", len(sessions), len(segs))
	}
	seen := make(map[*Session]bool, len(sessions))
	for _, s := range sessions {
		if s.d != d {
			return nil, errors.New("FeedBatch: session belongs to another detector")
		}
		if seen[s] {
			return nil, errors.New("FeedBatch: a session appears twice; feed its segments in order, one per batch")
		}
		seen[s] = true
	}
	// Lock in one global order (session id), whatever the caller's order:
	// two batches over the same sessions then never wait on each other.
	byID := append([]*Session(nil), sessions...)
	sort.Slice(byID, func(a, b int) bool { return byID[a].id < byID[b].id })
	for _, s := range byID {
		s.mu.Lock()
		defer s.mu.Unlock()
	}
	ups := make([]Update, len(sessions))
	rows := make([][]int64, len(sessions))
	init := make([]State, len(sessions))
	for i, s := range sessions {
		ups[i].Segment = s.nseg
		ids, err := d.tok.Encode(segs[i].Text)
		if err != nil && !errors.Is(err, tokenize.ErrEmpty) {
			ups[i].Err = err
			continue
		}
		rows[i] = ids
		init[i] = s.state
		ups[i].Tokens = len(ids)
	}
	scores, states, err := d.Score(ctx, rows, init)
	if err != nil {
		return nil, err
	}
	for i, s := range sessions {
		if ups[i].Err != nil {
			ups[i].Score, ups[i].Level = s.score, s.level
			ups[i].Family, ups[i].FamilyProb = s.family, s.famProb
			continue
		}
		prev := s.score
		if !s.started {
			prev = d.prior()
		}
		before := s.state
		if len(rows[i]) > 0 {
			s.state, s.score, s.started = states[i], float64(scores[i].Phishing), true
			s.family, s.famProb = d.Family(scores[i].Family)
		}
		// A segment with no words (silence, fillers removed by STT) leaves the
		// state and score as they were.
		s.tokens += len(rows[i])
		delta := 0.0
		if len(rows[i]) > 0 {
			delta = s.score - prev
			s.keep(segRecord{Segment: segs[i], Index: s.nseg, Delta: delta, Before: before, Prior: prev})
		}
		s.nseg++
		ups[i].Score, ups[i].Delta = s.score, delta
		ups[i].Family, ups[i].FamilyProb = s.family, s.famProb
		s.applyPolicy(&ups[i])
	}
	// Phrase-level reasons need extra backend runs; only alerts pay for them.
	for i, s := range sessions {
		if ups[i].Alert != "" && s.policy.Reasons > 0 {
			ups[i].Reasons = s.reasons(ctx)
		}
	}
	return ups, nil
}

// prior is the score before any token: the model's output on the zero
// state is not defined by the graph, so the first segment's delta is taken
// against an even prior.
func (d *Detector) prior() float64 { return 0.5 }

func (s *Session) applyPolicy(u *Update) {
	p := s.policy
	if s.started {
		s.recent = append(s.recent, s.score)
		if len(s.recent) > p.Smooth {
			s.recent = s.recent[len(s.recent)-p.Smooth:]
		}
	}
	smoothed := 0.0
	for _, v := range s.recent {
		smoothed += v
	}
	if len(s.recent) > 0 {
		smoothed /= float64(len(s.recent))
	}
	// Until Smooth segments have been seen, the average covers fewer; a
	// single first segment can still raise the level only if it is that
	// clear on its own.
	next := s.level
	switch {
	case s.level == LevelDangerous:
		// stays for the rest of the call
	case smoothed >= p.Dangerous:
		next = LevelDangerous
	case smoothed >= p.Suspicious:
		next = LevelSuspicious
	case s.level == LevelSuspicious && smoothed < p.Suspicious-p.Hysteresis:
		next = LevelNone
	}
	if next.Rank() > s.level.Rank() {
		u.Alert = next
	}
	s.level = next
	u.Level = next
}

// keep records r if it is among the largest positive rises so far.
func (s *Session) keep(r segRecord) {
	k := s.policy.Reasons
	if k == 0 || r.Delta <= 0 {
		return
	}
	s.top = append(s.top, r)
	sort.SliceStable(s.top, func(a, b int) bool { return s.top[a].Delta > s.top[b].Delta })
	if len(s.top) > k {
		s.top = s.top[:k]
	}
}

// reasons names the segments with the largest score rises and, within
// each, the phrase whose words raised the score most.
func (s *Session) reasons(ctx context.Context) []Reason {
	out := make([]Reason, 0, len(s.top))
	for _, sg := range s.top {
		out = append(out, Reason{Segment: sg.Index, Text: tokenize.Clean(sg.Text), Phrase: s.phrase(ctx, sg),
			Delta: round4(sg.Delta), Start: sg.Start, End: sg.End})
	}
	return out
}

// phrase finds the run of up to 4 words of a segment across which the score
// rose most, by scoring every word prefix from the state before the segment
// in one batch.
func (s *Session) phrase(ctx context.Context, sg segRecord) string {
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

// SessionState is everything a session carries between segments, so that a
// call can continue in another process (the server's state token).
type SessionState struct {
	ModelSHA256 string `json:"model_sha256"`
	// State holds the model's state tensors for this call (h, c and, for
	// newer models, p), in the signature's order.
	State      [][]float32  `json:"state,omitempty"`
	Started    bool         `json:"started,omitempty"`
	Score      float64      `json:"score"`
	Level      Level        `json:"level"`
	Family     string       `json:"family,omitempty"`
	FamilyProb float64      `json:"family_prob,omitempty"`
	Recent     []float64    `json:"recent,omitempty"`
	Segments   int          `json:"segments"`
	Tokens     int          `json:"tokens"`
	Top        []TopSegment `json:"top,omitempty"`
}

// TopSegment is a kept reason candidate inside SessionState.
type TopSegment struct {
	Text  string      `json:"text"`
	Start float64     `json:"start,omitempty"`
	End   float64     `json:"end,omitempty"`
	Index int         `json:"index"`
	Delta float64     `json:"delta"`
	Prior float64     `json:"prior"`
	State [][]float32 `json:"state,omitempty"`
}

// Snapshot returns the session's state.
func (s *Session) Snapshot() SessionState {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := SessionState{ModelSHA256: s.d.bundle.ModelSHA256, State: s.state.Clone(), Started: s.started,
		Score: s.score, Level: s.level, Family: s.family, FamilyProb: s.famProb,
		Recent: append([]float64(nil), s.recent...), Segments: s.nseg, Tokens: s.tokens}
	for _, t := range s.top {
		st.Top = append(st.Top, TopSegment{Text: t.Text, Start: t.Start, End: t.End, Index: t.Index, Delta: t.Delta, Prior: t.Prior,
			State: t.Before.Clone()})
	}
	return st
}

// ErrStateMismatch means a SessionState does not fit this detector.
var ErrStateMismatch = errors.New("session state does not match this model")

// Resume continues a call from a snapshot taken on a detector with the same
// model.
func (d *Detector) Resume(p Policy, st SessionState) (*Session, error) {
	s, err := d.NewSession(p)
	if err != nil {
		return nil, err
	}
	if st.ModelSHA256 != d.bundle.ModelSHA256 {
		return nil, fmt.Errorf("%w: state is for model %.12s, this is %.12s", ErrStateMismatch, st.ModelSHA256, d.bundle.ModelSHA256)
	}
	sig := d.be.Signature()
	// A state is absent (nil: before any token) or one finite slice of the
	// right size per state tensor.
	checkState := func(what string, x [][]float32) error {
		if x == nil {
			return nil
		}
		if len(x) != len(sig.States) {
			return fmt.Errorf("%w: %s has %d tensors, this model carries %d", ErrStateMismatch, what, len(x), len(sig.States))
		}
		for k, spec := range sig.States {
			if len(x[k]) != spec.RowSize() {
				return fmt.Errorf("%w: %s tensor %s has %d values, want %d", ErrStateMismatch, what, spec.In, len(x[k]), spec.RowSize())
			}
			for _, v := range x[k] {
				if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
					return fmt.Errorf("%w: %s tensor %s holds a non-finite value", ErrStateMismatch, what, spec.In)
				}
			}
		}
		return nil
	}
	if err := checkState("state", st.State); err != nil {
		return nil, err
	}
	if !st.Level.Valid() {
		return nil, fmt.Errorf("%w: unknown level %q", ErrStateMismatch, st.Level)
	}
	s.state = State(st.State).Clone()
	s.started, s.score, s.level, s.nseg, s.tokens = st.Started, st.Score, st.Level, st.Segments, st.Tokens
	s.family, s.famProb = st.Family, st.FamilyProb
	s.recent = append([]float64(nil), st.Recent...)
	for _, t := range st.Top {
		if err := checkState("reason state", t.State); err != nil {
			return nil, err
		}
		s.top = append(s.top, segRecord{Segment: Segment{Text: t.Text, Start: t.Start, End: t.End}, Index: t.Index, Delta: t.Delta, Prior: t.Prior,
			Before: State(t.State).Clone()})
	}
	return s, nil
}

func round4(f float64) float64 {
	return float64(int64(f*10000+sign(f)*0.5)) / 10000
}

func sign(f float64) float64 {
	if f < 0 {
		return -1
	}
	return 1
}
