// Package callwatch detects Korean voice phishing in speech-to-text call
// transcripts. A Detector joins a model bundle (models), the Go tokenizer
// (tokenize) and an inference backend (runtime/ort or runtime/native).
package callwatch

import (
	"context"
	"fmt"
	goruntime "runtime"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/callwatch/callwatch/api"
	"github.com/callwatch/callwatch/models"
	"github.com/callwatch/callwatch/runtime"
	"github.com/callwatch/callwatch/tokenize"
)

// Labels as they appear in output records.
const (
	LabelPhishing = "phishing"
	LabelNormal   = "normal"
)

// Level is an alert level: none, suspicious or dangerous, ordered by
// Level.Rank. It is the wire type (package api), so verdicts, stream events
// and state tokens print the same strings everywhere.
type Level = api.Level

// The levels, lowest first.
const (
	LevelNone       = api.LevelNone
	LevelSuspicious = api.LevelSuspicious
	LevelDangerous  = api.LevelDangerous
)

// Verdict is the outcome for one text.
type Verdict struct {
	Label string  `json:"label"`
	Score float64 `json:"score"` // P(phishing)
	Level Level   `json:"level"`
	// Family is the most likely scenario family (of either class, e.g.
	// "loan_lowrate" or "bank_callcenter") and FamilyProb its probability,
	// for models with a family head; empty otherwise.
	Family     string  `json:"family,omitempty"`
	FamilyProb float64 `json:"family_prob,omitempty"`
}

// Result pairs a verdict with the error that prevented it, if any.
type Result struct {
	Verdict
	Tokens  int
	Unknown int // [UNK] tokens among Tokens
	Err     error
}

// State is one call's recurrent state, for carrying it across windows or
// segments: one slice per state tensor of the model's signature (h and c
// [layer][unit]; newer models add p, a pooled summary of the call so far).
// Nil is a fresh call.
type State [][]float32

// Clone returns a deep copy.
func (s State) Clone() State {
	if s == nil {
		return nil
	}
	out := make(State, len(s))
	for i, v := range s {
		out[i] = append([]float32(nil), v...)
	}
	return out
}

// Scores is what the model says about one row: P(phishing) and, for models
// with a family head, the family distribution.
type Scores struct {
	Phishing float32
	Family   []float32 // nil without a family head
}

// Detector scores transcripts. It is safe for concurrent use.
type Detector struct {
	bundle  *models.Bundle
	tok     *tokenize.Tokenizer
	be      runtime.Backend
	batch   int
	window  int
	workers int
	// sessionIDs numbers sessions for FeedBatch's lock order.
	sessionIDs atomic.Uint64
}

// Option configures a Detector.
type Option func(*Detector)

// WithBatchSize sets how many texts go to the backend at once.
func WithBatchSize(n int) Option {
	return func(d *Detector) {
		if n > 0 {
			d.batch = n
		}
	}
}

// WithWorkers sets how many backend batches run at once (default
// GOMAXPROCS). Backends are safe for concurrent use; on onnxruntime one
// intra-op thread per run and one run per core measured fastest (README.md,
// "Performance": the knob sweep).
func WithWorkers(n int) Option {
	return func(d *Detector) {
		if n > 0 {
			d.workers = n
		}
	}
}

// WithWindow sets how many tokens of each row go to the backend per run
// (default runWindow, never more than the card's max_seq_len). Scores do
// not depend on it; memory and speed do (scripts/bench -sweep).
func WithWindow(n int) Option {
	return func(d *Detector) {
		if n > 0 {
			d.window = n
		}
	}
}

// runWindow caps the tokens per row in one backend run. onnxruntime's LSTM
// allocates [seq, batch, 4·hidden] per run and keeps the peak in its arena, so
// a 512-token window at batch 32 held ~250 MB of RSS over a 2,000-call run,
// 64 tokens ~88 MB and 32 tokens ~77 MB, at the same speed (the per-run
// overhead is ~2% of a batch-32 run). Scores do not change: the state is
// carried across windows exactly as inside one run.
const runWindow = 32

// New builds a Detector over a loaded bundle and an open backend. The
// Detector owns the backend and closes it in Close.
func New(b *models.Bundle, be runtime.Backend, opts ...Option) (*Detector, error) {
	d := &Detector{bundle: b, be: be, batch: 32, window: runWindow, workers: goruntime.GOMAXPROCS(0)}
	for _, o := range opts {
		o(d)
	}
	if m := b.Card.MaxSeqLen; m > 0 {
		d.window = min(d.window, m)
	}
	if d.tok == nil {
		tok, err := LoadTokenizer(b)
		if err != nil {
			return nil, err
		}
		d.tok = tok
	}
	return d, nil
}

// WithTokenizer gives New a tokenizer already loaded with LoadTokenizer from
// the same bundle, so that callers can load it while the backend opens.
func WithTokenizer(t *tokenize.Tokenizer) Option {
	return func(d *Detector) { d.tok = t }
}

// LoadTokenizer loads the bundle's tokenizer with the card's limits and
// checks that its vocabulary fits the model's embedding.
func LoadTokenizer(b *models.Bundle) (*tokenize.Tokenizer, error) {
	var topts []tokenize.Option
	if b.Card.MaxTextBytes > 0 {
		topts = append(topts, tokenize.WithMaxBytes(b.Card.MaxTextBytes))
	}
	if n := b.Card.TextNormalizer; n != "" {
		if !tokenize.KnownNormalizer(n) {
			return nil, &models.BundleError{Dir: b.Dir, File: models.CardFile,
				Problem: fmt.Sprintf("text_normalizer %q is not one this callwatch knows", n),
				Fix:     "the model needs a newer callwatch; upgrade callwatch, or use a model built for this one", Remedy: models.RemedyNone}
		}
		topts = append(topts, tokenize.WithNormalizer(n))
	}
	tok, err := tokenize.LoadBytes(b.Tokenizer, topts...)
	if err != nil {
		return nil, &models.BundleError{Dir: b.Dir, File: models.TokenizerFile, Problem: "cannot be loaded",
			Fix: "restore the bundle's tokenizer.json or rebuild the bundle", Remedy: models.RemedyRestore, Err: err}
	}
	want := b.EmbeddingRows
	if want == 0 {
		want = b.Card.Architecture.VocabSize // a Bundle built by hand, not by models.Load
	}
	if want > 0 && tok.VocabSize() != want {
		return nil, &models.BundleError{Dir: b.Dir, File: models.TokenizerFile,
			Problem: fmt.Sprintf("vocabulary has %d tokens but the model's embedding has %d", tok.VocabSize(), want),
			Fix:     "the tokenizer belongs to another model; restore the bundle's own tokenizer.json or rebuild the bundle",
			Remedy:  models.RemedyRestore}
	}
	return tok, nil
}

// Bundle returns the loaded model bundle.
func (d *Detector) Bundle() *models.Bundle { return d.bundle }

// Backend returns the inference backend.
func (d *Detector) Backend() runtime.Backend { return d.be }

// Tokenizer returns the bundle's tokenizer.
func (d *Detector) Tokenizer() *tokenize.Tokenizer { return d.tok }

// Close releases the backend.
func (d *Detector) Close() error { return d.be.Close() }

// Verdict maps a score to label and level with the card's thresholds. A text
// is labelled phishing once it reaches the suspicious level.
func (d *Detector) Verdict(score float64) Verdict {
	t := d.bundle.Card.Thresholds
	v := Verdict{Label: LabelNormal, Score: score, Level: LevelNone}
	switch {
	case score >= t.Dangerous:
		v.Level = LevelDangerous
	case score >= t.Suspicious:
		v.Level = LevelSuspicious
	}
	if v.Level != LevelNone {
		v.Label = LabelPhishing
	}
	return v
}

// Classify scores each text. It returns exactly one Result per text, in
// order; a text that cannot be scored carries its error and the others go
// on. The returned error is only for failures that concern the whole batch
// (a cancelled context or a broken backend).
func (d *Detector) Classify(ctx context.Context, texts []string) ([]Result, error) {
	res := make([]Result, len(texts))
	if err := ctx.Err(); err != nil {
		return res, err
	}
	// Tokenize on every core (pure CPU, no shared state but the tokenizer's
	// cache of split words).
	ids, errs := d.tok.EncodeBatch(texts)
	if err := ctx.Err(); err != nil {
		return res, err
	}
	unk := d.tok.UnkID()
	for i := range res {
		res[i].Err, res[i].Tokens = errs[i], len(ids[i])
		for _, id := range ids[i] {
			if id == unk {
				res[i].Unknown++
			}
		}
	}
	scores, _, err := d.Score(ctx, ids, nil)
	if err != nil {
		return res, err
	}
	for i := range res {
		if res[i].Err == nil {
			res[i].Verdict = d.VerdictOf(scores[i])
		}
	}
	return res, nil
}

// VerdictOf maps a row's scores to a verdict, with its family when the
// model has a family head.
func (d *Detector) VerdictOf(s Scores) Verdict {
	v := d.Verdict(float64(s.Phishing))
	v.Family, v.FamilyProb = d.Family(s.Family)
	return v
}

// Families lists the family head's classes (nil without one).
func (d *Detector) Families() []string {
	if d.be.Signature().Extra(runtime.OutputFamily) == 0 {
		return nil
	}
	return d.bundle.Card.Families
}

// Family names the most likely family in a family distribution.
func (d *Detector) Family(probs []float32) (string, float64) {
	fams := d.Families()
	if len(probs) == 0 || len(probs) != len(fams) {
		return "", 0
	}
	best := 0
	for i, p := range probs {
		if p > probs[best] {
			best = i
		}
	}
	return fams[best], float64(probs[best])
}

// ScoreIDs runs token id rows through the backend and returns P(phishing)
// and the final state of every row; see Score.
func (d *Detector) ScoreIDs(ctx context.Context, rows [][]int64, init []State) ([]float32, []State, error) {
	sc, states, err := d.Score(ctx, rows, init)
	if err != nil {
		return nil, nil, err
	}
	p := make([]float32, len(sc))
	for i := range sc {
		p[i] = sc[i].Phishing
	}
	return p, states, nil
}

// Score runs token id rows through the backend and returns the scores
// and the final state of every row. Rows that are empty get score 0 and a
// nil state (callers report them as errors before this point). Rows are
// grouped by length so padding stays small, cut into windows of at most the
// card's max_seq_len (runWindow), and carried across windows through the LSTM state, so texts
// of any length are scored exactly as one pass would score them.
// init, when non-nil, gives each row's starting state (nil entries = zeros).
func (d *Detector) Score(ctx context.Context, rows [][]int64, init []State) ([]Scores, []State, error) {
	scores := make([]Scores, len(rows))
	states := make([]State, len(rows))
	order := make([]int, 0, len(rows))
	for i, r := range rows {
		if len(r) > 0 {
			order = append(order, i)
		}
	}
	sort.SliceStable(order, func(a, b int) bool { return len(rows[order[a]]) < len(rows[order[b]]) })
	nb := (len(order) + d.batch - 1) / d.batch
	// Batches are independent: up to d.workers of them run at once, each
	// writing only its own rows of scores and states.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		next     atomic.Int64
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	work := func() {
		for {
			// Longest batches first: their windows run one after another,
			// so started last they would leave the other workers idle.
			k := nb - 1 - int(next.Add(1)-1)
			if k < 0 || ctx.Err() != nil {
				return
			}
			idx := order[k*d.batch : min((k+1)*d.batch, len(order))]
			batchRows := make([][]int64, len(idx))
			var batchInit []State
			if init != nil {
				batchInit = make([]State, len(idx))
			}
			for j, i := range idx {
				batchRows[j] = rows[i]
				if init != nil {
					batchInit[j] = init[i]
				}
			}
			s, st, err := d.runWindows(ctx, batchRows, batchInit)
			if err != nil {
				errOnce.Do(func() { firstErr = err; cancel() })
				return
			}
			for j, i := range idx {
				scores[i], states[i] = s[j], st[j]
			}
		}
	}
	if w := min(d.workers, nb); w <= 1 {
		work() // the common single-batch case runs on the caller's goroutine
	} else {
		for range w {
			wg.Go(work)
		}
		wg.Wait()
	}
	if firstErr != nil {
		return nil, nil, firstErr
	}
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	return scores, states, nil
}

// runWindows runs one batch of non-empty rows window by window; rows that
// have ended drop out of later windows.
func (d *Detector) runWindows(ctx context.Context, rows [][]int64, init []State) ([]Scores, []State, error) {
	sig := d.be.Signature()
	fam := -1
	for k, e := range sig.Extras {
		if e.Name == runtime.OutputFamily {
			fam = k
		}
	}
	scores := make([]Scores, len(rows))
	states := make([]State, len(rows))
	for j := range rows {
		if init != nil && init[j] != nil {
			states[j] = init[j].Clone()
		} else {
			states[j] = State(sig.ZeroState())
		}
	}
	w := d.window
	for off := 0; ; off += w {
		var active []int
		seq := 0
		for j, r := range rows {
			if len(r) > off {
				active = append(active, j)
				seq = max(seq, min(len(r)-off, w))
			}
		}
		if len(active) == 0 {
			break
		}
		B := len(active)
		in := runtime.Input{
			IDs: make([]int64, B*seq), Lengths: make([]int64, B), Batch: B, Seq: seq,
			State: make([][]float32, len(sig.States)),
		}
		for k, st := range sig.States {
			in.State[k] = make([]float32, st.RowSize()*B)
		}
		for b, j := range active {
			part := rows[j][off:min(len(rows[j]), off+w)]
			copy(in.IDs[b*seq:], part)
			in.Lengths[b] = int64(len(part))
			for k, st := range sig.States {
				st.ScatterRow(in.State[k], states[j][k], B, b)
			}
		}
		out, err := d.be.Run(ctx, in)
		if err != nil {
			return nil, nil, fmt.Errorf("%s backend: %w", d.be.Name(), err)
		}
		for b, j := range active {
			scores[j].Phishing = out.Probs[2*b+1]
			for k, st := range sig.States {
				st.GatherRow(states[j][k], out.State[k], B, b)
			}
			if fam >= 0 {
				wd := sig.Extras[fam].Width
				scores[j].Family = append(scores[j].Family[:0], out.Extras[fam][b*wd:(b+1)*wd]...)
			}
		}
	}
	return scores, states, nil
}
