// Package models loads model bundles: a directory holding model.onnx,
// tokenizer.json and card.json, where the card pins the sha256 of the other
// two so that a model is never run with the wrong tokenizer.
package models

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/callwatch/callwatch/runtime"
	"github.com/callwatch/callwatch/runtime/onnxpb"
)

// File names inside a bundle.
const (
	ModelFile     = "model.onnx"
	TokenizerFile = "tokenizer.json"
	CardFile      = "card.json"
)

// DefaultName is the shipped default bundle, under models/.
const DefaultName = "ko-vishing-lstm"

// ErrBundle is wrapped by every bundle loading error.
var ErrBundle = errors.New("invalid model bundle")

// Remedy classifies what fixes a BundleError, so that a program can say it
// in its own terms (a flag, a config key, a build target) next to Fix.
type Remedy int

const (
	// RemedyNone: nothing general applies (Fix, if any, says what to do).
	RemedyNone Remedy = iota
	// RemedyChooseBundle: the directory is not a bundle; load another one.
	RemedyChooseBundle
	// RemedyRestore: a file is missing, corrupt, or from another build than
	// the others; restore the bundle's files together or rebuild the bundle.
	RemedyRestore
	// RemedyReexport: model.onnx does not follow the ONNX contract; export
	// it again with the project's exporter, or rebuild the bundle.
	RemedyReexport
)

// BundleError names the file at fault and what to do about it. Fix is
// phrased for any caller of this package; Remedy lets a program add how to
// do it with its own tools.
type BundleError struct {
	Dir     string
	File    string // "" when the directory itself is at fault
	Problem string
	Fix     string
	Remedy  Remedy
	Err     error
}

func (e *BundleError) Error() string {
	where := e.Dir
	if e.File != "" {
		where = filepath.Join(e.Dir, e.File)
	}
	msg := fmt.Sprintf("model bundle %s: %s", where, e.Problem)
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	if e.Fix != "" {
		msg += "; " + e.Fix
	}
	return msg
}

func (e *BundleError) Unwrap() []error {
	if e.Err != nil {
		return []error{ErrBundle, e.Err}
	}
	return []error{ErrBundle}
}

// Thresholds map P(phishing) to alert levels.
type Thresholds struct {
	Suspicious float64 `json:"suspicious"`
	Dangerous  float64 `json:"dangerous"`
}

// FileSum pins one bundle file.
type FileSum struct {
	SHA256 string `json:"sha256"`
	Bytes  int64  `json:"bytes,omitempty"`
}

// Architecture records the exported network's sizes.
type Architecture struct {
	Type      string `json:"type"`
	VocabSize int    `json:"vocab_size"`
	Embed     int    `json:"embed"`
	Hidden    int    `json:"hidden"`
	Layers    int    `json:"layers"`
	Opset     int    `json:"opset,omitempty"`
}

// StatePair is one state tensor as the card names it.
type StatePair struct {
	In  string `json:"in"`
	Out string `json:"out"`
}

// Card is card.json. Unknown fields (training details, metrics) are kept in
// Extra so tools can show them without this package knowing their shape.
type Card struct {
	Name         string     `json:"name"`
	Version      string     `json:"version"`
	Description  string     `json:"description,omitempty"`
	Starter      bool       `json:"starter,omitempty"`
	Labels       []string   `json:"labels"`
	Thresholds   Thresholds `json:"thresholds"`
	MaxSeqLen    int        `json:"max_seq_len"`
	MaxTextBytes int        `json:"max_text_bytes,omitempty"`
	// TextNormalizer names the text normalizer applied to every word before
	// WordPiece (tokenize.WithNormalizer), in training and at inference; ""
	// for none.
	TextNormalizer string             `json:"text_normalizer,omitempty"`
	Files          map[string]FileSum `json:"files"`
	Architecture   Architecture       `json:"architecture"`
	// Families names the family_probs columns (scenario families of both
	// classes), for models that have that output.
	Families []string `json:"families,omitempty"`
	// State names the state tensor pairs (in → out) the model carries, for
	// tools; the graph itself is the authority (runtime.Signature).
	State []StatePair `json:"state,omitempty"`
	// Outputs names the non-state outputs (probs, family_probs).
	Outputs  []string        `json:"outputs,omitempty"`
	Training json.RawMessage `json:"training,omitempty"`
	Metrics  json.RawMessage `json:"metrics,omitempty"`
}

// Validate checks the fields inference depends on.
func (c *Card) Validate() error {
	var probs []string
	if len(c.Labels) != 2 || c.Labels[0] != "normal" || c.Labels[1] != "phishing" {
		probs = append(probs, fmt.Sprintf(`labels must be ["normal","phishing"], got %q`, c.Labels))
	}
	t := c.Thresholds
	if !(t.Suspicious > 0 && t.Suspicious <= t.Dangerous && t.Dangerous < 1) {
		probs = append(probs, fmt.Sprintf("thresholds must satisfy 0 < suspicious (%g) <= dangerous (%g) < 1", t.Suspicious, t.Dangerous))
	}
	if c.MaxSeqLen <= 0 {
		probs = append(probs, fmt.Sprintf("max_seq_len must be positive, got %d", c.MaxSeqLen))
	}
	if c.MaxTextBytes < 0 {
		probs = append(probs, fmt.Sprintf("max_text_bytes must not be negative, got %d", c.MaxTextBytes))
	}
	if a := c.Architecture; a.VocabSize < 0 || a.Embed < 0 || a.Hidden < 0 || a.Layers < 0 {
		probs = append(probs, fmt.Sprintf("architecture sizes must not be negative, got vocab_size %d, embed %d, hidden %d, layers %d", a.VocabSize, a.Embed, a.Hidden, a.Layers))
	}
	for _, f := range []string{ModelFile, TokenizerFile} {
		if s, ok := c.Files[f]; !ok || len(s.SHA256) != 64 {
			probs = append(probs, fmt.Sprintf("files[%q].sha256 must be a 64-digit hex digest", f))
		}
	}
	if len(probs) > 0 {
		return errors.New(strings.Join(probs, "; "))
	}
	return nil
}

// Bundle is a loaded, verified model bundle.
type Bundle struct {
	Dir       string
	Card      Card
	Model     []byte
	Tokenizer []byte
	// CardJSON is card.json as read, with the fields Card does not know.
	CardJSON []byte
	// ModelSHA256 is the hex digest of Model.
	ModelSHA256 string
	// EmbeddingRows is the number of token ids the model's embedding table
	// accepts, read from the graph: the tokenizer's vocabulary must match it.
	EmbeddingRows int
	// Proto is the parsed model and Signature its contract, read once here
	// and handed to the backends.
	Proto     *onnxpb.ModelProto
	Signature runtime.Signature
}

// The neutral fixes most bundle errors share.
const (
	restoreFix = "restore the file or rebuild the bundle"
	mixedFix   = "the card and the model come from different builds; restore the bundle's files together or rebuild the bundle"
)

// Load reads and verifies the bundle in dir.
func Load(dir string) (*Bundle, error) {
	return LoadFS(os.DirFS(dir), dir)
}

// LoadFS reads a bundle from fsys (the bundle's files at its root); name is
// used in messages.
func LoadFS(fsys fs.FS, name string) (*Bundle, error) {
	berr := func(file, problem string, remedy Remedy, fix string, err error) error {
		return &BundleError{Dir: name, File: file, Problem: problem, Fix: fix, Remedy: remedy, Err: err}
	}
	if st, err := fs.Stat(fsys, "."); err != nil || !st.IsDir() {
		return nil, berr("", "directory not found", RemedyChooseBundle, "a bundle is a directory holding model.onnx, tokenizer.json and card.json", nil)
	}
	read := func(file string) ([]byte, error) {
		b, err := fs.ReadFile(fsys, file)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, berr(file, "missing", RemedyRestore, "a bundle needs model.onnx, tokenizer.json and card.json; restore the file or rebuild the bundle", nil)
		}
		if err != nil {
			return nil, berr(file, "unreadable", RemedyNone, "check its permissions", err)
		}
		return b, nil
	}
	cardBytes, err := read(CardFile)
	if err != nil {
		return nil, err
	}
	var card Card
	if err := json.Unmarshal(cardBytes, &card); err != nil {
		return nil, berr(CardFile, "not valid JSON", RemedyRestore, restoreFix, err)
	}
	if err := card.Validate(); err != nil {
		return nil, berr(CardFile, "incomplete", RemedyRestore, restoreFix, err)
	}
	b := &Bundle{Dir: name, Card: card, CardJSON: cardBytes}
	if b.Model, err = read(ModelFile); err != nil {
		return nil, err
	}
	if b.Tokenizer, err = read(TokenizerFile); err != nil {
		return nil, err
	}
	for file, data := range map[string][]byte{ModelFile: b.Model, TokenizerFile: b.Tokenizer} {
		got := Sum(data)
		want := card.Files[file].SHA256
		if !strings.EqualFold(got, want) {
			return nil, berr(file, fmt.Sprintf("sha256 %s does not match card.json (%s): the file is truncated, corrupt or from another model", got[:12], want[:12]),
				RemedyRestore, "restore the bundle's original files together, or rebuild the bundle", nil)
		}
	}
	b.ModelSHA256 = card.Files[ModelFile].SHA256
	b.Proto, err = runtime.ParseModel(b.Model)
	if err != nil {
		return nil, berr(ModelFile, "is not a valid ONNX model", RemedyRestore, restoreFix, err)
	}
	b.Signature, err = runtime.SignatureOf(b.Proto.GetGraph())
	if err != nil {
		return nil, berr(ModelFile, "does not follow the callwatch ONNX signature", RemedyReexport, "export the model again with the project's exporter, or rebuild the bundle", err)
	}
	if w := b.Signature.Extra(runtime.OutputFamily); w > 0 && len(card.Families) != w {
		return nil, berr(CardFile, fmt.Sprintf("names %d families but model.onnx's %s has %d columns", len(card.Families), runtime.OutputFamily, w),
			RemedyRestore, mixedFix, nil)
	}
	for _, p := range card.State {
		if st, ok := b.Signature.State(p.In); !ok || st.Out != p.Out {
			return nil, berr(CardFile, fmt.Sprintf("names state %s → %s, which model.onnx does not have", p.In, p.Out),
				RemedyRestore, mixedFix, nil)
		}
	}
	rows, err := embeddingRows(b.Proto)
	if err != nil {
		return nil, berr(ModelFile, "has no readable embedding table", RemedyRestore, restoreFix, err)
	}
	if want := card.Architecture.VocabSize; want > 0 && want != rows {
		return nil, berr(CardFile, fmt.Sprintf("architecture.vocab_size is %d but model.onnx's embedding has %d rows", want, rows),
			RemedyRestore, mixedFix, nil)
	}
	b.EmbeddingRows = rows
	return b, nil
}

// ErrNoEmbedding means the graph has no embedding lookup on input_ids.
var ErrNoEmbedding = errors.New("no Gather over an initializer fed by input_ids")

// EmbeddingRows parses an ONNX model and returns the row count of the
// embedding table that input_ids index (the first dimension of the
// initializer a Gather reads with input_ids, directly or through Cast or
// Identity nodes).
func EmbeddingRows(model []byte) (int, error) {
	m, err := runtime.ParseModel(model)
	if err != nil {
		return 0, err
	}
	return embeddingRows(m)
}

func embeddingRows(m *onnxpb.ModelProto) (int, error) {
	g := m.GetGraph()
	inits := map[string]*onnxpb.TensorProto{}
	for _, t := range g.GetInitializer() {
		inits[t.GetName()] = t
	}
	ids := map[string]bool{"input_ids": true}
	// Nodes are topologically sorted in a valid model, so one pass follows
	// input_ids through casts.
	for _, n := range g.GetNode() {
		in := n.GetInput()
		switch n.GetOpType() {
		case "Cast", "Identity":
			if len(in) > 0 && ids[in[0]] {
				for _, o := range n.GetOutput() {
					ids[o] = true
				}
			}
		case "Gather":
			if len(in) < 2 || !ids[in[1]] {
				continue
			}
			t, ok := inits[in[0]]
			if !ok || len(t.GetDims()) != 2 || t.GetDims()[0] <= 0 {
				continue
			}
			for _, a := range n.GetAttribute() {
				if a.GetName() == "axis" && a.GetI() != 0 && a.GetI() != -2 {
					return 0, fmt.Errorf("embedding Gather %q uses axis %d, want 0", n.GetName(), a.GetI())
				}
			}
			return int(t.GetDims()[0]), nil
		}
	}
	return 0, ErrNoEmbedding
}

// Sum is the hex sha256 of data.
func Sum(data []byte) string {
	h := sha256.Sum256(data)
	return hex.EncodeToString(h[:])
}
