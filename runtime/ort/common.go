// Package ort runs the exported LSTM graph on onnxruntime through
// github.com/yalue/onnxruntime_go. Build with -tags noort for a cgo-free
// binary without it (disabled.go): the native backend then serves alone.
package ort

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// MinVersion is the oldest onnxruntime release whose C API (version 24)
// onnxruntime_go v1.27 can use.
const MinVersion = "1.24"

// InstallHint is the fix offered whenever the library cannot be used. It
// names only what this package reads; programs add their own way to do it
// (the CLI names its flag, config key and make target).
const InstallHint = "install onnxruntime >= " + MinVersion + " and point Options.Library or " +
	"$CALLWATCH_ORT_LIBRARY at its libonnxruntime.so, or use the native backend"

var (
	// ErrLibraryNotFound means no candidate path held a loadable library.
	ErrLibraryNotFound = errors.New("onnxruntime library not found")
	// ErrLibraryVersion means a library loaded but is too old (or not onnxruntime).
	ErrLibraryVersion = errors.New("unusable onnxruntime library")
)

// LibraryError explains which paths were tried and why each failed.
type LibraryError struct {
	Kind  error // ErrLibraryNotFound or ErrLibraryVersion
	Tried []string
	Cause string
	// Fix replaces InstallHint where installing the library would not help.
	Fix string
}

func (e *LibraryError) Error() string {
	msg := e.Kind.Error()
	if e.Cause != "" {
		msg += ": " + e.Cause
	}
	if len(e.Tried) > 0 {
		msg += fmt.Sprintf(" (tried %d locations: %v)", len(e.Tried), e.Tried)
	}
	fix := e.Fix
	if fix == "" {
		fix = InstallHint
	}
	return msg + "; to fix: " + fix
}

func (e *LibraryError) Unwrap() error { return e.Kind }

// Candidates lists where the library is looked up, in order (README.md,
// "Using the CLI", lists the same for users): the configured path, else $CALLWATCH_ORT_LIBRARY (either one, when set, is
// the only candidate), else .ort/ in the repository root
// (found by walking up from the working directory), next to the executable,
// then the system loader's own search path.
func Candidates(configured string, getenv func(string) string) []string {
	var out []string
	add := func(p string) {
		if p == "" {
			return
		}
		for _, q := range out {
			if q == p {
				return
			}
		}
		out = append(out, p)
	}
	// An explicit choice is the only candidate: if it cannot be used, that
	// must be reported, not quietly replaced by a library found elsewhere.
	if configured != "" {
		return []string{configured}
	}
	if getenv != nil {
		if p := getenv("CALLWATCH_ORT_LIBRARY"); p != "" {
			return []string{p}
		}
	}
	if wd, err := os.Getwd(); err == nil {
		for dir := wd; ; dir = filepath.Dir(dir) {
			p := filepath.Join(dir, ".ort", "libonnxruntime.so")
			if _, err := os.Stat(p); err == nil {
				add(p)
				break
			}
			if filepath.Dir(dir) == dir {
				break
			}
		}
	}
	if exe, err := os.Executable(); err == nil {
		dir := filepath.Dir(exe)
		for _, name := range []string{"libonnxruntime.so", filepath.Join(".ort", "libonnxruntime.so")} {
			if p := filepath.Join(dir, name); fileExists(p) {
				add(p)
			}
		}
	}
	// Bare names go through the dynamic loader's search path.
	add("libonnxruntime.so")
	add("libonnxruntime.so.1")
	return out
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// Options configure a Backend.
type Options struct {
	// Library is the configured library path (may be empty).
	Library string
	// Getenv is used for CALLWATCH_ORT_LIBRARY; nil means os.Getenv.
	Getenv func(string) string
	// IntraOpThreads per session; 0 means 1, which measured best on 2 cores
	// because onnxruntime's spinning threads double CPU time (README.md,
	// "Performance": the sweep over workers × intra-op threads).
	IntraOpThreads int
}
