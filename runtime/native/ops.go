package native

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"

	"github.com/callwatch/callwatch/runtime/onnxpb"
)

type builder func(n *onnxpb.NodeProto, opset int64) (kernel, error)

// builders maps ONNX op types (default domain) to kernel constructors. It
// is never modified after package initialization.
var builders = map[string]builder{
	"Abs":             unaryBuilder(func(x float32) float32 { return float32(math.Abs(float64(x))) }, absInt),
	"Add":             binaryBuilder(func(a, b float32) float32 { return a + b }, func(a, b int64) (int64, error) { return a + b, nil }),
	"Sub":             binaryBuilder(func(a, b float32) float32 { return a - b }, func(a, b int64) (int64, error) { return a - b, nil }),
	"Mul":             binaryBuilder(func(a, b float32) float32 { return a * b }, func(a, b int64) (int64, error) { return a * b, nil }),
	"Div":             binaryBuilder(func(a, b float32) float32 { return a / b }, divInt),
	"Max":             variadicBuilder(binaryBuilder(func(a, b float32) float32 { return max(a, b) }, func(a, b int64) (int64, error) { return max(a, b), nil })),
	"Min":             variadicBuilder(binaryBuilder(func(a, b float32) float32 { return min(a, b) }, func(a, b int64) (int64, error) { return min(a, b), nil })),
	"Clip":            buildClip,
	"Equal":           compareBuilder(func(a, b float64) bool { return a == b }),
	"Less":            compareBuilder(func(a, b float64) bool { return a < b }),
	"LessOrEqual":     compareBuilder(func(a, b float64) bool { return a <= b }),
	"Greater":         compareBuilder(func(a, b float64) bool { return a > b }),
	"GreaterOrEqual":  compareBuilder(func(a, b float64) bool { return a >= b }),
	"And":             logicBuilder(func(a, b bool) bool { return a && b }),
	"Or":              logicBuilder(func(a, b bool) bool { return a || b }),
	"Not":             buildNot,
	"Where":           buildWhere,
	"Sigmoid":         unaryBuilder(sigmoid, nil),
	"Tanh":            unaryBuilder(tanh, nil),
	"Relu":            unaryBuilder(func(x float32) float32 { return max(x, 0) }, func(x int64) int64 { return max(x, 0) }),
	"Neg":             unaryBuilder(func(x float32) float32 { return -x }, func(x int64) int64 { return -x }),
	"Exp":             unaryBuilder(func(x float32) float32 { return float32(math.Exp(float64(x))) }, nil),
	"Log":             unaryBuilder(func(x float32) float32 { return float32(math.Log(float64(x))) }, nil),
	"Sqrt":            unaryBuilder(func(x float32) float32 { return float32(math.Sqrt(float64(x))) }, nil),
	"Reciprocal":      unaryBuilder(func(x float32) float32 { return 1 / x }, nil),
	"Identity":        buildIdentity,
	"Dropout":         buildDropout,
	"Softmax":         softmaxBuilder(false),
	"LogSoftmax":      softmaxBuilder(true),
	"Gemm":            buildGemm,
	"MatMul":          buildMatMul,
	"Gather":          buildGather,
	"GatherElements":  buildGatherElements,
	"Transpose":       buildTranspose,
	"Shape":           buildShape,
	"Size":            buildSize,
	"Slice":           buildSlice,
	"Concat":          buildConcat,
	"Unsqueeze":       squeezeBuilder(true),
	"Squeeze":         squeezeBuilder(false),
	"Reshape":         buildReshape,
	"Flatten":         buildFlatten,
	"Cast":            buildCast,
	"Constant":        buildConstant,
	"ConstantOfShape": buildConstantOfShape,
	"Expand":          buildExpand,
	"Range":           buildRange,
	"TopK":            buildTopK,
	"ScatterElements": buildScatterElements,
	"ReduceSum":       reduceBuilder("sum"),
	"ReduceProd":      reduceBuilder("prod"),
	"ReduceMax":       reduceBuilder("max"),
	"ReduceMin":       reduceBuilder("min"),
	"ReduceMean":      reduceBuilder("mean"),
	"LSTM":            buildLSTM,
}

func one(t *tensor) ([]*tensor, error) { return []*tensor{t}, nil }

// need checks that the required inputs (the first n) are present.
func need(in []*tensor, n int) error {
	if len(in) < n {
		return fmt.Errorf("%d inputs, want at least %d", len(in), n)
	}
	for k := 0; k < n; k++ {
		if in[k] == nil {
			return fmt.Errorf("required input %d is missing", k)
		}
	}
	return nil
}

func opt(in []*tensor, k int) *tensor {
	if k < len(in) {
		return in[k]
	}
	return nil
}

func sigmoid(x float32) float32 { return float32(1 / (1 + math.Exp(-float64(x)))) }
func tanh(x float32) float32    { return float32(math.Tanh(float64(x))) }

func absInt(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}

var errDivZero = errors.New("integer division by zero")

func divInt(a, b int64) (int64, error) {
	if b == 0 {
		return 0, errDivZero
	}
	return a / b, nil
}

// ---- elementwise ----

func unaryBuilder(ff func(float32) float32, fi func(int64) int64) builder {
	return func(n *onnxpb.NodeProto, _ int64) (kernel, error) {
		if err := onlyAttrs(n); err != nil {
			return nil, err
		}
		return func(_ context.Context, in []*tensor) ([]*tensor, error) {
			if err := need(in, 1); err != nil {
				return nil, err
			}
			x := in[0]
			r := newTensor(x.dt, x.shape)
			switch {
			case x.dt == float32T:
				for k, v := range x.f {
					r.f[k] = ff(v)
				}
			case fi != nil && x.dt != boolT:
				for k, v := range x.i {
					r.i[k] = fi(v)
				}
			default:
				return nil, fmt.Errorf("unsupported element type %s", x.dt)
			}
			return one(r)
		}, nil
	}
}

func binaryBuilder(ff func(a, b float32) float32, fi func(a, b int64) (int64, error)) builder {
	return func(n *onnxpb.NodeProto, _ int64) (kernel, error) {
		if err := onlyAttrs(n); err != nil {
			return nil, err
		}
		return func(_ context.Context, in []*tensor) ([]*tensor, error) {
			if err := need(in, 2); err != nil {
				return nil, err
			}
			a, b := in[0], in[1]
			if a.dt != b.dt || a.dt == boolT {
				return nil, fmt.Errorf("operand types %s and %s", a.dt, b.dt)
			}
			shape, err := broadcastShapes(a.shape, b.shape)
			if err != nil {
				return nil, err
			}
			oa, ob := bcastOffsets(shape, a.shape), bcastOffsets(shape, b.shape)
			r := newTensor(a.dt, shape)
			if a.dt == float32T {
				for j := range r.f {
					r.f[j] = ff(a.f[at(oa, j)], b.f[at(ob, j)])
				}
				return one(r)
			}
			for j := range r.i {
				v, err := fi(a.i[at(oa, j)], b.i[at(ob, j)])
				if err != nil {
					return nil, err
				}
				if a.dt == int32T {
					v = int64(int32(v))
				}
				r.i[j] = v
			}
			return one(r)
		}, nil
	}
}

// variadicBuilder turns a broadcasting binary op into ONNX's variadic form
// (Max, Min: one or more inputs, folded left to right).
func variadicBuilder(bin builder) builder {
	return func(n *onnxpb.NodeProto, opset int64) (kernel, error) {
		k, err := bin(n, opset)
		if err != nil {
			return nil, err
		}
		return func(ctx context.Context, in []*tensor) ([]*tensor, error) {
			if err := need(in, 1); err != nil {
				return nil, err
			}
			acc := in[0]
			for _, t := range in[1:] {
				if t == nil {
					return nil, fmt.Errorf("a variadic input is missing")
				}
				out, err := k(ctx, []*tensor{acc, t})
				if err != nil {
					return nil, err
				}
				acc = out[0]
			}
			return one(acc)
		}, nil
	}
}

// buildClip: Clip(x, min?, max?) on float32 (opset ≥ 11 takes the bounds as
// optional scalar inputs).
func buildClip(n *onnxpb.NodeProto, opset int64) (kernel, error) {
	if opset < 11 {
		return nil, fmt.Errorf("Clip before opset 11 (bounds as attributes) is not supported")
	}
	if err := onlyAttrs(n); err != nil {
		return nil, err
	}
	return func(_ context.Context, in []*tensor) ([]*tensor, error) {
		if err := need(in, 1); err != nil {
			return nil, err
		}
		x := in[0]
		if x.dt != float32T {
			return nil, fmt.Errorf("Clip on %s, want float32", x.dt)
		}
		lo, hi := float32(math.Inf(-1)), float32(math.Inf(1))
		for k, dst := range []*float32{&lo, &hi} {
			b := opt(in, k+1)
			if b == nil {
				continue
			}
			if b.dt != float32T || b.size() != 1 {
				return nil, fmt.Errorf("Clip bound %d must be a float32 scalar", k+1)
			}
			*dst = b.f[0]
		}
		r := newTensor(float32T, x.shape)
		for j, v := range x.f {
			r.f[j] = min(max(v, lo), hi)
		}
		return one(r)
	}, nil
}

func elem(t *tensor, k int) float64 {
	if t.dt == float32T {
		return float64(t.f[k])
	}
	return float64(t.i[k])
}

func boolOf(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

func compareBuilder(cmp func(a, b float64) bool) builder {
	return func(n *onnxpb.NodeProto, _ int64) (kernel, error) {
		if err := onlyAttrs(n); err != nil {
			return nil, err
		}
		return func(_ context.Context, in []*tensor) ([]*tensor, error) {
			if err := need(in, 2); err != nil {
				return nil, err
			}
			a, b := in[0], in[1]
			if a.dt != b.dt {
				return nil, fmt.Errorf("operand types %s and %s", a.dt, b.dt)
			}
			shape, err := broadcastShapes(a.shape, b.shape)
			if err != nil {
				return nil, err
			}
			oa, ob := bcastOffsets(shape, a.shape), bcastOffsets(shape, b.shape)
			r := newTensor(boolT, shape)
			for j := range r.i {
				if a.dt == float32T {
					r.i[j] = boolOf(cmp(float64(a.f[at(oa, j)]), float64(b.f[at(ob, j)])))
				} else {
					// int64 values beyond 2^53 compare exactly via the int path.
					x, y := a.i[at(oa, j)], b.i[at(ob, j)]
					c := 0.0
					switch {
					case x < y:
						c = -1
					case x > y:
						c = 1
					}
					r.i[j] = boolOf(cmp(c, 0))
				}
			}
			return one(r)
		}, nil
	}
}

func logicBuilder(op func(a, b bool) bool) builder {
	return func(n *onnxpb.NodeProto, _ int64) (kernel, error) {
		if err := onlyAttrs(n); err != nil {
			return nil, err
		}
		return func(_ context.Context, in []*tensor) ([]*tensor, error) {
			if err := need(in, 2); err != nil {
				return nil, err
			}
			a, b := in[0], in[1]
			if a.dt != boolT || b.dt != boolT {
				return nil, fmt.Errorf("operand types %s and %s, want bool", a.dt, b.dt)
			}
			shape, err := broadcastShapes(a.shape, b.shape)
			if err != nil {
				return nil, err
			}
			oa, ob := bcastOffsets(shape, a.shape), bcastOffsets(shape, b.shape)
			r := newTensor(boolT, shape)
			for j := range r.i {
				r.i[j] = boolOf(op(a.i[at(oa, j)] != 0, b.i[at(ob, j)] != 0))
			}
			return one(r)
		}, nil
	}
}

func buildNot(n *onnxpb.NodeProto, _ int64) (kernel, error) {
	if err := onlyAttrs(n); err != nil {
		return nil, err
	}
	return func(_ context.Context, in []*tensor) ([]*tensor, error) {
		if err := need(in, 1); err != nil {
			return nil, err
		}
		if in[0].dt != boolT {
			return nil, fmt.Errorf("input type %s, want bool", in[0].dt)
		}
		r := newTensor(boolT, in[0].shape)
		for j, v := range in[0].i {
			r.i[j] = 1 - v
		}
		return one(r)
	}, nil
}

func buildWhere(n *onnxpb.NodeProto, _ int64) (kernel, error) {
	if err := onlyAttrs(n); err != nil {
		return nil, err
	}
	return func(_ context.Context, in []*tensor) ([]*tensor, error) {
		if err := need(in, 3); err != nil {
			return nil, err
		}
		c, x, y := in[0], in[1], in[2]
		if c.dt != boolT || x.dt != y.dt {
			return nil, fmt.Errorf("operand types %s, %s, %s", c.dt, x.dt, y.dt)
		}
		shape, err := broadcastShapes(c.shape, x.shape, y.shape)
		if err != nil {
			return nil, err
		}
		oc, ox, oy := bcastOffsets(shape, c.shape), bcastOffsets(shape, x.shape), bcastOffsets(shape, y.shape)
		r := newTensor(x.dt, shape)
		for j := 0; j < numel(shape); j++ {
			src, o := y, at(oy, j)
			if c.i[at(oc, j)] != 0 {
				src, o = x, at(ox, j)
			}
			if r.dt == float32T {
				r.f[j] = src.f[o]
			} else {
				r.i[j] = src.i[o]
			}
		}
		return one(r)
	}, nil
}

func buildIdentity(n *onnxpb.NodeProto, _ int64) (kernel, error) {
	if err := onlyAttrs(n); err != nil {
		return nil, err
	}
	return func(_ context.Context, in []*tensor) ([]*tensor, error) {
		if err := need(in, 1); err != nil {
			return nil, err
		}
		return one(in[0])
	}, nil
}

// buildDropout runs Dropout in inference mode (identity; mask all true).
func buildDropout(n *onnxpb.NodeProto, _ int64) (kernel, error) {
	if err := onlyAttrs(n, "seed", "ratio"); err != nil {
		return nil, err
	}
	return func(_ context.Context, in []*tensor) ([]*tensor, error) {
		if err := need(in, 1); err != nil {
			return nil, err
		}
		if m := opt(in, 2); m != nil && m.size() == 1 && m.i[0] != 0 {
			return nil, errors.New("training_mode=true is not supported")
		}
		mask := newTensor(boolT, in[0].shape)
		for j := range mask.i {
			mask.i[j] = 1
		}
		return []*tensor{in[0], mask}, nil
	}, nil
}

// ---- softmax ----

func softmaxBuilder(logOut bool) builder {
	return func(n *onnxpb.NodeProto, opset int64) (kernel, error) {
		if err := onlyAttrs(n, "axis"); err != nil {
			return nil, err
		}
		def := int64(-1)
		if opset < 13 {
			def = 1
		}
		axis := attrInt(n, "axis", def)
		return func(_ context.Context, in []*tensor) ([]*tensor, error) {
			if err := need(in, 1); err != nil {
				return nil, err
			}
			x := in[0]
			if x.dt != float32T {
				return nil, fmt.Errorf("input type %s, want float32", x.dt)
			}
			a, err := normAxis(axis, len(x.shape))
			if err != nil {
				return nil, err
			}
			// Opset 13+: softmax along one axis. Before: over the flattened
			// trailing dims from axis on.
			outer, dim, inner := numel(x.shape[:a]), x.shape[a], numel(x.shape[a+1:])
			if opset < 13 {
				dim, inner = numel(x.shape[a:]), 1
			}
			r := newTensor(float32T, x.shape)
			for o := 0; o < outer; o++ {
				for i := 0; i < inner; i++ {
					base := o*dim*inner + i
					m := float32(math.Inf(-1))
					for d := 0; d < dim; d++ {
						m = max(m, x.f[base+d*inner])
					}
					var sum float64
					for d := 0; d < dim; d++ {
						e := math.Exp(float64(x.f[base+d*inner] - m))
						sum += e
						r.f[base+d*inner] = float32(e)
					}
					for d := 0; d < dim; d++ {
						p := base + d*inner
						if logOut {
							r.f[p] = float32(float64(x.f[p]-m) - math.Log(sum))
						} else {
							r.f[p] = float32(float64(r.f[p]) / sum)
						}
					}
				}
			}
			return one(r)
		}, nil
	}
}

// ---- linear algebra ----

// dotGeneric is a float32 inner product with four accumulators; the split
// order is like a SIMD kernel's and stays within float32 rounding of a
// serial sum.
func dotGeneric(a, b []float32) float32 {
	n := len(a)
	b = b[:n]
	var s0, s1, s2, s3 float32
	k := 0
	for ; k+4 <= n; k += 4 {
		s0 += a[k] * b[k]
		s1 += a[k+1] * b[k+1]
		s2 += a[k+2] * b[k+2]
		s3 += a[k+3] * b[k+3]
	}
	for ; k < n; k++ {
		s0 += a[k] * b[k]
	}
	return (s0 + s1) + (s2 + s3)
}

func buildGemm(n *onnxpb.NodeProto, _ int64) (kernel, error) {
	if err := onlyAttrs(n, "alpha", "beta", "transA", "transB"); err != nil {
		return nil, err
	}
	alpha, beta := attrFloat(n, "alpha", 1), attrFloat(n, "beta", 1)
	transA, transB := attrInt(n, "transA", 0) != 0, attrInt(n, "transB", 0) != 0
	return func(_ context.Context, in []*tensor) ([]*tensor, error) {
		if err := need(in, 2); err != nil {
			return nil, err
		}
		a, b, c := in[0], in[1], opt(in, 2)
		if a.dt != float32T || b.dt != float32T || len(a.shape) != 2 || len(b.shape) != 2 {
			return nil, fmt.Errorf("want 2-D float32 A and B, got %s %v and %s %v", a.dt, a.shape, b.dt, b.shape)
		}
		m, k := a.shape[0], a.shape[1]
		if transA {
			m, k = k, m
		}
		k2, nn := b.shape[0], b.shape[1]
		if transB {
			k2, nn = nn, k2
		}
		if k != k2 {
			return nil, fmt.Errorf("inner dimensions %d and %d differ", k, k2)
		}
		// Lay A out as rows [m,k] and B as columns [nn,k] so each output is a dot.
		at_ := a.f
		if transA {
			at_ = transpose2(a.f, k, m)
		}
		bt := b.f
		if !transB {
			bt = transpose2(b.f, k, nn)
		}
		r := newTensor(float32T, []int{m, nn})
		for i := 0; i < m; i++ {
			for j := 0; j < nn; j++ {
				r.f[i*nn+j] = alpha * dot(at_[i*k:(i+1)*k], bt[j*k:(j+1)*k])
			}
		}
		if c != nil && beta != 0 {
			if c.dt != float32T {
				return nil, fmt.Errorf("C type %s, want float32", c.dt)
			}
			if _, err := broadcastShapes(r.shape, c.shape); err != nil || len(c.shape) > 2 {
				return nil, fmt.Errorf("C shape %v does not broadcast to %v", c.shape, r.shape)
			}
			oc := bcastOffsets(r.shape, c.shape)
			for j := range r.f {
				r.f[j] += beta * c.f[at(oc, j)]
			}
		}
		return one(r)
	}, nil
}

// transpose2 transposes a row-major [rows, cols] matrix.
func transpose2(x []float32, rows, cols int) []float32 {
	r := make([]float32, len(x))
	for i := 0; i < rows; i++ {
		for j := 0; j < cols; j++ {
			r[j*rows+i] = x[i*cols+j]
		}
	}
	return r
}

func buildMatMul(n *onnxpb.NodeProto, _ int64) (kernel, error) {
	if err := onlyAttrs(n); err != nil {
		return nil, err
	}
	return func(_ context.Context, in []*tensor) ([]*tensor, error) {
		if err := need(in, 2); err != nil {
			return nil, err
		}
		a, b := in[0], in[1]
		if a.dt != float32T || b.dt != float32T || len(a.shape) == 0 || len(b.shape) == 0 {
			return nil, fmt.Errorf("want float32 operands of rank ≥ 1, got %s %v and %s %v", a.dt, a.shape, b.dt, b.shape)
		}
		as, bs := a.shape, b.shape
		if len(as) == 1 {
			as = []int{1, as[0]}
		}
		if len(bs) == 1 {
			bs = []int{bs[0], 1}
		}
		m, k := as[len(as)-2], as[len(as)-1]
		k2, nn := bs[len(bs)-2], bs[len(bs)-1]
		if k != k2 {
			return nil, fmt.Errorf("inner dimensions %d and %d differ (%v × %v)", k, k2, a.shape, b.shape)
		}
		batch, err := broadcastShapes(as[:len(as)-2], bs[:len(bs)-2])
		if err != nil {
			return nil, err
		}
		// Broadcast batch indices by offsets over a [batch..., 1] view.
		oa := bcastOffsets(batch, as[:len(as)-2])
		ob := bcastOffsets(batch, bs[:len(bs)-2])
		nb := numel(batch)
		out := append(append([]int{}, batch...), m, nn)
		r := newTensor(float32T, out)
		col := make([]float32, k)
		for p := 0; p < nb; p++ {
			am := a.f[at(oa, p)*m*k:]
			bm := b.f[at(ob, p)*k*nn:]
			rm := r.f[p*m*nn:]
			for j := 0; j < nn; j++ {
				for q := 0; q < k; q++ {
					col[q] = bm[q*nn+j]
				}
				for i := 0; i < m; i++ {
					rm[i*nn+j] = dot(am[i*k:(i+1)*k], col)
				}
			}
		}
		// Drop the dimensions added for 1-D operands.
		final := append([]int{}, batch...)
		if len(a.shape) > 1 {
			final = append(final, m)
		}
		if len(b.shape) > 1 {
			final = append(final, nn)
		}
		return one(r.view(final))
	}, nil
}

// ---- indexing ----

func buildGather(n *onnxpb.NodeProto, _ int64) (kernel, error) {
	if err := onlyAttrs(n, "axis"); err != nil {
		return nil, err
	}
	axis := attrInt(n, "axis", 0)
	return func(_ context.Context, in []*tensor) ([]*tensor, error) {
		if err := need(in, 2); err != nil {
			return nil, err
		}
		x, idx := in[0], in[1]
		a, err := normAxis(axis, len(x.shape))
		if err != nil {
			return nil, err
		}
		ids, err := idx.ints()
		if err != nil {
			return nil, fmt.Errorf("indices: %w", err)
		}
		outer, dim, inner := numel(x.shape[:a]), x.shape[a], numel(x.shape[a+1:])
		shape := append(append(append([]int{}, x.shape[:a]...), idx.shape...), x.shape[a+1:]...)
		r := newTensor(x.dt, shape)
		for o := 0; o < outer; o++ {
			for j, id := range ids {
				if id < 0 {
					id += int64(dim)
				}
				if id < 0 || id >= int64(dim) {
					return nil, fmt.Errorf("index %d out of range [%d, %d)", ids[j], -dim, dim)
				}
				src := (o*dim + int(id)) * inner
				dst := (o*len(ids) + j) * inner
				if x.dt == float32T {
					copy(r.f[dst:dst+inner], x.f[src:src+inner])
				} else {
					copy(r.i[dst:dst+inner], x.i[src:src+inner])
				}
			}
		}
		return one(r)
	}, nil
}

// forEachIndex calls fn with every multi-index of shape in row-major order.
func forEachIndex(shape []int, fn func(flat int, idx []int)) {
	n := numel(shape)
	idx := make([]int, len(shape))
	for j := 0; j < n; j++ {
		fn(j, idx)
		for k := len(shape) - 1; k >= 0; k-- {
			if idx[k]++; idx[k] < shape[k] {
				break
			}
			idx[k] = 0
		}
	}
}

func buildGatherElements(n *onnxpb.NodeProto, _ int64) (kernel, error) {
	if err := onlyAttrs(n, "axis"); err != nil {
		return nil, err
	}
	axis := attrInt(n, "axis", 0)
	return func(_ context.Context, in []*tensor) ([]*tensor, error) {
		if err := need(in, 2); err != nil {
			return nil, err
		}
		x, idx := in[0], in[1]
		a, err := normAxis(axis, len(x.shape))
		if err != nil {
			return nil, err
		}
		if len(idx.shape) != len(x.shape) {
			return nil, fmt.Errorf("indices rank %d, data rank %d", len(idx.shape), len(x.shape))
		}
		ids, err := idx.ints()
		if err != nil {
			return nil, fmt.Errorf("indices: %w", err)
		}
		xs := strides(x.shape)
		r := newTensor(x.dt, idx.shape)
		var ferr error
		forEachIndex(idx.shape, func(j int, ix []int) {
			off := 0
			for d, v := range ix {
				if d == a {
					id := ids[j]
					if id < 0 {
						id += int64(x.shape[a])
					}
					if id < 0 || id >= int64(x.shape[a]) {
						ferr = fmt.Errorf("index %d out of range for dim %d", ids[j], x.shape[a])
						return
					}
					v = int(id)
				} else if v >= x.shape[d] {
					ferr = fmt.Errorf("indices shape %v exceeds data shape %v", idx.shape, x.shape)
					return
				}
				off += v * xs[d]
			}
			if x.dt == float32T {
				r.f[j] = x.f[off]
			} else {
				r.i[j] = x.i[off]
			}
		})
		if ferr != nil {
			return nil, ferr
		}
		return one(r)
	}, nil
}

func buildScatterElements(n *onnxpb.NodeProto, _ int64) (kernel, error) {
	if err := onlyAttrs(n, "axis", "reduction"); err != nil {
		return nil, err
	}
	if red := attrString(n, "reduction", "none"); red != "none" {
		return nil, fmt.Errorf("reduction %q is not supported", red)
	}
	axis := attrInt(n, "axis", 0)
	return func(_ context.Context, in []*tensor) ([]*tensor, error) {
		if err := need(in, 3); err != nil {
			return nil, err
		}
		x, idx, upd := in[0], in[1], in[2]
		a, err := normAxis(axis, len(x.shape))
		if err != nil {
			return nil, err
		}
		if !equalShape(idx.shape, upd.shape) || len(idx.shape) != len(x.shape) || upd.dt != x.dt {
			return nil, fmt.Errorf("indices %v, updates %s %v, data %s %v", idx.shape, upd.dt, upd.shape, x.dt, x.shape)
		}
		ids, err := idx.ints()
		if err != nil {
			return nil, fmt.Errorf("indices: %w", err)
		}
		r := &tensor{dt: x.dt, shape: x.shape, f: append([]float32(nil), x.f...), i: append([]int64(nil), x.i...)}
		xs := strides(x.shape)
		var ferr error
		forEachIndex(idx.shape, func(j int, ix []int) {
			off := 0
			for d, v := range ix {
				if d == a {
					id := ids[j]
					if id < 0 {
						id += int64(x.shape[a])
					}
					if id < 0 || id >= int64(x.shape[a]) {
						ferr = fmt.Errorf("index %d out of range for dim %d", ids[j], x.shape[a])
						return
					}
					v = int(id)
				} else if v >= x.shape[d] {
					ferr = fmt.Errorf("indices shape %v exceeds data shape %v", idx.shape, x.shape)
					return
				}
				off += v * xs[d]
			}
			if x.dt == float32T {
				r.f[off] = upd.f[j]
			} else {
				r.i[off] = upd.i[j]
			}
		})
		if ferr != nil {
			return nil, ferr
		}
		return one(r)
	}, nil
}

func buildTopK(n *onnxpb.NodeProto, _ int64) (kernel, error) {
	if err := onlyAttrs(n, "axis", "largest", "sorted"); err != nil {
		return nil, err
	}
	axis := attrInt(n, "axis", -1)
	largest := attrInt(n, "largest", 1) != 0
	return func(_ context.Context, in []*tensor) ([]*tensor, error) {
		if err := need(in, 2); err != nil {
			return nil, err
		}
		x := in[0]
		ks, err := in[1].ints()
		if err != nil || len(ks) != 1 {
			return nil, fmt.Errorf("K must be one integer, got %v", in[1].shape)
		}
		a, err := normAxis(axis, len(x.shape))
		if err != nil {
			return nil, err
		}
		outer, dim, inner := numel(x.shape[:a]), x.shape[a], numel(x.shape[a+1:])
		k := int(ks[0])
		if k < 0 || k > dim {
			return nil, fmt.Errorf("K=%d out of range for dimension %d", k, dim)
		}
		shape := append([]int{}, x.shape...)
		shape[a] = k
		vals, inds := newTensor(x.dt, shape), newTensor(int64T, shape)
		order := make([]int, dim)
		for o := 0; o < outer; o++ {
			for i := 0; i < inner; i++ {
				base := o*dim*inner + i
				for d := range order {
					order[d] = d
				}
				// Stable: equal values keep the lower index first, as ORT does.
				sort.SliceStable(order, func(p, q int) bool {
					u, v := elem(x, base+order[p]*inner), elem(x, base+order[q]*inner)
					if largest {
						return u > v
					}
					return u < v
				})
				for d := 0; d < k; d++ {
					dst := o*k*inner + d*inner + i
					src := base + order[d]*inner
					if x.dt == float32T {
						vals.f[dst] = x.f[src]
					} else {
						vals.i[dst] = x.i[src]
					}
					inds.i[dst] = int64(order[d])
				}
			}
		}
		return []*tensor{vals, inds}, nil
	}, nil
}

// gemvTGeneric adds xᵀ·m to out, m row-major [len(x), len(out)]; each
// output accumulates over x in order, like the AVX2 kernel.
func gemvTGeneric(out, x, m []float32) {
	n := len(out)
	for i, xv := range x {
		row := m[i*n : (i+1)*n]
		for j, v := range row {
			out[j] += xv * v
		}
	}
}
