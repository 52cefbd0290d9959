package native

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/callwatch/callwatch/runtime/onnxpb"
)

func buildTranspose(n *onnxpb.NodeProto, _ int64) (kernel, error) {
	if err := onlyAttrs(n, "perm"); err != nil {
		return nil, err
	}
	perm, hasPerm := attrInts(n, "perm")
	return func(_ context.Context, in []*tensor) ([]*tensor, error) {
		if err := need(in, 1); err != nil {
			return nil, err
		}
		x := in[0]
		r := len(x.shape)
		p := make([]int, r)
		for k := range p {
			p[k] = r - 1 - k
		}
		if hasPerm {
			if len(perm) != r {
				return nil, fmt.Errorf("perm %v for rank %d", perm, r)
			}
			seen := make([]bool, r)
			for k, v := range perm {
				if v < 0 || int(v) >= r || seen[v] {
					return nil, fmt.Errorf("invalid perm %v", perm)
				}
				seen[v] = true
				p[k] = int(v)
			}
		}
		xs := strides(x.shape)
		shape := make([]int, r)
		src := make([]int, r) // input stride for each output dim
		for k := range p {
			shape[k] = x.shape[p[k]]
			src[k] = xs[p[k]]
		}
		out := newTensor(x.dt, shape)
		// Copy contiguous runs when the last dim stays last.
		inner := 1
		if r > 0 && p[r-1] == r-1 {
			inner = shape[r-1]
			shape, src = shape[:r-1], src[:r-1]
		}
		forEachIndex(shape, func(j int, idx []int) {
			off := 0
			for d, v := range idx {
				off += v * src[d]
			}
			if x.dt == float32T {
				copy(out.f[j*inner:(j+1)*inner], x.f[off:off+inner])
			} else {
				copy(out.i[j*inner:(j+1)*inner], x.i[off:off+inner])
			}
		})
		return one(out)
	}, nil
}

func buildShape(n *onnxpb.NodeProto, _ int64) (kernel, error) {
	if err := onlyAttrs(n, "start", "end"); err != nil {
		return nil, err
	}
	start := attrInt(n, "start", 0)
	end, hasEnd := attrInt(n, "end", 0), attr(n, "end") != nil
	return func(_ context.Context, in []*tensor) ([]*tensor, error) {
		if err := need(in, 1); err != nil {
			return nil, err
		}
		r := int64(len(in[0].shape))
		clamp := func(v int64) int64 {
			if v < 0 {
				v += r
			}
			return min(max(v, 0), r)
		}
		s, e := clamp(start), r
		if hasEnd {
			e = clamp(end)
		}
		var dims []int64
		for k := s; k < e; k++ {
			dims = append(dims, int64(in[0].shape[k]))
		}
		return one(intTensor([]int{len(dims)}, dims))
	}, nil
}

func buildSize(n *onnxpb.NodeProto, _ int64) (kernel, error) {
	if err := onlyAttrs(n); err != nil {
		return nil, err
	}
	return func(_ context.Context, in []*tensor) ([]*tensor, error) {
		if err := need(in, 1); err != nil {
			return nil, err
		}
		return one(intTensor([]int{}, []int64{int64(in[0].size())}))
	}, nil
}

func buildSlice(n *onnxpb.NodeProto, opset int64) (kernel, error) {
	if opset < 10 {
		return nil, fmt.Errorf("Slice before opset 10 (attribute form) is not supported")
	}
	if err := onlyAttrs(n); err != nil {
		return nil, err
	}
	return func(_ context.Context, in []*tensor) ([]*tensor, error) {
		if err := need(in, 3); err != nil {
			return nil, err
		}
		x := in[0]
		r := len(x.shape)
		starts, err1 := in[1].ints()
		ends, err2 := in[2].ints()
		if err := errors.Join(err1, err2); err != nil {
			return nil, err
		}
		if len(starts) != len(ends) {
			return nil, fmt.Errorf("%d starts, %d ends", len(starts), len(ends))
		}
		axes := make([]int64, len(starts))
		for k := range axes {
			axes[k] = int64(k)
		}
		if t := opt(in, 3); t != nil {
			a, err := t.ints()
			if err != nil || len(a) != len(starts) {
				return nil, fmt.Errorf("axes %v do not match %d starts", t.shape, len(starts))
			}
			axes = a
		}
		steps := make([]int64, len(starts))
		for k := range steps {
			steps[k] = 1
		}
		if t := opt(in, 4); t != nil {
			s, err := t.ints()
			if err != nil || len(s) != len(starts) {
				return nil, fmt.Errorf("steps %v do not match %d starts", t.shape, len(starts))
			}
			steps = s
		}
		first := make([]int, r)
		step := make([]int, r)
		shape := append([]int{}, x.shape...)
		for k := range step {
			step[k] = 1
		}
		for k := range starts {
			a, err := normAxis(axes[k], r)
			if err != nil {
				return nil, err
			}
			d := int64(x.shape[a])
			st, en, sp := starts[k], ends[k], steps[k]
			if sp == 0 {
				return nil, errors.New("step 0")
			}
			if st < 0 {
				st += d
			}
			if en < 0 {
				en += d
			}
			var cnt int64
			if sp > 0 {
				st, en = min(max(st, 0), d), min(max(en, 0), d)
				if en > st {
					cnt = (en - st + sp - 1) / sp
				}
			} else {
				st, en = min(max(st, 0), d-1), min(max(en, -1), d-1)
				if st > en {
					cnt = (st - en - sp - 1) / -sp
				}
			}
			first[a], step[a], shape[a] = int(st), int(sp), int(cnt)
		}
		xs := strides(x.shape)
		out := newTensor(x.dt, shape)
		forEachIndex(shape, func(j int, idx []int) {
			off := 0
			for d, v := range idx {
				off += (first[d] + v*step[d]) * xs[d]
			}
			if x.dt == float32T {
				out.f[j] = x.f[off]
			} else {
				out.i[j] = x.i[off]
			}
		})
		return one(out)
	}, nil
}

func buildConcat(n *onnxpb.NodeProto, _ int64) (kernel, error) {
	if err := onlyAttrs(n, "axis"); err != nil {
		return nil, err
	}
	if attr(n, "axis") == nil {
		return nil, errors.New("missing attribute axis")
	}
	axis := attrInt(n, "axis", 0)
	return func(_ context.Context, in []*tensor) ([]*tensor, error) {
		if len(in) == 0 {
			return nil, errors.New("no inputs")
		}
		if err := need(in, len(in)); err != nil {
			return nil, err
		}
		x0 := in[0]
		a, err := normAxis(axis, len(x0.shape))
		if err != nil {
			return nil, err
		}
		shape := append([]int{}, x0.shape...)
		shape[a] = 0
		for _, t := range in {
			if t.dt != x0.dt || len(t.shape) != len(x0.shape) {
				return nil, fmt.Errorf("mismatched inputs %s %v and %s %v", x0.dt, x0.shape, t.dt, t.shape)
			}
			for d := range t.shape {
				if d != a && t.shape[d] != x0.shape[d] {
					return nil, fmt.Errorf("mismatched shapes %v and %v on axis %d", x0.shape, t.shape, a)
				}
			}
			shape[a] += t.shape[a]
		}
		outer, inner := numel(shape[:a]), numel(shape[a+1:])
		out := newTensor(x0.dt, shape)
		dst := 0
		for o := 0; o < outer; o++ {
			for _, t := range in {
				w := t.shape[a] * inner
				if t.dt == float32T {
					copy(out.f[dst:dst+w], t.f[o*w:(o+1)*w])
				} else {
					copy(out.i[dst:dst+w], t.i[o*w:(o+1)*w])
				}
				dst += w
			}
		}
		return one(out)
	}, nil
}

// squeezeBuilder builds Unsqueeze (add) or Squeeze; axes come from input 1
// at opset 13+, from the attribute before.
func squeezeBuilder(add bool) builder {
	return func(n *onnxpb.NodeProto, opset int64) (kernel, error) {
		attrAxes, hasAttr := attrInts(n, "axes")
		if opset >= 13 && hasAttr {
			return nil, errors.New("axes must be an input at opset 13+")
		}
		if err := onlyAttrs(n, "axes"); err != nil {
			return nil, err
		}
		return func(_ context.Context, in []*tensor) ([]*tensor, error) {
			if err := need(in, 1); err != nil {
				return nil, err
			}
			x := in[0]
			axes := attrAxes
			if t := opt(in, 1); t != nil {
				a, err := t.ints()
				if err != nil {
					return nil, fmt.Errorf("axes: %w", err)
				}
				axes = a
			}
			if add {
				r := len(x.shape) + len(axes)
				mark := make([]bool, r)
				for _, v := range axes {
					a, err := normAxis(v, r)
					if err != nil || mark[a] {
						return nil, fmt.Errorf("invalid axes %v for output rank %d", axes, r)
					}
					mark[a] = true
				}
				shape := make([]int, 0, r)
				k := 0
				for d := 0; d < r; d++ {
					if mark[d] {
						shape = append(shape, 1)
					} else {
						shape = append(shape, x.shape[k])
						k++
					}
				}
				return one(x.view(shape))
			}
			drop := make([]bool, len(x.shape))
			if len(axes) == 0 {
				for d, v := range x.shape {
					drop[d] = v == 1
				}
			}
			for _, v := range axes {
				a, err := normAxis(v, len(x.shape))
				if err != nil {
					return nil, err
				}
				if x.shape[a] != 1 {
					return nil, fmt.Errorf("cannot squeeze axis %d of shape %v", a, x.shape)
				}
				drop[a] = true
			}
			shape := []int{}
			for d, v := range x.shape {
				if !drop[d] {
					shape = append(shape, v)
				}
			}
			return one(x.view(shape))
		}, nil
	}
}

func buildReshape(n *onnxpb.NodeProto, _ int64) (kernel, error) {
	if err := onlyAttrs(n, "allowzero"); err != nil {
		return nil, err
	}
	allowZero := attrInt(n, "allowzero", 0) != 0
	return func(_ context.Context, in []*tensor) ([]*tensor, error) {
		if err := need(in, 2); err != nil {
			return nil, err
		}
		x := in[0]
		spec, err := in[1].ints()
		if err != nil {
			return nil, fmt.Errorf("shape: %w", err)
		}
		shape := make([]int, len(spec))
		infer := -1
		known := 1
		for k, v := range spec {
			switch {
			case v == -1:
				if infer >= 0 {
					return nil, fmt.Errorf("more than one -1 in shape %v", spec)
				}
				infer = k
				continue
			case v == 0 && !allowZero:
				if k >= len(x.shape) {
					return nil, fmt.Errorf("shape %v copies dim %d of %v", spec, k, x.shape)
				}
				shape[k] = x.shape[k]
			case v < 0:
				return nil, fmt.Errorf("invalid shape %v", spec)
			default:
				shape[k] = int(v)
			}
			known *= shape[k]
		}
		if infer >= 0 {
			if known == 0 || x.size()%known != 0 {
				return nil, fmt.Errorf("cannot reshape %v to %v", x.shape, spec)
			}
			shape[infer] = x.size() / known
		}
		if numel(shape) != x.size() {
			return nil, fmt.Errorf("cannot reshape %v to %v", x.shape, spec)
		}
		return one(x.view(shape))
	}, nil
}

func buildFlatten(n *onnxpb.NodeProto, _ int64) (kernel, error) {
	if err := onlyAttrs(n, "axis"); err != nil {
		return nil, err
	}
	axis := attrInt(n, "axis", 1)
	return func(_ context.Context, in []*tensor) ([]*tensor, error) {
		if err := need(in, 1); err != nil {
			return nil, err
		}
		x := in[0]
		a := int(axis)
		if a < 0 {
			a += len(x.shape)
		}
		if a < 0 || a > len(x.shape) {
			return nil, fmt.Errorf("axis %d out of range for rank %d", axis, len(x.shape))
		}
		return one(x.view([]int{numel(x.shape[:a]), numel(x.shape[a:])}))
	}, nil
}

func castTo(x *tensor, to dtype) *tensor {
	if x.dt == to {
		return x
	}
	r := newTensor(to, x.shape)
	switch {
	case x.dt == float32T:
		for k, v := range x.f {
			switch to {
			case boolT:
				r.i[k] = boolOf(v != 0)
			case int32T:
				r.i[k] = int64(int32(v))
			default:
				r.i[k] = int64(v)
			}
		}
	case to == float32T:
		for k, v := range x.i {
			r.f[k] = float32(v)
		}
	default:
		for k, v := range x.i {
			switch to {
			case boolT:
				r.i[k] = boolOf(v != 0)
			case int32T:
				r.i[k] = int64(int32(v))
			default:
				r.i[k] = v
			}
		}
	}
	return r
}

func buildCast(n *onnxpb.NodeProto, _ int64) (kernel, error) {
	if err := onlyAttrs(n, "to", "saturate"); err != nil {
		return nil, err
	}
	to, err := dtypeFromONNX(int32(attrInt(n, "to", 0)))
	if err != nil {
		return nil, fmt.Errorf("to: %w", err)
	}
	return func(_ context.Context, in []*tensor) ([]*tensor, error) {
		if err := need(in, 1); err != nil {
			return nil, err
		}
		return one(castTo(in[0], to))
	}, nil
}

func buildConstant(n *onnxpb.NodeProto, _ int64) (kernel, error) {
	if len(n.GetAttribute()) != 1 {
		return nil, fmt.Errorf("want exactly one value attribute, got %d", len(n.GetAttribute()))
	}
	a := n.GetAttribute()[0]
	var t *tensor
	switch a.GetName() {
	case "value":
		var err error
		if t, err = tensorFromProto(a.GetT()); err != nil {
			return nil, err
		}
	case "value_float":
		t = floatTensor([]int{}, []float32{a.GetF()})
	case "value_floats":
		t = floatTensor([]int{len(a.GetFloats())}, append([]float32(nil), a.GetFloats()...))
	case "value_int":
		t = intTensor([]int{}, []int64{a.GetI()})
	case "value_ints":
		t = intTensor([]int{len(a.GetInts())}, append([]int64(nil), a.GetInts()...))
	default:
		return nil, fmt.Errorf("unsupported attribute %q", a.GetName())
	}
	return func(context.Context, []*tensor) ([]*tensor, error) { return one(t) }, nil
}

func buildConstantOfShape(n *onnxpb.NodeProto, _ int64) (kernel, error) {
	if err := onlyAttrs(n, "value"); err != nil {
		return nil, err
	}
	fill := floatTensor([]int{1}, []float32{0})
	if a := attr(n, "value"); a != nil {
		t, err := tensorFromProto(a.GetT())
		if err != nil {
			return nil, err
		}
		if t.size() != 1 {
			return nil, fmt.Errorf("value has %d elements, want 1", t.size())
		}
		fill = t
	}
	return func(_ context.Context, in []*tensor) ([]*tensor, error) {
		if err := need(in, 1); err != nil {
			return nil, err
		}
		dims, err := in[0].ints()
		if err != nil {
			return nil, err
		}
		shape := make([]int, len(dims))
		for k, d := range dims {
			if d < 0 {
				return nil, fmt.Errorf("negative dimension in %v", dims)
			}
			shape[k] = int(d)
		}
		r := newTensor(fill.dt, shape)
		if fill.dt == float32T {
			for k := range r.f {
				r.f[k] = fill.f[0]
			}
		} else {
			for k := range r.i {
				r.i[k] = fill.i[0]
			}
		}
		return one(r)
	}, nil
}

func buildExpand(n *onnxpb.NodeProto, _ int64) (kernel, error) {
	if err := onlyAttrs(n); err != nil {
		return nil, err
	}
	return func(_ context.Context, in []*tensor) ([]*tensor, error) {
		if err := need(in, 2); err != nil {
			return nil, err
		}
		dims, err := in[1].ints()
		if err != nil {
			return nil, err
		}
		want := make([]int, len(dims))
		for k, d := range dims {
			want[k] = int(d)
		}
		shape, err := broadcastShapes(in[0].shape, want)
		if err != nil {
			return nil, err
		}
		return one(broadcastTo(in[0], shape))
	}, nil
}

func buildRange(n *onnxpb.NodeProto, _ int64) (kernel, error) {
	if err := onlyAttrs(n); err != nil {
		return nil, err
	}
	return func(_ context.Context, in []*tensor) ([]*tensor, error) {
		if err := need(in, 3); err != nil {
			return nil, err
		}
		s, l, d := in[0], in[1], in[2]
		if s.size() != 1 || l.size() != 1 || d.size() != 1 || s.dt != l.dt || s.dt != d.dt {
			return nil, errors.New("start, limit and delta must be scalars of one type")
		}
		if s.dt == float32T {
			st, li, de := s.f[0], l.f[0], d.f[0]
			if de == 0 {
				return nil, errors.New("delta 0")
			}
			cnt := max(int(math.Ceil(float64((li-st)/de))), 0)
			r := newTensor(float32T, []int{cnt})
			for k := range r.f {
				r.f[k] = st + float32(k)*de
			}
			return one(r)
		}
		st, li, de := s.i[0], l.i[0], d.i[0]
		if de == 0 {
			return nil, errors.New("delta 0")
		}
		cnt := int64(0)
		if de > 0 && li > st {
			cnt = (li - st + de - 1) / de
		} else if de < 0 && li < st {
			cnt = (st - li - de - 1) / -de
		}
		r := newTensor(s.dt, []int{int(cnt)})
		for k := range r.i {
			r.i[k] = st + int64(k)*de
		}
		return one(r)
	}, nil
}

// reduceBuilder covers ReduceSum/Prod/Max/Min/Mean with axes either as an
// attribute (most ops before opset 18) or as input 1.
func reduceBuilder(kind string) builder {
	return func(n *onnxpb.NodeProto, _ int64) (kernel, error) {
		if err := onlyAttrs(n, "axes", "keepdims", "noop_with_empty_axes"); err != nil {
			return nil, err
		}
		attrAxes, _ := attrInts(n, "axes")
		keep := attrInt(n, "keepdims", 1) != 0
		noop := attrInt(n, "noop_with_empty_axes", 0) != 0
		return func(_ context.Context, in []*tensor) ([]*tensor, error) {
			if err := need(in, 1); err != nil {
				return nil, err
			}
			x := in[0]
			axes := attrAxes
			if t := opt(in, 1); t != nil {
				a, err := t.ints()
				if err != nil {
					return nil, err
				}
				axes = a
			}
			if len(axes) == 0 && noop {
				return one(x)
			}
			red := make([]bool, len(x.shape))
			for _, v := range axes {
				a, err := normAxis(v, len(x.shape))
				if err != nil {
					return nil, err
				}
				red[a] = true
			}
			if len(axes) == 0 {
				for k := range red {
					red[k] = true
				}
			}
			keptShape := make([]int, len(x.shape))
			for k, d := range x.shape {
				keptShape[k] = d
				if red[k] {
					keptShape[k] = 1
				}
			}
			ks := strides(keptShape)
			acc := make([]float64, numel(keptShape))
			cnt := make([]int, len(acc))
			forEachIndex(x.shape, func(j int, idx []int) {
				o := 0
				for d, v := range idx {
					if !red[d] {
						o += v * ks[d]
					}
				}
				v := elem(x, j)
				switch {
				case cnt[o] == 0:
					acc[o] = v
				case kind == "sum" || kind == "mean":
					acc[o] += v
				case kind == "prod":
					acc[o] *= v
				case kind == "max":
					acc[o] = max(acc[o], v)
				case kind == "min":
					acc[o] = min(acc[o], v)
				}
				cnt[o]++
			})
			shape := keptShape
			if !keep {
				shape = []int{}
				for k, d := range x.shape {
					if !red[k] {
						shape = append(shape, d)
					}
				}
			}
			r := newTensor(x.dt, shape)
			for o, v := range acc {
				if cnt[o] == 0 {
					switch kind {
					case "prod":
						v = 1
					case "max", "min":
						return nil, errors.New("reduction over an empty set")
					}
				}
				if kind == "mean" && cnt[o] > 0 {
					v /= float64(cnt[o])
				}
				if r.dt == float32T {
					r.f[o] = float32(v)
				} else {
					r.i[o] = int64(v)
				}
			}
			return one(r)
		}, nil
	}
}
