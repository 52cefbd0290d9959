package main

import (
	"context"
	"errors"
	"fmt"
)

// Exit codes scripts can rely on.
const (
	exitOK          = 0
	exitFailed      = 1 // some records failed, or parity above tolerance
	exitUsage       = 2 // bad flags, bad config, model or library problems
	exitInterrupted = 130
)

// errRecords reports that a run finished but some records carried errors.
type errRecords struct{ failed, total int }

func (e *errRecords) Error() string {
	return fmt.Sprintf("%d of %d records failed (see their \"error\" fields)", e.failed, e.total)
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

// errUsage marks command-line and setup errors (exit 2).
type errUsage struct{ err error }

func (e *errUsage) Error() string { return e.err.Error() }
func (e *errUsage) Unwrap() error { return e.err }

func usagef(format string, a ...any) error { return &errUsage{fmt.Errorf(format, a...)} }

// errFailed is a non-usage failure with exit 1 (e.g. parity above tolerance).
type errFailed struct{ err error }

func (e *errFailed) Error() string { return e.err.Error() }
func (e *errFailed) Unwrap() error { return e.err }

// errSilent has already been reported; it only carries the exit code.
var errHelp = errors.New("help requested")

func exitCode(err error) int {
	var rec *errRecords
	var fail *errFailed
	switch {
	case err == nil, errors.Is(err, errHelp):
		return exitOK
	case errors.Is(err, context.Canceled):
		return exitInterrupted
	case errors.As(err, &rec), errors.As(err, &fail):
		return exitFailed
	default:
		return exitUsage
	}
}
