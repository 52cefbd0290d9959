package native

import (
	"context"
	"math"
	"strings"
	"testing"

	"github.com/callwatch/callwatch/runtime/onnxpb"
)

func ft(shape []int, v ...float32) *tensor { return floatTensor(shape, v) }
func it(shape []int, v ...int64) *tensor   { return intTensor(shape, v) }

func runNode(n *onnxpb.NodeProto, opset int64, in ...*tensor) ([]*tensor, error) {
	k, err := builders[n.GetOpType()](n, opset)
	if err != nil {
		return nil, err
	}
	return k(context.Background(), in)
}

// opCase is one kernel run on small inputs, with the expected output worked
// out by hand. TestOps checks the values; TestConformance (conformance_test.go)
// runs the same cases, and more, through onnxruntime too.
type opCase struct {
	name  string
	node  *onnxpb.NodeProto
	opset int64 // 0 means 17, the exporter's
	in    []*tensor
	want  *tensor
	out   int // which output to check
}

func opCases() []opCase {
	x23 := ft([]int{2, 3}, 1, 2, 3, 4, 5, 6)
	return []opCase{
		{name: "Gemm transB alpha beta", node: node("Gemm", "g", nil, nil, aFloat("alpha", 2), aFloat("beta", 0.5), aInt("transB", 1)),
			in:   []*tensor{x23, ft([]int{2, 3}, 1, 0, 0, 0, 1, 1), ft([]int{2}, 10, 20)},
			want: ft([]int{2, 2}, 2*1+5, 2*5+10, 2*4+5, 2*11+10)},
		{name: "Gemm transA", node: node("Gemm", "g", nil, nil, aInt("transA", 1)),
			in:   []*tensor{ft([]int{2, 1}, 1, 2), ft([]int{2, 2}, 1, 2, 3, 4)},
			want: ft([]int{1, 2}, 7, 10)},
		{name: "Max broadcast", node: node("Max", "m", nil, nil),
			in:   []*tensor{x23, ft([]int{3}, 2, 2, 9)},
			want: ft([]int{2, 3}, 2, 2, 9, 4, 5, 9)},
		{name: "Max three inputs", node: node("Max", "m", nil, nil),
			in:   []*tensor{ft([]int{2}, 1, 5), ft([]int{2}, 3, 0), ft([]int{2}, 2, 4)},
			want: ft([]int{2}, 3, 5)},
		{name: "Min int64", node: node("Min", "m", nil, nil),
			in:   []*tensor{it([]int{2}, 1, 5), it([]int{1}, 3)},
			want: it([]int{2}, 1, 3)},
		{name: "Clip min only", node: node("Clip", "c", nil, nil), opset: 13,
			in:   []*tensor{ft([]int{3}, -1, 0.5, 7), ft([]int{}, 1)},
			want: ft([]int{3}, 1, 1, 7)},
		{name: "Clip both", node: node("Clip", "c", nil, nil), opset: 13,
			in:   []*tensor{ft([]int{3}, -1, 0.5, 7), ft([]int{}, 0), ft([]int{}, 2)},
			want: ft([]int{3}, 0, 0.5, 2)},
		{name: "Clip max only", node: node("Clip", "c", nil, nil), opset: 13,
			in:   []*tensor{ft([]int{3}, -1, 0.5, 7), nil, ft([]int{}, 0)},
			want: ft([]int{3}, -1, 0, 0)},
		{name: "MatMul 2D", node: node("MatMul", "m", nil, nil),
			in:   []*tensor{x23, ft([]int{3, 1}, 1, 1, 1)},
			want: ft([]int{2, 1}, 6, 15)},
		{name: "MatMul broadcast batch and 1-D", node: node("MatMul", "m", nil, nil),
			in:   []*tensor{ft([]int{2, 1, 2}, 1, 2, 3, 4), ft([]int{2}, 10, 1)},
			want: ft([]int{2, 1}, 12, 34)},
		{name: "Softmax last axis", node: node("Softmax", "s", nil, nil, aInt("axis", -1)), opset: 13,
			in:   []*tensor{ft([]int{1, 2}, 0, float32(math.Log(3)))},
			want: ft([]int{1, 2}, 0.25, 0.75)},
		{name: "Softmax axis 0", node: node("Softmax", "s", nil, nil, aInt("axis", 0)), opset: 13,
			in:   []*tensor{ft([]int{2, 1}, 5, 5)},
			want: ft([]int{2, 1}, 0.5, 0.5)},
		{name: "Softmax opset 11 flattens from axis", node: node("Softmax", "s", nil, nil, aInt("axis", 1)), opset: 11,
			in:   []*tensor{ft([]int{1, 2, 2}, 0, 0, 0, 0)},
			want: ft([]int{1, 2, 2}, 0.25, 0.25, 0.25, 0.25)},
		{name: "Unsqueeze opset 11 attribute", node: node("Unsqueeze", "u", nil, nil, aInts("axes", 1)), opset: 11,
			in: []*tensor{ft([]int{2}, 1, 2)}, want: ft([]int{2, 1}, 1, 2)},
		{name: "Slice axes and clamping", node: node("Slice", "s", nil, nil),
			in:   []*tensor{x23, it([]int{2}, 1, -2), it([]int{2}, 2, 100), it([]int{2}, 0, 1)},
			want: ft([]int{1, 2}, 5, 6)},
		{name: "Slice negative step", node: node("Slice", "s", nil, nil),
			in:   []*tensor{x23, it([]int{1}, -1), it([]int{1}, math.MinInt64), it([]int{1}, 1), it([]int{1}, -2)},
			want: ft([]int{2, 2}, 3, 1, 6, 4)},
		{name: "Concat axis 1", node: node("Concat", "c", nil, nil, aInt("axis", 1)),
			in:   []*tensor{ft([]int{2, 1}, 1, 2), ft([]int{2, 2}, 3, 4, 5, 6)},
			want: ft([]int{2, 3}, 1, 3, 4, 2, 5, 6)},
		{name: "Unsqueeze", node: node("Unsqueeze", "u", nil, nil), opset: 13,
			in: []*tensor{ft([]int{2}, 1, 2), it([]int{2}, 0, -1)}, want: ft([]int{1, 2, 1}, 1, 2)},
		{name: "Squeeze axes", node: node("Squeeze", "s", nil, nil), opset: 13,
			in: []*tensor{ft([]int{1, 2, 1}, 1, 2), it([]int{1}, -1)}, want: ft([]int{1, 2}, 1, 2)},
		{name: "Squeeze all", node: node("Squeeze", "s", nil, nil), opset: 13,
			in: []*tensor{ft([]int{1, 2, 1}, 1, 2)}, want: ft([]int{2}, 1, 2)},
		{name: "Reshape 0 and -1", node: node("Reshape", "r", nil, nil),
			in: []*tensor{ft([]int{2, 3, 1}, 1, 2, 3, 4, 5, 6), it([]int{2}, 0, -1)}, want: ft([]int{2, 3}, 1, 2, 3, 4, 5, 6)},
		{name: "Flatten", node: node("Flatten", "f", nil, nil, aInt("axis", 1)),
			in: []*tensor{ft([]int{2, 1, 3}, 1, 2, 3, 4, 5, 6)}, want: ft([]int{2, 3}, 1, 2, 3, 4, 5, 6)},
		{name: "Cast float to int32 truncates", node: node("Cast", "c", nil, nil, aInt("to", int64(onnxpb.TensorProto_INT32))),
			in: []*tensor{ft([]int{3}, -1.7, 2.9, 0)}, want: &tensor{dt: int32T, shape: []int{3}, i: []int64{-1, 2, 0}}},
		{name: "Cast int64 to float", node: node("Cast", "c", nil, nil, aInt("to", int64(onnxpb.TensorProto_FLOAT))),
			in: []*tensor{it([]int{2}, -3, 5)}, want: ft([]int{2}, -3, 5)},
		{name: "ConstantOfShape int", node: node("ConstantOfShape", "c", nil, nil,
			&onnxpb.AttributeProto{Name: strp("value"), Type: onnxpb.AttributeProto_TENSOR.Enum(), T: intInit("", []int{1}, []int64{7})}),
			in: []*tensor{it([]int{2}, 1, 2)}, want: it([]int{1, 2}, 7, 7)},
		{name: "ConstantOfShape default", node: node("ConstantOfShape", "c", nil, nil),
			in: []*tensor{it([]int{1}, 2)}, want: ft([]int{2}, 0, 0)},
		{name: "Expand", node: node("Expand", "e", nil, nil),
			in: []*tensor{ft([]int{2, 1}, 1, 2), it([]int{3}, 2, 1, 3)}, want: ft([]int{2, 2, 3}, 1, 1, 1, 2, 2, 2, 1, 1, 1, 2, 2, 2)},
		{name: "Gather axis 1 negative index", node: node("Gather", "g", nil, nil, aInt("axis", 1)),
			in: []*tensor{x23, it([]int{2}, -1, 0)}, want: ft([]int{2, 2}, 3, 1, 6, 4)},
		{name: "Gather scalar index", node: node("Gather", "g", nil, nil),
			in: []*tensor{x23, it([]int{}, -1)}, want: ft([]int{3}, 4, 5, 6)},
		{name: "Gather int64 data", node: node("Gather", "g", nil, nil),
			in: []*tensor{it([]int{3}, 10, 20, 30), it([]int{1}, 2)}, want: it([]int{1}, 30)},
		{name: "GatherElements", node: node("GatherElements", "g", nil, nil, aInt("axis", 1)),
			in: []*tensor{x23, it([]int{2, 1}, 2, 0)}, want: ft([]int{2, 1}, 3, 4)},
		{name: "Transpose", node: node("Transpose", "t", nil, nil, aInts("perm", 1, 0, 2)),
			in:   []*tensor{ft([]int{2, 3, 1}, 1, 2, 3, 4, 5, 6)},
			want: ft([]int{3, 2, 1}, 1, 4, 2, 5, 3, 6)},
		{name: "Transpose default", node: node("Transpose", "t", nil, nil),
			in: []*tensor{x23}, want: ft([]int{3, 2}, 1, 4, 2, 5, 3, 6)},
		{name: "Shape start", node: node("Shape", "s", nil, nil, aInt("start", 1)), opset: 15,
			in: []*tensor{x23}, want: it([]int{1}, 3)},
		{name: "Range int", node: node("Range", "r", nil, nil),
			in: []*tensor{it(nil, 1), it(nil, 10), it(nil, 3)}, want: it([]int{3}, 1, 4, 7)},
		{name: "Range float down", node: node("Range", "r", nil, nil),
			in: []*tensor{ft(nil, 1), ft(nil, 0), ft(nil, -0.5)}, want: ft([]int{2}, 1, 0.5)},
		{name: "TopK values", node: node("TopK", "k", nil, nil, aInt("axis", -1)),
			in: []*tensor{it([]int{4}, 3, 7, 3, 9), it([]int{1}, 3)}, want: it([]int{3}, 9, 7, 3)},
		{name: "TopK indices stable on ties", node: node("TopK", "k", nil, nil), out: 1,
			in: []*tensor{it([]int{4}, 3, 7, 3, 9), it([]int{1}, 4)}, want: it([]int{4}, 3, 1, 0, 2)},
		{name: "ScatterElements", node: node("ScatterElements", "s", nil, nil, aInt("axis", 0)),
			in: []*tensor{it([]int{3}, 0, 0, 0), it([]int{3}, 2, 0, 1), it([]int{3}, 10, 11, 12)}, want: it([]int{3}, 11, 12, 10)},
		{name: "Where Equal", node: node("Where", "w", nil, nil),
			in: []*tensor{{dt: boolT, shape: []int{3}, i: []int64{1, 0, 1}}, ft([]int{1}, 9), ft([]int{3}, 1, 2, 3)}, want: ft([]int{3}, 9, 2, 9)},
		{name: "Equal", node: node("Equal", "e", nil, nil),
			in: []*tensor{it([]int{3}, 1, -1, 3), it([]int{1}, -1)}, want: &tensor{dt: boolT, shape: []int{3}, i: []int64{0, 1, 0}}},
		{name: "ReduceProd", node: node("ReduceProd", "r", nil, nil, aInt("keepdims", 0)),
			in: []*tensor{it([]int{3}, 2, 3, 4)}, want: it([]int{}, 24)},
		{name: "ReduceSum axes input", node: node("ReduceSum", "r", nil, nil), opset: 13,
			in: []*tensor{x23, it([]int{1}, 1)}, want: ft([]int{2, 1}, 6, 15)},
		{name: "Add broadcast", node: node("Add", "a", nil, nil),
			in: []*tensor{x23, ft([]int{3}, 10, 20, 30)}, want: ft([]int{2, 3}, 11, 22, 33, 14, 25, 36)},
		{name: "Sub int", node: node("Sub", "s", nil, nil), in: []*tensor{it([]int{2}, 5, 3), it(nil, 1)}, want: it([]int{2}, 4, 2)},
		{name: "Div int", node: node("Div", "d", nil, nil), in: []*tensor{it([]int{2}, 7, -7), it(nil, 2)}, want: it([]int{2}, 3, -3)},
		{name: "Mul", node: node("Mul", "m", nil, nil), in: []*tensor{ft([]int{1}, 3), x23}, want: ft([]int{2, 3}, 3, 6, 9, 12, 15, 18)},
		{name: "Sigmoid", node: node("Sigmoid", "s", nil, nil), in: []*tensor{ft([]int{2}, 0, float32(math.Log(3)))}, want: ft([]int{2}, 0.5, 0.75)},
		{name: "Tanh", node: node("Tanh", "t", nil, nil), in: []*tensor{ft([]int{1}, 0)}, want: ft([]int{1}, 0)},
		{name: "Relu", node: node("Relu", "r", nil, nil), in: []*tensor{ft([]int{2}, -1, 2)}, want: ft([]int{2}, 0, 2)},
		{name: "Identity", node: node("Identity", "i", nil, nil), in: []*tensor{x23}, want: x23},
		{name: "Constant", node: node("Constant", "c", nil, nil, aInts("value_ints", 4, 5)), want: it([]int{2}, 4, 5)},
	}
}

// TestOps checks each kernel on small inputs with values worked out by hand.
func TestOps(t *testing.T) {
	for _, tc := range opCases() {
		t.Run(tc.name, func(t *testing.T) {
			opset := tc.opset
			if opset == 0 {
				opset = 17
			}
			outs, err := runNode(tc.node, opset, tc.in...)
			if err != nil {
				t.Fatal(err)
			}
			got := outs[tc.out]
			if got.dt != tc.want.dt || !equalShape(got.shape, tc.want.shape) {
				t.Fatalf("got %s %v, want %s %v", got.dt, got.shape, tc.want.dt, tc.want.shape)
			}
			for k := range tc.want.f {
				if math.Abs(float64(got.f[k]-tc.want.f[k])) > 1e-6 {
					t.Fatalf("got %v, want %v", got.f, tc.want.f)
				}
			}
			for k := range tc.want.i {
				if got.i[k] != tc.want.i[k] {
					t.Fatalf("got %v, want %v", got.i, tc.want.i)
				}
			}
		})
	}
}

func strp(s string) *string { return &s }

// TestOpErrors checks that kernels refuse what they do not implement or
// cannot compute, rather than returning something plausible.
func TestOpErrors(t *testing.T) {
	x23 := ft([]int{2, 3}, 1, 2, 3, 4, 5, 6)
	tests := []struct {
		name string
		node *onnxpb.NodeProto
		in   []*tensor
		want string
	}{
		{"unknown attribute", node("Gemm", "g", nil, nil, aInt("foo", 1)), nil, `unsupported attribute "foo"`},
		{"broadcast mismatch", node("Add", "a", nil, nil), []*tensor{x23, ft([]int{2}, 1, 2)}, "cannot be broadcast"},
		{"int division by zero", node("Div", "d", nil, nil), []*tensor{it([]int{1}, 1), it([]int{1}, 0)}, "division by zero"},
		{"gather out of range", node("Gather", "g", nil, nil), []*tensor{x23, it([]int{1}, 2)}, "out of range"},
		{"reshape size", node("Reshape", "r", nil, nil), []*tensor{x23, it([]int{1}, 4)}, "cannot reshape"},
		{"mixed types", node("Add", "a", nil, nil), []*tensor{x23, it([]int{1}, 1)}, "operand types"},
		{"scatter reduction", node("ScatterElements", "s", nil, nil, aString("reduction", "add")), nil, "reduction"},
		{"gemm inner dims", node("Gemm", "g", nil, nil), []*tensor{x23, x23}, "inner dimensions"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := runNode(tc.node, 17, tc.in...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
}
