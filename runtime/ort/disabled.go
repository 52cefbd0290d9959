//go:build noort

package ort

import (
	"context"
	"errors"

	"github.com/callwatch/callwatch/runtime"
)

// Enabled reports whether this binary was built with onnxruntime support.
const Enabled = false

// errDisabled is the cause every call reports in a noort build.
const (
	errDisabled = "this binary was built with -tags noort (cgo-free, native backend only)"
	fixDisabled = "use the native backend, or a build without -tags noort"
)

// Init always fails in a noort build.
func Init(candidates []string) (path, version string, err error) {
	return "", "", disabled()
}

// Backend is never created in a noort build.
type Backend struct{}

// Open always fails in a noort build.
func Open(modelPath string, opts Options) (*Backend, error) { return nil, disabled() }

// New always fails in a noort build.
func New(model []byte, opts Options) (*Backend, error) { return nil, disabled() }

// NewWithSignature always fails in a noort build.
func NewWithSignature(model []byte, sig runtime.Signature, opts Options) (*Backend, error) {
	return nil, disabled()
}

func disabled() *LibraryError {
	return &LibraryError{Kind: ErrLibraryNotFound, Cause: errDisabled, Fix: fixDisabled}
}

// Name implements runtime.Backend.
func (b *Backend) Name() string { return "ort" }

// Signature implements runtime.Backend.
func (b *Backend) Signature() runtime.Signature { return runtime.Signature{} }

// Library reports nothing: no library is loaded.
func (b *Backend) Library() (path, version string) { return "", "" }

// Run implements runtime.Backend.
func (b *Backend) Run(ctx context.Context, in runtime.Input) (runtime.Output, error) {
	return runtime.Output{}, errors.New(errDisabled)
}

// Close implements runtime.Backend.
func (b *Backend) Close() error { return nil }
