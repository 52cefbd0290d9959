package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/callwatch/callwatch/models"
	"github.com/callwatch/callwatch/runtime/ort"
)

// Exit codes scripts can rely on.
const (
	exitOK          = 0
	exitFailed      = 1 // some records failed, or parity above tolerance
	exitUsage       = 2 // bad flags, bad config, model or library problems
	exitInterrupted = 130
)

// errRecords reports that a run finished but some records carried errors.
// unit names what was counted ("" is records; stream counts segments).
type errRecords struct {
	failed, total int
	unit          string
}

func (e *errRecords) Error() string {
	unit := e.unit
	if unit == "" {
		unit = "records"
	}
	return fmt.Sprintf("%d of %d %s failed (see their \"error\" fields)", e.failed, e.total, unit)
}

// errInterrupted reports a run stopped by SIGINT/SIGTERM (exit 130). Output
// is written a whole record at a time, so what was written stays valid.
type errInterrupted struct {
	written int
	err     error
}

func (e *errInterrupted) Error() string {
	return fmt.Sprintf("interrupted after %d records; each record written is complete — rerun on the remaining input to finish", e.written)
}
func (e *errInterrupted) Unwrap() error { return e.err }

// errUsage marks command-line and setup errors (exit 2). Its message adds
// the CLI's own way to fix a library error (withHint).
type errUsage struct{ err error }

func (e *errUsage) Error() string { return withHint(e.err) }
func (e *errUsage) Unwrap() error { return e.err }

func usagef(format string, a ...any) error { return &errUsage{fmt.Errorf(format, a...)} }

// errCommandLine is a mistake in the command line itself (an unknown
// command or flag, a wrong argument): exit 2, and the message is followed by
// where the command's usage is.
type errCommandLine struct {
	err  error
	help string // the command whose --help to point at; "" for the one run
}

func (e *errCommandLine) Error() string { return e.err.Error() }
func (e *errCommandLine) Unwrap() error { return e.err }

func cmdlinef(format string, a ...any) error { return &errCommandLine{err: fmt.Errorf(format, a...)} }

// errFailed is a non-usage failure with exit 1 (e.g. parity above tolerance).
type errFailed struct{ err error }

func (e *errFailed) Error() string { return e.err.Error() }
func (e *errFailed) Unwrap() error { return e.err }

func exitCode(err error) int {
	var rec *errRecords
	var fail *errFailed
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, context.Canceled):
		return exitInterrupted
	case errors.As(err, &rec), errors.As(err, &fail):
		return exitFailed
	default:
		return exitUsage
	}
}

// withHint is err's message with what to do about it in this program's
// terms. The libraries (models, runtime/ort) phrase their fixes for any
// caller and classify them; the flags, config keys, environment variables and
// make targets that carry them out are the CLI's and are named only here. A
// bundle's fix says what a bundle is, so the CLI's follows it; onnxruntime's
// speaks of Go options, so the CLI's replaces it.
func withHint(err error) string {
	msg := err.Error()
	var be *models.BundleError
	if errors.As(err, &be) {
		if h := bundleHint(be.Remedy); h != "" {
			msg += "; " + h
		}
		return msg
	}
	var le *ort.LibraryError
	if errors.As(err, &le) {
		lib := le.Fix
		if lib == "" {
			lib = ort.InstallHint
		}
		h := libraryHint()
		if i := strings.LastIndex(msg, lib); i >= 0 {
			return msg[:i] + h + msg[i+len(lib):]
		}
		return msg + "; " + h
	}
	return msg
}

// bundleHint says how to carry out a bundle error's remedy with this program.
func bundleHint(r models.Remedy) string {
	switch r {
	case models.RemedyChooseBundle:
		return "pass --model DIR (or set CALLWATCH_MODEL, or model: in callwatch.yaml) pointing at a bundle directory, " +
			"or leave them unset to use the model built into callwatch (in a source checkout `make model` rebuilds the default bundle)"
	case models.RemedyRestore:
		return "restore the bundle's three files together from where they came from (a release archive, or `git checkout models/` " +
			"in a source checkout, where `make model` rebuilds it), or leave --model and CALLWATCH_MODEL unset to use the model built into callwatch"
	case models.RemedyReexport:
		return "export the model again with scripts/export.py from the callwatch sources (`make model` rebuilds the default bundle), " +
			"or leave --model and CALLWATCH_MODEL unset to use the model built into callwatch"
	}
	return ""
}

// libraryHint is the CLI's fix for an onnxruntime library that cannot be used.
func libraryHint() string {
	if !ort.Enabled {
		return "use --backend native (or auto), or a build without -tags noort"
	}
	return "use --backend native (built in, needs no library), or install onnxruntime >= " + ort.MinVersion +
		" (the onnxruntime-linux release archive from https://github.com/microsoft/onnxruntime/releases) and point --ort-library, " +
		"CALLWATCH_ORT_LIBRARY or ort.library at its lib/libonnxruntime.so; in a source checkout `make ort` installs it into .ort/"
}
