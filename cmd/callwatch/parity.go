package main

import (
	"encoding/json"
	"fmt"
	"math"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/callwatch/callwatch"
	"github.com/callwatch/callwatch/internal/records"
	"github.com/callwatch/callwatch/models"
)

type parityReport struct {
	Backends     [2]string `json:"backends"`
	Records      int       `json:"records"`
	Scored       int       `json:"scored"`
	Skipped      int       `json:"skipped"`
	Tokens       int       `json:"tokens"`
	Batch        int       `json:"batch"`
	MaxAbsProbs  float64   `json:"max_abs_diff_probs"`
	MaxAbsFamily float64   `json:"max_abs_diff_family"`
	MaxAbsState  float64   `json:"max_diff_state_scaled"`
	// MaxAbsDiff is the largest difference in what users see: P(phishing)
	// and the family probabilities.
	MaxAbsDiff     float64 `json:"max_abs_diff"`
	LevelMismatch  int     `json:"level_mismatches"`
	FamilyMismatch int     `json:"family_mismatches"`
	Tolerance      float64 `json:"tolerance"`
	StateTolerance float64 `json:"state_tolerance"`
	OK             bool    `json:"ok"`
	WorstRecord    string  `json:"worst_record,omitempty"`
}

// parity runs the same token ids through onnxruntime and the pure-Go
// backend and reports the largest differences in probabilities, levels,
// families and final state.
//
// The two tolerances differ on purpose. Probabilities are what users see and
// stay within ~1e-6 on any trained model: they are squashed through a
// sigmoid/softmax of a bounded head. State is not: the LSTM cell state and
// pooled sums are running accumulators (c_t = f·c_{t-1} + i·g with f near 1,
// p = Σ h_t), so the float32 rounding of two different GEMM kernels
// (onnxruntime's MLAS and native's AVX2 dot) adds up over thousands of steps:
// a retrained model reached 5e-5 scaled on a 700-token call. A wrong graph
// (gate order, missing lengths, a dropped bias) moves state by 1e-2 or more,
// so 1e-3 still catches every such fault while never failing on rounding.
func (e *env) parityCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "parity [TEXT...] [--input FILE|-] [--tolerance 1e-5] [--state-tolerance 1e-3]",
		Short: "Compare the onnxruntime and pure-Go backends on the same inputs (exit 1 above tolerance)",
		Long: `parity runs the same token ids through onnxruntime and the pure-Go backend and
prints one JSON report: the largest differences in probabilities, families and
final state, and level and family mismatches. Exit 1 when a tolerance is passed.`,
		Example: `  callwatch parity --input testdata/parity_calls.jsonl`,
	}
	o := addInputFlags(cmd)
	fs := cmd.Flags()
	addKeyFlags(fs, modelKeys...)
	tol := fs.Float64("tolerance", 1e-5, "largest acceptable absolute difference in probabilities (P(phishing), family)")
	stol := fs.Float64("state-tolerance", 1e-3, "largest acceptable difference in final state, scaled by max(1,|x|)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error { return e.parity(fs, o, *tol, *stol, args) }
	return cmd
}

// parity compares the backends chunk by chunk as records arrive.
func (e *env) parity(fs *pflag.FlagSet, o *inputOpts, tol, stol float64, args []string) error {
	c, rr, closeIn, err := e.configWithRecords(fs, o, args)
	if err != nil {
		return err
	}
	defer closeIn()
	b, err := e.loadBundle(c)
	if err != nil {
		return err
	}
	var dets [2]*callwatch.Detector
	for i, kind := range []string{callwatch.BackendORT, callwatch.BackendNative} {
		be, err := e.openBackend(c, kind, b)
		if err != nil {
			return err
		}
		d, err := callwatch.New(b, be, callwatch.WithBatchSize(c.Batch), callwatch.WithWindow(c.Window))
		if err != nil {
			be.Close()
			return &errUsage{err}
		}
		defer d.Close()
		dets[i] = d
	}
	rep := parityReport{Backends: [2]string{"ort", "native"}, Tolerance: tol, StateTolerance: stol, Batch: c.Batch}
	th := b.Card.Thresholds
	err = e.eachChunk(rr, func(chunk []records.Record) error {
		var ids [][]int64
		var names []string
		for _, r := range chunk {
			rep.Records++
			if r.Err != nil {
				rep.Skipped++
				continue
			}
			x, err := dets[0].Tokenizer().Encode(r.Text)
			if err != nil {
				rep.Skipped++
				continue
			}
			ids = append(ids, x)
			names = append(names, r.ID)
			rep.Tokens += len(x)
		}
		if len(ids) > 0 {
			sa, sta, err := dets[0].Score(e.ctx, ids, nil)
			if err != nil {
				return fmt.Errorf("ort backend: %w", err)
			}
			sb, stb, err := dets[1].Score(e.ctx, ids, nil)
			if err != nil {
				return fmt.Errorf("native backend: %w", err)
			}
			rep.addRows(names, sa, sb, sta, stb, dets, th)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if rep.Scored == 0 {
		return usagef("no record could be tokenized; nothing was compared")
	}
	rep.OK = rep.ok()
	out, _ := json.Marshal(rep)
	if _, err := fmt.Fprintf(e.stdout, "%s\n", out); err != nil {
		return err
	}
	if !rep.OK {
		return &errFailed{fmt.Errorf("backends differ: probabilities by %.3g (tolerance %.3g, record %s), state by %.3g scaled (tolerance %.3g), %d level and %d family mismatches",
			rep.MaxAbsDiff, rep.Tolerance, rep.WorstRecord, rep.MaxAbsState, rep.StateTolerance, rep.LevelMismatch, rep.FamilyMismatch)}
	}
	return nil
}

// addRows folds one chunk of rows scored by both backends into the report:
// probabilities and families absolutely, state scaled, and level and family
// mismatches that are not ties at a threshold.
func (rep *parityReport) addRows(names []string, sa, sb []callwatch.Scores, sta, stb []callwatch.State,
	dets [2]*callwatch.Detector, th models.Thresholds) {
	tol := rep.Tolerance
	for i := range sa {
		rep.Scored++
		dp := math.Abs(float64(sa[i].Phishing - sb[i].Phishing))
		df := maxAbsDiff(sa[i].Family, sb[i].Family)
		ds := 0.0
		for k := range sta[i] {
			ds = math.Max(ds, maxScaled(sta[i][k], stb[i][k]))
		}
		rep.MaxAbsProbs = math.Max(rep.MaxAbsProbs, dp)
		rep.MaxAbsFamily = math.Max(rep.MaxAbsFamily, df)
		rep.MaxAbsState = math.Max(rep.MaxAbsState, ds)
		if d := math.Max(dp, df); d > rep.MaxAbsDiff {
			rep.MaxAbsDiff = d
			if i < len(names) {
				rep.WorstRecord = names[i]
			}
		}
		// A level may differ only where a score sits within the
		// tolerance of a threshold.
		pa, pb := float64(sa[i].Phishing), float64(sb[i].Phishing)
		if levelOf(pa, th.Suspicious, th.Dangerous) != levelOf(pb, th.Suspicious, th.Dangerous) &&
			!near(pa, th.Suspicious, tol) && !near(pa, th.Dangerous, tol) {
			rep.LevelMismatch++
		}
		fa, qa := dets[0].Family(sa[i].Family)
		fb, _ := dets[1].Family(sb[i].Family)
		if fa != fb && !secondWithin(sa[i].Family, qa, tol) {
			rep.FamilyMismatch++
		}
	}
}

// ok applies the two tolerances and the mismatch counts.
func (rep *parityReport) ok() bool {
	return rep.MaxAbsDiff <= rep.Tolerance && rep.MaxAbsState <= rep.StateTolerance &&
		rep.LevelMismatch == 0 && rep.FamilyMismatch == 0
}

// maxScaled compares states relative to their size above 1 (see
// backendtest.MaxScaled): cell states and pooled sums of long calls grow
// past 50.
func maxScaled(a, b []float32) float64 {
	if len(a) != len(b) {
		return math.Inf(1)
	}
	m := 0.0
	for i := range a {
		d := math.Abs(float64(a[i]-b[i])) / math.Max(1, math.Abs(float64(b[i])))
		if math.IsNaN(d) {
			return math.Inf(1)
		}
		m = math.Max(m, d)
	}
	return m
}

func maxAbsDiff(a, b []float32) float64 {
	if len(a) != len(b) {
		return math.Inf(1)
	}
	m := 0.0
	for i := range a {
		d := math.Abs(float64(a[i] - b[i]))
		if math.IsNaN(d) {
			return math.Inf(1)
		}
		m = math.Max(m, d)
	}
	return m
}

func levelOf(p, susp, dang float64) int {
	switch {
	case p >= dang:
		return 2
	case p >= susp:
		return 1
	}
	return 0
}

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

// secondWithin reports whether another family's probability is within tol of
// the top one: a tie that rounding may break either way.
func secondWithin(probs []float32, top, tol float64) bool {
	n := 0
	for _, p := range probs {
		if math.Abs(float64(p)-top) <= tol {
			n++
		}
	}
	return n > 1
}
