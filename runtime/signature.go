package runtime

import (
	"errors"
	"fmt"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/callwatch/callwatch/runtime/onnxpb"
)

// The contract's fixed names. Everything else (state tensors, extra outputs)
// is read from the graph, so growing the contract touches this file and the
// exporter only.
const (
	InputIDs     = "input_ids"
	InputLengths = "lengths"
	OutputProbs  = "probs"
	// OutputFamily is the optional scenario-family head: [batch, families].
	OutputFamily = "family_probs"
)

// StateSpec is one recurrent state tensor: fed as In (e.g. "h0"), returned as
// Out ("hn"). Dims are the declared dimensions with the batch axis set to -1.
// All zeros is a fresh call.
type StateSpec struct {
	In, Out   string
	Dims      []int
	BatchAxis int
}

// Outer is the product of the dimensions before the batch axis, Inner of those
// after it: a row's values are Outer runs of Inner contiguous floats.
func (s StateSpec) Outer() int { return prod(s.Dims[:s.BatchAxis]) }

// Inner is the product of the dimensions after the batch axis.
func (s StateSpec) Inner() int { return prod(s.Dims[s.BatchAxis+1:]) }

// RowSize is how many values one row (one call) holds.
func (s StateSpec) RowSize() int { return s.Outer() * s.Inner() }

// Shape returns the tensor shape for a batch.
func (s StateSpec) Shape(batch int) []int64 {
	out := make([]int64, len(s.Dims))
	for i, d := range s.Dims {
		out[i] = int64(d)
	}
	out[s.BatchAxis] = int64(batch)
	return out
}

// GatherRow copies row r of a batch tensor (batch rows) into dst (RowSize).
func (s StateSpec) GatherRow(dst, batchData []float32, batch, r int) {
	in := s.Inner()
	for o := range s.Outer() {
		copy(dst[o*in:(o+1)*in], batchData[(o*batch+r)*in:(o*batch+r+1)*in])
	}
}

// ScatterRow copies src (RowSize) into row r of a batch tensor.
func (s StateSpec) ScatterRow(batchData, src []float32, batch, r int) {
	in := s.Inner()
	for o := range s.Outer() {
		copy(batchData[(o*batch+r)*in:(o*batch+r+1)*in], src[o*in:(o+1)*in])
	}
}

// OutputSpec is an extra float output of shape [batch, Width].
type OutputSpec struct {
	Name  string
	Width int
}

// Signature is a model's ONNX contract, read once from the graph and handed
// to both backends:
//
//	inputs:  input_ids int64 [batch, seq] right-padded; lengths int64 [batch];
//	         one float32 input per state tensor (h0, c0 [layers, batch, hidden];
//	         newer models also p0 [batch, P], a pooled running summary)
//	outputs: probs float32 [batch, 2] (normal, phishing) at each row's last
//	         real token; one output per state tensor (hn, cn, pn); optional
//	         extras such as family_probs [batch, families]
//
// A state input is paired with its output by name: X0 → Xn.
type Signature struct {
	States []StateSpec
	Extras []OutputSpec
}

// InputNames lists the graph inputs in the order backends feed them.
func (s Signature) InputNames() []string {
	names := []string{InputIDs, InputLengths}
	for _, st := range s.States {
		names = append(names, st.In)
	}
	return names
}

// OutputNames lists the graph outputs in the order backends return them:
// probs, the states, the extras.
func (s Signature) OutputNames() []string {
	names := []string{OutputProbs}
	for _, st := range s.States {
		names = append(names, st.Out)
	}
	for _, e := range s.Extras {
		names = append(names, e.Name)
	}
	return names
}

// State returns the spec of the state tensor fed as in, if any.
func (s Signature) State(in string) (StateSpec, bool) {
	for _, st := range s.States {
		if st.In == in {
			return st, true
		}
	}
	return StateSpec{}, false
}

// Extra returns the width of the extra output named name (0 when absent).
func (s Signature) Extra(name string) int {
	for _, e := range s.Extras {
		if e.Name == name {
			return e.Width
		}
	}
	return 0
}

// LSTMShape reports layers and hidden size from h0 (zero when absent).
func (s Signature) LSTMShape() Shape {
	if st, ok := s.State("h0"); ok && len(st.Dims) == 3 {
		return Shape{Layers: st.Dims[0], Hidden: st.Dims[2]}
	}
	return Shape{}
}

// ZeroState returns one row's zero state: a fresh call.
func (s Signature) ZeroState() [][]float32 {
	out := make([][]float32, len(s.States))
	for i, st := range s.States {
		out[i] = make([]float32, st.RowSize())
	}
	return out
}

// ErrSignature is wrapped by errors about a graph that does not follow the
// contract.
var ErrSignature = errors.New("model does not follow the callwatch ONNX signature")

// SignatureError says what is wrong with the graph's inputs or outputs.
type SignatureError struct{ Problem string }

func (e *SignatureError) Error() string { return ErrSignature.Error() + ": " + e.Problem }
func (e *SignatureError) Unwrap() error { return ErrSignature }

// ParseModel unmarshals an ONNX model.
func ParseModel(data []byte) (*onnxpb.ModelProto, error) {
	if len(data) == 0 {
		return nil, errors.New("empty file")
	}
	var m onnxpb.ModelProto
	if err := proto.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("not an ONNX model: %w", err)
	}
	if m.GetGraph() == nil {
		return nil, errors.New("not an ONNX model: no graph")
	}
	return &m, nil
}

// ReadSignature parses model bytes and reads their signature.
func ReadSignature(data []byte) (Signature, error) {
	m, err := ParseModel(data)
	if err != nil {
		return Signature{}, err
	}
	return SignatureOf(m.GetGraph())
}

// SignatureOf reads the contract from a graph's declared inputs and outputs
// (inputs that are also initializers are weights, not inputs).
func SignatureOf(g *onnxpb.GraphProto) (Signature, error) {
	var sig Signature
	bad := func(format string, a ...any) (Signature, error) {
		return Signature{}, &SignatureError{Problem: fmt.Sprintf(format, a...)}
	}
	inits := map[string]bool{}
	for _, t := range g.GetInitializer() {
		inits[t.GetName()] = true
	}
	outs := map[string]*onnxpb.ValueInfoProto{}
	var outOrder []string
	for _, vi := range g.GetOutput() {
		outs[vi.GetName()] = vi
		outOrder = append(outOrder, vi.GetName())
	}
	seen := map[string]bool{}
	for _, vi := range g.GetInput() {
		name := vi.GetName()
		if inits[name] {
			continue
		}
		seen[name] = true
		et, dims := typeOf(vi)
		switch {
		case name == InputIDs || name == InputLengths:
			if et != onnxpb.TensorProto_INT64 {
				return bad("input %q is %s, want int64", name, et)
			}
		case strings.HasSuffix(name, "0") && len(name) > 1:
			if et != onnxpb.TensorProto_FLOAT {
				return bad("state input %q is %s, want float32", name, et)
			}
			out := strings.TrimSuffix(name, "0") + "n"
			ovi, ok := outs[out]
			if !ok {
				return bad("state input %q has no matching output %q", name, out)
			}
			spec, err := stateSpec(name, out, dims)
			if err != nil {
				return bad("%v", err)
			}
			if oet, odims := typeOf(ovi); oet != onnxpb.TensorProto_FLOAT || !sameStatic(odims, dims) {
				return bad("state output %q is %s %v, want float32 like %q %v", out, oet, odims, name, dims)
			}
			sig.States = append(sig.States, spec)
		default:
			return bad("unexpected input %q (inputs are input_ids, lengths and state tensors named X0)", name)
		}
	}
	for _, n := range []string{InputIDs, InputLengths} {
		if !seen[n] {
			return bad("no input %q", n)
		}
	}
	if _, ok := sig.State("h0"); !ok {
		return bad("no LSTM state input h0")
	}
	if _, ok := sig.State("c0"); !ok {
		return bad("no LSTM state input c0")
	}
	if vi, ok := outs[OutputProbs]; !ok {
		return bad("no output %q", OutputProbs)
	} else if et, dims := typeOf(vi); et != onnxpb.TensorProto_FLOAT || dims != nil && (len(dims) != 2 || dims[1] > 0 && dims[1] != 2) {
		return bad("output %q is %s %v, want float32 [batch, 2]", OutputProbs, et, dims)
	}
	stateOut := map[string]bool{}
	for _, st := range sig.States {
		stateOut[st.Out] = true
	}
	for _, name := range outOrder {
		if name == OutputProbs || stateOut[name] {
			continue
		}
		et, dims := typeOf(outs[name])
		if et != onnxpb.TensorProto_FLOAT || len(dims) != 2 || dims[1] <= 0 {
			return bad("extra output %q is %s %v, want float32 [batch, K] with a static K", name, et, dims)
		}
		sig.Extras = append(sig.Extras, OutputSpec{Name: name, Width: dims[1]})
	}
	return sig, nil
}

// stateSpec finds the batch axis: the one symbolic dimension. Every other
// dimension must be static, since a call's state has a fixed size.
func stateSpec(in, out string, dims []int) (StateSpec, error) {
	axis := -1
	for i, d := range dims {
		if d > 0 {
			continue
		}
		if axis >= 0 {
			return StateSpec{}, fmt.Errorf("state input %q has shape %v: want exactly one symbolic (batch) dimension", in, dims)
		}
		axis = i
	}
	if axis < 0 {
		// A trace can bake batch 1 into the declared shape; the LSTM state's
		// batch axis is 1 by the ONNX LSTM definition, a pooled state's 0.
		switch {
		case len(dims) == 3:
			axis = 1
		case len(dims) == 2:
			axis = 0
		default:
			return StateSpec{}, fmt.Errorf("state input %q has shape %v: cannot tell its batch axis", in, dims)
		}
	}
	if len(dims) < 2 {
		return StateSpec{}, fmt.Errorf("state input %q has rank %d, want at least 2 ([batch, size] or [layers, batch, hidden])", in, len(dims))
	}
	d := append([]int(nil), dims...)
	d[axis] = -1
	if n := prod(d[:axis]) * prod(d[axis+1:]); n > 1<<22 {
		return StateSpec{}, fmt.Errorf("state input %q has %d values per call, more than the %d a call's state may hold", in, n, 1<<22)
	}
	return StateSpec{In: in, Out: out, Dims: d, BatchAxis: axis}, nil
}

func typeOf(vi *onnxpb.ValueInfoProto) (onnxpb.TensorProto_DataType, []int) {
	tt := vi.GetType().GetTensorType()
	if tt == nil {
		return onnxpb.TensorProto_UNDEFINED, nil
	}
	var dims []int
	if sh := tt.GetShape(); sh != nil {
		dims = make([]int, len(sh.GetDim()))
		for i, d := range sh.GetDim() {
			dims[i] = -1
			if _, ok := d.GetValue().(*onnxpb.TensorShapeProto_Dimension_DimValue); ok {
				dims[i] = int(d.GetDimValue())
			}
		}
	}
	return onnxpb.TensorProto_DataType(tt.GetElemType()), dims
}

// sameStatic reports whether two shapes agree wherever both are static.
func sameStatic(a, b []int) bool {
	if a == nil {
		return true // undeclared output shape: checked at run time
	}
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] > 0 && b[i] > 0 && a[i] != b[i] {
			return false
		}
	}
	return true
}

func prod(d []int) int {
	p := 1
	for _, v := range d {
		p *= v
	}
	return p
}
