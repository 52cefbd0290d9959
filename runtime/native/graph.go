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

// compile turns a GraphProto into a graph: slots for weights and inputs,
// checks of the declared inputs and outputs, a kernel per node (rejecting
// unsupported ops and attributes), topological order, slots per step,
// constant folding and free lists. Each pass is a function below; each relies
// on what the earlier ones established.
func compile(gp *onnxpb.GraphProto, opset int64, inputs, outputs []string) (*graph, error) {
	c := &compiler{gp: gp, nodes: gp.GetNode(), inputs: inputs, slot: map[string]int{}, consts: map[int]*tensor{}, g: &graph{}}
	if err := c.loadInitializers(); err != nil {
		return nil, err
	}
	if err := c.checkInputs(); err != nil {
		return nil, err
	}
	if err := c.checkOutputs(outputs); err != nil {
		return nil, err
	}
	if err := c.buildKernels(opset); err != nil {
		return nil, err
	}
	if err := c.sortTopologically(); err != nil {
		return nil, err
	}
	c.assignSlots()
	if err := c.resolveOutputs(outputs); err != nil {
		return nil, err
	}
	if err := c.foldConstants(); err != nil {
		return nil, err
	}
	c.planFrees()
	return c.g, nil
}

// compiler holds what the passes of compile share.
type compiler struct {
	gp     *onnxpb.GraphProto
	nodes  []*onnxpb.NodeProto
	inputs []string // the contract's input names, in feeding order
	slot   map[string]int
	consts map[int]*tensor // initializers, by slot, until foldConstants
	steps  []step          // one per node, in file order
	order  []int           // node indices, topologically sorted
	g      *graph
}

// slotOf gives every value name one index into a run's value table, so that
// a run looks values up by index instead of by name.
func (c *compiler) slotOf(name string) int {
	if s, ok := c.slot[name]; ok {
		return s
	}
	c.slot[name] = c.g.nslots
	c.g.nslots++
	return c.g.nslots - 1
}

// loadInitializers decodes the weights first: they are constants every later
// pass (input checks, folding, LSTM prepacking) must recognise.
func (c *compiler) loadInitializers() error {
	for _, ip := range c.gp.GetInitializer() {
		t, err := tensorFromProto(ip)
		if err != nil {
			return fmt.Errorf("initializer: %w", err)
		}
		c.consts[c.slotOf(ip.GetName())] = t
	}
	return nil
}

// checkInputs maps the contract's inputs to slots and refuses a graph input
// that is neither fed by Run nor a weight, which no run could ever provide.
// (Types and shapes were checked by runtime.SignatureOf.)
func (c *compiler) checkInputs() error {
	declared := map[string]bool{}
	for _, vi := range c.gp.GetInput() {
		declared[vi.GetName()] = true
	}
	for _, name := range c.inputs {
		if !declared[name] {
			return fmt.Errorf("graph has no input %q (want inputs %v)", name, c.inputs)
		}
		c.g.inSlots = append(c.g.inSlots, c.slotOf(name))
	}
	for _, vi := range c.gp.GetInput() {
		s := c.slotOf(vi.GetName())
		if c.consts[s] == nil && !contains(c.inputs, vi.GetName()) {
			return fmt.Errorf("graph input %q is not one of %v", vi.GetName(), c.inputs)
		}
	}
	return nil
}

// checkOutputs makes sure the graph declares every output the contract
// returns, so a missing one is reported by name before anything runs.
func (c *compiler) checkOutputs(outputs []string) error {
	declared := map[string]bool{}
	for _, vi := range c.gp.GetOutput() {
		declared[vi.GetName()] = true
	}
	for _, name := range outputs {
		if !declared[name] {
			return fmt.Errorf("graph has no output %q (want outputs %v)", name, outputs)
		}
	}
	return nil
}

// buildKernels makes one kernel per node before any wiring is checked, so
// that an unsupported op or attribute is reported even in a graph that is
// otherwise malformed.
func (c *compiler) buildKernels(opset int64) error {
	c.steps = make([]step, len(c.nodes))
	for k, n := range c.nodes {
		name := n.GetName()
		if name == "" {
			name = fmt.Sprintf("#%d", k)
		}
		if d := n.GetDomain(); d != "" && d != "ai.onnx" {
			return &UnsupportedOpError{Op: n.GetOpType(), Domain: d, Node: name}
		}
		build, ok := builders[n.GetOpType()]
		if !ok {
			return &UnsupportedOpError{Op: n.GetOpType(), Node: name}
		}
		kern, err := build(n, opset)
		if err != nil {
			return fmt.Errorf("node %q (%s): %w", name, n.GetOpType(), err)
		}
		c.steps[k] = step{node: n, name: name, op: n.GetOpType(), k: kern}
	}
	return nil
}

// sortTopologically orders the nodes so that each runs after its producers
// (Kahn's algorithm): exporters emit nodes sorted, but the spec does not
// promise it. It also refuses values produced twice, values nobody provides,
// and cycles.
func (c *compiler) sortTopologically() error {
	producer := map[string]int{}
	for k, n := range c.nodes {
		for _, o := range n.GetOutput() {
			if o == "" {
				continue
			}
			if _, dup := producer[o]; dup {
				return fmt.Errorf("value %q is produced twice", o)
			}
			producer[o] = k
		}
	}
	indeg := make([]int, len(c.nodes))
	users := make([][]int, len(c.nodes))
	for k, n := range c.nodes {
		for _, i := range n.GetInput() {
			if i == "" {
				continue
			}
			if p, ok := producer[i]; ok {
				indeg[k]++
				users[p] = append(users[p], k)
				continue
			}
			if s, ok := c.slot[i]; !ok || (c.consts[s] == nil && !contains(c.inputs, i)) {
				return fmt.Errorf("node %q reads %q, which no node, initializer or input provides", c.steps[k].name, i)
			}
		}
	}
	for k := range c.nodes {
		if indeg[k] == 0 {
			c.order = append(c.order, k)
		}
	}
	for q := 0; q < len(c.order); q++ {
		for _, u := range users[c.order[q]] {
			if indeg[u]--; indeg[u] == 0 {
				c.order = append(c.order, u)
			}
		}
	}
	if len(c.order) != len(c.nodes) {
		return errors.New("graph has a cycle")
	}
	return nil
}

// assignSlots turns each step's input and output names into slots (-1 for an
// absent optional one), in run order, so that a run never looks up a name.
func (c *compiler) assignSlots() {
	slots := func(names []string) []int {
		var out []int
		for _, n := range names {
			if n == "" {
				out = append(out, -1)
			} else {
				out = append(out, c.slotOf(n))
			}
		}
		return out
	}
	for _, k := range c.order {
		st := &c.steps[k]
		st.in = slots(c.nodes[k].GetInput())
		st.out = slots(c.nodes[k].GetOutput())
	}
}

// resolveOutputs records where each contract output will be found after a
// run; an output no node, initializer or input provides is refused here.
func (c *compiler) resolveOutputs(outputs []string) error {
	for _, name := range outputs {
		s, ok := c.slot[name]
		if !ok {
			return fmt.Errorf("output %q is not produced by any node", name)
		}
		c.g.outSlots = append(c.g.outSlots, s)
		c.g.outNames = append(c.g.outNames, name)
	}
	return nil
}

// foldConstants runs, once at load, every node whose inputs are all constant
// (Constant nodes, shape arithmetic on initializers, ...), so that a run only
// does the work that depends on its inputs; the remaining steps become the
// graph's program. An LSTM with constant weights gets its prepacked kernel.
func (c *compiler) foldConstants() error {
	g := c.g
	g.consts = make([]*tensor, g.nslots)
	for s, t := range c.consts {
		g.consts[s] = t
	}
	read := c.readSlots()
	for _, k := range c.order {
		st := c.steps[k]
		if !allConst(st.in, g.consts) {
			if st.op == "LSTM" {
				st.k = prepackIfConst(st, g.consts, read)
			}
			g.steps = append(g.steps, st)
			continue
		}
		outs, err := g.exec(context.Background(), st, g.consts)
		if err != nil {
			return err
		}
		for j, s := range st.out {
			if s >= 0 {
				g.consts[s] = outs[j]
			}
		}
	}
	return nil
}

// readSlots lists the slots something reads (a step or the graph's outputs),
// so that an LSTM whose Y nobody reads (PyTorch exports read Y_h) can skip
// writing it.
func (c *compiler) readSlots() map[int]bool {
	read := map[int]bool{}
	for _, st := range c.steps {
		for _, s := range st.in {
			read[s] = true
		}
	}
	for _, s := range c.g.outSlots {
		read[s] = true
	}
	return read
}

// allConst reports whether every present input of a step is a constant, i.e.
// whether the step can be folded at load.
func allConst(in []int, consts []*tensor) bool {
	for _, s := range in {
		if s >= 0 && consts[s] == nil {
			return false
		}
	}
	return true
}

// prepackIfConst returns an LSTM step's kernel with its weights W and R
// prepacked when both are constant (the usual case), else the generic one:
// the recurrence then runs on transposed weights laid out once.
func prepackIfConst(st step, consts []*tensor, read map[int]bool) kernel {
	if len(st.in) > 2 && st.in[1] >= 0 && st.in[2] >= 0 && consts[st.in[1]] != nil && consts[st.in[2]] != nil {
		needY := len(st.out) > 0 && st.out[0] >= 0 && read[st.out[0]]
		if k := prepackLSTM(st.node, consts[st.in[1]], consts[st.in[2]], needY); k != nil {
			return k
		}
	}
	return st.k
}

// planFrees drops each value from a run's table after its last reader, so
// that a long run does not keep every intermediate alive. Constants and graph
// outputs are never dropped (dropping an input of Run only forgets the
// table's reference to the caller's tensor).
func (c *compiler) planFrees() {
	g := c.g
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
