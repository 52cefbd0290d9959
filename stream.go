package callwatch

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
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
	tokens int     // the segment's tokens (0: not known, as after Resume)
	// phrase is the reason's phrase once found (ResolveReasons): Before
	// and Prior are then no longer needed, and a snapshot carries the
	// phrase's place in the text instead of a whole model state.
	phrase phraseSpan
}

// phraseSpan is a phrase as words [At, At+N) of the cleaned segment text;
// N == 0 means not found yet.
type phraseSpan struct{ At, N int }

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
// each Update's Err; the error return is for whole-batch failures. Updates
// that raise an alert carry its Reasons, found under ctx.
func (d *Detector) FeedBatch(ctx context.Context, sessions []*Session, segs []Segment) ([]Update, error) {
	ups, err := d.FeedBatchScores(ctx, sessions, segs)
	if err != nil {
		return nil, err
	}
	// Phrase-level reasons need extra backend runs; only alerts pay for them.
	for i, s := range sessions {
		if ups[i].Alert != "" {
			if ups[i].Reasons, err = s.Reasons(ctx); err != nil {
				return nil, err
			}
		}
	}
	return ups, nil
}

// FeedBatchScores is FeedBatch without the alert reasons: an Update with
// Alert set has no Reasons yet. A server that shares one backend call among
// many requests scores the batch with it and then finds each alert's reasons
// with Session.Reasons under that request's own deadline.
func (d *Detector) FeedBatchScores(ctx context.Context, sessions []*Session, segs []Segment) ([]Update, error) {
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
		if ups[i].Err == nil && len(rows[i]) > 0 && !validScores(scores[i], states[i]) {
			// Only a state that no real call reaches (a forged token that
			// passed the range checks) gets here; the call keeps its state.
			ups[i].Err = fmt.Errorf("%w: the model's output from this call's state is not finite", ErrInvalidState)
		}
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
			s.keep(segRecord{Segment: segs[i], Index: s.nseg, Delta: delta, Before: before, Prior: prev, tokens: len(rows[i])})
		}
		s.nseg++
		ups[i].Score, ups[i].Delta = s.score, delta
		ups[i].Family, ups[i].FamilyProb = s.family, s.famProb
		s.applyPolicy(&ups[i])
	}
	return ups, nil
}

// validScores reports whether a row's outputs are probabilities and its
// state finite.
func validScores(sc Scores, st State) bool {
	if !(sc.Phishing >= 0 && sc.Phishing <= 1) {
		return false
	}
	for _, p := range sc.Family {
		if !(p >= 0 && p <= 1) {
			return false
		}
	}
	for _, x := range st {
		for _, v := range x {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return false
			}
		}
	}
	return true
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

// Reasons names the segments of the call with the largest score rises so
// far and, within each, the phrase whose words raised the score most (what
// an alert shows). It runs backend work under ctx and fails with its error.
func (s *Session) Reasons(ctx context.Context) ([]Reason, error) {
	s.mu.Lock()
	top := append([]segRecord(nil), s.top...)
	k := s.policy.Reasons
	s.mu.Unlock()
	if k == 0 {
		return nil, nil
	}
	out := make([]Reason, 0, len(top))
	for i, sg := range top {
		if i > 0 && round4(sg.Delta) == 0 {
			// Once the score saturates, a later segment moves it by less
			// than shown (delta 0.0000): not a reason an analyst can use.
			break
		}
		sp := sg.phrase
		if sp.N == 0 {
			var err error
			if sp, err = s.phrase(ctx, sg); err != nil {
				return nil, err
			}
		}
		clean := tokenize.Clean(sg.Text)
		out = append(out, Reason{Segment: sg.Index, Text: clean, Phrase: sp.text(clean),
			Delta: round4(sg.Delta), Start: sg.Start, End: sg.End})
	}
	return out, nil
}

// text is the phrase's words of the cleaned segment text.
func (p phraseSpan) text(clean string) string {
	words := strings.Fields(clean)
	if p.At < 0 || p.N < 0 || p.At+p.N > len(words) {
		return ""
	}
	return strings.Join(words[p.At:p.At+p.N], " ")
}

// ResolveReasons finds the phrase of every kept reason candidate that has
// none yet and drops the model state kept for it. Reasons then needs no
// backend work, and a Snapshot carries a phrase's place (two small numbers)
// instead of a model state per candidate: this is what keeps the server's
// state token small. The phrases are the ones Reasons would find later,
// from the same exact states. It runs backend work under ctx.
func (s *Session) ResolveReasons(ctx context.Context) error {
	s.mu.Lock()
	var todo []segRecord
	for _, sg := range s.top {
		if sg.phrase.N == 0 {
			todo = append(todo, sg)
		}
	}
	s.mu.Unlock()
	if len(todo) == 0 {
		return nil
	}
	found := make(map[int]phraseSpan, len(todo))
	for _, sg := range todo {
		sp, err := s.phrase(ctx, sg)
		if err != nil {
			return err
		}
		found[sg.Index] = sp
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.top {
		if sp, ok := found[s.top[i].Index]; ok && s.top[i].phrase.N == 0 && sp.N > 0 {
			s.top[i].phrase, s.top[i].Before = sp, nil
		}
	}
	return nil
}

// phraseWords is the longest phrase a reason names, in words.
const phraseWords = 4

// phraseRows caps the rows of one backend call in phrase's second pass, so
// that a segment at the text limit does not hold every row's state at once.
const phraseRows = 256

// phrase finds the run of up to phraseWords words of a segment across which
// the score rose most. That needs the score after every word, starting from
// the state before the segment. The words are cut into chunks (phrasePlan);
// a first pass runs the chunks in order and keeps the state at each chunk's
// start, and a second pass scores every prefix of every chunk from its
// chunk's start state, many rows per backend call. Each token then runs
// about chunk/2 times, so the cost is linear in the segment's length
// (scoring every prefix of the whole segment, as before, was quadratic:
// 1,200 words took seconds). The scores are the ones the whole prefixes
// would get: the state carries across chunks as it does across windows.
func (s *Session) phrase(ctx context.Context, sg segRecord) (phraseSpan, error) {
	pl := s.d.planPhrase(sg)
	if pl.done {
		return pl.span, nil
	}
	// Pass 1: the state and score at each chunk's start.
	for j := range len(pl.chunks) - 1 {
		row := pl.chunkRow(j)
		if len(row) == 0 {
			pl.starts[j+1], pl.startScore[j+1] = pl.starts[j], pl.startScore[j]
			continue
		}
		scores, states, err := s.d.ScoreIDs(ctx, [][]int64{row}, []State{pl.starts[j]})
		if err != nil {
			return phraseSpan{}, err
		}
		pl.starts[j+1], pl.startScore[j+1] = states[0], float64(scores[0])
	}
	// Pass 2: after[k] is the score once words 0..k have been read.
	rows, inits, at := pl.prefixRows(nil, nil, nil)
	for len(rows) > 0 {
		n := min(len(rows), phraseRows)
		scores, _, err := s.d.ScoreIDs(ctx, rows[:n], inits[:n])
		if err != nil {
			return phraseSpan{}, err
		}
		for r, p := range at[:n] {
			*p = float64(scores[r])
		}
		rows, inits, at = rows[n:], inits[n:], at[n:]
	}
	return bestSpan(pl.after, sg.Prior), nil
}

// phrasePlan is a phrase search laid out: the segment's words and their
// token ids, its chunks, and (filled by the passes) each chunk's start
// state and score and the score after every word.
type phrasePlan struct {
	words      []string
	ids        [][]int64
	chunks     []wordRange
	starts     []State
	startScore []float64
	after      []float64
	tokens     int
	done       bool // no search needed: span is the answer
	span       phraseSpan
}

type wordRange struct{ a, b int } // words [a, b)

// planPhrase tokenizes a candidate's words and cuts them into chunks of at
// most one backend window of tokens. (Cutting a short segment in halves
// halves the token slots but adds a backend call, whose fixed cost is as
// large: measured, no faster.)
func (d *Detector) planPhrase(sg segRecord) *phrasePlan {
	words := strings.Fields(tokenize.Clean(sg.Text))
	pl := &phrasePlan{words: words}
	if len(words) <= 1 {
		pl.done, pl.span = true, phraseSpan{0, len(words)}
		return pl
	}
	pl.ids = make([][]int64, len(words))
	for i, w := range words {
		if x, err := d.tok.Encode(w); err == nil {
			pl.ids[i] = x
			pl.tokens += len(x)
		}
	}
	for a := 0; a < len(words); {
		b, n := a, 0
		for b < len(words) && (b == a || n+len(pl.ids[b]) <= d.window) {
			n += len(pl.ids[b])
			b++
		}
		pl.chunks = append(pl.chunks, wordRange{a, b})
		a = b
	}
	pl.starts = make([]State, len(pl.chunks))
	pl.startScore = make([]float64, len(pl.chunks))
	pl.starts[0], pl.startScore[0] = sg.Before, sg.Prior
	pl.after = make([]float64, len(words))
	return pl
}

// chunkRow is chunk j's tokens.
func (pl *phrasePlan) chunkRow(j int) []int64 {
	var row []int64
	for k := pl.chunks[j].a; k < pl.chunks[j].b; k++ {
		row = append(row, pl.ids[k]...)
	}
	return row
}

// prefixRows appends the second pass's rows: every prefix of every chunk
// from its start state, and where each row's score goes. Prefixes with no
// token yet take their chunk's start score at once.
func (pl *phrasePlan) prefixRows(rows [][]int64, inits []State, at []*float64) ([][]int64, []State, []*float64) {
	for j, c := range pl.chunks {
		var cur []int64
		for k := c.a; k < c.b; k++ {
			cur = append(cur, pl.ids[k]...)
			if len(cur) == 0 {
				pl.after[k] = pl.startScore[j]
				continue
			}
			rows = append(rows, cur[:len(cur):len(cur)])
			inits = append(inits, pl.starts[j])
			at = append(at, &pl.after[k])
		}
	}
	return rows, inits, at
}

// bestSpan is the run of up to phraseWords words across which the score
// rose most, from after[k] (the score once words 0..k have been read) and
// prior (the score before the first).
func bestSpan(after []float64, prior float64) phraseSpan {
	score := func(k int) float64 {
		if k < 0 {
			return prior
		}
		return after[k]
	}
	bestGain, bestA, bestB := math.Inf(-1), 0, 0
	for a := 0; a < len(after); a++ {
		for b := a; b < len(after) && b < a+phraseWords; b++ {
			if g := score(b) - score(a-1); g > bestGain {
				bestGain, bestA, bestB = g, a, b
			}
		}
	}
	return phraseSpan{bestA, bestB + 1 - bestA}
}

// ResolveReasonsBatch is ResolveReasons for many sessions at once, for the
// candidates whose segment fits one backend window (every segment but very
// long ones): each pass of their phrase searches runs in one backend call,
// rows from every session together, so a server finds the phrases of a
// whole batch of segments for about the cost of one. The rows and their
// start states are the ones phrase runs, so the phrases are the same.
// Longer segments are left to ResolveReasons, under their own request's
// deadline.
func (d *Detector) ResolveReasonsBatch(ctx context.Context, sessions []*Session) error {
	type item struct {
		s     *Session
		index int // the candidate's segment index
		prior float64
		pl    *phrasePlan
	}
	var items []item
	chunks := 0
	for _, s := range sessions {
		s.mu.Lock()
		top := append([]segRecord(nil), s.top...)
		s.mu.Unlock()
		for _, sg := range top {
			if sg.phrase.N > 0 || sg.tokens > d.window {
				continue // found, or too long for the batch: not even tokenized here
			}
			pl := d.planPhrase(sg)
			if pl.done || pl.tokens > d.window {
				// One word or none: ResolveReasons names it without a search.
				// Longer than a window: its own request searches it.
				continue
			}
			items = append(items, item{s: s, index: sg.Index, prior: sg.Prior, pl: pl})
			chunks = max(chunks, len(pl.chunks))
		}
	}
	run := func(rows [][]int64, inits []State, done func(r int, score float32, st State)) error {
		for off := 0; off < len(rows); off += phraseRows {
			end := min(len(rows), off+phraseRows)
			scores, states, err := d.ScoreIDs(ctx, rows[off:end], inits[off:end])
			if err != nil {
				return err
			}
			for r := off; r < end; r++ {
				done(r, scores[r-off], states[r-off])
			}
		}
		return nil
	}
	// Pass 1, a round per chunk: the state at each next chunk's start.
	for j := 0; j < chunks-1; j++ {
		var (
			rows  [][]int64
			inits []State
			to    []*phrasePlan
		)
		for _, it := range items {
			if j+1 >= len(it.pl.chunks) {
				continue
			}
			row := it.pl.chunkRow(j)
			if len(row) == 0 {
				it.pl.starts[j+1], it.pl.startScore[j+1] = it.pl.starts[j], it.pl.startScore[j]
				continue
			}
			rows, inits, to = append(rows, row), append(inits, it.pl.starts[j]), append(to, it.pl)
		}
		err := run(rows, inits, func(r int, score float32, st State) {
			to[r].starts[j+1], to[r].startScore[j+1] = st, float64(score)
		})
		if err != nil {
			return err
		}
	}
	// Pass 2: every prefix of every chunk.
	var (
		rows  [][]int64
		inits []State
		at    []*float64
	)
	for _, it := range items {
		rows, inits, at = it.pl.prefixRows(rows, inits, at)
	}
	if err := run(rows, inits, func(r int, score float32, _ State) { *at[r] = float64(score) }); err != nil {
		return err
	}
	for _, it := range items {
		sp := bestSpan(it.pl.after, it.prior)
		it.s.mu.Lock()
		for i := range it.s.top {
			if r := &it.s.top[i]; r.Index == it.index && r.phrase.N == 0 && sp.N > 0 {
				r.phrase, r.Before = sp, nil
			}
		}
		it.s.mu.Unlock()
	}
	return nil
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

// TopSegment is a kept reason candidate inside SessionState. Until its
// phrase is found it carries the model state before the segment (State) and
// the score then (Prior), from which Reasons finds the phrase; once found
// (Session.ResolveReasons) it carries the phrase as words
// [PhraseAt, PhraseAt+PhraseWords) of the cleaned text, and no state.
type TopSegment struct {
	Text        string      `json:"text"`
	Start       float64     `json:"start,omitempty"`
	End         float64     `json:"end,omitempty"`
	Index       int         `json:"index"`
	Delta       float64     `json:"delta"`
	Prior       float64     `json:"prior"`
	State       [][]float32 `json:"state,omitempty"`
	PhraseAt    int         `json:"phrase_at,omitempty"`
	PhraseWords int         `json:"phrase_words,omitempty"`
}

// Snapshot returns the session's state.
func (s *Session) Snapshot() SessionState {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := SessionState{ModelSHA256: s.d.bundle.ModelSHA256, State: s.state.Clone(), Started: s.started,
		Score: s.score, Level: s.level, Family: s.family, FamilyProb: s.famProb,
		Recent: append([]float64(nil), s.recent...), Segments: s.nseg, Tokens: s.tokens}
	for _, t := range s.top {
		ts := TopSegment{Text: t.Text, Start: t.Start, End: t.End, Index: t.Index, Delta: t.Delta}
		if t.phrase.N > 0 {
			ts.PhraseAt, ts.PhraseWords = t.phrase.At, t.phrase.N
		} else {
			ts.Prior, ts.State = t.Prior, t.Before.Clone()
		}
		st.Top = append(st.Top, ts)
	}
	return st
}

// ErrStateMismatch means a SessionState does not fit this detector.
var ErrStateMismatch = errors.New("session state does not match this model")

// ErrInvalidState means a SessionState holds values no session can reach: a
// score outside [0, 1], a negative or absurd segment count, more reasons
// than the policy keeps, a non-finite number.
var ErrInvalidState = errors.New("invalid session state")

// MaxSegments is the most segments a resumed call may claim (about 12 days
// of one segment a second): a bound for validating states from outside.
const MaxSegments = 1 << 20

// maxStateValue bounds a resumed state's values: LSTM h is in [-1, 1], c
// stays small, and the pooled sums grow with the call's tokens; a bound far
// above all of them keeps sums from overflowing float32.
const maxStateValue = 1e9

// maxStateTokens bounds a resumed call's token count the same way.
const maxStateTokens = 1 << 40

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
					return fmt.Errorf("%w: %s tensor %s holds a non-finite value", ErrInvalidState, what, spec.In)
				}
				if math.Abs(float64(v)) > maxStateValue {
					return fmt.Errorf("%w: %s tensor %s holds %g, beyond any real call's state", ErrInvalidState, what, spec.In, v)
				}
			}
		}
		return nil
	}
	if err := checkState("state", st.State); err != nil {
		return nil, err
	}
	if !st.Level.Valid() {
		return nil, fmt.Errorf("%w: unknown level %q", ErrInvalidState, st.Level)
	}
	if err := d.validateState(p, st); err != nil {
		return nil, err
	}
	s.state = State(st.State).Clone()
	s.started, s.score, s.level, s.nseg, s.tokens = st.Started, st.Score, st.Level, st.Segments, st.Tokens
	s.family, s.famProb = st.Family, st.FamilyProb
	s.recent = append([]float64(nil), st.Recent...)
	for _, t := range st.Top {
		if err := checkState("reason state", t.State); err != nil {
			return nil, err
		}
		r := segRecord{Segment: Segment{Text: t.Text, Start: t.Start, End: t.End}, Index: t.Index, Delta: t.Delta}
		if t.PhraseWords > 0 {
			r.phrase = phraseSpan{t.PhraseAt, t.PhraseWords}
		} else {
			r.Prior, r.Before = t.Prior, State(t.State).Clone()
		}
		s.top = append(s.top, r)
	}
	return s, nil
}

// validateState checks the values of a state from outside (a token) against
// what a session of this detector and policy can hold; Resume calls it.
func (d *Detector) validateState(p Policy, st SessionState) error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalidState}, a...)...)
	}
	prob := func(v float64) bool { return v >= 0 && v <= 1 } // false for NaN
	finite := func(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
	switch {
	case !prob(st.Score):
		return bad("score %g is not in [0, 1]", st.Score)
	case st.Segments < 0 || st.Segments > MaxSegments:
		return bad("segment count %d is not in [0, %d]", st.Segments, MaxSegments)
	case st.Tokens < 0 || st.Tokens > maxStateTokens:
		return bad("token count %d is not in [0, %d]", st.Tokens, int64(maxStateTokens))
	case st.Segments == 0 && (st.Started || st.Tokens > 0 || len(st.Top) > 0 || len(st.Recent) > 0 || st.Level != LevelNone):
		return bad("a call with no segments has scores, tokens or a level")
	case !st.Started && st.State != nil:
		return bad("a call that has read no token carries a state")
	case len(st.Top) > p.Reasons:
		return bad("%d reason candidates, the policy keeps %d", len(st.Top), p.Reasons)
	case len(st.Recent) > 100: // Policy.Validate's bound on smooth
		return bad("%d recent scores, at most 100 are kept", len(st.Recent))
	case !prob(st.FamilyProb):
		return bad("family probability %g is not in [0, 1]", st.FamilyProb)
	}
	if st.Family != "" && !slices.Contains(d.Families(), st.Family) {
		return bad("unknown family %q", st.Family)
	}
	for _, v := range st.Recent {
		if !prob(v) {
			return bad("recent score %g is not in [0, 1]", v)
		}
	}
	for _, t := range st.Top {
		switch {
		case t.Index < 0 || t.Index >= st.Segments:
			return bad("reason segment %d is not in [0, %d)", t.Index, st.Segments)
		case !(t.Delta > 0 && t.Delta <= 1):
			return bad("reason delta %g is not in (0, 1]", t.Delta)
		case !prob(t.Prior):
			return bad("reason prior %g is not in [0, 1]", t.Prior)
		case !finite(t.Start) || !finite(t.End):
			return bad("reason times %g..%g are not finite", t.Start, t.End)
		case t.PhraseWords < 0 || t.PhraseWords > phraseWords || t.PhraseAt < 0 || t.PhraseWords == 0 && t.PhraseAt != 0:
			return bad("reason phrase of %d words at word %d", t.PhraseWords, t.PhraseAt)
		case t.PhraseWords > 0 && t.State != nil:
			return bad("a reason carries both its phrase and a state")
		}
		if t.PhraseWords > 0 {
			if n := len(strings.Fields(tokenize.Clean(t.Text))); t.PhraseAt+t.PhraseWords > n {
				return bad("reason phrase at words %d..%d of a %d-word segment", t.PhraseAt, t.PhraseAt+t.PhraseWords, n)
			}
		}
	}
	return nil
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
