package native

import (
	"context"
	"errors"
	"fmt"
	goruntime "runtime"
	"sync"

	"github.com/callwatch/callwatch/runtime/onnxpb"
)

// buildLSTM implements the ONNX LSTM operator for what PyTorch exports: one
// forward direction, layout 0, default activations (sigmoid, tanh, tanh),
// no peepholes, clip or coupled input-forget gate. Anything else is refused
// at load rather than computed differently.
//
// Inputs: X [seq,batch,E], W [1,4H,E], R [1,4H,H], B [1,8H] (Wb|Rb),
// sequence_lens [batch] (int32), initial_h, initial_c [1,batch,H], P.
// Gate order in W, R and B is i, o, f, c.
// Outputs: Y [seq,1,batch,H] (zero past each row's length), Y_h and Y_c
// [1,batch,H] at each row's last valid step.
func buildLSTM(n *onnxpb.NodeProto, _ int64) (kernel, error) {
	if err := onlyAttrs(n, "hidden_size", "direction", "activations", "clip",
		"input_forget", "layout", "activation_alpha", "activation_beta"); err != nil {
		return nil, err
	}
	if d := attrString(n, "direction", "forward"); d != "forward" {
		return nil, fmt.Errorf("direction=%q is not supported (only forward)", d)
	}
	if a := attr(n, "clip"); a != nil {
		return nil, fmt.Errorf("clip=%g is not supported", a.GetF())
	}
	if attrInt(n, "input_forget", 0) != 0 {
		return nil, errors.New("input_forget=1 is not supported")
	}
	if attrInt(n, "layout", 0) != 0 {
		return nil, errors.New("layout=1 is not supported (only layout 0: [seq, batch, ...])")
	}
	if attr(n, "activation_alpha") != nil || attr(n, "activation_beta") != nil {
		return nil, errors.New("activation_alpha/activation_beta are not supported")
	}
	if a := attr(n, "activations"); a != nil {
		want := []string{"Sigmoid", "Tanh", "Tanh"}
		got := a.GetStrings()
		ok := len(got) == 3
		for k := 0; ok && k < 3; k++ {
			ok = string(got[k]) == want[k]
		}
		if !ok {
			return nil, fmt.Errorf("activations %q are not supported (only Sigmoid, Tanh, Tanh)", got)
		}
	}
	h := int(attrInt(n, "hidden_size", 0))
	if h <= 0 {
		return nil, errors.New("missing or invalid hidden_size")
	}
	if len(n.GetInput()) > 7 && n.GetInput()[7] != "" {
		return nil, errors.New("peephole weights (input P) are not supported")
	}
	return func(ctx context.Context, in []*tensor) ([]*tensor, error) {
		return lstm(ctx, h, in, nil)
	}, nil
}

// projBlock is how many time steps of input projection are computed at once.
const projBlock = 32

// lstmPacked holds W and R transposed to [E, 4H] and [H, 4H], so that each
// gate vector is one gemvT (a row of inputs times a matrix).
type lstmPacked struct {
	wt, rt []float32
	// skipY: nothing reads Y, so it is neither allocated nor written (an
	// empty tensor stands in for it).
	skipY bool
}

func packLSTM(w, r *tensor) *lstmPacked {
	G := w.shape[1]
	return &lstmPacked{wt: transpose2(w.f, G, w.shape[2]), rt: transpose2(r.f, G, r.shape[2])}
}

// prepackLSTM returns a kernel with W and R transposed once at load, for
// the usual case where they are initializers.
func prepackLSTM(n *onnxpb.NodeProto, w, r *tensor, needY bool) kernel {
	h := int(attrInt(n, "hidden_size", 0))
	if w.dt != float32T || r.dt != float32T || !equalShape(w.shape, []int{1, 4 * h, w.shape[len(w.shape)-1]}) ||
		!equalShape(r.shape, []int{1, 4 * h, h}) {
		return nil // let the plain kernel report the shape error
	}
	p := packLSTM(w, r)
	p.skipY = !needY
	return func(ctx context.Context, in []*tensor) ([]*tensor, error) {
		return lstm(ctx, h, in, p)
	}
}

func lstm(ctx context.Context, H int, in []*tensor, pk *lstmPacked) ([]*tensor, error) {
	if err := need(in, 3); err != nil {
		return nil, err
	}
	x, w, r := in[0], in[1], in[2]
	b, lens, h0, c0 := opt(in, 3), opt(in, 4), opt(in, 5), opt(in, 6)
	if x.dt != float32T || len(x.shape) != 3 {
		return nil, fmt.Errorf("X is %s %v, want float32 [seq, batch, input]", x.dt, x.shape)
	}
	S, B, E := x.shape[0], x.shape[1], x.shape[2]
	G := 4 * H
	if !equalShape(w.shape, []int{1, G, E}) || w.dt != float32T {
		return nil, fmt.Errorf("W is %s %v, want float32 [1, %d, %d]", w.dt, w.shape, G, E)
	}
	if !equalShape(r.shape, []int{1, G, H}) || r.dt != float32T {
		return nil, fmt.Errorf("R is %s %v, want float32 [1, %d, %d]", r.dt, r.shape, G, H)
	}
	bias := make([]float32, G)
	if b != nil {
		if !equalShape(b.shape, []int{1, 2 * G}) || b.dt != float32T {
			return nil, fmt.Errorf("B is %s %v, want float32 [1, %d]", b.dt, b.shape, 2*G)
		}
		for g := range bias {
			bias[g] = b.f[g] + b.f[G+g]
		}
	}
	seqLen := make([]int, B)
	for k := range seqLen {
		seqLen[k] = S
	}
	if lens != nil {
		if lens.size() != B || !lens.dt.isInt() {
			return nil, fmt.Errorf("sequence_lens is %s %v, want [%d] integers", lens.dt, lens.shape, B)
		}
		for k, v := range lens.i {
			if v < 0 || v > int64(S) {
				return nil, fmt.Errorf("sequence_lens[%d] = %d out of range [0, %d]", k, v, S)
			}
			seqLen[k] = int(v)
		}
	}
	hs, cs := make([]float32, B*H), make([]float32, B*H)
	for _, st := range []struct {
		name string
		t    *tensor
		dst  []float32
	}{{"initial_h", h0, hs}, {"initial_c", c0, cs}} {
		if st.t == nil {
			continue
		}
		if !equalShape(st.t.shape, []int{1, B, H}) || st.t.dt != float32T {
			return nil, fmt.Errorf("%s is %s %v, want float32 [1, %d, %d]", st.name, st.t.dt, st.t.shape, B, H)
		}
		copy(st.dst, st.t.f)
	}

	if pk == nil {
		pk = packLSTM(w, r)
	}
	var y *tensor
	if pk.skipY {
		y = floatTensor([]int{0, 1, B, H}, nil)
	} else {
		y = newTensor(float32T, []int{S, 1, B, H})
	}
	st := &lstmState{x: x.f, y: y.f, hs: hs, cs: cs, bias: bias, seqLen: seqLen, pk: pk, B: B, E: E, H: H}
	// Rows are independent through time, so disjoint groups of rows run the
	// whole sequence on their own goroutines with nothing shared but reads:
	// one large batch (FeedBatch of many calls, a served batch) uses every
	// core. Groups keep at least minGroupRows rows so that gemmT4's four-row
	// blocks stay full.
	groups := min(goruntime.GOMAXPROCS(0), B/minGroupRows)
	if groups <= 1 {
		if err := st.rows(ctx, 0, B); err != nil {
			return nil, err
		}
	} else {
		errs := make([]error, groups)
		var wg sync.WaitGroup
		for g := range groups {
			// Multiples of 4 rows per group, the remainder to the last.
			per := (B / groups) &^ 3
			lo, hi := g*per, (g+1)*per
			if g == groups-1 {
				hi = B
			}
			wg.Go(func() {
				defer func() {
					if r := recover(); r != nil {
						errs[g] = fmt.Errorf("LSTM rows %d..%d: %v", lo, hi, r)
					}
				}()
				errs[g] = st.rows(ctx, lo, hi)
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return nil, err
		}
	}
	return []*tensor{y, floatTensor([]int{1, B, H}, hs), floatTensor([]int{1, B, H}, cs)}, nil
}

// minGroupRows is the fewest batch rows worth a goroutine of their own.
const minGroupRows = 8

// lstmState is one LSTM run's inputs and outputs; rows writes only the rows
// it is given, so several rows calls may run at once on disjoint ranges.
type lstmState struct {
	x, y, hs, cs, bias []float32
	seqLen             []int
	pk                 *lstmPacked
	B, E, H            int
}

// rows runs batch rows [lo, hi) through the whole sequence.
func (st *lstmState) rows(ctx context.Context, lo, hi int) error {
	B, E, H := st.B, st.E, st.H
	G := 4 * H
	n := hi - lo
	maxLen := 0
	for _, l := range st.seqLen[lo:hi] {
		maxLen = max(maxLen, l)
	}
	if maxLen == 0 {
		return nil
	}
	// The input projection proj = X·Wᵀ + Wb + Rb is one matrix product per
	// block of projBlock steps, over every (step, row) inside its row's
	// length: the block's rows share the loads of Wᵀ, and the buffer stays
	// small (a whole [seq, batch, 4H] projection is 32 MB at batch 32, seq
	// 512) and in cache for the recurrence that reads it.
	tb := min(maxLen, projBlock)
	proj := make([]float32, tb*n*G)
	rows := make([]int, 0, tb*n) // flat (step, row) indices that need a projection
	xrow := func(r int) []float32 { return st.x[r*E : (r+1)*E] }

	gates, tc := make([]float32, n*G), make([]float32, H)
	grow := func(bb int) []float32 { return gates[(bb-lo)*G : (bb-lo+1)*G] }
	hrow := func(bb int) []float32 { return st.hs[bb*H : (bb+1)*H] }
	active := make([]int, 0, n)
	for t0 := 0; t0 < maxLen; t0 += tb {
		t1 := min(maxLen, t0+tb)
		// Flat index r = t*B + bb; its projection lives at block row
		// (t-t0)*n + (bb-lo).
		prow := func(r int) []float32 {
			t, bb := r/B, r%B
			o := ((t-t0)*n + bb - lo) * G
			return proj[o : o+G]
		}
		rows = rows[:0]
		for t := t0; t < t1; t++ {
			for bb := lo; bb < hi; bb++ {
				if t < st.seqLen[bb] {
					rows = append(rows, t*B+bb)
				}
			}
		}
		for _, r := range rows {
			copy(prow(r), st.bias)
		}
		if err := matRows(ctx, rows, prow, xrow, st.pk.wt); err != nil {
			return err
		}
		for t := t0; t < t1; t++ {
			if err := ctx.Err(); err != nil {
				return err
			}
			// Rows past their length keep their state; their Y stays zero.
			active = active[:0]
			for bb := lo; bb < hi; bb++ {
				if t < st.seqLen[bb] {
					active = append(active, bb)
					copy(grow(bb), prow(t*B+bb))
				}
			}
			// Every row's gates read the old h before any row updates it.
			if err := matRows(nil, active, grow, hrow, st.pk.rt); err != nil {
				return err
			}
			for _, bb := range active {
				g, hr, cr := grow(bb), hrow(bb), st.cs[bb*H:(bb+1)*H]
				sigmoidVec(g[:3*H], g[:3*H]) // i, o, f
				tanhVec(g[3*H:], g[3*H:])    // c̃
				for j := 0; j < H; j++ {
					cr[j] = g[2*H+j]*cr[j] + g[j]*g[3*H+j]
				}
				tanhVec(tc, cr)
				for j := 0; j < H; j++ {
					hr[j] = g[H+j] * tc[j]
				}
				if st.y != nil {
					copy(st.y[(t*B+bb)*H:(t*B+bb+1)*H], hr)
				}
			}
		}
	}
	return nil
}

// matRows adds x(r)ᵀ·m to out(r) for each r in rows, four rows per kernel
// call so that they share the loads of m. A non-nil ctx is checked between
// blocks of rows.
func matRows(ctx context.Context, rows []int, out, x func(int) []float32, m []float32) error {
	k := 0
	for ; k+4 <= len(rows); k += 4 {
		if ctx != nil && k%256 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		o := [4][]float32{out(rows[k]), out(rows[k+1]), out(rows[k+2]), out(rows[k+3])}
		xs := [4][]float32{x(rows[k]), x(rows[k+1]), x(rows[k+2]), x(rows[k+3])}
		gemmT4(&o, &xs, m)
	}
	for ; k < len(rows); k++ {
		gemvT(out(rows[k]), x(rows[k]), m)
	}
	return nil
}
