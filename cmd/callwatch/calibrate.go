package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/callwatch/callwatch"
	"github.com/callwatch/callwatch/internal/records"
	"github.com/callwatch/callwatch/models"
)

// calibrateReport is calibrate's JSON on stdout.
type calibrateReport struct {
	Model       string             `json:"model"`
	ModelSHA    string             `json:"model_sha256"`
	Data        string             `json:"data"`
	DataSHA     string             `json:"data_sha256"`
	Normals     int                `json:"normals"`
	Positives   int                `json:"positives,omitempty"`
	TargetFPR   map[string]float64 `json:"target_fpr"`
	Before      models.Thresholds  `json:"thresholds_before"`
	After       models.Thresholds  `json:"thresholds_after"`
	Normal      rates              `json:"normal"`
	NormalPrior rates              `json:"normal_at_previous_thresholds"`
	Recall      *rates             `json:"positives_recall,omitempty"`
	Warnings    []string           `json:"warnings,omitempty"`
	Out         string             `json:"out,omitempty"`
}

// rates are the shares of calls flagged at each level, scored whole and
// streamed segment by segment ("ever reached" during the call).
type rates struct {
	WholeSuspicious  float64 `json:"whole_suspicious"`
	WholeDangerous   float64 `json:"whole_dangerous"`
	StreamSuspicious float64 `json:"stream_ever_suspicious"`
	StreamDangerous  float64 `json:"stream_ever_dangerous"`
}

// calibrateCmd sets a bundle's thresholds from a target false-positive rate
// on the user's own normal calls. No weight changes: the new bundle is the
// old model and tokenizer with a new card that keeps the old thresholds in
// its history.
func (e *env) calibrateCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "calibrate --data normals.jsonl --fpr 0.02 [--positives FILE] [--out DIR]",
		Short: "Set a bundle's alert thresholds from a target false-positive rate on your own normal calls",
		Long: `calibrate sets a bundle's suspicious and dangerous thresholds from a target
false-positive rate on the user's own normal calls, scored whole and streamed. No
weight changes: with --out, the new bundle is the old model and tokenizer with a
new card that keeps the old thresholds in its history. The report is JSON on stdout.`,
		Example: `  callwatch calibrate --data my-normals.jsonl --fpr 0.02 --out models/mine`,
		Args:    noArgs,
	}
	fs := cmd.Flags()
	o := &calibrateOpts{}
	fs.StringVar(&o.data, "data", "", "the user's normal (legitimate) calls: JSONL {\"id\",\"text\"[,\"label\":\"normal\"]} or CSV with a text column (required)")
	fs.StringVar(&o.positives, "positives", "", "optional phishing calls, same format: recall at the new thresholds is reported")
	fs.Float64Var(&o.fpr, "fpr", 0.02, "target share of normal calls flagged at suspicious (whole call and ever while streamed)")
	fs.Float64Var(&o.dfpr, "dangerous-fpr", 0, "target share at dangerous (default: --fpr / 4)")
	fs.StringVar(&o.out, "out", "", "write the calibrated bundle here (model.onnx and tokenizer.json copied, new card.json); without it only the report is printed")
	addKeyFlags(fs, modelKeys...)
	addKeyFlags(fs, policyKeys...)
	cmd.RunE = func(cmd *cobra.Command, args []string) error { return e.calibrate(fs, *o) }
	return cmd
}

// calibrateOpts are calibrate's own flags.
type calibrateOpts struct {
	data, positives, out string
	fpr, dfpr            float64
}

// calibrate writes the report and, with --out, the calibrated bundle.
func (e *env) calibrate(fs *pflag.FlagSet, o calibrateOpts) error {
	if o.data == "" {
		return cmdlinef("--data FILE is required: the normal calls to calibrate on")
	}
	if o.dfpr == 0 {
		o.dfpr = o.fpr / 4
	}
	if !(o.fpr > 0 && o.fpr < 1) || !(o.dfpr > 0 && o.dfpr <= o.fpr) {
		return usagef("need 0 < --dangerous-fpr (%g) <= --fpr (%g) < 1", o.dfpr, o.fpr)
	}
	c, err := e.loadConfig(fs)
	if err != nil {
		return err
	}
	normals, dataSum, err := e.readCalls(o.data, callwatch.LabelNormal)
	if err != nil {
		return err
	}
	var pos []string
	if o.positives != "" {
		if pos, _, err = e.readCalls(o.positives, callwatch.LabelPhishing); err != nil {
			return err
		}
	}
	d, err := e.openDetector(c)
	if err != nil {
		return err
	}
	defer d.Close()
	pol, err := e.policy(fs, d)
	if err != nil {
		return err
	}
	b := d.Bundle()
	rep := calibrateReport{Model: b.Card.Name, ModelSHA: b.ModelSHA256, Data: o.data, DataSHA: dataSum,
		Normals: len(normals), Positives: len(pos), Before: b.Card.Thresholds,
		TargetFPR: map[string]float64{"suspicious": o.fpr, "dangerous": o.dfpr}}
	if n := len(normals); float64(n)*o.dfpr < 1 {
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("%d normal calls cannot measure a %.3g false-positive rate (one call is %.3g); the dangerous threshold sits above every normal call", n, o.dfpr, 1/float64(n)))
	}
	whole, peak, err := scoreCalls(e, d, pol, normals)
	if err != nil {
		return err
	}
	sus := math.Max(thresholdAt(whole, o.fpr), thresholdAt(peak, o.fpr))
	dang := math.Max(sus, math.Max(thresholdAt(whole, o.dfpr), thresholdAt(peak, o.dfpr)))
	if dang >= 1 {
		dang = math.Nextafter(1, 0)
		sus = math.Min(sus, dang)
		rep.Warnings = append(rep.Warnings, "some normal calls score 1.0: no threshold below 1 meets the target; dangerous set just below 1")
	}
	// Rounded up to 6 decimals, so rounding never flags more than measured.
	up := func(x float64) float64 { return math.Min(math.Ceil(x*1e6)/1e6, 0.999999) }
	rep.After = models.Thresholds{Suspicious: up(sus), Dangerous: up(dang)}
	rep.Normal = rateOf(whole, peak, rep.After)
	rep.NormalPrior = rateOf(whole, peak, rep.Before)
	if len(pos) > 0 {
		pw, pp, err := scoreCalls(e, d, pol, pos)
		if err != nil {
			return err
		}
		r := rateOf(pw, pp, rep.After)
		rep.Recall = &r
	}
	if o.out != "" {
		if err := writeCalibrated(b, o.out, rep); err != nil {
			return err
		}
		rep.Out = o.out
	}
	js, _ := json.MarshalIndent(rep, "", "  ")
	_, err = fmt.Fprintf(e.stdout, "%s\n", js)
	return err
}

// readCalls reads every record's text; a record labelled other than want (or
// unreadable, or empty) is an error that names its line, before any scoring.
func (e *env) readCalls(path, want string) ([]string, string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, "", usagef("cannot open %s: %v", path, err)
	}
	sum := sha256.Sum256(raw)
	format := records.FormatJSONL
	if strings.HasSuffix(path, ".csv") {
		format = records.FormatCSV
	}
	rr, err := records.NewReader(strings.NewReader(string(raw)), format, records.DefaultMaxLine)
	if err != nil {
		return nil, "", usagef("%s: %v", path, err)
	}
	var texts []string
	for {
		r, err := rr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, "", usagef("%s: %v", path, err)
		}
		if r.Err != nil {
			return nil, "", usagef("%s line %d: %v", path, r.Line, r.Err)
		}
		if l := strings.ToLower(r.Label); l != "" && l != want {
			return nil, "", usagef("%s line %d: label %q, but this file must hold %s calls only", path, r.Line, r.Label, want)
		}
		if strings.TrimSpace(r.Text) == "" {
			return nil, "", usagef("%s line %d: empty text", path, r.Line)
		}
		texts = append(texts, r.Text)
	}
	if len(texts) == 0 {
		return nil, "", usagef("%s holds no calls", path)
	}
	return texts, hex.EncodeToString(sum[:]), nil
}

// scoreCalls returns each call's whole-call score and its peak smoothed score
// when streamed segment by segment under pol: a call ever reaches a level in
// streaming exactly when its peak is at or above that level's threshold.
func scoreCalls(e *env, d *callwatch.Detector, pol callwatch.Policy, texts []string) (whole, peak []float64, err error) {
	res, err := d.Classify(e.ctx, texts)
	if err != nil {
		return nil, nil, err
	}
	whole = make([]float64, len(texts))
	for i, r := range res {
		if r.Err != nil {
			return nil, nil, usagef("call %d cannot be scored: %v", i+1, r.Err)
		}
		whole[i] = r.Score
	}
	// Thresholds of 1 never alert, so no reasons are searched; only the
	// smoothing matters.
	quiet := pol
	quiet.Suspicious, quiet.Dangerous, quiet.Reasons = 1, 1, 0
	peak = make([]float64, len(texts))
	prog := e.newProgress() // on a terminal only
	prog.setTotal(len(texts))
	const batch = 64
	for start := 0; start < len(texts); start += batch {
		end := min(start+batch, len(texts))
		sess := make([]*callwatch.Session, end-start)
		segs := make([][]callwatch.Segment, end-start)
		recent := make([][]float64, end-start)
		for i := range sess {
			if sess[i], err = d.NewSession(quiet); err != nil {
				return nil, nil, err
			}
			segs[i] = callwatch.SplitSegments(texts[start+i], callwatch.SpeechRate)
		}
		for k := 0; ; k++ {
			var ss []*callwatch.Session
			var sg []callwatch.Segment
			var idx []int
			for i := range sess {
				if k < len(segs[i]) {
					ss, sg, idx = append(ss, sess[i]), append(sg, segs[i][k]), append(idx, i)
				}
			}
			if len(ss) == 0 {
				break
			}
			ups, err := d.FeedBatch(e.ctx, ss, sg)
			if err != nil {
				return nil, nil, err
			}
			for j, u := range ups {
				i := idx[j]
				if u.Err != nil || u.Tokens == 0 {
					continue
				}
				recent[i] = append(recent[i], u.Score)
				if len(recent[i]) > pol.Smooth {
					recent[i] = recent[i][1:]
				}
				m := 0.0
				for _, v := range recent[i] {
					m += v
				}
				peak[start+i] = math.Max(peak[start+i], m/float64(len(recent[i])))
			}
		}
		prog.update(end, 0)
	}
	prog.done(len(texts), 0)
	return whole, peak, nil
}

// thresholdAt is the lowest threshold that flags (score >= t) at most
// floor(fpr·n) of the scores.
func thresholdAt(scores []float64, fpr float64) float64 {
	s := append([]float64(nil), scores...)
	sort.Sort(sort.Reverse(sort.Float64Slice(s)))
	k := int(math.Floor(fpr * float64(len(s))))
	if k >= len(s) {
		return 0
	}
	// Just above the (k+1)-th highest score: it and everything below pass.
	return math.Nextafter(s[k], 2)
}

func rateOf(whole, peak []float64, t models.Thresholds) rates {
	share := func(xs []float64, th float64) float64 {
		n := 0
		for _, x := range xs {
			if x >= th {
				n++
			}
		}
		return math.Round(float64(n)/float64(len(xs))*1e4) / 1e4
	}
	return rates{WholeSuspicious: share(whole, t.Suspicious), WholeDangerous: share(whole, t.Dangerous),
		StreamSuspicious: share(peak, t.Suspicious), StreamDangerous: share(peak, t.Dangerous)}
}

// writeCalibrated writes the bundle with new thresholds to dir. The card is
// edited as JSON so every field it has (training, metrics) is kept; the old
// thresholds go into threshold_history.
func writeCalibrated(b *models.Bundle, dir string, rep calibrateReport) error {
	cardPath := filepath.Join(b.Dir, models.CardFile)
	var card map[string]any
	if err := json.Unmarshal(b.CardJSON, &card); err != nil {
		return fmt.Errorf("%s: %w", cardPath, err)
	}
	hist, _ := card["threshold_history"].([]any)
	hist = append(hist, map[string]any{
		"suspicious": rep.Before.Suspicious, "dangerous": rep.Before.Dangerous,
		"replaced": time.Now().UTC().Format(time.RFC3339),
		"source":   card["calibration"],
	})
	card["threshold_history"] = hist
	card["thresholds"] = rep.After
	card["calibration"] = map[string]any{
		"data_sha256": rep.DataSHA, "normals": rep.Normals, "positives": rep.Positives,
		"target_fpr": rep.TargetFPR, "normal": rep.Normal, "positives_recall": rep.Recall,
		"note": "thresholds set by `callwatch calibrate` on the user's own normal calls; weights unchanged",
	}
	js, err := json.MarshalIndent(card, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	same, _ := filepath.Abs(dir)
	src, _ := filepath.Abs(b.Dir)
	if same != src {
		for file, data := range map[string][]byte{models.ModelFile: b.Model, models.TokenizerFile: b.Tokenizer} {
			if err := os.WriteFile(filepath.Join(dir, file), data, 0o644); err != nil {
				return err
			}
		}
	}
	// The card goes last and through a rename, so a reader never sees a
	// bundle whose card does not match its files.
	tmp := filepath.Join(dir, models.CardFile+".tmp")
	if err := os.WriteFile(tmp, append(js, '\n'), 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, models.CardFile)); err != nil {
		return err
	}
	if _, err := models.Load(dir); err != nil {
		return fmt.Errorf("the calibrated bundle does not load: %w", err)
	}
	return nil
}
