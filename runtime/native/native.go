// Package native is a pure-Go runtime.Backend: it parses the exported ONNX
// model with the generated onnxpb types and runs its graph with a small
// interpreter.
//
// Op set: this is a general interpreter of a fixed set of default-domain ONNX
// ops, not only of what today's exporter emits, so that a model exported with
// another PyTorch version or a changed architecture still runs without
// onnxruntime. The set (builders in ops.go; an unsupported op or attribute is
// refused at load, naming the op and node) is:
//
//   - what the exporter emits: LSTM (forward, one direction, default
//     activations), Gather, Gemm, MatMul, Softmax, Add, Sub, Mul, Div, Relu,
//     Max, Min, ReduceSum, ReduceMax, Range, Less, Equal, Where, Cast,
//     Unsqueeze, Squeeze, Concat, Shape, Slice, Reshape, Transpose, Expand,
//     Constant, ConstantOfShape, Tanh, Sigmoid, Clip, Identity;
//   - the rest of the elementwise, comparison, shape and reduction ops such
//     graphs are made of: Abs, Neg, Exp, Log, Sqrt, Reciprocal, LessOrEqual,
//     Greater, GreaterOrEqual, And, Or, Not, Dropout (inference), LogSoftmax,
//     GatherElements, ScatterElements (no reduction), TopK, Size, Flatten,
//     ReduceProd, ReduceMin, ReduceMean.
//
// Every op in the set is held to onnxruntime (TestConformance, which needs
// cgo and the onnxruntime library and is left out of -tags noort builds): each
// runs on small generated single-node graphs in both runtimes, fed at run time
// and folded at load, and the outputs must match to 1e-5. A new op needs a
// case there. Types are float32, int64, int32 and bool.
//
// Nothing here knows the architecture or the initializer names: the graph is
// walked as written, and only the graph's input and output names
// (input_ids, lengths, h0, c0 → probs, hn, cn) form the contract.
//
// Loading parses the model, rejects any operator or attribute the
// interpreter does not implement (naming the op and node), orders the nodes
// topologically and folds the constant part of the graph once. A Run walks
// the remaining nodes with its own value table; weights are shared and never
// written, so concurrent Runs need no locks. The context is checked between
// nodes and between LSTM time steps.
//
// The LSTM does its input projection for all steps up front and its
// recurrence on transposed weights. On amd64 with AVX2 and FMA the matrix
// products and the gate activations (a Cephes-style float32 exp, ≤ 2e-7
// absolute error) use small assembly kernels; build with -tags purego for the
// portable Go code, which computes the activations in float64. Against
// PyTorch the outputs differ by under 1e-6 either way.
package native

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/callwatch/callwatch/runtime"
	"github.com/callwatch/callwatch/runtime/onnxpb"
)

// ErrInvalidModel is wrapped by every error about a model file that cannot
// be parsed or run (corrupt bytes, unsupported ops, missing inputs).
var ErrInvalidModel = errors.New("invalid model")

// UnsupportedOpError reports a graph node whose operator the interpreter
// does not implement.
type UnsupportedOpError struct {
	Op, Domain, Node string
}

func (e *UnsupportedOpError) Error() string {
	op := e.Op
	if e.Domain != "" && e.Domain != "ai.onnx" {
		op = e.Domain + "." + op
	}
	return fmt.Sprintf("native: unsupported ONNX op %q (node %q); supported: %s", op, e.Node, supportedList())
}

// Is makes errors.Is(err, ErrInvalidModel) hold for unsupported ops too.
func (e *UnsupportedOpError) Is(target error) bool { return target == ErrInvalidModel }

// Backend runs one loaded model. It holds no mutable state after New
// returns, so Run is safe for concurrent use.
type Backend struct {
	g   *graph
	sig runtime.Signature
}

var _ runtime.Backend = (*Backend)(nil)

// Open reads and loads the ONNX model at path.
func Open(path string) (*Backend, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("native: read model: %w", err)
	}
	return load(filepath.Base(path), b)
}

// New loads an ONNX model from its serialized bytes.
func New(model []byte) (*Backend, error) {
	return load("model", model)
}

// NewFromProto compiles a model already parsed and whose signature was read
// when its bundle loaded (models.Bundle), so the file is parsed once.
func NewFromProto(m *onnxpb.ModelProto, sig runtime.Signature) (_ *Backend, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &modelError{fmt.Errorf("native: model is not a valid ONNX model: %v", r)}
		}
	}()
	return fromProto("model", m, sig)
}

// modelError carries a complete message and wraps ErrInvalidModel without
// repeating its text.
type modelError struct{ err error }

func (e *modelError) Error() string   { return e.err.Error() }
func (e *modelError) Unwrap() []error { return []error{ErrInvalidModel, e.err} }

func load(name string, data []byte) (_ *Backend, err error) {
	invalid := func(err error) error {
		return &modelError{fmt.Errorf("native: %s is not a valid ONNX model: %w", name, err)}
	}
	// A model file is input: whatever inconsistency in it trips a check
	// nobody thought of must come back as an error, not crash the caller.
	defer func() {
		if r := recover(); r != nil {
			err = invalid(fmt.Errorf("%v", r))
		}
	}()
	if len(data) == 0 {
		return nil, invalid(errors.New("empty file"))
	}
	m, err := runtime.ParseModel(data)
	if err != nil {
		return nil, invalid(err)
	}
	sig, err := runtime.SignatureOf(m.GetGraph())
	if err != nil {
		return nil, invalid(err)
	}
	return fromProto(name, m, sig)
}

func fromProto(name string, m *onnxpb.ModelProto, sig runtime.Signature) (*Backend, error) {
	invalid := func(err error) error {
		return &modelError{fmt.Errorf("native: %s is not a valid ONNX model: %w", name, err)}
	}
	if m.GetGraph() == nil || len(m.GetGraph().GetNode()) == 0 {
		return nil, invalid(errors.New("no graph nodes"))
	}
	opset := int64(0)
	for _, o := range m.GetOpsetImport() {
		if d := o.GetDomain(); d == "" || d == "ai.onnx" {
			opset = o.GetVersion()
		}
	}
	if opset == 0 {
		return nil, invalid(errors.New("no default-domain opset import"))
	}
	g, err := compile(m.GetGraph(), opset, sig.InputNames(), sig.OutputNames())
	if err != nil {
		var uo *UnsupportedOpError
		if errors.As(err, &uo) {
			return nil, err
		}
		return nil, &modelError{fmt.Errorf("native: %s: %w", name, err)}
	}
	return &Backend{g: g, sig: sig}, nil
}

// Name reports "native".
func (b *Backend) Name() string { return "native" }

// Signature reports the model's contract.
func (b *Backend) Signature() runtime.Signature { return b.sig }

// Close releases nothing: the model lives on the Go heap.
func (b *Backend) Close() error { return nil }

// Run executes the graph on one batch.
func (b *Backend) Run(ctx context.Context, in runtime.Input) (runtime.Output, error) {
	if err := in.Validate(b.sig); err != nil {
		return runtime.Output{}, err
	}
	state := in.StateOrZeros(b.sig)
	inputs := []*tensor{
		intTensor([]int{in.Batch, in.Seq}, in.IDs),
		intTensor([]int{in.Batch}, in.Lengths),
	}
	for k, st := range b.sig.States {
		inputs = append(inputs, floatTensor(ints(st.Shape(in.Batch)), state[k]))
	}
	outs, err := b.g.run(ctx, inputs)
	if err != nil {
		return runtime.Output{}, err
	}
	want := []int{in.Batch * 2}
	for _, st := range b.sig.States {
		want = append(want, st.RowSize()*in.Batch)
	}
	for _, e := range b.sig.Extras {
		want = append(want, e.Width*in.Batch)
	}
	res := make([][]float32, len(outs))
	for k, t := range outs {
		if t.dt != float32T || t.size() != want[k] {
			return runtime.Output{}, fmt.Errorf("native: output %q is %s %v, want %d float32 values",
				b.g.outNames[k], t.dt, t.shape, want[k])
		}
		// Copy: an output may alias a weight or another output.
		res[k] = append([]float32(nil), t.f...)
	}
	ns := len(b.sig.States)
	return runtime.Output{Probs: res[0], State: res[1 : 1+ns], Extras: res[1+ns:]}, nil
}

func ints(d []int64) []int {
	out := make([]int, len(d))
	for i, v := range d {
		out[i] = int(v)
	}
	return out
}
