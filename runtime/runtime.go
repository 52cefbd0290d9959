// Package runtime defines the inference backend contract shared by the
// onnxruntime backend (runtime/ort) and the pure-Go backend (runtime/native).
// The ONNX signature both run is described by Signature (signature.go), the
// one place it lives.
package runtime

import (
	"context"
	"errors"
	"fmt"
)

// Input is one batch, stored row-major in flat slices so that it can be
// handed to onnxruntime without copying.
type Input struct {
	// IDs holds Batch*Seq token ids, right-padded (pad id is irrelevant: rows
	// are cut at Lengths).
	IDs []int64
	// Lengths holds Batch real lengths, each in [1, Seq].
	Lengths []int64
	Batch   int
	Seq     int
	// State holds the initial state tensors in Signature.States order, each
	// in its declared layout with Batch rows (h0 is [layer][row][unit]). A
	// nil State, or a nil entry, means zeros: a fresh call.
	State [][]float32
}

// Output is the result of one Run.
type Output struct {
	// Probs holds Batch*2 probabilities: (normal, phishing) per row.
	Probs []float32
	// State holds the final state tensors, same order and layout as
	// Input.State.
	State [][]float32
	// Extras holds Signature.Extras outputs, Batch*Width each.
	Extras [][]float32
}

// Shape describes the LSTM state the model carries.
type Shape struct {
	Layers int
	Hidden int
}

// Backend runs the exported LSTM graph. Implementations must be safe for
// concurrent use by multiple goroutines.
type Backend interface {
	// Name is "ort" or "native".
	Name() string
	// Signature is the model's contract, as read when the bundle loaded.
	Signature() Signature
	Run(ctx context.Context, in Input) (Output, error)
	Close() error
}

// ErrInvalidInput is wrapped by errors about malformed Input values.
var ErrInvalidInput = errors.New("invalid backend input")

// Validate checks the shape invariants of in against the signature.
func (in Input) Validate(s Signature) error {
	if in.Batch <= 0 || in.Seq <= 0 {
		return fmt.Errorf("%w: batch %d and seq %d must both be positive", ErrInvalidInput, in.Batch, in.Seq)
	}
	if len(in.IDs) != in.Batch*in.Seq {
		return fmt.Errorf("%w: %d ids for batch %d x seq %d", ErrInvalidInput, len(in.IDs), in.Batch, in.Seq)
	}
	if len(in.Lengths) != in.Batch {
		return fmt.Errorf("%w: %d lengths for batch %d", ErrInvalidInput, len(in.Lengths), in.Batch)
	}
	for i, l := range in.Lengths {
		if l < 1 || l > int64(in.Seq) {
			return fmt.Errorf("%w: row %d has length %d, want 1..%d", ErrInvalidInput, i, l, in.Seq)
		}
	}
	if in.State == nil {
		return nil
	}
	if len(in.State) != len(s.States) {
		return fmt.Errorf("%w: %d state tensors, the model has %d", ErrInvalidInput, len(in.State), len(s.States))
	}
	for k, st := range s.States {
		if v := in.State[k]; v != nil && len(v) != st.RowSize()*in.Batch {
			return fmt.Errorf("%w: %s has %d values, want %d", ErrInvalidInput, st.In, len(v), st.RowSize()*in.Batch)
		}
	}
	return nil
}

// StateOrZeros returns in.State with nil entries replaced by zeros.
func (in Input) StateOrZeros(s Signature) [][]float32 {
	out := make([][]float32, len(s.States))
	for k, st := range s.States {
		if in.State != nil && in.State[k] != nil {
			out[k] = in.State[k]
		} else {
			out[k] = make([]float32, st.RowSize()*in.Batch)
		}
	}
	return out
}
