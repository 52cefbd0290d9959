package models

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
)

// fixture is a small, self-consistent bundle: the runtime test model
// (vocab 64) with a tokenizer file and a card that pins both.
type fixture struct {
	model, tok []byte
	card       map[string]any
}

func newFixture(t testing.TB) fixture {
	t.Helper()
	model, err := os.ReadFile(filepath.Join("..", "runtime", "testdata", "tiny.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := os.ReadFile(filepath.Join("..", "tokenize", "testdata", "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	return fixture{model: model, tok: tok, card: map[string]any{
		"name": "tiny", "version": "0", "labels": []string{"normal", "phishing"},
		"thresholds":  map[string]any{"suspicious": 0.5, "dangerous": 0.9},
		"max_seq_len": 16,
		"files": map[string]any{
			ModelFile:     map[string]any{"sha256": Sum(model)},
			TokenizerFile: map[string]any{"sha256": Sum(tok)},
		},
		"architecture": map[string]any{"type": "lstm", "vocab_size": 64, "embed": 8, "hidden": 16, "layers": 2},
	}}
}

func (f fixture) fs(t testing.TB) fstest.MapFS {
	t.Helper()
	card, err := json.Marshal(f.card)
	if err != nil {
		t.Fatal(err)
	}
	return fstest.MapFS{
		ModelFile:     {Data: f.model},
		TokenizerFile: {Data: f.tok},
		CardFile:      {Data: card},
	}
}

func TestLoadShipped(t *testing.T) {
	b, err := Load(DefaultName)
	if err != nil {
		t.Fatal(err)
	}
	if b.EmbeddingRows != b.Card.Architecture.VocabSize || b.EmbeddingRows == 0 {
		t.Fatalf("embedding rows %d, card vocab_size %d", b.EmbeddingRows, b.Card.Architecture.VocabSize)
	}
	if b.ModelSHA256 != Sum(b.Model) {
		t.Fatal("ModelSHA256 does not match the model bytes")
	}
}

func TestLoadFixture(t *testing.T) {
	f := newFixture(t)
	b, err := LoadFS(f.fs(t), "tiny")
	if err != nil {
		t.Fatal(err)
	}
	if b.EmbeddingRows != 64 {
		t.Fatalf("embedding rows %d, want 64", b.EmbeddingRows)
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(f *fixture, m fstest.MapFS)
		file   string   // BundleError.File
		want   []string // in the message
	}{
		{"model missing", func(_ *fixture, m fstest.MapFS) { delete(m, ModelFile) }, ModelFile, []string{"missing", "restore the file or rebuild the bundle"}},
		{"tokenizer missing", func(_ *fixture, m fstest.MapFS) { delete(m, TokenizerFile) }, TokenizerFile, []string{"missing"}},
		{"card missing", func(_ *fixture, m fstest.MapFS) { delete(m, CardFile) }, CardFile, []string{"missing"}},
		{"model truncated", func(f *fixture, m fstest.MapFS) { m[ModelFile] = &fstest.MapFile{Data: f.model[:len(f.model)/2]} }, ModelFile, []string{"sha256", "truncated, corrupt or from another model"}},
		{"tokenizer truncated", func(f *fixture, m fstest.MapFS) { m[TokenizerFile] = &fstest.MapFile{Data: f.tok[:100]} }, TokenizerFile, []string{"sha256"}},
		{"card truncated", func(_ *fixture, m fstest.MapFS) { m[CardFile].Data = m[CardFile].Data[:20] }, CardFile, []string{"not valid JSON"}},
		{"card empty", func(_ *fixture, m fstest.MapFS) { m[CardFile].Data = nil }, CardFile, []string{"not valid JSON"}},
		{"card wrong labels", func(f *fixture, m fstest.MapFS) {
			f.card["labels"] = []string{"phishing", "normal"}
			m[CardFile].Data, _ = json.Marshal(f.card)
		}, CardFile, []string{"labels"}},
		{"card thresholds reversed", func(f *fixture, m fstest.MapFS) {
			f.card["thresholds"] = map[string]any{"suspicious": 0.9, "dangerous": 0.5}
			m[CardFile].Data, _ = json.Marshal(f.card)
		}, CardFile, []string{"thresholds"}},
		{"card vocab_size not the model's", func(f *fixture, m fstest.MapFS) {
			f.card["architecture"] = map[string]any{"vocab_size": 8000}
			m[CardFile].Data, _ = json.Marshal(f.card)
		}, CardFile, []string{"vocab_size is 8000", "embedding has 64 rows"}},
		{"model not ONNX but pinned", func(f *fixture, m fstest.MapFS) {
			junk := []byte("not a model at all")
			m[ModelFile] = &fstest.MapFile{Data: junk}
			f.card["files"].(map[string]any)[ModelFile] = map[string]any{"sha256": Sum(junk)}
			m[CardFile].Data, _ = json.Marshal(f.card)
		}, ModelFile, []string{"is not a valid ONNX model"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			m := f.fs(t)
			tt.mutate(&f, m)
			_, err := LoadFS(m, "dir")
			if err == nil {
				t.Fatal("LoadFS succeeded")
			}
			var be *BundleError
			if !errors.As(err, &be) || !errors.Is(err, ErrBundle) {
				t.Fatalf("error %v is not a *BundleError wrapping ErrBundle", err)
			}
			if be.File != tt.file {
				t.Errorf("error names file %q, want %q: %v", be.File, tt.file, err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line: %q", err)
			}
			// Every case here is fixed by restoring or rebuilding the bundle;
			// how (a make target, a flag) is for the program to say.
			if be.Remedy != RemedyRestore {
				t.Errorf("remedy %d, want RemedyRestore: %v", be.Remedy, err)
			}
			if msg := err.Error(); strings.Contains(msg, "make ") || strings.Contains(msg, "--") {
				t.Errorf("a library error names a CLI flag or make target: %q", msg)
			}
		})
	}
	_, err := Load(filepath.Join(t.TempDir(), "nope"))
	var be *BundleError
	if err == nil || !strings.Contains(err.Error(), "directory not found") || !errors.As(err, &be) || be.Remedy != RemedyChooseBundle {
		t.Errorf("missing dir: %v", err)
	}
}

func TestEmbeddingRows(t *testing.T) {
	for _, tc := range []struct {
		path string
		want int
	}{
		{filepath.Join("..", "runtime", "testdata", "tiny.onnx"), 64},
		{filepath.Join("..", "runtime", "native", "testdata", "packed.onnx"), 50},
		{filepath.Join(DefaultName, ModelFile), 8000},
	} {
		b, err := os.ReadFile(tc.path)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := EmbeddingRows(b); err != nil || got != tc.want {
			t.Errorf("%s: %d, %v; want %d", tc.path, got, err, tc.want)
		}
	}
	if _, err := EmbeddingRows([]byte{0x3a, 0x00}); !errors.Is(err, ErrNoEmbedding) {
		t.Errorf("empty graph: %v, want ErrNoEmbedding", err)
	}
}

// FuzzLoad mutates card.json (the one hand-editable file) over a valid small
// bundle: loading must never panic, every failure must be a one-line
// BundleError, and a success must be a bundle whose card validates and
// whose files match their pinned digests.
func FuzzLoad(f *testing.F) {
	fx := newFixture(f)
	good := fx.fs(f)[CardFile].Data
	f.Add(good)
	f.Add([]byte(`{}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`[]`))
	f.Add(good[:len(good)/2])
	f.Add([]byte(strings.Replace(string(good), `"vocab_size":64`, `"vocab_size":-1`, 1)))
	f.Add([]byte(strings.Replace(string(good), `"max_seq_len":16`, `"max_seq_len":1e400`, 1)))
	f.Add([]byte(strings.Replace(string(good), `"suspicious":0.5`, `"suspicious":"0.5"`, 1)))
	f.Fuzz(func(t *testing.T, card []byte) {
		m := fstest.MapFS{
			ModelFile:     {Data: fx.model},
			TokenizerFile: {Data: fx.tok},
			CardFile:      {Data: card},
		}
		b, err := LoadFS(m, "fuzz")
		if err != nil {
			var be *BundleError
			if !errors.As(err, &be) || !errors.Is(err, ErrBundle) {
				t.Fatalf("error %v is not a *BundleError", err)
			}
			if strings.ContainsAny(err.Error(), "\n\r") {
				t.Fatalf("error is not one line: %q", err)
			}
			return
		}
		if err := b.Card.Validate(); err != nil {
			t.Fatalf("loaded a card that does not validate: %v", err)
		}
		if b.EmbeddingRows != 64 || (b.Card.Architecture.VocabSize != 0 && b.Card.Architecture.VocabSize != 64) {
			t.Fatalf("loaded with embedding rows %d, card vocab_size %d", b.EmbeddingRows, b.Card.Architecture.VocabSize)
		}
		if !strings.EqualFold(b.Card.Files[ModelFile].SHA256, Sum(fx.model)) || !strings.EqualFold(b.Card.Files[TokenizerFile].SHA256, Sum(fx.tok)) {
			t.Fatal("loaded a bundle whose digests do not match its files")
		}
	})
}

// The built-in bundle is the files of models/ko-vishing-lstm at build time.
func TestLoadDefaultEmbedded(t *testing.T) {
	b, err := LoadDefault()
	if err != nil {
		t.Fatalf("LoadDefault: %v", err)
	}
	if !b.Embedded() || b.Dir != EmbeddedDir {
		t.Fatalf("Dir = %q, Embedded() = %v", b.Dir, b.Embedded())
	}
	for file, got := range map[string][]byte{ModelFile: b.Model, TokenizerFile: b.Tokenizer, CardFile: b.CardJSON} {
		want, err := os.ReadFile(filepath.Join(DefaultName, file))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("embedded %s (sha256 %s) differs from the file on disk (sha256 %s)", file, Sum(got), Sum(want))
		}
	}
	disk, err := Load(DefaultName)
	if err != nil {
		t.Fatal(err)
	}
	if disk.Embedded() || disk.ModelSHA256 != b.ModelSHA256 {
		t.Errorf("disk bundle: Embedded() = %v, sha256 %s vs embedded %s", disk.Embedded(), disk.ModelSHA256, b.ModelSHA256)
	}
}
