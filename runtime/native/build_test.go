package native

import (
	"math/rand/v2"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/callwatch/callwatch/runtime/onnxpb"
)

// Contract names the hand-built test graphs use.
const (
	inIDs     = "input_ids"
	inLengths = "lengths"
	inH0      = "h0"
	inC0      = "c0"
	outProbs  = "probs"
	outHN     = "hn"
	outCN     = "cn"
)

// Helpers that build ONNX models by hand, so that kernels can be checked
// against values computed independently of any exporter.

func node(op, name string, in, out []string, attrs ...*onnxpb.AttributeProto) *onnxpb.NodeProto {
	return &onnxpb.NodeProto{OpType: proto.String(op), Name: proto.String(name), Input: in, Output: out, Attribute: attrs}
}

func aInt(name string, v int64) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), I: proto.Int64(v), Type: onnxpb.AttributeProto_INT.Enum()}
}

func aFloat(name string, v float32) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), F: proto.Float32(v), Type: onnxpb.AttributeProto_FLOAT.Enum()}
}

func aInts(name string, v ...int64) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Ints: v, Type: onnxpb.AttributeProto_INTS.Enum()}
}

func aString(name, v string) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), S: []byte(v), Type: onnxpb.AttributeProto_STRING.Enum()}
}

func aStrings(name string, v ...string) *onnxpb.AttributeProto {
	b := make([][]byte, len(v))
	for k := range v {
		b[k] = []byte(v[k])
	}
	return &onnxpb.AttributeProto{Name: proto.String(name), Strings: b, Type: onnxpb.AttributeProto_STRINGS.Enum()}
}

func dims64(shape []int) []int64 {
	d := make([]int64, len(shape))
	for k, v := range shape {
		d[k] = int64(v)
	}
	return d
}

func floatInit(name string, shape []int, v []float32) *onnxpb.TensorProto {
	return &onnxpb.TensorProto{Name: proto.String(name), Dims: dims64(shape),
		DataType: proto.Int32(int32(onnxpb.TensorProto_FLOAT)), FloatData: v}
}

func intInit(name string, shape []int, v []int64) *onnxpb.TensorProto {
	return &onnxpb.TensorProto{Name: proto.String(name), Dims: dims64(shape),
		DataType: proto.Int32(int32(onnxpb.TensorProto_INT64)), Int64Data: v}
}

func valueInfo(name string, et onnxpb.TensorProto_DataType, dims ...any) *onnxpb.ValueInfoProto {
	var ds []*onnxpb.TensorShapeProto_Dimension
	for _, d := range dims {
		switch d := d.(type) {
		case int:
			ds = append(ds, &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: int64(d)}})
		case string:
			ds = append(ds, &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: d}})
		}
	}
	return &onnxpb.ValueInfoProto{Name: proto.String(name), Type: &onnxpb.TypeProto{
		Value: &onnxpb.TypeProto_TensorType{TensorType: &onnxpb.TypeProto_Tensor{
			ElemType: proto.Int32(int32(et)), Shape: &onnxpb.TensorShapeProto{Dim: ds}}}}}
}

// contractIO returns the standard graph inputs and outputs.
func contractIO(layers, hidden int) (in, out []*onnxpb.ValueInfoProto) {
	in = []*onnxpb.ValueInfoProto{
		valueInfo(inIDs, onnxpb.TensorProto_INT64, "batch", "seq"),
		valueInfo(inLengths, onnxpb.TensorProto_INT64, "batch"),
		valueInfo(inH0, onnxpb.TensorProto_FLOAT, layers, "batch", hidden),
		valueInfo(inC0, onnxpb.TensorProto_FLOAT, layers, "batch", hidden),
	}
	out = []*onnxpb.ValueInfoProto{
		valueInfo(outProbs, onnxpb.TensorProto_FLOAT, "batch", 2),
		valueInfo(outHN, onnxpb.TensorProto_FLOAT, layers, "batch", hidden),
		valueInfo(outCN, onnxpb.TensorProto_FLOAT, layers, "batch", hidden),
	}
	return in, out
}

func marshalModel(t testing.TB, g *onnxpb.GraphProto) []byte {
	t.Helper()
	m := &onnxpb.ModelProto{
		IrVersion:   proto.Int64(8),
		OpsetImport: []*onnxpb.OperatorSetIdProto{{Domain: proto.String(""), Version: proto.Int64(17)}},
		Graph:       g,
	}
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// lstmWeights are one layer's weights in ONNX layout (gates i, o, f, c).
type lstmWeights struct {
	W, R, B []float32 // [4H*E], [4H*H], [8H]
}

// exportLikeGraph builds the graph PyTorch's exporter emits for the
// project's model (embedding → LSTM per layer with sequence_lens → head on
// the top layer's final h → softmax), with anonymous initializer names.
func exportLikeGraph(emb []float32, V, E, H int, layers []lstmWeights, headW, headB []float32) *onnxpb.GraphProto {
	L := len(layers)
	in, out := contractIO(L, H)
	g := &onnxpb.GraphProto{Name: proto.String("main_graph"), Input: in, Output: out}
	g.Initializer = append(g.Initializer,
		floatInit("embed.weight", []int{V, E}, emb),
		floatInit("head.weight", []int{2, H}, headW),
		floatInit("head.bias", []int{2}, headB))
	g.Node = append(g.Node,
		node("Cast", "/Cast", []string{inLengths}, []string{"lens32"}, aInt("to", int64(onnxpb.TensorProto_INT32))),
		node("Gather", "/embed/Gather", []string{"embed.weight", inIDs}, []string{"emb"}),
		node("Transpose", "/lstm/Transpose", []string{"emb"}, []string{"x0"}, aInts("perm", 1, 0, 2)))
	x := "x0"
	var hs, cs []string
	for l, w := range layers {
		p := func(s string) string { return "/lstm/" + s + "_" + string(rune('a'+l)) }
		wn, rn, bn := p("onnx::LSTM_W"), p("onnx::LSTM_R"), p("onnx::LSTM_B")
		g.Initializer = append(g.Initializer,
			floatInit(wn, []int{1, 4 * H, E}, w.W),
			floatInit(rn, []int{1, 4 * H, H}, w.R),
			floatInit(bn, []int{1, 8 * H}, w.B),
			intInit(p("start"), []int{1}, []int64{int64(l)}),
			intInit(p("end"), []int{1}, []int64{int64(l + 1)}),
			intInit(p("axis"), []int{1}, []int64{0}),
			intInit(p("sq"), []int{1}, []int64{1}))
		g.Node = append(g.Node,
			node("Slice", p("SliceH"), []string{inH0, p("start"), p("end"), p("axis")}, []string{p("h")}),
			node("Slice", p("SliceC"), []string{inC0, p("start"), p("end"), p("axis")}, []string{p("c")}),
			node("LSTM", p("LSTM"), []string{x, wn, rn, bn, "lens32", p("h"), p("c")},
				[]string{p("Y"), p("Yh"), p("Yc")}, aInt("hidden_size", int64(H))),
			node("Squeeze", p("Squeeze"), []string{p("Y"), p("sq")}, []string{p("y")}))
		x = p("y")
		hs, cs = append(hs, p("Yh")), append(cs, p("Yc"))
		E = H
	}
	g.Initializer = append(g.Initializer, intInit("last", []int{}, []int64{-1}))
	g.Node = append(g.Node,
		node("Concat", "/ConcatH", hs, []string{outHN}, aInt("axis", 0)),
		node("Concat", "/ConcatC", cs, []string{outCN}, aInt("axis", 0)),
		node("Gather", "/Gather", []string{outHN, "last"}, []string{"top"}, aInt("axis", 0)),
		node("Gemm", "/head/Gemm", []string{"top", "head.weight", "head.bias"}, []string{"logits"},
			aFloat("alpha", 1), aFloat("beta", 1), aInt("transB", 1)),
		node("Softmax", "/Softmax", []string{"logits"}, []string{outProbs}, aInt("axis", 1)))
	return g
}

func randFloats(r *rand.Rand, n int, scale float32) []float32 {
	v := make([]float32, n)
	for k := range v {
		v[k] = (r.Float32()*2 - 1) * scale
	}
	return v
}

// randomModel builds an export-like model with random weights.
func randomModel(t testing.TB, seed uint64, V, E, H, L int) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	layers := make([]lstmWeights, L)
	in := E
	for l := range layers {
		layers[l] = lstmWeights{W: randFloats(r, 4*H*in, 0.3), R: randFloats(r, 4*H*H, 0.3), B: randFloats(r, 8*H, 0.1)}
		in = H
	}
	return marshalModel(t, exportLikeGraph(randFloats(r, V*E, 1), V, E, H, layers, randFloats(r, 2*H, 1), randFloats(r, 2, 0.1)))
}
