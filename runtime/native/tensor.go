package native

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/callwatch/callwatch/runtime/onnxpb"
)

// dtype is the element type of a tensor. Integer and boolean types share
// int64 storage so that shape arithmetic needs one code path; the tag
// records what the graph declared.
type dtype uint8

const (
	float32T dtype = iota + 1
	int64T
	int32T
	boolT
)

func (d dtype) String() string {
	switch d {
	case float32T:
		return "float32"
	case int64T:
		return "int64"
	case int32T:
		return "int32"
	case boolT:
		return "bool"
	}
	return fmt.Sprintf("dtype(%d)", uint8(d))
}

func (d dtype) isInt() bool { return d == int64T || d == int32T || d == boolT }

// dtypeFromONNX maps a TensorProto.DataType to a dtype.
func dtypeFromONNX(t int32) (dtype, error) {
	switch onnxpb.TensorProto_DataType(t) {
	case onnxpb.TensorProto_FLOAT:
		return float32T, nil
	case onnxpb.TensorProto_INT64:
		return int64T, nil
	case onnxpb.TensorProto_INT32:
		return int32T, nil
	case onnxpb.TensorProto_BOOL:
		return boolT, nil
	}
	return 0, fmt.Errorf("unsupported tensor element type %s", onnxpb.TensorProto_DataType(t))
}

// tensor is an immutable n-dimensional array: kernels never write into
// their inputs, so tensors (weights included) can be shared freely between
// concurrent runs and aliased by Reshape-like ops.
type tensor struct {
	dt    dtype
	shape []int
	f     []float32 // float32T
	i     []int64   // int64T, int32T, boolT
}

func numel(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

func (t *tensor) size() int { return numel(t.shape) }

// maxElements caps one tensor (4 GiB of float32). Shapes come from the
// model file, so a corrupt one could otherwise ask for more memory than
// exists, and running out of memory kills the process instead of failing.
const maxElements = 1 << 30

// errTooLarge is raised (as a panic, which exec turns into the node's error)
// by newTensor for shapes over maxElements.
type errTooLarge struct{ shape []int }

func (e errTooLarge) Error() string {
	return fmt.Sprintf("tensor of shape %v is over the %d-element limit (corrupt model?)", e.shape, maxElements)
}

func newTensor(dt dtype, shape []int) *tensor {
	n, ok := boundedNumel(shape, maxElements)
	if !ok {
		panic(errTooLarge{shape})
	}
	t := &tensor{dt: dt, shape: shape}
	if dt == float32T {
		t.f = make([]float32, n)
	} else {
		t.i = make([]int64, n)
	}
	return t
}

func floatTensor(shape []int, f []float32) *tensor { return &tensor{dt: float32T, shape: shape, f: f} }
func intTensor(shape []int, v []int64) *tensor     { return &tensor{dt: int64T, shape: shape, i: v} }

// view returns a tensor sharing t's data with another shape.
func (t *tensor) view(shape []int) *tensor {
	return &tensor{dt: t.dt, shape: shape, f: t.f, i: t.i}
}

// ints returns the values of an integer tensor (shape operands).
func (t *tensor) ints() ([]int64, error) {
	if !t.dt.isInt() {
		return nil, fmt.Errorf("want an integer tensor, got %s", t.dt)
	}
	return t.i, nil
}

// tensorFromProto decodes an initializer or a Constant value.
func tensorFromProto(p *onnxpb.TensorProto) (*tensor, error) {
	if p.GetDataLocation() == onnxpb.TensorProto_EXTERNAL || len(p.GetExternalData()) > 0 {
		return nil, fmt.Errorf("tensor %q: external data is not supported", p.GetName())
	}
	dt, err := dtypeFromONNX(p.GetDataType())
	if err != nil {
		return nil, fmt.Errorf("tensor %q: %w", p.GetName(), err)
	}
	shape := make([]int, len(p.GetDims()))
	for k, d := range p.GetDims() {
		if d < 0 {
			return nil, fmt.Errorf("tensor %q: negative dimension %d", p.GetName(), d)
		}
		shape[k] = int(d)
	}
	raw := p.GetRawData()
	width := map[dtype]int{float32T: 4, int64T: 8, int32T: 4, boolT: 1}[dt]
	// Count the values the file actually holds and check the shape against
	// them before allocating: a corrupt dims field must not make a 20 KB file
	// ask for terabytes (an out-of-memory crash cannot be recovered).
	var have int
	switch {
	case raw != nil:
		have = len(raw) / width
	case dt == float32T:
		have = len(p.GetFloatData())
	case dt == int64T:
		have = len(p.GetInt64Data())
	default:
		have = len(p.GetInt32Data())
	}
	n, ok := boundedNumel(shape, have)
	if !ok {
		return nil, fmt.Errorf("tensor %q: shape %v needs more values than the %d stored", p.GetName(), shape, have)
	}
	t := newTensor(dt, shape)
	bad := func(got int) error {
		return fmt.Errorf("tensor %q: %d values for shape %v", p.GetName(), got, shape)
	}
	switch {
	case raw != nil:
		if len(raw) != n*width {
			return nil, fmt.Errorf("tensor %q: %d raw bytes for %d %s values", p.GetName(), len(raw), n, dt)
		}
		for k := 0; k < n; k++ {
			switch dt {
			case float32T:
				t.f[k] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*k:]))
			case int64T:
				t.i[k] = int64(binary.LittleEndian.Uint64(raw[8*k:]))
			case int32T:
				t.i[k] = int64(int32(binary.LittleEndian.Uint32(raw[4*k:])))
			case boolT:
				if raw[k] != 0 {
					t.i[k] = 1
				}
			}
		}
	case dt == float32T:
		if len(p.GetFloatData()) != n {
			return nil, bad(len(p.GetFloatData()))
		}
		copy(t.f, p.GetFloatData())
	case dt == int64T:
		if len(p.GetInt64Data()) != n {
			return nil, bad(len(p.GetInt64Data()))
		}
		copy(t.i, p.GetInt64Data())
	default: // int32 and bool live in int32_data
		if len(p.GetInt32Data()) != n {
			return nil, bad(len(p.GetInt32Data()))
		}
		for k, v := range p.GetInt32Data() {
			t.i[k] = int64(v)
		}
	}
	return t, nil
}

// boundedNumel is the element count of shape, or false when it exceeds
// limit (checked as it multiplies, so it cannot overflow).
func boundedNumel(shape []int, limit int) (int, bool) {
	for _, d := range shape {
		if d == 0 {
			return 0, true
		}
	}
	n := 1
	for _, d := range shape {
		if d > limit || n > limit/d {
			return 0, false
		}
		n *= d
	}
	return n, n <= limit
}

// normAxis resolves a possibly negative axis against rank r.
func normAxis(axis int64, r int) (int, error) {
	a := int(axis)
	if a < 0 {
		a += r
	}
	if a < 0 || a >= r {
		return 0, fmt.Errorf("axis %d out of range for rank %d", axis, r)
	}
	return a, nil
}

// strides returns row-major strides for shape.
func strides(shape []int) []int {
	s := make([]int, len(shape))
	acc := 1
	for k := len(shape) - 1; k >= 0; k-- {
		s[k] = acc
		acc *= shape[k]
	}
	return s
}

// broadcastShapes applies numpy broadcasting to a list of shapes.
func broadcastShapes(shapes ...[]int) ([]int, error) {
	r := 0
	for _, s := range shapes {
		r = max(r, len(s))
	}
	out := make([]int, r)
	for k := range out {
		out[k] = 1
	}
	for _, s := range shapes {
		off := r - len(s)
		for k, d := range s {
			switch {
			case out[off+k] == d || d == 1:
			case out[off+k] == 1:
				out[off+k] = d
			default:
				return nil, fmt.Errorf("shapes %v cannot be broadcast together", shapes)
			}
		}
	}
	return out, nil
}

// bcastOffsets maps each flat index of out to the flat index of an input of
// shape in broadcast to out. It returns nil when the shapes are equal (the
// identity map).
func bcastOffsets(out, in []int) []int {
	if equalShape(out, in) {
		return nil
	}
	n := numel(out)
	offs := make([]int, n)
	inStr := make([]int, len(out))
	s := strides(in)
	off := len(out) - len(in)
	for k := range in {
		if in[k] != 1 {
			inStr[off+k] = s[k]
		}
	}
	idx := make([]int, len(out))
	cur := 0
	for j := 0; j < n; j++ {
		offs[j] = cur
		for k := len(out) - 1; k >= 0; k-- {
			idx[k]++
			cur += inStr[k]
			if idx[k] < out[k] {
				break
			}
			cur -= inStr[k] * idx[k]
			idx[k] = 0
		}
	}
	return offs
}

func at(offs []int, j int) int {
	if offs == nil {
		return j
	}
	return offs[j]
}

func equalShape(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if a[k] != b[k] {
			return false
		}
	}
	return true
}

// broadcastTo copies t into shape out (which t must broadcast to).
func broadcastTo(t *tensor, out []int) *tensor {
	if equalShape(t.shape, out) {
		return t
	}
	offs := bcastOffsets(out, t.shape)
	r := newTensor(t.dt, out)
	for j := range offs {
		if t.dt == float32T {
			r.f[j] = t.f[offs[j]]
		} else {
			r.i[j] = t.i[offs[j]]
		}
	}
	return r
}
