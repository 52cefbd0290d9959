// Package runtime defines the inference backend contract shared by the
// onnxruntime backend (runtime/ort) and the pure-Go backend (runtime/native).
//
// Both run the same exported ONNX graph (see DESIGN.md):
//
//	inputs:  input_ids int64 [batch, seq] right-padded; lengths int64 [batch];
//	         h0, c0 float32 [layers, batch, hidden]
//	outputs: probs float32 [batch, 2] at each row's last real token;
//	         hn, cn float32 [layers, batch, hidden] at each row's last real token
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
	// H0 and C0 hold Layers*Batch*Hidden initial states in [layer][row][unit]
	// order. Nil means zeros.
	H0, C0 []float32
}

// Output is the result of one Run.
type Output struct {
	// Probs holds Batch*2 probabilities: (normal, phishing) per row.
	Probs []float32
	// HN and CN hold the final states, Layers*Batch*Hidden, same layout as
	// Input.H0.
	HN, CN []float32
}

// Shape describes the recurrent state the model carries.
type Shape struct {
	Layers int
	Hidden int
}

// Backend runs the exported LSTM graph. Implementations must be safe for
// concurrent use by multiple goroutines.
type Backend interface {
	// Name is "ort" or "native".
	Name() string
	// StateShape reports the layer count and hidden size read from the model.
	StateShape() Shape
	Run(ctx context.Context, in Input) (Output, error)
	Close() error
}

// ErrInvalidInput is wrapped by errors about malformed Input values.
var ErrInvalidInput = errors.New("invalid backend input")

// Validate checks the shape invariants of in against the state shape s.
func (in Input) Validate(s Shape) error {
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
	n := s.Layers * in.Batch * s.Hidden
	if in.H0 != nil && len(in.H0) != n {
		return fmt.Errorf("%w: h0 has %d values, want %d", ErrInvalidInput, len(in.H0), n)
	}
	if in.C0 != nil && len(in.C0) != n {
		return fmt.Errorf("%w: c0 has %d values, want %d", ErrInvalidInput, len(in.C0), n)
	}
	if (in.H0 == nil) != (in.C0 == nil) {
		return fmt.Errorf("%w: h0 and c0 must both be set or both be nil", ErrInvalidInput)
	}
	return nil
}
