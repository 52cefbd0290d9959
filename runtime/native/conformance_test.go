//go:build cgo && !noort

package native

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"sort"
	"testing"

	ortgo "github.com/yalue/onnxruntime_go"
	"google.golang.org/protobuf/proto"

	"github.com/callwatch/callwatch/runtime"
	"github.com/callwatch/callwatch/runtime/onnxpb"
	"github.com/callwatch/callwatch/runtime/ort"
)

// TestConformance holds the interpreter to onnxruntime op by op. Every op in
// builders runs on small generated single-node graphs in both runtimes, with
// its inputs fed at run time, with all but the first as initializers (the
// LSTM's prepacked-weights path) and with all as initializers (constant
// folding at load); the
// outputs must have the same types and shapes and agree to within 1e-5
// (relative above 1). Each output is read back through Shape and a flattening
// Reshape added to the graph, so that scalars survive onnxruntime_go, whose
// tensors need at least one dimension.
//
// The cases are TestOps's hand-computed ones plus conformanceCases below; a
// new op must come with a case here, or this test fails.
func TestConformance(t *testing.T) {
	if _, _, err := ort.Init(ort.Candidates("", os.Getenv)); err != nil {
		t.Fatalf("%v (run `make ort`; `-tags noort` builds skip this test)", err)
	}
	cases := opCases()
	for k := range cases {
		cases[k].want = nil // checked by TestOps; here onnxruntime is the reference
	}
	cases = append(cases, conformanceCases()...)
	covered := map[string]bool{}
	for _, tc := range cases {
		covered[tc.node.GetOpType()] = true
		for _, mode := range []struct {
			name      string
			constFrom int // inputs from this index on are initializers
		}{{"fed", len(tc.in)}, {"weights", 1}, {"folded", 0}} {
			if mode.name == "weights" && len(tc.in) < 2 {
				continue // the same graph as "fed"
			}
			t.Run(tc.name+"/"+mode.name, func(t *testing.T) {
				data, names, feeds, outs := conformanceModel(t, tc, mode.constFrom)
				got := runNative(t, data, tc.opset, names, feeds, outs)
				want := runORT(t, data, names, feeds, outs)
				for j := range outs {
					if err := sameTensor(got[j], want[j]); err != nil {
						t.Fatalf("output %s: %v\n native      %s\n onnxruntime %s", outs[j], err, got[j], want[j])
					}
				}
			})
		}
	}
	var missing []string
	for op := range builders {
		if !covered[op] {
			missing = append(missing, op)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("ops with no conformance case: %v", missing)
	}
}

// nodeOutputs is how many outputs a node of op names (1 unless listed).
var nodeOutputs = map[string]int{"TopK": 2, "LSTM": 3, "Dropout": 2}

// conformanceModel builds the one-node model for tc: inputs x0.. (scalars,
// and every input from constFrom on, as initializers; a graph with no fed input gets
// an unused one, since a run needs at least one), the node's outputs y0..,
// and per output yj the graph outputs yj_shape (Shape) and yj_flat (Reshape
// to [-1]). It returns the serialized model, the fed input names and
// tensors, and the graph outputs.
func conformanceModel(t *testing.T, tc opCase, constFrom int) ([]byte, []string, []*tensor, []string) {
	t.Helper()
	if tc.opset == 0 {
		tc.opset = 17
	}
	n := proto.Clone(tc.node).(*onnxpb.NodeProto)
	n.Input, n.Output = nil, nil
	g := &onnxpb.GraphProto{Name: proto.String("conformance")}
	var names []string
	var feeds []*tensor
	for k, x := range tc.in {
		if x == nil {
			n.Input = append(n.Input, "")
			continue
		}
		name := fmt.Sprintf("x%d", k)
		n.Input = append(n.Input, name)
		if k >= constFrom || len(x.shape) == 0 {
			g.Initializer = append(g.Initializer, tensorProto(name, x))
			continue
		}
		g.Input = append(g.Input, tensorInfo(name, x))
		names, feeds = append(names, name), append(feeds, x)
	}
	if len(feeds) == 0 {
		unused := ft([]int{1}, 0)
		g.Input = append(g.Input, tensorInfo("unused", unused))
		names, feeds = append(names, "unused"), append(feeds, unused)
	}
	g.Node = append(g.Node, n)
	g.Initializer = append(g.Initializer, tensorProto("flat", it([]int{1}, -1)))
	var outs []string
	for j := range max(1, nodeOutputs[tc.node.GetOpType()]) {
		y := fmt.Sprintf("y%d", j)
		n.Output = append(n.Output, y)
		g.Node = append(g.Node,
			&onnxpb.NodeProto{OpType: proto.String("Shape"), Name: proto.String(y + "_shape"), Input: []string{y}, Output: []string{y + "_shape"}},
			&onnxpb.NodeProto{OpType: proto.String("Reshape"), Name: proto.String(y + "_flat"), Input: []string{y, "flat"}, Output: []string{y + "_flat"}})
		for _, o := range []string{y + "_shape", y + "_flat"} {
			g.Output = append(g.Output, &onnxpb.ValueInfoProto{Name: proto.String(o)})
			outs = append(outs, o)
		}
	}
	m := &onnxpb.ModelProto{IrVersion: proto.Int64(8), Graph: g,
		OpsetImport: []*onnxpb.OperatorSetIdProto{{Domain: proto.String(""), Version: proto.Int64(tc.opset)}}}
	data, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return data, names, feeds, outs
}

func onnxType(dt dtype) onnxpb.TensorProto_DataType {
	switch dt {
	case float32T:
		return onnxpb.TensorProto_FLOAT
	case int32T:
		return onnxpb.TensorProto_INT32
	case boolT:
		return onnxpb.TensorProto_BOOL
	}
	return onnxpb.TensorProto_INT64
}

// tensorInfo declares a graph input of x's type and static shape.
func tensorInfo(name string, x *tensor) *onnxpb.ValueInfoProto {
	dims := make([]any, len(x.shape))
	for k, d := range x.shape {
		dims[k] = d
	}
	return valueInfo(name, onnxType(x.dt), dims...)
}

func tensorProto(name string, x *tensor) *onnxpb.TensorProto {
	p := &onnxpb.TensorProto{Name: proto.String(name), Dims: dims64(x.shape), DataType: proto.Int32(int32(onnxType(x.dt)))}
	switch x.dt {
	case float32T:
		p.FloatData = x.f
	case int64T:
		p.Int64Data = x.i
	default: // int32 and bool live in int32_data
		for _, v := range x.i {
			p.Int32Data = append(p.Int32Data, int32(v))
		}
	}
	return p
}

// runNative parses and compiles the model as Open does, and runs it.
func runNative(t *testing.T, data []byte, opset int64, names []string, feeds []*tensor, outs []string) []*tensor {
	t.Helper()
	if opset == 0 {
		opset = 17
	}
	m, err := runtime.ParseModel(data)
	if err != nil {
		t.Fatal(err)
	}
	g, err := compile(m.GetGraph(), opset, names, outs)
	if err != nil {
		t.Fatalf("native compile: %v", err)
	}
	res, err := g.run(context.Background(), feeds)
	if err != nil {
		t.Fatalf("native run: %v", err)
	}
	return res
}

// runORT runs the model on onnxruntime and converts its outputs.
func runORT(t *testing.T, data []byte, names []string, feeds []*tensor, outs []string) []*tensor {
	t.Helper()
	sess, err := ortgo.NewDynamicAdvancedSessionWithONNXData(data, names, outs, nil)
	if err != nil {
		t.Fatalf("onnxruntime session: %v", err)
	}
	defer sess.Destroy()
	ins := make([]ortgo.Value, len(feeds))
	for k, x := range feeds {
		v, err := toORT(x)
		if err != nil {
			t.Fatalf("input %s: %v", names[k], err)
		}
		defer v.Destroy()
		ins[k] = v
	}
	vals := make([]ortgo.Value, len(outs))
	if err := sess.Run(ins, vals); err != nil {
		t.Fatalf("onnxruntime run: %v", err)
	}
	res := make([]*tensor, len(outs))
	for j, v := range vals {
		defer v.Destroy()
		if res[j], err = fromORT(v); err != nil {
			t.Fatalf("output %s: %v", outs[j], err)
		}
	}
	return res
}

func toORT(x *tensor) (ortgo.Value, error) {
	shape := ortgo.NewShape(dims64(x.shape)...)
	switch x.dt {
	case float32T:
		return ortgo.NewTensor(shape, slices.Clone(x.f))
	case int32T:
		v := make([]int32, len(x.i))
		for k := range x.i {
			v[k] = int32(x.i[k])
		}
		return ortgo.NewTensor(shape, v)
	case boolT:
		v := make([]bool, len(x.i))
		for k := range x.i {
			v[k] = x.i[k] != 0
		}
		return ortgo.NewTensor(shape, v)
	}
	return ortgo.NewTensor(shape, slices.Clone(x.i))
}

func fromORT(v ortgo.Value) (*tensor, error) {
	var shape []int
	for _, d := range v.GetShape() {
		shape = append(shape, int(d))
	}
	switch v := v.(type) {
	case *ortgo.Tensor[float32]:
		return floatTensor(shape, slices.Clone(v.GetData())), nil
	case *ortgo.Tensor[int64]:
		return intTensor(shape, slices.Clone(v.GetData())), nil
	case *ortgo.Tensor[int32]:
		t := &tensor{dt: int32T, shape: shape}
		for _, x := range v.GetData() {
			t.i = append(t.i, int64(x))
		}
		return t, nil
	case *ortgo.Tensor[bool]:
		t := &tensor{dt: boolT, shape: shape}
		for _, x := range v.GetData() {
			t.i = append(t.i, map[bool]int64{false: 0, true: 1}[x])
		}
		return t, nil
	}
	return nil, fmt.Errorf("unexpected onnxruntime value %T", v)
}

// sameTensor compares a native output with onnxruntime's.
func sameTensor(got, want *tensor) error {
	if got.dt != want.dt || !slices.Equal(got.shape, want.shape) {
		return fmt.Errorf("native %s %v, onnxruntime %s %v", got.dt, got.shape, want.dt, want.shape)
	}
	if got.dt != float32T {
		if !slices.Equal(got.i, want.i) {
			return fmt.Errorf("values differ")
		}
		return nil
	}
	for k := range want.f {
		a, b := float64(got.f[k]), float64(want.f[k])
		if math.IsNaN(a) && math.IsNaN(b) || a == b {
			continue
		}
		if d := math.Abs(a - b); !(d <= 1e-5*max(1, math.Abs(b))) {
			return fmt.Errorf("value %d: %g vs %g", k, a, b)
		}
	}
	return nil
}

func (t *tensor) String() string {
	if t.dt == float32T {
		return fmt.Sprintf("%s %v %v", t.dt, t.shape, t.f[:min(len(t.f), 24)])
	}
	return fmt.Sprintf("%s %v %v", t.dt, t.shape, t.i[:min(len(t.i), 24)])
}

// conformanceCases adds, to TestOps's cases, the ops those do not run and
// larger random inputs for the ops the exporter emits.
func conformanceCases() []opCase {
	r := rand.New(rand.NewPCG(14, 2))
	rf := func(lo, hi float32, shape ...int) *tensor {
		x := newTensor(float32T, shape)
		for k := range x.f {
			x.f[k] = lo + (hi-lo)*r.Float32()
		}
		return x
	}
	ri := func(lo, hi int64, shape ...int) *tensor {
		x := newTensor(int64T, shape)
		for k := range x.i {
			x.i[k] = lo + r.Int64N(hi-lo)
		}
		return x
	}
	rb := func(shape ...int) *tensor {
		x := newTensor(boolT, shape)
		for k := range x.i {
			x.i[k] = r.Int64N(2)
		}
		return x
	}
	un := func(op string, x *tensor) opCase {
		return opCase{name: op + " " + x.dt.String(), node: node(op, "n", nil, nil), in: []*tensor{x}}
	}
	bin := func(op string, a, b *tensor) opCase {
		return opCase{name: fmt.Sprintf("%s %s %v %v", op, a.dt, a.shape, b.shape), node: node(op, "n", nil, nil), in: []*tensor{a, b}}
	}
	ties := ft([]int{2, 3}, 1, 2, 3, 4, 5, 6)
	cases := []opCase{
		un("Abs", rf(-5, 5, 2, 3)), un("Abs", ri(-9, 9, 4)),
		un("Neg", rf(-5, 5, 2, 3)), un("Neg", ri(-9, 9, 4)),
		un("Exp", rf(-20, 20, 3, 5)), un("Log", rf(0.01, 50, 3, 5)),
		un("Sqrt", rf(0, 50, 3, 5)), un("Reciprocal", rf(0.1, 9, 3, 5)),
		un("Sigmoid", rf(-30, 30, 4, 16)), un("Tanh", rf(-15, 15, 4, 16)),
		un("Relu", rf(-3, 3, 4, 5)), // onnxruntime's CPU provider has no int64 Relu
		un("Identity", ri(-9, 9, 2, 2)),
		bin("Add", rf(-5, 5, 2, 3, 4), rf(-5, 5, 3, 1)), bin("Add", ri(-9, 9, 3), ri(-9, 9, 1)),
		bin("Sub", rf(-5, 5, 4, 1), rf(-5, 5, 1, 3)),
		bin("Mul", rf(-5, 5, 2, 3), rf(-5, 5, 2, 3)), bin("Mul", ri(-9, 9, 2, 2), ri(-9, 9, 2)),
		bin("Div", rf(-5, 5, 3, 4), rf(0.5, 3, 4)), bin("Div", ri(-50, 50, 6), ri(1, 7, 6)),
		bin("Max", rf(-5, 5, 3, 4), rf(-5, 5, 4)), bin("Min", rf(-5, 5, 3, 1), rf(-5, 5, 1, 4)),
		bin("Equal", ties, ft([]int{3}, 1, 5, 3)), bin("Equal", ri(0, 3, 6), ri(0, 3, 6)),
		bin("Less", rf(-1, 1, 3, 4), rf(-1, 1, 4)), bin("Less", ri(0, 4, 5), ri(0, 4, 5)),
		bin("LessOrEqual", ties, ft([]int{3}, 1, 5, 3)), bin("LessOrEqual", ri(0, 4, 5), ri(0, 4, 5)),
		bin("Greater", ties, ft([]int{3}, 1, 5, 3)), bin("Greater", ri(0, 4, 5), ri(0, 4, 5)),
		bin("GreaterOrEqual", ties, ft([]int{3}, 1, 5, 3)), bin("GreaterOrEqual", ri(0, 4, 5), ri(0, 4, 5)),
		bin("And", rb(2, 4), rb(4)), bin("Or", rb(2, 4), rb(2, 1)), un("Not", rb(3, 3)),
		{name: "Where broadcast", node: node("Where", "n", nil, nil), in: []*tensor{rb(3, 1), rf(-1, 1, 1, 4), rf(-1, 1, 3, 4)}},
		{name: "Where int64", node: node("Where", "n", nil, nil), in: []*tensor{rb(5), ri(0, 9, 5), ri(0, 9, 1)}},
		{name: "Clip random", node: node("Clip", "n", nil, nil), in: []*tensor{rf(-3, 3, 4, 5), ft(nil, -1), ft(nil, 1.5)}},
		{name: "Clip no bounds", node: node("Clip", "n", nil, nil), in: []*tensor{rf(-3, 3, 4)}},
		{name: "Dropout inference", node: node("Dropout", "n", nil, nil), in: []*tensor{rf(-1, 1, 3, 4)}},
		{name: "Softmax random axis 1", node: node("Softmax", "n", nil, nil, aInt("axis", 1)), in: []*tensor{rf(-20, 20, 2, 5, 3)}},
		{name: "LogSoftmax last axis", node: node("LogSoftmax", "n", nil, nil, aInt("axis", -1)), in: []*tensor{rf(-20, 20, 3, 6)}},
		{name: "LogSoftmax axis 0", node: node("LogSoftmax", "n", nil, nil, aInt("axis", 0)), in: []*tensor{rf(-5, 5, 4, 2)}},
		{name: "Gemm random transA transB", node: node("Gemm", "n", nil, nil, aInt("transA", 1), aInt("transB", 1), aFloat("alpha", 0.5), aFloat("beta", 2)),
			in: []*tensor{rf(-1, 1, 7, 3), rf(-1, 1, 5, 7), rf(-1, 1, 1, 5)}},
		{name: "Gemm random no C", node: node("Gemm", "n", nil, nil), in: []*tensor{rf(-1, 1, 4, 9), rf(-1, 1, 9, 6)}},
		{name: "MatMul random 3-D by 2-D", node: node("MatMul", "n", nil, nil), in: []*tensor{rf(-1, 1, 2, 5, 7), rf(-1, 1, 7, 3)}},
		{name: "MatMul random batched", node: node("MatMul", "n", nil, nil), in: []*tensor{rf(-1, 1, 2, 1, 3, 4), rf(-1, 1, 3, 4, 2)}},
		{name: "Gather embedding", node: node("Gather", "n", nil, nil), in: []*tensor{rf(-1, 1, 10, 4), ri(0, 10, 2, 3)}},
		{name: "Gather axis 1 negative", node: node("Gather", "n", nil, nil, aInt("axis", 1)), in: []*tensor{rf(-1, 1, 3, 5, 2), ri(-5, 5, 4)}},
		{name: "GatherElements axis 0", node: node("GatherElements", "n", nil, nil, aInt("axis", 0)), in: []*tensor{rf(-1, 1, 3, 4), ri(-3, 3, 2, 4)}},
		{name: "ScatterElements axis 1", node: node("ScatterElements", "n", nil, nil, aInt("axis", 1)),
			in: []*tensor{rf(-1, 1, 2, 5), it([]int{2, 2}, 4, 0, 1, -1), rf(-1, 1, 2, 2)}},
		{name: "Transpose 3-D", node: node("Transpose", "n", nil, nil, aInts("perm", 2, 0, 1)), in: []*tensor{rf(-1, 1, 2, 3, 4)}},
		{name: "Shape end", node: node("Shape", "n", nil, nil, aInt("end", -1)), opset: 15, in: []*tensor{rf(0, 1, 2, 3, 4)}},
		{name: "Shape whole", node: node("Shape", "n", nil, nil), in: []*tensor{ri(0, 1, 5, 1)}},
		{name: "Size", node: node("Size", "n", nil, nil), in: []*tensor{rf(0, 1, 3, 4)}},
		{name: "Slice step 2", node: node("Slice", "n", nil, nil), in: []*tensor{rf(-1, 1, 4, 7), it([]int{1}, 1), it([]int{1}, 7), it([]int{1}, 1), it([]int{1}, 2)}},
		{name: "Slice int64 prefix", node: node("Slice", "n", nil, nil), in: []*tensor{it([]int{4}, 2, 3, 5, 7), it([]int{1}, 0), it([]int{1}, 2)}},
		{name: "Concat int64 shapes", node: node("Concat", "n", nil, nil, aInt("axis", 0)), in: []*tensor{it([]int{1}, -1), it([]int{2}, 3, 4), it([]int{1}, 5)}},
		{name: "Concat float axis -1", node: node("Concat", "n", nil, nil, aInt("axis", -1)), in: []*tensor{rf(-1, 1, 2, 2, 1), rf(-1, 1, 2, 2, 3)}},
		{name: "Reshape -1", node: node("Reshape", "n", nil, nil), in: []*tensor{rf(-1, 1, 2, 3, 4), it([]int{2}, -1, 4)}},
		{name: "Flatten axis 0", node: node("Flatten", "n", nil, nil, aInt("axis", 0)), in: []*tensor{rf(-1, 1, 2, 3)}},
		{name: "Flatten axis 2", node: node("Flatten", "n", nil, nil, aInt("axis", 2)), in: []*tensor{rf(-1, 1, 2, 3, 4)}},
		{name: "Unsqueeze two axes", node: node("Unsqueeze", "n", nil, nil), in: []*tensor{rf(-1, 1, 3), it([]int{2}, 0, 2)}},
		{name: "Squeeze middle", node: node("Squeeze", "n", nil, nil), in: []*tensor{rf(-1, 1, 3, 1, 2), it([]int{1}, 1)}},
		{name: "Cast float to int64", node: node("Cast", "n", nil, nil, aInt("to", int64(onnxpb.TensorProto_INT64))), in: []*tensor{rf(-9, 9, 6)}},
		{name: "Cast int64 to bool", node: node("Cast", "n", nil, nil, aInt("to", int64(onnxpb.TensorProto_BOOL))), in: []*tensor{ri(-2, 3, 6)}},
		{name: "Cast bool to float", node: node("Cast", "n", nil, nil, aInt("to", int64(onnxpb.TensorProto_FLOAT))), in: []*tensor{rb(6)}},
		{name: "Cast int64 to int32", node: node("Cast", "n", nil, nil, aInt("to", int64(onnxpb.TensorProto_INT32))), in: []*tensor{ri(-99, 99, 6)}},
		{name: "Constant tensor", node: node("Constant", "n", nil, nil, &onnxpb.AttributeProto{Name: strp("value"), Type: onnxpb.AttributeProto_TENSOR.Enum(),
			T: floatInit("", []int{2, 2}, []float32{1, -2, 3.5, 0})})},
		{name: "Constant value_float", node: node("Constant", "n", nil, nil, aFloat("value_float", 2.5))},
		{name: "ConstantOfShape float", node: node("ConstantOfShape", "n", nil, nil, &onnxpb.AttributeProto{Name: strp("value"), Type: onnxpb.AttributeProto_TENSOR.Enum(),
			T: floatInit("", []int{1}, []float32{-1.5})}), in: []*tensor{it([]int{3}, 2, 1, 3)}},
		{name: "Expand random", node: node("Expand", "n", nil, nil), in: []*tensor{rf(-1, 1, 3, 1), it([]int{3}, 2, 1, 4)}},
		{name: "Range int64 negative step", node: node("Range", "n", nil, nil), in: []*tensor{it(nil, 10), it(nil, -3), it(nil, -4)}},
		{name: "TopK float largest", node: node("TopK", "n", nil, nil, aInt("axis", 1)), in: []*tensor{rf(-1, 1, 3, 6), it([]int{1}, 3)}},
		{name: "TopK float smallest axis 0", node: node("TopK", "n", nil, nil, aInt("axis", 0), aInt("largest", 0)), in: []*tensor{rf(-1, 1, 5, 2), it([]int{1}, 2)}},
		{name: "ReduceSum keepdims 0", node: node("ReduceSum", "n", nil, nil, aInt("keepdims", 0)), in: []*tensor{rf(-1, 1, 3, 4, 2), it([]int{2}, 0, -1)}},
		{name: "ReduceSum all", node: node("ReduceSum", "n", nil, nil), in: []*tensor{rf(-1, 1, 3, 4)}},
		{name: "ReduceMax axis", node: node("ReduceMax", "n", nil, nil, aInts("axes", 1)), in: []*tensor{rf(-1, 1, 3, 4, 2)}},
		{name: "ReduceMax int64 all", node: node("ReduceMax", "n", nil, nil, aInt("keepdims", 0)), in: []*tensor{ri(-50, 50, 3, 4)}},
		{name: "ReduceMin axes", node: node("ReduceMin", "n", nil, nil, aInts("axes", 0, 2), aInt("keepdims", 0)), in: []*tensor{rf(-1, 1, 3, 4, 2)}},
		{name: "ReduceMean axis -1", node: node("ReduceMean", "n", nil, nil, aInts("axes", -1)), in: []*tensor{rf(-1, 1, 3, 5)}},
		{name: "ReduceProd float", node: node("ReduceProd", "n", nil, nil, aInts("axes", 1)), in: []*tensor{rf(0.5, 1.5, 3, 4)}},
	}
	// LSTM, as the exporter emits it (forward, one layer, B, sequence_lens,
	// initial states; every step's Y read here), and with X, W and R only.
	const seq, batch, in, hid = 6, 4, 5, 3
	lstm := func(name string, inputs ...*tensor) opCase {
		return opCase{name: name, node: node("LSTM", "n", nil, nil, aInt("hidden_size", hid)), in: inputs}
	}
	lens := &tensor{dt: int32T, shape: []int{batch}, i: []int64{6, 2, 5, 1}}
	cases = append(cases,
		lstm("LSTM full", rf(-2, 2, seq, batch, in), rf(-0.8, 0.8, 1, 4*hid, in), rf(-0.8, 0.8, 1, 4*hid, hid), rf(-0.5, 0.5, 1, 8*hid),
			lens, rf(-1, 1, 1, batch, hid), rf(-3, 3, 1, batch, hid)),
		lstm("LSTM X W R", rf(-2, 2, seq, batch, in), rf(-0.8, 0.8, 1, 4*hid, in), rf(-0.8, 0.8, 1, 4*hid, hid)),
		lstm("LSTM sequence_lens only", rf(-2, 2, seq, batch, in), rf(-0.8, 0.8, 1, 4*hid, in), rf(-0.8, 0.8, 1, 4*hid, hid), nil, lens),
	)
	return cases
}
