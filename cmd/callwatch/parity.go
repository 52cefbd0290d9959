package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/callwatch/callwatch"
)

type parityReport struct {
	Backends    [2]string `json:"backends"`
	Records     int       `json:"records"`
	Scored      int       `json:"scored"`
	Skipped     int       `json:"skipped"`
	Tokens      int       `json:"tokens"`
	Batch       int       `json:"batch"`
	MaxAbsProbs float64   `json:"max_abs_diff_probs"`
	MaxAbsState float64   `json:"max_diff_state_scaled"`
	MaxAbsDiff  float64   `json:"max_abs_diff"`
	Tolerance   float64   `json:"tolerance"`
	OK          bool      `json:"ok"`
	WorstRecord string    `json:"worst_record,omitempty"`
}

// parity runs the same token ids through onnxruntime and the pure-Go
// backend and reports the largest difference in P(phishing) and final state.
func (e *env) parity(args []string) error {
	o, fs := addInputFlags("parity", e, "parity [TEXT...] [--input FILE|-] [--tolerance 1e-5] [flags]")
	addModelFlags(fs.FlagSet)
	tol := fs.Float64("tolerance", 1e-5, "largest acceptable absolute difference")
	c, rr, closeIn, err := e.parseWithRecords(fs, o, args)
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
	rep := parityReport{Backends: [2]string{"ort", "native"}, Tolerance: *tol, Batch: c.Batch}
	for {
		chunk, rerr := readChunk(e.ctx, rr, chunkSize)
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
			sa, sta, err := dets[0].ScoreIDs(e.ctx, ids, nil)
			if err != nil {
				return err
			}
			sb, stb, err := dets[1].ScoreIDs(e.ctx, ids, nil)
			if err != nil {
				return err
			}
			for i := range ids {
				rep.Scored++
				dp := math.Abs(float64(sa[i] - sb[i]))
				ds := math.Max(maxAbs(sta[i].H, stb[i].H), maxAbs(sta[i].C, stb[i].C))
				rep.MaxAbsProbs = math.Max(rep.MaxAbsProbs, dp)
				rep.MaxAbsState = math.Max(rep.MaxAbsState, ds)
				if d := math.Max(dp, ds); d > rep.MaxAbsDiff {
					rep.MaxAbsDiff, rep.WorstRecord = d, names[i]
				}
			}
		}
		if rerr != nil {
			if errors.Is(rerr, io.EOF) {
				break
			}
			return rerr
		}
	}
	if rep.Scored == 0 {
		return usagef("no record could be tokenized; nothing was compared")
	}
	rep.OK = rep.MaxAbsDiff <= rep.Tolerance
	out, _ := json.Marshal(rep)
	if _, err := fmt.Fprintf(e.stdout, "%s\n", out); err != nil {
		return err
	}
	if !rep.OK {
		return &errFailed{fmt.Errorf("backends differ by %.3g > tolerance %.3g (record %s)", rep.MaxAbsDiff, rep.Tolerance, rep.WorstRecord)}
	}
	return nil
}

// maxAbs compares states relative to their size above 1 (see
// backendtest.MaxScaled): cell states of long calls grow past 50.
func maxAbs(a, b []float32) float64 {
	m := 0.0
	for i := range a {
		m = math.Max(m, math.Abs(float64(a[i]-b[i]))/math.Max(1, math.Abs(float64(b[i]))))
	}
	return m
}
