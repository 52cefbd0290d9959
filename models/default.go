package models

import (
	"embed"
	"io/fs"
)

// The default bundle's files, built into every program that calls
// DefaultFS or LoadDefault (about 2 MB): whatever models/ko-vishing-lstm
// holds when the program is built.
//
//go:embed ko-vishing-lstm/model.onnx ko-vishing-lstm/tokenizer.json ko-vishing-lstm/card.json
var defaultFiles embed.FS

// EmbeddedDir is the Dir of the bundle LoadDefault returns: a name for
// messages, not a path on disk.
const EmbeddedDir = "built-in:" + DefaultName

// DefaultFS is the built-in default bundle (its files at the root).
func DefaultFS() fs.FS {
	sub, err := fs.Sub(defaultFiles, DefaultName)
	if err != nil {
		panic(err) // a valid constant path; cannot fail
	}
	return sub
}

// LoadDefault loads and verifies the built-in default bundle.
func LoadDefault() (*Bundle, error) {
	return LoadFS(DefaultFS(), EmbeddedDir)
}

// Embedded reports whether b is the built-in bundle rather than one read
// from disk.
func (b *Bundle) Embedded() bool { return b.Dir == EmbeddedDir }
