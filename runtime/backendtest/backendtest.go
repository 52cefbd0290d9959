// Package backendtest is the one test body every runtime.Backend runs:
// PyTorch golden fixtures, padding invariance, state carrying, input
// validation and concurrency. Each backend's tests call Run with a factory.
package backendtest

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/callwatch/callwatch/runtime"
)

// Tolerance is the largest difference accepted against PyTorch and between
// backends on what users see: probabilities and extra outputs (family),
// absolutely. The differences measured are well under it (a few 1e-7;
// README.md, "Tests and parity", lists each check with its measured figure).
const Tolerance = 1e-5

// StateTolerance is the same on state (h, c, the pooled sums), scaled by
// max(1,|x|). State is a running accumulator, so float32 rounding of two
// GEMM kernels adds up with the sequence: a tiny model trained for the
// export round trip reached 1.1e-5 on a 40-token row. A wrong graph (gate
// order, missing lengths, a dropped bias) moves state by 1e-2 or more, so
// 1e-4 still catches it; `callwatch parity` allows 1e-3 on long real calls
// for the same reason (cmd/callwatch/parity.go).
const StateTolerance = 1e-4

// Fixtures is the format written by runtime/testdata/gen_fixtures.py and
// scripts/roundtrip.py: PyTorch's outputs for a set of inputs.
type Fixtures struct {
	Model  string `json:"model"`
	Layers int    `json:"layers"`
	Hidden int    `json:"hidden"`
	Vocab  int    `json:"vocab"`
	Cases  []Case `json:"cases"`
}

// Case is one batch with PyTorch's outputs.
type Case struct {
	Name      string    `json:"name"`
	Batch     int       `json:"batch"`
	Seq       int       `json:"seq"`
	InputIDs  []int64   `json:"input_ids"`
	Lengths   []int64   `json:"lengths"`
	H0        []float32 `json:"h0"`
	C0        []float32 `json:"c0"`
	P0        []float32 `json:"p0,omitempty"`
	Probs     []float32 `json:"probs"`
	HN        []float32 `json:"hn"`
	CN        []float32 `json:"cn"`
	PN        []float32 `json:"pn,omitempty"`
	Family    []float32 `json:"family_probs,omitempty"`
	Continues string    `json:"continues,omitempty"`
}

// named maps a contract name to the case's tensor.
func (c Case) named(name string) []float32 {
	switch name {
	case "h0":
		return c.H0
	case "c0":
		return c.C0
	case "p0":
		return c.P0
	case "hn":
		return c.HN
	case "cn":
		return c.CN
	case "pn":
		return c.PN
	case runtime.OutputFamily:
		return c.Family
	}
	return nil
}

// Input turns a case into a backend input for a model with signature sig.
func (c Case) Input(sig runtime.Signature) runtime.Input {
	in := runtime.Input{IDs: c.InputIDs, Lengths: c.Lengths, Batch: c.Batch, Seq: c.Seq}
	if c.H0 != nil {
		in.State = make([][]float32, len(sig.States))
		for k, st := range sig.States {
			in.State[k] = c.named(st.In)
		}
	}
	return in
}

// Diffs holds the largest differences of one comparison: Out over the
// probabilities and extra outputs (absolute), State over the states (scaled
// by max(1,|x|)), each with the tensor it was found in.
type Diffs struct {
	Out, State         float64
	OutWhat, StateWhat string
}

// OK reports whether both differences are within their tolerances.
func (d Diffs) OK() bool { return d.Out <= Tolerance && d.State <= StateTolerance }

func (d Diffs) String() string {
	return fmt.Sprintf("outputs %.3g (%s; tolerance %g), state %.3g scaled (%s; tolerance %g)",
		d.Out, d.OutWhat, Tolerance, d.State, d.StateWhat, StateTolerance)
}

func (d *Diffs) out(v float64, what string) {
	if v > d.Out || d.OutWhat == "" {
		d.Out, d.OutWhat = v, what
	}
}

func (d *Diffs) state(v float64, what string) {
	if v > d.State || d.StateWhat == "" {
		d.State, d.StateWhat = v, what
	}
}

// Diff compares a backend's output with the case's PyTorch outputs:
// probabilities and extra outputs absolutely, states scaled by max(1,|x|).
func (c Case) Diff(sig runtime.Signature, out runtime.Output) Diffs {
	var d Diffs
	d.out(MaxAbs(out.Probs, c.Probs), "probs")
	for k, st := range sig.States {
		want := c.named(st.Out)
		if want == nil {
			d.state(math.Inf(1), st.Out+" missing from fixtures")
			continue
		}
		d.state(MaxScaled(out.State[k], want), st.Out)
	}
	for k, e := range sig.Extras {
		want := c.named(e.Name)
		if want == nil {
			d.out(math.Inf(1), e.Name+" missing from fixtures")
			continue
		}
		d.out(MaxAbs(out.Extras[k], want), e.Name)
	}
	return d
}

// LoadFixtures reads a fixtures.json; model paths are resolved next to it.
func LoadFixtures(path string) (*Fixtures, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var f Fixtures
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(f.Cases) == 0 {
		return nil, fmt.Errorf("%s: no cases", path)
	}
	f.Model = filepath.Join(filepath.Dir(path), f.Model)
	return &f, nil
}

// MaxScaled is the largest |a[i]-b[i]| / max(1, |b[i]|): LSTM cell states of
// a trained model grow with the sequence (|c| of 50+ is common), and float32
// keeps ~7 significant digits, so states are compared relative to their size
// once they exceed 1 and absolutely below that.
func MaxScaled(a, b []float32) float64 {
	if len(a) != len(b) {
		return math.Inf(1)
	}
	m := 0.0
	for i := range a {
		d := math.Abs(float64(a[i])-float64(b[i])) / math.Max(1, math.Abs(float64(b[i])))
		if math.IsNaN(d) {
			return math.Inf(1)
		}
		m = math.Max(m, d)
	}
	return m
}

// MaxAbs is the largest |a[i]-b[i]|; a length mismatch is +Inf.
func MaxAbs(a, b []float32) float64 {
	if len(a) != len(b) {
		return math.Inf(1)
	}
	m := 0.0
	for i := range a {
		d := math.Abs(float64(a[i]) - float64(b[i]))
		if math.IsNaN(d) {
			return math.Inf(1)
		}
		m = math.Max(m, d)
	}
	return m
}

// Factory opens a backend over the model file at path.
type Factory func(t testing.TB, modelPath string) runtime.Backend

// Run runs the whole shared test body against the backend made by open,
// using the fixtures at fixturesPath.
func Run(t *testing.T, fixturesPath string, open Factory) {
	fx, err := LoadFixtures(fixturesPath)
	if err != nil {
		t.Fatalf("load fixtures: %v", err)
	}
	be := open(t, fx.Model)
	t.Cleanup(func() { be.Close() })

	sig := be.Signature()
	t.Run("Signature", func(t *testing.T) {
		got := sig.LSTMShape()
		if got.Layers != fx.Layers || got.Hidden != fx.Hidden {
			t.Fatalf("LSTMShape = %+v, want layers %d hidden %d", got, fx.Layers, fx.Hidden)
		}
	})
	t.Run("Golden", func(t *testing.T) { testGolden(t, be, fx) })
	t.Run("PaddedRowEqualsAlone", func(t *testing.T) { testPadding(t, be, fx) })
	t.Run("StateCarry", func(t *testing.T) { testCarry(t, be, fx) })
	t.Run("InvalidInput", func(t *testing.T) { testInvalid(t, be, fx) })
	t.Run("Concurrent", func(t *testing.T) { testConcurrent(t, be, fx) })
	t.Run("Cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := be.Run(ctx, fx.Cases[0].Input(sig)); err == nil {
			t.Fatal("Run with a cancelled context succeeded")
		}
	})
}

func testGolden(t *testing.T, be runtime.Backend, fx *Fixtures) {
	sig := be.Signature()
	var worst Diffs
	for _, c := range fx.Cases {
		out, err := be.Run(context.Background(), c.Input(sig))
		if err != nil {
			t.Fatalf("%s: %v", c.Name, err)
		}
		d := c.Diff(sig, out)
		if !d.OK() {
			t.Errorf("%s: diff vs PyTorch: %v", c.Name, d)
		}
		worst.out(d.Out, c.Name+" "+d.OutWhat)
		worst.state(d.State, c.Name+" "+d.StateWhat)
	}
	t.Logf("%s vs PyTorch: %d cases, max diff %v", be.Name(), len(fx.Cases), worst)
}

// row extracts row r of a batched run as its own batch-1 input.
func row(sig runtime.Signature, c Case, r int) runtime.Input {
	n := int(c.Lengths[r])
	in := runtime.Input{IDs: append([]int64(nil), c.InputIDs[r*c.Seq:r*c.Seq+n]...), Lengths: []int64{int64(n)}, Batch: 1, Seq: n}
	if c.H0 != nil {
		full := c.Input(sig)
		in.State = make([][]float32, len(sig.States))
		for k, st := range sig.States {
			if full.State[k] == nil {
				continue
			}
			in.State[k] = make([]float32, st.RowSize())
			st.GatherRow(in.State[k], full.State[k], c.Batch, r)
		}
	}
	return in
}

func testPadding(t *testing.T, be runtime.Backend, fx *Fixtures) {
	sig := be.Signature()
	checked := 0
	for _, c := range fx.Cases {
		if c.Batch < 2 {
			continue
		}
		batch, err := be.Run(context.Background(), c.Input(sig))
		if err != nil {
			t.Fatalf("%s: %v", c.Name, err)
		}
		for r := 0; r < c.Batch; r++ {
			alone, err := be.Run(context.Background(), row(sig, c, r))
			if err != nil {
				t.Fatalf("%s row %d: %v", c.Name, r, err)
			}
			var d Diffs
			d.out(MaxAbs(alone.Probs, batch.Probs[2*r:2*r+2]), "probs")
			for k, st := range sig.States {
				got := make([]float32, st.RowSize())
				st.GatherRow(got, batch.State[k], c.Batch, r)
				d.state(MaxScaled(alone.State[k], got), st.Out)
			}
			for k, e := range sig.Extras {
				d.out(MaxAbs(alone.Extras[k], batch.Extras[k][r*e.Width:(r+1)*e.Width]), e.Name)
			}
			if !d.OK() {
				t.Errorf("%s row %d: padded-batch row differs from the row alone: %v", c.Name, r, d)
			}
			checked++
		}
	}
	if checked == 0 {
		t.Fatal("fixtures contain no batched case")
	}
}

func testCarry(t *testing.T, be runtime.Backend, fx *Fixtures) {
	sig := be.Signature()
	byName := map[string]Case{}
	for _, c := range fx.Cases {
		byName[c.Name] = c
	}
	checked := 0
	for _, c := range fx.Cases {
		if c.Continues == "" {
			continue
		}
		prev, ok := byName[c.Continues]
		if !ok {
			t.Fatalf("%s continues unknown case %q", c.Name, c.Continues)
		}
		first, err := be.Run(context.Background(), prev.Input(sig))
		if err != nil {
			t.Fatal(err)
		}
		in := c.Input(sig)
		in.State = first.State
		second, err := be.Run(context.Background(), in)
		if err != nil {
			t.Fatal(err)
		}
		if d := c.Diff(sig, second); !d.OK() {
			t.Errorf("%s: state carried from %s differs from PyTorch: %v", c.Name, prev.Name, d)
		}
		checked++
	}
	if checked == 0 {
		t.Fatal("fixtures contain no state-carrying case")
	}
}

func testInvalid(t *testing.T, be runtime.Backend, fx *Fixtures) {
	sig := be.Signature()
	good := fx.Cases[0].Input(sig)
	zero := func(k, n int) [][]float32 {
		st := make([][]float32, len(sig.States))
		st[k] = make([]float32, n)
		return st
	}
	tests := []struct {
		name string
		in   runtime.Input
	}{
		{"zero batch", runtime.Input{Batch: 0, Seq: 1}},
		{"ids short", runtime.Input{IDs: []int64{1}, Lengths: []int64{2}, Batch: 1, Seq: 2}},
		{"length zero", runtime.Input{IDs: []int64{1, 2}, Lengths: []int64{0}, Batch: 1, Seq: 2}},
		{"length past seq", runtime.Input{IDs: []int64{1, 2}, Lengths: []int64{3}, Batch: 1, Seq: 2}},
		{"h0 wrong size", runtime.Input{IDs: good.IDs, Lengths: good.Lengths, Batch: good.Batch, Seq: good.Seq, State: zero(0, 1)}},
		{"state count", runtime.Input{IDs: good.IDs, Lengths: good.Lengths, Batch: good.Batch, Seq: good.Seq, State: make([][]float32, len(sig.States)+1)}},
	}
	for _, tt := range tests {
		if _, err := be.Run(context.Background(), tt.in); err == nil {
			t.Errorf("%s: Run accepted invalid input", tt.name)
		}
	}
}

func testConcurrent(t *testing.T, be runtime.Backend, fx *Fixtures) {
	sig := be.Signature()
	want := make([]runtime.Output, len(fx.Cases))
	for i, c := range fx.Cases {
		out, err := be.Run(context.Background(), c.Input(sig))
		if err != nil {
			t.Fatal(err)
		}
		want[i] = out
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8*len(fx.Cases))
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for k := range fx.Cases {
				i := (k + g*7) % len(fx.Cases)
				out, err := be.Run(context.Background(), fx.Cases[i].Input(sig))
				if err != nil {
					errs <- err
					return
				}
				if d := MaxAbs(out.Probs, want[i].Probs); d != 0 {
					errs <- fmt.Errorf("%s: concurrent result differs from sequential by %.3g", fx.Cases[i].Name, d)
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
