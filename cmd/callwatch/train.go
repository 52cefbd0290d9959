package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/callwatch/callwatch"
	"github.com/callwatch/callwatch/corpus"
	"github.com/callwatch/callwatch/internal/records"
	"github.com/callwatch/callwatch/models"
	"github.com/callwatch/callwatch/scripts"
	"github.com/callwatch/callwatch/tokenize"
)

// trainExample is one validated input call.
type trainExample struct {
	ID, Text, Label, Family, Group string
	File                           string
	Line                           int
}

// dataFile is what the card records about each input file.
type dataFile struct {
	Path     string `json:"path"`
	SHA256   string `json:"sha256"`
	Records  int    `json:"records"`
	Phishing int    `json:"phishing"`
	Normal   int    `json:"normal"`
}

// installHint says how to get what training needs, in both package worlds.
const installHint = "install Python 3 with PyTorch, ONNX, NumPy and scikit-learn: on Debian/Ubuntu " +
	"`apt-get install python3-torch python3-onnx python3-numpy python3-sklearn` (or `make torch` in the repository), " +
	"elsewhere `pip install torch onnx numpy scikit-learn`; pass --python PATH if it is not /usr/bin/python3"

func (e *env) trainCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "train --data FILE [--data FILE...] --out DIR [--from BUNDLE] [--mix-corpus] [--new-vocab]",
		Short: "Train, fine-tune and bundle a model on your own labelled calls (needs python3 + torch)",
		Long: `train runs the project's PyTorch training on labelled calls, with the Go
tokenizer's ids (no train/serve skew), exports ONNX and writes a complete bundle
whose two backends are checked for parity. It needs Python 3 with torch, onnx,
numpy and scikit-learn (see --python).`,
		Example: `  callwatch train --data my-calls.jsonl --out models/mine --mix-corpus`,
		Args:    noArgs,
	}
	fs := cmd.Flags()
	o := &trainOpts{}
	fs.StringArrayVar(&o.data, "data", nil, "labelled calls: JSONL {\"id\",\"text\",\"label\"[,\"family\",\"group\"]} or CSV with those columns (repeatable)")
	fs.StringVar(&o.out, "out", "", "directory for the new bundle (required)")
	fs.StringVar(&o.from, "from", "", "fine-tune this bundle (its vocabulary and sizes); default: start from the --model bundle's vocabulary with fresh weights")
	fs.BoolVar(&o.mix, "mix-corpus", false, "train on your calls plus the project's own generated corpus (the shipped model's set of base dialogues)")
	fs.BoolVar(&o.newVocab, "new-vocab", false, "build a new WordPiece vocabulary from the training texts (cannot be combined with --from)")
	fs.IntVar(&o.vocabSize, "vocab-size", 8000, "vocabulary size with --new-vocab")
	fs.IntVar(&o.seed, "seed", 1, "training seed")
	fs.IntVar(&o.minPerClass, "min-per-class", 20, "fewest calls of each class accepted")
	fs.IntVar(&o.epochs, "epochs", 0, "maximum epochs (0: the recipe's)")
	fs.DurationVar(&o.budget, "time-budget", 0, "stop training after the epoch that passes this long (e.g. 20m; 0: no limit)")
	fs.StringVar(&o.python, "python", "/usr/bin/python3", "Python interpreter with torch, onnx, numpy and sklearn")
	fs.StringVar(&o.work, "work", "", "work directory (default: a temporary one, removed on success)")
	fs.StringVar(&o.name, "name", "", "bundle name in the card (default: the --out directory's name)")
	fs.StringVar(&o.extra, "train-args", "", "extra arguments for scripts/train.py (advanced)")
	addKeyFlags(fs, modelKeys...)
	cmd.RunE = func(cmd *cobra.Command, args []string) error { return e.train(fs, o) }
	return cmd
}

// trainOpts are train's own flags.
type trainOpts struct {
	data                                 []string
	out, from, python, work, name, extra string
	mix, newVocab                        bool
	vocabSize, seed, minPerClass, epochs int
	budget                               time.Duration
}

// commandLine is the flags set on fs as a command line, for the card's
// record of how a bundle was made.
func commandLine(fs *pflag.FlagSet) string {
	var parts []string
	add := func(name, v string) {
		if v == "" || strings.ContainsAny(v, " \t\n'\"\\$") {
			v = strconv.Quote(v)
		}
		parts = append(parts, "--"+name+"="+v)
	}
	fs.Visit(func(f *pflag.Flag) {
		if sv, ok := f.Value.(pflag.SliceValue); ok {
			for _, v := range sv.GetSlice() {
				add(f.Name, v)
			}
			return
		}
		add(f.Name, f.Value.String())
	})
	return strings.Join(parts, " ")
}

// train runs the project's PyTorch training on the user's labelled calls,
// with the Go tokenizer's ids, and writes a complete, parity-checked bundle.
func (e *env) train(fs *pflag.FlagSet, o *trainOpts) (err error) {
	if len(o.data) == 0 {
		return cmdlinef("--data FILE is required (labelled calls; repeat --data for several files)")
	}
	if o.out == "" {
		return cmdlinef("--out DIR is required")
	}
	if o.newVocab && o.from != "" {
		return cmdlinef("--new-vocab starts a new vocabulary, so it cannot fine-tune --from %s; drop one of them", o.from)
	}
	c, err := e.loadConfig(fs)
	if err != nil {
		return err
	}
	// The scripts run in their own directory: every path they get is absolute.
	for _, p := range []*string{&o.out, &o.work, &o.from} {
		if *p != "" {
			if *p, err = filepath.Abs(*p); err != nil {
				return err
			}
		}
	}
	step := newSteps(e.stderr, 8)

	step.next("reading and checking %d data file(s)", len(o.data))
	exs, files, err := readTrainData(o.data, o.minPerClass, o.mix)
	if err != nil {
		return err
	}
	if err := checkPython(e.ctx, o.python); err != nil {
		return err
	}

	wd := o.work
	if wd == "" {
		if wd, err = os.MkdirTemp("", "callwatch-train-"); err != nil {
			return err
		}
	} else if err := os.MkdirAll(wd, 0o755); err != nil {
		return err
	}
	if o.work == "" {
		// Kept on failure, for the logs; removed on success.
		defer func() {
			if err != nil {
				fmt.Fprintf(e.stderr, "callwatch train: work directory kept for inspection: %s\n", wd)
			}
		}()
	}
	sdir := filepath.Join(wd, "scripts")
	if err := extractFS(scripts.FS, ".", sdir); err != nil {
		return fmt.Errorf("unpack training scripts: %w", err)
	}

	if o.mix {
		step.next("generating the project's corpus (--mix-corpus)")
		cdir := filepath.Join(wd, "corpusdata")
		if err := extractFS(corpus.FS, ".", cdir); err != nil {
			return fmt.Errorf("unpack corpus: %w", err)
		}
		gen := filepath.Join(wd, "corpus")
		if err := e.runPython(o.python, sdir, filepath.Join(sdir, "corpus", "gen.py"), "--out", gen, "--seed", strconv.Itoa(o.seed),
			"--min-calls", "8000", "--base", filepath.Join(cdir, "base"), "--slots", filepath.Join(cdir, "slots"),
			"--only", filepath.Join(cdir, filepath.FromSlash(corpus.DefaultSet)),
			"--register-shift", corpus.DefaultRegisterShift); err != nil {
			return fmt.Errorf("corpus generation: %w", err)
		}
		cx, err := readCorpusCalls(filepath.Join(gen, "calls.jsonl"))
		if err != nil {
			return err
		}
		exs = append(exs, cx...)
	} else {
		step.skip("no --mix-corpus: your calls only")
	}

	// Tokenizer: the base bundle's, or a new one built from the texts.
	baseDir := o.from
	if baseDir == "" {
		baseDir = c.Model
	}
	var tokJSON []byte
	var base *models.Bundle
	// The new model reads text the way the model it starts from does (card
	// text_normalizer); with --new-vocab, the way the --model bundle does
	// when there is one.
	var normalizer string
	if o.newVocab {
		if b, err := e.loadBundle(config{Model: baseDir}); err == nil {
			normalizer = b.Card.TextNormalizer
		}
		step.next("building a %d-token vocabulary from %d texts", o.vocabSize, len(exs))
		texts := make([]string, len(exs))
		for i, x := range exs {
			texts[i] = tokenize.Clean(x.Text)
		}
		v, err := tokenize.BuildVocab(texts, tokenize.VocabOptions{Size: o.vocabSize, MinFreq: 2, Normalizer: normalizer})
		if err != nil {
			return err
		}
		var buf bytes.Buffer
		if err := v.WriteTokenizerJSON(&buf); err != nil {
			return err
		}
		tokJSON = buf.Bytes()
	} else {
		if base, err = e.loadBundle(config{Model: baseDir}); err != nil {
			return err
		}
		if abs, err := filepath.Abs(base.Dir); err == nil {
			base.Dir = abs
		}
		step.next("using the vocabulary of %s", base.Dir)
		tokJSON = base.Tokenizer
		normalizer = base.Card.TextNormalizer
	}
	tokPath := filepath.Join(wd, "tokenizer.json")
	if err := os.WriteFile(tokPath, tokJSON, 0o644); err != nil {
		return err
	}
	tok, err := tokenize.LoadBytes(tokJSON, tokenize.WithNormalizer(normalizer))
	if err != nil {
		return fmt.Errorf("tokenizer: %w", err)
	}

	step.next("tokenizing %d calls with the Go tokenizer", len(exs))
	trainPath := filepath.Join(wd, "train.jsonl")
	if err := writeTokenized(trainPath, tok, exs); err != nil {
		return err
	}

	targs := []string{"--arch", "pooled", "--data", trainPath, "--vocab-size", strconv.Itoa(tok.VocabSize()),
		"--out", wd, "--seed", strconv.Itoa(o.seed)}
	recipe, err := recipeArgs()
	if err != nil {
		return err
	}
	targs = append(targs, recipe...)
	if o.from != "" {
		step.next("rebuilding %s's PyTorch weights for fine-tuning", base.Dir)
		initPt := filepath.Join(wd, "init.pt")
		if err := e.runPython(o.python, sdir, filepath.Join(sdir, "onnx2torch.py"), "--onnx", filepath.Join(base.Dir, models.ModelFile), "--out", initPt); err != nil {
			return fmt.Errorf("fine-tuning needs the bundle's weights in PyTorch: %w", err)
		}
		targs = append(targs, "--init-from", initPt)
		if a := base.Card.Architecture; a.Embed > 0 && a.Hidden > 0 {
			targs = append(targs, "--embed", strconv.Itoa(a.Embed), "--hidden", strconv.Itoa(a.Hidden), "--layers", strconv.Itoa(max(1, a.Layers)))
		}
	} else {
		step.skip("no --from: fresh weights")
	}
	if o.epochs > 0 {
		targs = append(targs, "--epochs", strconv.Itoa(o.epochs))
	}
	if o.budget > 0 {
		targs = append(targs, "--time-budget", strconv.FormatFloat(o.budget.Seconds(), 'f', 0, 64))
	}
	if o.extra != "" {
		targs = append(targs, strings.Fields(o.extra)...)
	}
	step.next("training (PyTorch, progress below) and exporting ONNX")
	if err := e.runPython(o.python, sdir, filepath.Join(sdir, "train.py"), targs...); err != nil {
		return fmt.Errorf("training: %w", err)
	}
	if err := copyPlain(tokPath, filepath.Join(wd, "tokenizer.json")); err != nil {
		return err
	}

	step.next("writing the bundle to %s", o.out)
	bname := o.name
	if bname == "" {
		bname = filepath.Base(filepath.Clean(o.out))
	}
	if err := e.runPython(o.python, sdir, filepath.Join(sdir, "make_bundle.py"), "--work", wd, "--out", o.out, "--name", bname,
		"--seed", strconv.Itoa(o.seed), "--text-normalizer", normalizer, "--command", "callwatch train "+commandLine(fs)); err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	if err := addTrainingData(o.out, files, o.from, o.mix); err != nil {
		return err
	}

	step.next("parity: onnxruntime vs pure Go on the new bundle")
	rep, err := e.bundleParity(c, o.out, exs)
	if err != nil {
		// The bundle is complete (the exporter already checked the graph
		// against PyTorch); say so, and how to finish the check.
		input := "FILE"
		if len(o.data) > 0 {
			input = o.data[0]
		}
		return fmt.Errorf("the bundle is written to %s, but its parity check (onnxruntime vs pure Go) did not run: %w; "+
			"once onnxruntime loads (bash scripts/setup-ort.sh, or --ort-library), run: callwatch parity --model %s --input %s",
			o.out, err, o.out, input)
	}
	summary := map[string]any{"out": o.out, "records": len(exs), "data": files, "parity": rep}
	if r, err := os.ReadFile(filepath.Join(wd, "train_report.json")); err == nil {
		var tr map[string]any
		if json.Unmarshal(r, &tr) == nil {
			// The held-out part: calls of whole groups never trained on.
			if v, ok := tr["validation"].(map[string]any); ok {
				delete(v, "per_family")
				summary["validation"] = v
			}
			summary["thresholds"] = tr["thresholds"]
		}
	}
	js, _ := json.MarshalIndent(summary, "", "  ")
	fmt.Fprintf(e.stdout, "%s\n", js)
	if o.work == "" {
		os.RemoveAll(wd)
	}
	if !rep.OK {
		return &errFailed{fmt.Errorf("the new bundle's backends disagree: %.3g > %.3g (probabilities)", rep.MaxAbsDiff, rep.Tolerance)}
	}
	return nil
}

// labelOf accepts the spellings users have: phishing/normal, vishing/benign,
// 1/0, true/false, any case.
func labelOf(s string) (string, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "phishing", "vishing", "1", "true", "scam", "fraud":
		return callwatch.LabelPhishing, true
	case "normal", "benign", "0", "false", "legit", "legitimate":
		return callwatch.LabelNormal, true
	}
	return "", false
}

// readTrainData reads and checks every file before anything is trained: each
// problem names its file and line.
// With mixed (--mix-corpus) the project's corpus supplies both classes, so the
// user's calls may be of one class only (a bank's own normal calls, say) and few.
func readTrainData(paths []string, minPerClass int, mixed bool) ([]trainExample, []dataFile, error) {
	var exs []trainExample
	var files []dataFile
	ids := map[string]string{}
	texts := map[string]trainExample{}
	for _, p := range paths {
		raw, err := os.ReadFile(p)
		if err != nil {
			return nil, nil, usagef("cannot open %s: %v", p, err)
		}
		sum := sha256.Sum256(raw)
		df := dataFile{Path: p, SHA256: hex.EncodeToString(sum[:])}
		format := records.FormatJSONL
		switch {
		case strings.HasSuffix(p, ".csv"):
			format = records.FormatCSV
		case strings.HasSuffix(p, ".jsonl"), strings.HasSuffix(p, ".ndjson"), strings.HasSuffix(p, ".json"):
		default:
			return nil, nil, usagef("%s: unknown format; name it .jsonl (one JSON object per line) or .csv (header id,text,label[,family,group])", p)
		}
		rr, err := records.NewReader(bytes.NewReader(raw), format, records.DefaultMaxLine)
		if err != nil {
			return nil, nil, usagef("%s: %v", p, err)
		}
		for {
			r, err := rr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return nil, nil, usagef("%s: %v", p, err)
			}
			where := fmt.Sprintf("%s line %d", p, r.Line)
			if r.Err != nil {
				return nil, nil, usagef("%s: %v", where, r.Err)
			}
			lab, ok := labelOf(r.Label)
			if !ok {
				if r.Label == "" {
					return nil, nil, usagef("%s: no label; every training call needs \"label\": phishing or normal (also accepted: vishing/benign, 1/0, true/false)", where)
				}
				return nil, nil, usagef("%s: unknown label %q; use phishing or normal (also accepted: vishing/benign, 1/0, true/false)", where, r.Label)
			}
			clean := tokenize.Clean(r.Text)
			if strings.TrimSpace(clean) == "" {
				return nil, nil, usagef("%s: the text is empty after cleaning (only spaces, control characters or invalid bytes)", where)
			}
			id := p + ":" + r.ID
			if prev, dup := ids[id]; dup {
				return nil, nil, usagef("%s: id %q already used at %s", where, r.ID, prev)
			}
			ids[id] = where
			g := r.Group
			if g == "" {
				g = "user:" + id
			}
			x := trainExample{ID: r.ID, Text: r.Text, Label: lab, Family: r.Family, Group: g, File: p, Line: r.Line}
			if x.Family == "" {
				x.Family = "user_" + lab
			}
			// The same call twice would sit on both sides of the split (or
			// teach both labels): refuse it unless one group holds both.
			if prev, dup := texts[clean]; dup {
				switch {
				case prev.Label != lab:
					return nil, nil, usagef("%s: the same text as %s line %d, with the other label", where, prev.File, prev.Line)
				case prev.Group != g:
					return nil, nil, usagef("%s: the same text as %s line %d in another group; duplicates would land on both sides of the train/validation split (give them one \"group\", or remove one)", where, prev.File, prev.Line)
				}
			}
			texts[clean] = x
			if lab == callwatch.LabelPhishing {
				df.Phishing++
			} else {
				df.Normal++
			}
			df.Records++
			exs = append(exs, x)
		}
		if df.Records == 0 {
			return nil, nil, usagef("%s holds no calls", p)
		}
		files = append(files, df)
	}
	np, nn := 0, 0
	for _, x := range exs {
		if x.Label == callwatch.LabelPhishing {
			np++
		} else {
			nn++
		}
	}
	switch {
	case mixed:
	case np == 0 || nn == 0:
		return nil, nil, usagef("the data has only %s calls (%d); training needs both phishing and normal calls (or add --mix-corpus)", map[bool]string{true: "normal", false: "phishing"}[np == 0], len(exs))
	case np < minPerClass || nn < minPerClass:
		return nil, nil, usagef("too few calls: %d phishing and %d normal, at least %d of each are needed (--min-per-class), or add --mix-corpus", np, nn, minPerClass)
	}
	return exs, files, nil
}

// readCorpusCalls reads the generator's calls.jsonl (label, family, group set).
func readCorpusCalls(path string) ([]trainExample, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []trainExample
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var r struct{ ID, Text, Label, Family, Group string }
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		out = append(out, trainExample{ID: "corpus:" + r.ID, Text: r.Text, Label: r.Label, Family: r.Family, Group: "corpus:" + r.Group, File: path})
	}
	return out, sc.Err()
}

func writeTokenized(path string, tok *tokenize.Tokenizer, exs []trainExample) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	for i, x := range exs {
		ids, err := tok.Encode(x.Text)
		if err != nil {
			f.Close()
			return usagef("%s line %d: %v", x.File, x.Line, err)
		}
		js, _ := json.Marshal(map[string]any{"id": fmt.Sprintf("%d:%s", i, x.ID), "group": x.Group, "family": x.Family, "label": x.Label, "ids": ids})
		w.Write(append(js, '\n'))
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// recipeArgs reads make-model.sh's TRAIN_ARGS: the shipped model's recipe is
// the one users train with.
func recipeArgs() ([]string, error) {
	src, err := scripts.FS.ReadFile("make-model.sh")
	if err != nil {
		return nil, err
	}
	m := regexp.MustCompile(`(?s)TRAIN_ARGS="\$\{TRAIN_ARGS:-(.*?)\}"`).FindSubmatch(src)
	if m == nil {
		return nil, errors.New("cannot read the training recipe (TRAIN_ARGS) from make-model.sh")
	}
	args := strings.Fields(strings.ReplaceAll(string(m[1]), "\\\n", " "))
	// The data, sizes of a fine-tuned model and output are train's own.
	var keep []string
	for i := 0; i < len(args); i++ {
		switch args[i] {
		case "--arch", "--data", "--out", "--seed", "--vocab-size":
			i++
			continue
		}
		keep = append(keep, args[i])
	}
	return keep, nil
}

func checkPython(ctx context.Context, python string) error {
	cmd := exec.CommandContext(ctx, python, "-c", "import torch, onnx, numpy, sklearn")
	if out, err := cmd.CombinedOutput(); err != nil {
		msg := strings.TrimSpace(string(out))
		if i := strings.LastIndex(msg, "\n"); i >= 0 {
			msg = msg[i+1:]
		}
		if msg == "" {
			msg = err.Error()
		}
		return usagef("training needs %s with torch, onnx, numpy and sklearn (%s); to fix: %s", python, msg, installHint)
	}
	return nil
}

// runPython runs a script with its output on our stderr, so training shows
// its progress.
func (e *env) runPython(python, dir, script string, args ...string) error {
	cmd := exec.CommandContext(e.ctx, python, append([]string{script}, args...)...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = e.stderr, e.stderr
	cmd.Env = append(os.Environ(), "OMP_NUM_THREADS=1", "OPENBLAS_NUM_THREADS=1", "PYTHONDONTWRITEBYTECODE=1")
	if err := cmd.Run(); err != nil {
		if e.ctx.Err() != nil {
			return e.ctx.Err()
		}
		return fmt.Errorf("%s %s: %w", filepath.Base(script), strings.Join(args, " "), err)
	}
	return nil
}

func extractFS(src fs.FS, root, dst string) error {
	return fs.WalkDir(src, root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		target := filepath.Join(dst, filepath.FromSlash(p))
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := fs.ReadFile(src, p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
}

func copyPlain(src, dst string) error {
	if src == dst {
		return nil
	}
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o644)
}

// addTrainingData records the user's data files in the card (edited as JSON
// so every other field is kept) and re-pins nothing: the model and tokenizer
// are unchanged by this.
func addTrainingData(dir string, files []dataFile, from string, mix bool) error {
	p := filepath.Join(dir, models.CardFile)
	raw, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	var card map[string]any
	if err := json.Unmarshal(raw, &card); err != nil {
		return err
	}
	tr, _ := card["training"].(map[string]any)
	if tr == nil {
		tr = map[string]any{}
	}
	tr["user_data"] = files
	tr["fine_tuned_from"] = from
	tr["mixed_with_project_corpus"] = mix
	tr["trained_at"] = time.Now().UTC().Format(time.RFC3339)
	card["training"] = tr
	js, err := json.MarshalIndent(card, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(p, append(js, '\n'), 0o644)
}

// bundleParity compares onnxruntime and native on up to 200 of the calls.
func (e *env) bundleParity(c config, dir string, exs []trainExample) (*parityReport, error) {
	b, err := e.loadBundle(config{Model: dir})
	if err != nil {
		return nil, fmt.Errorf("the new bundle does not load: %w", err)
	}
	var dets [2]*callwatch.Detector
	for i, kind := range []string{callwatch.BackendORT, callwatch.BackendNative} {
		be, err := e.openBackend(c, kind, b)
		if err != nil {
			return nil, err
		}
		d, err := callwatch.New(b, be)
		if err != nil {
			be.Close()
			return nil, err
		}
		defer d.Close()
		dets[i] = d
	}
	sample := append([]trainExample(nil), exs...)
	sort.SliceStable(sample, func(a, b int) bool { return len(sample[a].Text) > len(sample[b].Text) })
	sample = sample[:min(len(sample), 200)]
	var ids [][]int64
	var names []string
	for _, x := range sample {
		if v, err := dets[0].Tokenizer().Encode(x.Text); err == nil {
			ids, names = append(ids, v), append(names, x.ID)
		}
	}
	rep := &parityReport{Backends: [2]string{"ort", "native"}, Tolerance: 1e-5, StateTolerance: 1e-3, Records: len(ids)}
	sa, sta, err := dets[0].Score(e.ctx, ids, nil)
	if err != nil {
		return nil, err
	}
	sb, stb, err := dets[1].Score(e.ctx, ids, nil)
	if err != nil {
		return nil, err
	}
	rep.addRows(names, sa, sb, sta, stb, dets, b.Card.Thresholds)
	rep.OK = rep.ok()
	return rep, nil
}

// steps prints numbered progress lines on stderr ("train [3/8] ...").
type steps struct {
	w     io.Writer
	n, of int
	start time.Time
}

func newSteps(w io.Writer, of int) *steps { return &steps{w: w, of: of, start: time.Now()} }

func (s *steps) next(format string, a ...any) {
	s.n++
	fmt.Fprintf(s.w, "callwatch train [%d/%d %s] %s\n", s.n, s.of, time.Since(s.start).Round(time.Second), fmt.Sprintf(format, a...))
}

func (s *steps) skip(format string, a ...any) {
	s.n++
	fmt.Fprintf(s.w, "callwatch train [%d/%d] skipped: %s\n", s.n, s.of, fmt.Sprintf(format, a...))
}
