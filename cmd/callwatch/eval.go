package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/callwatch/callwatch"
	"github.com/callwatch/callwatch/internal/metrics"
	"github.com/callwatch/callwatch/internal/records"
)

type evalReport struct {
	Data       string                         `json:"data"`
	Model      string                         `json:"model"`
	ModelSHA   string                         `json:"model_sha256"`
	Backend    string                         `json:"backend"`
	Records    int                            `json:"records"`
	Scored     int                            `json:"scored"`
	Failed     int                            `json:"failed"`
	Unlabeled  int                            `json:"unlabeled"`
	Phishing   int                            `json:"phishing"`
	Normal     int                            `json:"normal"`
	ROCAUC     *float64                       `json:"roc_auc"` // null with one class only
	Thresholds map[string]float64             `json:"thresholds"`
	At         map[string]metrics.AtThreshold `json:"at"`
	Tokens     tokenStats                     `json:"tokens"`
	// Families is the per-family table, for data whose records name their
	// family (the generated corpus does): how many calls, the share flagged
	// at suspicious (recall for phishing families, false-positive rate for
	// normal ones) and how often the family head names the family.
	Families       map[string]*familyStats `json:"families,omitempty"`
	FamilyAccuracy *float64                `json:"family_accuracy,omitempty"`
	Errors         []errorRecord           `json:"errors,omitempty"`
	Stream         *streamReport           `json:"stream,omitempty"`
}

type familyStats struct {
	Label         string  `json:"label"`
	Calls         int     `json:"calls"`
	Flagged       int     `json:"flagged_suspicious"`
	FlaggedShare  float64 `json:"flagged_share"`
	FamilyCorrect int     `json:"family_correct"`
	FamilyAcc     float64 `json:"family_accuracy"`
}

type tokenStats struct {
	Total   int     `json:"total"`
	Unknown int     `json:"unknown"`
	UnkRate float64 `json:"unk_rate"`
	Median  int     `json:"median_per_call"`
}

// eval scores a labelled JSONL file ({"id","text","label"}) call by call and
// reports metrics at the card's thresholds and at 0.5.
func (e *env) evalCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "eval --data FILE [--stream]",
		Short: "Call-level metrics (precision, recall, F1, ROC-AUC, FPR) on labelled calls",
		Long: `eval scores a labelled file call by call and prints one JSON report: precision,
recall, F1, false-positive rate and the confusion matrix at the card's thresholds
and at 0.5, ROC-AUC (null where undefined, e.g. one class only), the [UNK] rate,
and a per-family table for data that names families. Labels are read without
regard to case: phishing/normal, vishing/benign, 1/0, true/false; an unknown label
is a failed record naming its line. Exit 1 when any record failed.`,
		Example: `  callwatch eval --data calls.jsonl
  callwatch eval --data calls.csv --stream`,
		Args: noArgs,
	}
	fs := cmd.Flags()
	data := fs.String("data", "", "labelled calls: JSONL {\"id\",\"text\",\"label\"} per line, or CSV (.csv) with those columns; - for stdin (required)")
	streamMode := fs.Bool("stream", false, "also replay each call segment by segment (sentence-sized segments timed at 4.5 syllables/s) and report seconds to the first alert")
	addKeyFlags(fs, modelKeys...)
	addKeyFlags(fs, policyKeys...)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if *data == "" {
			return cmdlinef("--data FILE is required")
		}
		return e.eval(fs, *data, *streamMode)
	}
	return cmd
}

// eval reads and scores the labelled calls as they arrive, then reports.
func (e *env) eval(fs *pflag.FlagSet, data string, streamMode bool) error {
	c, err := e.loadConfig(fs)
	if err != nil {
		return err
	}
	format := records.FormatJSONL
	if strings.HasSuffix(strings.ToLower(data), ".csv") {
		format = records.FormatCSV
	}
	rr, closeIn, err := e.openRecords(&inputOpts{input: data, format: format}, nil)
	if err != nil {
		return err
	}
	defer closeIn()
	d, err := e.openDetector(c)
	if err != nil {
		return err
	}
	defer d.Close()
	b := d.Bundle()
	rep := evalReport{Data: data, Model: b.Card.Name, ModelSHA: b.ModelSHA256, Backend: d.Backend().Name(),
		Thresholds: map[string]float64{"suspicious": b.Card.Thresholds.Suspicious, "dangerous": b.Card.Thresholds.Dangerous}}
	var streamCalls []streamCall
	var labels []bool
	var scores []float64
	var perCall []int
	prog := e.newProgress()
	if prog.on && data != "-" {
		prog.setTotal(countLines(data, format == records.FormatCSV))
	}
	err = e.eachChunk(rr, func(chunk []records.Record) error {
		var texts []string
		var keep []records.Record
		for _, r := range chunk {
			rep.Records++
			if r.Err != nil {
				rep.Failed++
				rep.Errors = append(rep.Errors, errorRecord{ID: r.ID, Line: r.Line, Error: r.Err.Error()})
				continue
			}
			if strings.TrimSpace(r.Label) == "" {
				rep.Unlabeled++
				continue
			}
			lab, ok := labelOf(r.Label)
			if !ok {
				// A label nobody can read is a failed record, never silently
				// dropped: it would change every figure.
				rep.Failed++
				rep.Errors = append(rep.Errors, errorRecord{ID: r.ID, Line: r.Line,
					Error: fmt.Sprintf("line %d: unknown label %q (use phishing or normal; also accepted: vishing/benign, 1/0, true/false)", r.Line, r.Label)})
				continue
			}
			r.Label = lab
			texts = append(texts, r.Text)
			keep = append(keep, r)
			if streamMode {
				streamCalls = append(streamCalls, streamCall{phishing: r.Label == callwatch.LabelPhishing, segs: callwatch.SplitSegments(r.Text, callwatch.SpeechRate)})
			}
		}
		if len(texts) > 0 {
			res, err := d.Classify(e.ctx, texts)
			if err != nil {
				return fmt.Errorf("scoring: %w", err)
			}
			for i, r := range res {
				if r.Err != nil {
					rep.Failed++
					rep.Errors = append(rep.Errors, errorRecord{ID: keep[i].ID, Line: keep[i].Line, Error: r.Err.Error()})
					continue
				}
				rep.Scored++
				if f := keep[i].Family; f != "" {
					if rep.Families == nil {
						rep.Families = map[string]*familyStats{}
					}
					fs := rep.Families[f]
					if fs == nil {
						fs = &familyStats{Label: keep[i].Label}
						rep.Families[f] = fs
					}
					fs.Calls++
					if r.Level != callwatch.LevelNone {
						fs.Flagged++
					}
					if r.Family == f {
						fs.FamilyCorrect++
					}
				}
				labels = append(labels, keep[i].Label == callwatch.LabelPhishing)
				scores = append(scores, r.Score)
				perCall = append(perCall, r.Tokens)
				rep.Tokens.Total += r.Tokens
				rep.Tokens.Unknown += r.Unknown
			}
		}
		prog.update(rep.Records, rep.Failed)
		return nil
	})
	prog.done(rep.Records, rep.Failed)
	var intr *errInterrupted
	if errors.As(err, &intr) {
		return fmt.Errorf("interrupted after %d records, before the report was written: %w", intr.written, intr.err)
	}
	if err != nil {
		return err
	}
	if rep.Scored == 0 {
		return usagef("%s: no labelled record could be scored", data)
	}
	for _, y := range labels {
		if y {
			rep.Phishing++
		} else {
			rep.Normal++
		}
	}
	if a := metrics.ROCAUC(labels, scores); !math.IsNaN(a) {
		rep.ROCAUC = &a
	}
	rep.At = map[string]metrics.AtThreshold{
		"suspicious": metrics.At(labels, scores, b.Card.Thresholds.Suspicious),
		"dangerous":  metrics.At(labels, scores, b.Card.Thresholds.Dangerous),
		"0.5":        metrics.At(labels, scores, 0.5),
	}
	if rep.Families != nil {
		calls, correct := 0, 0
		for _, fs := range rep.Families {
			fs.FlaggedShare = float64(fs.Flagged) / float64(fs.Calls)
			fs.FamilyAcc = float64(fs.FamilyCorrect) / float64(fs.Calls)
			calls += fs.Calls
			correct += fs.FamilyCorrect
		}
		if d.Families() != nil {
			acc := float64(correct) / float64(calls)
			rep.FamilyAccuracy = &acc
		}
	}
	if rep.Tokens.Total > 0 {
		rep.Tokens.UnkRate = float64(rep.Tokens.Unknown) / float64(rep.Tokens.Total)
	}
	sort.Ints(perCall)
	rep.Tokens.Median = perCall[len(perCall)/2]
	if streamMode {
		pol, err := e.policy(fs, d)
		if err != nil {
			return err
		}
		if rep.Stream, err = evalStream(e, d, pol, streamCalls, 64); err != nil {
			return err
		}
	}
	if len(rep.Errors) > 20 {
		rep.Errors = rep.Errors[:20]
	}
	out, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if _, err = fmt.Fprintf(e.stdout, "%s\n", out); err != nil {
		return err
	}
	if rep.Failed > 0 {
		return &errFailed{fmt.Errorf("%d of %d records failed (see \"errors\" in the report)", rep.Failed, rep.Records)}
	}
	return nil
}
