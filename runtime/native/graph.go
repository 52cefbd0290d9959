package native

import (
	"context"
	"errors"
	"fmt"

	"github.com/callwatch/callwatch/runtime/onnxpb"
)

// kernel computes one node. Absent optional inputs are nil. A kernel must
// not modify its inputs.
type kernel func(ctx context.Context, in []*tensor) ([]*tensor, error)

// step is one compiled node: value slots for its inputs and outputs (-1 for
// an absent optional one).
type step struct {
	node     *onnxpb.NodeProto
	name, op string
	k        kernel
	in, out  []int
	// free lists slots whose last reader is this step, so that a long run
	// does not keep every intermediate alive.
	free []int
}

// graph is the compiled, immutable form of a GraphProto.
type graph struct {
	nslots   int
	consts   []*tensor // per slot: initializers and folded constants, else nil
	steps    []step
	inSlots  []int
	outSlots []int
	outNames []string
}

// compile resolves names to slots, orders nodes topologically, builds a
// kernel per node (rejecting unsupported ops and attributes), and folds the
// nodes that depend on constants only.
func compile(gp *onnxpb.GraphProto, opset int64, inputs, outputs []string) (*graph, error) {
	slot := map[string]int{}
	g := &graph{}
	get := func(name string) int {
		if s, ok := slot[name]; ok {
			return s
		}
		slot[name] = g.nslots
		g.nslots++
		return g.nslots - 1
	}
	var consts = map[int]*tensor{}
	for _, ip := range gp.GetInitializer() {
		t, err := tensorFromProto(ip)
		if err != nil {
			return nil, fmt.Errorf("initializer: %w", err)
		}
		consts[get(ip.GetName())] = t
	}
	declared := map[string]*onnxpb.ValueInfoProto{}
	for _, vi := range gp.GetInput() {
		declared[vi.GetName()] = vi
	}
	// Types and shapes were checked by runtime.SignatureOf.
	for _, name := range inputs {
		if _, ok := declared[name]; !ok {
			return nil, fmt.Errorf("graph has no input %q (want inputs %v)", name, inputs)
		}
		g.inSlots = append(g.inSlots, get(name))
	}
	for _, vi := range gp.GetInput() {
		s := get(vi.GetName())
		if consts[s] == nil && !contains(inputs, vi.GetName()) {
			return nil, fmt.Errorf("graph input %q is not one of %v", vi.GetName(), inputs)
		}
	}
	declaredOut := map[string]bool{}
	for _, vi := range gp.GetOutput() {
		declaredOut[vi.GetName()] = true
	}
	for _, name := range outputs {
		if !declaredOut[name] {
			return nil, fmt.Errorf("graph has no output %q (want outputs %v)", name, outputs)
		}
	}

	// Build kernels first so that an unsupported op is reported even in a
	// graph that is otherwise malformed.
	nodes := gp.GetNode()
	steps := make([]step, len(nodes))
	for k, n := range nodes {
		name := n.GetName()
		if name == "" {
			name = fmt.Sprintf("#%d", k)
		}
		if d := n.GetDomain(); d != "" && d != "ai.onnx" {
			return nil, &UnsupportedOpError{Op: n.GetOpType(), Domain: d, Node: name}
		}
		build, ok := builders[n.GetOpType()]
		if !ok {
			return nil, &UnsupportedOpError{Op: n.GetOpType(), Node: name}
		}
		kern, err := build(n, opset)
		if err != nil {
			return nil, fmt.Errorf("node %q (%s): %w", name, n.GetOpType(), err)
		}
		steps[k] = step{node: n, name: name, op: n.GetOpType(), k: kern}
	}

	// Topological order (Kahn): exporters emit nodes sorted, but the spec
	// does not promise it.
	producer := map[string]int{}
	for k, n := range nodes {
		for _, o := range n.GetOutput() {
			if o == "" {
				continue
			}
			if _, dup := producer[o]; dup {
				return nil, fmt.Errorf("value %q is produced twice", o)
			}
			producer[o] = k
		}
	}
	indeg := make([]int, len(nodes))
	users := make([][]int, len(nodes))
	for k, n := range nodes {
		for _, i := range n.GetInput() {
			if i == "" {
				continue
			}
			if p, ok := producer[i]; ok {
				indeg[k]++
				users[p] = append(users[p], k)
				continue
			}
			if s, ok := slot[i]; !ok || (consts[s] == nil && !contains(inputs, i)) {
				return nil, fmt.Errorf("node %q reads %q, which no node, initializer or input provides", steps[k].name, i)
			}
		}
	}
	var order []int
	for k := range nodes {
		if indeg[k] == 0 {
			order = append(order, k)
		}
	}
	for q := 0; q < len(order); q++ {
		for _, u := range users[order[q]] {
			if indeg[u]--; indeg[u] == 0 {
				order = append(order, u)
			}
		}
	}
	if len(order) != len(nodes) {
		return nil, errors.New("graph has a cycle")
	}

	for _, k := range order {
		st := &steps[k]
		for _, i := range nodes[k].GetInput() {
			if i == "" {
				st.in = append(st.in, -1)
			} else {
				st.in = append(st.in, get(i))
			}
		}
		for _, o := range nodes[k].GetOutput() {
			if o == "" {
				st.out = append(st.out, -1)
			} else {
				st.out = append(st.out, get(o))
			}
		}
	}
	for _, name := range outputs {
		s, ok := slot[name]
		if !ok {
			return nil, fmt.Errorf("output %q is not produced by any node", name)
		}
		g.outSlots = append(g.outSlots, s)
		g.outNames = append(g.outNames, name)
	}

	// Fold nodes whose inputs are all constant (Constant nodes, shape
	// arithmetic on initializers, ...), once, at load.
	g.consts = make([]*tensor, g.nslots)
	for s, t := range consts {
		g.consts[s] = t
	}
	// Slots something reads: a later step or the graph's outputs. An LSTM
	// whose Y nobody reads (PyTorch exports read Y_h) skips writing it.
	read := map[int]bool{}
	for _, st := range steps {
		for _, s := range st.in {
			read[s] = true
		}
	}
	for _, s := range g.outSlots {
		read[s] = true
	}
	for _, k := range order {
		st := steps[k]
		foldable := true
		for _, s := range st.in {
			if s >= 0 && g.consts[s] == nil {
				foldable = false
				break
			}
		}
		if !foldable {
			if st.op == "LSTM" && len(st.in) > 2 && st.in[1] >= 0 && st.in[2] >= 0 &&
				g.consts[st.in[1]] != nil && g.consts[st.in[2]] != nil {
				needY := len(st.out) > 0 && st.out[0] >= 0 && read[st.out[0]]
				if k := prepackLSTM(st.node, g.consts[st.in[1]], g.consts[st.in[2]], needY); k != nil {
					st.k = k
				}
			}
			g.steps = append(g.steps, st)
			continue
		}
		outs, err := g.exec(context.Background(), st, g.consts)
		if err != nil {
			return nil, err
		}
		for j, s := range st.out {
			if s >= 0 {
				g.consts[s] = outs[j]
			}
		}
	}

	// Free intermediates after their last reader; never inputs of Run or
	// graph outputs.
	last := map[int]int{}
	for k, st := range g.steps {
		for _, s := range st.in {
			if s >= 0 && g.consts[s] == nil {
				last[s] = k
			}
		}
	}
	for _, s := range g.outSlots {
		delete(last, s)
	}
	for s, k := range last {
		g.steps[k].free = append(g.steps[k].free, s)
	}
	return g, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// exec runs one step against the value table vals. A kernel that panics
// (on shapes a corrupt model makes inconsistent) fails the step instead of
// the process.
func (g *graph) exec(ctx context.Context, st step, vals []*tensor) (_ []*tensor, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("native: node %q (%s): %v", st.name, st.op, r)
		}
	}()
	ins := make([]*tensor, len(st.in))
	for j, s := range st.in {
		if s < 0 {
			continue
		}
		if vals[s] == nil {
			return nil, fmt.Errorf("native: node %q (%s): input %d not computed", st.name, st.op, j)
		}
		ins[j] = vals[s]
	}
	outs, err := st.k(ctx, ins)
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			return nil, err
		}
		return nil, fmt.Errorf("native: node %q (%s): %w", st.name, st.op, err)
	}
	if len(outs) < len(st.out) {
		// Kernels return every output they define; a node may name fewer.
		return nil, fmt.Errorf("native: node %q (%s): %d outputs, node wants %d", st.name, st.op, len(outs), len(st.out))
	}
	return outs, nil
}

// run executes the graph. vals is per call, so concurrent runs share only
// the read-only constants.
func (g *graph) run(ctx context.Context, inputs []*tensor) ([]*tensor, error) {
	vals := make([]*tensor, g.nslots)
	copy(vals, g.consts)
	for k, s := range g.inSlots {
		vals[s] = inputs[k]
	}
	for _, st := range g.steps {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		outs, err := g.exec(ctx, st, vals)
		if err != nil {
			return nil, err
		}
		for j, s := range st.out {
			if s >= 0 {
				vals[s] = outs[j]
			}
		}
		for _, s := range st.free {
			vals[s] = nil
		}
	}
	res := make([]*tensor, len(g.outSlots))
	for k, s := range g.outSlots {
		if vals[s] == nil {
			return nil, fmt.Errorf("native: output %q was not computed", g.outNames[k])
		}
		res[k] = vals[s]
	}
	return res, nil
}
