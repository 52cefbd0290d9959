package native

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"sync"
	"testing"

	"github.com/callwatch/callwatch/runtime"
	"github.com/callwatch/callwatch/runtime/backendtest"
	"github.com/callwatch/callwatch/runtime/onnxpb"
)

// readFixtures loads a PyTorch fixture file in the shared format
// (runtime/backendtest) and returns it with the model path beside it.
func readFixtures(t testing.TB, path string) (*backendtest.Fixtures, string) {
	t.Helper()
	f, err := backendtest.LoadFixtures(path)
	if err != nil {
		t.Fatalf("fixtures: %v", err)
	}
	return f, f.Model
}

// maxAbsDiff is backendtest.MaxAbs, failing on a length mismatch.
func maxAbsDiff(t *testing.T, what string, got, want []float32) float64 {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	return backendtest.MaxAbs(got, want)
}

// TestFixtures runs every PyTorch fixture case through the native backend:
// tiny.onnx (exporter wiring lengths into sequence_lens, shared with the
// ort backend) and packed.onnx (pack_padded_sequence export: TopK, Range,
// ScatterElements, ...).
func TestFixtures(t *testing.T) {
	const tol = 1e-5
	for _, path := range []string{"../testdata/fixtures.json", "testdata/packed.json"} {
		t.Run(filepath.Base(path), func(t *testing.T) {
			f, model := readFixtures(t, path)
			b, err := Open(model)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			if got, want := b.Signature().LSTMShape(), (runtime.Shape{Layers: f.Layers, Hidden: f.Hidden}); got != want {
				t.Fatalf("StateShape() = %+v, want %+v", got, want)
			}
			worst := 0.0
			for _, c := range f.Cases {
				out, err := b.Run(context.Background(), c.Input(b.Signature()))
				if err != nil {
					t.Fatalf("%s: %v", c.Name, err)
				}
				for _, o := range []struct {
					name      string
					got, want []float32
				}{{"probs", out.Probs, c.Probs}, {"hn", out.State[0], c.HN}, {"cn", out.State[1], c.CN}} {
					d := maxAbsDiff(t, c.Name+" "+o.name, o.got, o.want)
					worst = max(worst, d)
					if d > tol {
						t.Errorf("%s: %s max abs diff %.3g > %g", c.Name, o.name, d, tol)
					}
				}
			}
			t.Logf("%d cases, max abs diff vs PyTorch %.3g", len(f.Cases), worst)
		})
	}
}

// refLSTM is an independent float64 LSTM in PyTorch's formulation (gates
// i, f, g, o) used to check the kernel on hand-built models.
func refLSTM(x [][]float64, W, R, Bi, Bh [][]float64, h, c []float64) ([]float64, []float64) {
	H := len(h)
	h, c = append([]float64(nil), h...), append([]float64(nil), c...)
	sig := func(v float64) float64 { return 1 / (1 + math.Exp(-v)) }
	for _, xt := range x {
		g := make([]float64, 4*H)
		for r := range g {
			g[r] = Bi[0][r] + Bh[0][r]
			for k, v := range xt {
				g[r] += W[r][k] * v
			}
			for k, v := range h {
				g[r] += R[r][k] * v
			}
		}
		for j := 0; j < H; j++ {
			i, f, gg, o := sig(g[j]), sig(g[H+j]), math.Tanh(g[2*H+j]), sig(g[3*H+j])
			c[j] = f*c[j] + i*gg
			h[j] = o * math.Tanh(c[j])
		}
	}
	return h, c
}

// TestLSTMHandComputed checks a one-unit LSTM step against numbers worked
// out by hand, and a multi-unit, multi-step, padded batch against refLSTM.
func TestLSTMHandComputed(t *testing.T) {
	t.Run("one unit one step", func(t *testing.T) {
		// E=H=1, x=0.5 (embedding of id 1), h0=0.2, c0=-0.1.
		// ONNX gate order i,o,f,c: W=[1,2,3,4], R=[0.5,-0.5,0.25,1], Wb=[0.1..], Rb=0.
		w := lstmWeights{W: []float32{1, 2, 3, 4}, R: []float32{0.5, -0.5, 0.25, 1}, B: []float32{0.1, 0.2, 0.3, 0.4, 0, 0, 0, 0}}
		g := exportLikeGraph([]float32{0, 0.5}, 2, 1, 1, []lstmWeights{w}, []float32{1, -1}, []float32{0, 0})
		b, err := New(marshalModel(t, g))
		if err != nil {
			t.Fatal(err)
		}
		out, err := b.Run(context.Background(), runtime.Input{IDs: []int64{1}, Lengths: []int64{1}, Batch: 1, Seq: 1,
			State: [][]float32{{0.2}, {-0.1}}})
		if err != nil {
			t.Fatal(err)
		}
		sig := func(v float64) float64 { return 1 / (1 + math.Exp(-v)) }
		i := sig(1*0.5 + 0.5*0.2 + 0.1)      // 0.6682
		o := sig(2*0.5 - 0.5*0.2 + 0.2)      // 0.7503
		f := sig(3*0.5 + 0.25*0.2 + 0.3)     // 0.8641
		cc := math.Tanh(4*0.5 + 1*0.2 + 0.4) // 0.9890
		c := f*-0.1 + i*cc
		h := o * math.Tanh(c)
		p1 := sig(-2 * h) // softmax of (h, -h), phishing = second class
		if d := math.Abs(float64(out.State[1][0]) - c); d > 1e-6 {
			t.Errorf("c = %v, want %v", out.State[1][0], c)
		}
		if d := math.Abs(float64(out.State[0][0]) - h); d > 1e-6 {
			t.Errorf("h = %v, want %v", out.State[0][0], h)
		}
		if d := math.Abs(float64(out.Probs[1]) - p1); d > 1e-6 {
			t.Errorf("P(phishing) = %v, want %v", out.Probs[1], p1)
		}
	})

	t.Run("padded batch two layers", func(t *testing.T) {
		const V, E, H, L = 7, 3, 4, 2
		model := randomModel(t, 42, V, E, H, L)
		b, err := New(model)
		if err != nil {
			t.Fatal(err)
		}
		if got := b.Signature().LSTMShape(); got != (runtime.Shape{Layers: L, Hidden: H}) {
			t.Fatalf("StateShape() = %+v", got)
		}
		ids := []int64{1, 2, 3, 4, 5, 6, 0, 0, 0, 0, 6, 5, 4, 0, 0}
		lens := []int64{5, 1, 3}
		out, err := b.Run(context.Background(), runtime.Input{IDs: ids, Lengths: lens, Batch: 3, Seq: 5})
		if err != nil {
			t.Fatal(err)
		}
		// Recompute with refLSTM from the same initializers, converting
		// ONNX gate order (i,o,f,c) to PyTorch's (i,f,g,o).
		var emb, W, R, B [][]float32
		m := loadRaw(t, model)
		emb = append(emb, m["embed.weight"])
		for l := 0; l < L; l++ {
			p := "/lstm/onnx::LSTM_"
			suf := "_" + string(rune('a'+l))
			W, R, B = append(W, m[p+"W"+suf]), append(R, m[p+"R"+suf]), append(B, m[p+"B"+suf])
		}
		toTorch := func(v []float32, rows, cols int) [][]float64 {
			out := make([][]float64, rows)
			H := rows / 4
			order := []int{0, 2, 3, 1} // torch gate k comes from onnx gate order[k]
			for r := range out {
				gate, j := r/H, r%H
				src := order[gate]*H + j
				out[r] = make([]float64, cols)
				for k := range out[r] {
					out[r][k] = float64(v[src*cols+k])
				}
			}
			return out
		}
		for row := 0; row < 3; row++ {
			var x [][]float64
			for s := 0; s < int(lens[row]); s++ {
				id := ids[row*5+s]
				xv := make([]float64, E)
				for k := range xv {
					xv[k] = float64(emb[0][int(id)*E+k])
				}
				x = append(x, xv)
			}
			in := E
			for l := 0; l < L; l++ {
				Wt, Rt := toTorch(W[l], 4*H, in), toTorch(R[l], 4*H, H)
				bi, bh := toTorch(B[l][:4*H], 4*H, 1), toTorch(B[l][4*H:], 4*H, 1)
				flat := func(m [][]float64) [][]float64 {
					v := make([]float64, len(m))
					for k := range m {
						v[k] = m[k][0]
					}
					return [][]float64{v}
				}
				// Run the layer step by step to collect its outputs for the next layer.
				h, c := make([]float64, H), make([]float64, H)
				var ys [][]float64
				for _, xt := range x {
					h, c = refLSTM([][]float64{xt}, Wt, Rt, flat(bi), flat(bh), h, c)
					ys = append(ys, h)
				}
				for j := 0; j < H; j++ {
					k := (l*3+row)*H + j
					if d := math.Abs(float64(out.State[0][k]) - h[j]); d > 1e-5 {
						t.Errorf("layer %d row %d unit %d: h = %v, want %v", l, row, j, out.State[0][k], h[j])
					}
					if d := math.Abs(float64(out.State[1][k]) - c[j]); d > 1e-5 {
						t.Errorf("layer %d row %d unit %d: c = %v, want %v", l, row, j, out.State[1][k], c[j])
					}
				}
				x, in = ys, H
			}
		}
	})
}

// loadRaw decodes every initializer of a serialized model by name.
func loadRaw(t *testing.T, model []byte) map[string][]float32 {
	t.Helper()
	m, err := runtime.ParseModel(model)
	if err != nil {
		t.Fatal(err)
	}
	res := map[string][]float32{}
	for _, ip := range m.GetGraph().GetInitializer() {
		tt, err := tensorFromProto(ip)
		if err != nil {
			t.Fatal(err)
		}
		res[ip.GetName()] = tt.f
	}
	return res
}

func TestLoadErrors(t *testing.T) {
	good, err := os.ReadFile("../testdata/tiny.onnx")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		model func(t *testing.T) []byte
		want  []string
	}{
		{"empty", func(*testing.T) []byte { return nil }, []string{"not a valid ONNX model", "empty"}},
		{"corrupt bytes", func(*testing.T) []byte { return []byte("this is not protobuf \xff\xff\xff") }, []string{"not a valid ONNX model"}},
		{"truncated", func(*testing.T) []byte { return good[:len(good)/2] }, []string{"not a valid ONNX model"}},
		{"unsupported op", func(t *testing.T) []byte {
			g := exportLikeGraph(make([]float32, 4), 2, 2, 1, []lstmWeights{{make([]float32, 8), make([]float32, 4), make([]float32, 8)}}, []float32{1, 1}, []float32{0, 0})
			g.Node = append(g.Node, node("Foo", "bar", []string{"logits"}, []string{"unused"}))
			return marshalModel(t, g)
		}, []string{`unsupported ONNX op "Foo" (node "bar")`, "supported: ", "LSTM"}},
		{"missing input", func(t *testing.T) []byte {
			g := exportLikeGraph(make([]float32, 4), 2, 2, 1, []lstmWeights{{make([]float32, 8), make([]float32, 4), make([]float32, 8)}}, []float32{1, 1}, []float32{0, 0})
			g.Input = g.Input[:3]
			return marshalModel(t, g)
		}, []string{`no LSTM state input c0`}},
		{"missing output", func(t *testing.T) []byte {
			g := exportLikeGraph(make([]float32, 4), 2, 2, 1, []lstmWeights{{make([]float32, 8), make([]float32, 4), make([]float32, 8)}}, []float32{1, 1}, []float32{0, 0})
			g.Output = g.Output[1:]
			return marshalModel(t, g)
		}, []string{`no output "probs"`}},
		{"bidirectional LSTM", func(t *testing.T) []byte {
			return lstmWithAttr(t, aString("direction", "bidirectional"))
		}, []string{`direction="bidirectional"`, "not supported"}},
		{"reverse LSTM", func(t *testing.T) []byte { return lstmWithAttr(t, aString("direction", "reverse")) }, []string{`direction="reverse"`}},
		{"clip", func(t *testing.T) []byte { return lstmWithAttr(t, aFloat("clip", 3)) }, []string{"clip"}},
		{"input_forget", func(t *testing.T) []byte { return lstmWithAttr(t, aInt("input_forget", 1)) }, []string{"input_forget"}},
		{"layout 1", func(t *testing.T) []byte { return lstmWithAttr(t, aInt("layout", 1)) }, []string{"layout=1"}},
		{"activations", func(t *testing.T) []byte {
			return lstmWithAttr(t, aStrings("activations", "Sigmoid", "Relu", "Tanh"))
		}, []string{"activations", "Relu"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.model(t))
			if err == nil {
				t.Fatal("New succeeded, want an error")
			}
			if !errors.Is(err, ErrInvalidModel) {
				t.Errorf("error %v does not wrap ErrInvalidModel", err)
			}
			t.Log(err)
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func lstmWithAttr(t *testing.T, a *onnxpb.AttributeProto) []byte {
	g := exportLikeGraph(make([]float32, 4), 2, 2, 1, []lstmWeights{{make([]float32, 8), make([]float32, 4), make([]float32, 8)}}, []float32{1, 1}, []float32{0, 0})
	for _, n := range g.Node {
		if n.GetOpType() == "LSTM" {
			n.Attribute = append(n.Attribute, a)
		}
	}
	return marshalModel(t, g)
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Open(filepath.Join(dir, "missing.onnx")); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Open(missing) = %v, want a not-exist error", err)
	}
	good, err := os.ReadFile("../testdata/tiny.onnx")
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "model.onnx")
	if err := os.WriteFile(p, good[:len(good)-100], 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Open(p)
	if err == nil || !strings.Contains(err.Error(), "native: model.onnx is not a valid ONNX model") {
		t.Errorf("Open(truncated) = %v", err)
	}
}

func TestRunInputErrors(t *testing.T) {
	b, err := Open("../testdata/tiny.onnx")
	if err != nil {
		t.Fatal(err)
	}
	_, err = b.Run(context.Background(), runtime.Input{IDs: []int64{1, 2}, Lengths: []int64{3}, Batch: 1, Seq: 2})
	if !errors.Is(err, runtime.ErrInvalidInput) {
		t.Errorf("length > seq: err = %v, want ErrInvalidInput", err)
	}
	// An id beyond the vocabulary fails in Gather with the node named.
	_, err = b.Run(context.Background(), runtime.Input{IDs: []int64{1, 9999}, Lengths: []int64{2}, Batch: 1, Seq: 2})
	if err == nil || !strings.Contains(err.Error(), "Gather") {
		t.Errorf("id out of vocab: err = %v, want a Gather error", err)
	}
}

func TestZeroStateEqualsNil(t *testing.T) {
	b, err := Open("../testdata/tiny.onnx")
	if err != nil {
		t.Fatal(err)
	}
	s := b.Signature().LSTMShape()
	in := runtime.Input{IDs: []int64{3, 4, 5, 6, 7, 8}, Lengths: []int64{3, 2}, Batch: 2, Seq: 3}
	a, err := b.Run(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	in.State = [][]float32{make([]float32, s.Layers*2*s.Hidden), make([]float32, s.Layers*2*s.Hidden)}
	z, err := b.Run(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	if d := maxAbsDiff(t, "probs", a.Probs, z.Probs); d != 0 {
		t.Errorf("nil state and zero state differ by %g", d)
	}
}

func TestConcurrentRuns(t *testing.T) {
	f, model := readFixtures(t, "../testdata/fixtures.json")
	b, err := Open(model)
	if err != nil {
		t.Fatal(err)
	}
	want := make([]runtime.Output, len(f.Cases))
	for k, c := range f.Cases {
		if want[k], err = b.Run(context.Background(), c.Input(b.Signature())); err != nil {
			t.Fatal(err)
		}
	}
	const workers = 16
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for j := range f.Cases {
				k := (j + w) % len(f.Cases)
				out, err := b.Run(context.Background(), f.Cases[k].Input(b.Signature()))
				if err != nil {
					errs <- err
					return
				}
				for _, p := range [][2][]float32{{out.Probs, want[k].Probs}, {out.State[0], want[k].State[0]}, {out.State[1], want[k].State[1]}} {
					for i := range p[0] {
						if p[0][i] != p[1][i] {
							errs <- errors.New(f.Cases[k].Name + ": concurrent result differs")
							return
						}
					}
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestCancel(t *testing.T) {
	b, err := New(randomModel(t, 1, 50, 16, 32, 1))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	in := runtime.Input{IDs: make([]int64, 64), Lengths: []int64{64}, Batch: 1, Seq: 64}
	if _, err := b.Run(ctx, in); !errors.Is(err, context.Canceled) {
		t.Errorf("Run(cancelled) = %v, want context.Canceled", err)
	}
}

// BenchmarkRun measures seq 256 at batch 1 and 32 on a model of the shipped size
// (E=64, H=128, 1 layer, 8000 ids), and on the 2-layer fixture model.
func BenchmarkRun(b *testing.B) {
	big, err := New(randomModel(b, 7, 8000, 64, 128, 1))
	if err != nil {
		b.Fatal(err)
	}
	tiny, err := Open("../testdata/tiny.onnx")
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		be   *Backend
		v    int
	}{{"E64H128L1", big, 8000}, {"tiny", tiny, 64}} {
		for _, batch := range []int{1, 32} {
			b.Run(fmt.Sprintf("%s/batch%d_seq256", bc.name, batch), func(b *testing.B) {
				in := runtime.Input{IDs: make([]int64, batch*256), Lengths: make([]int64, batch), Batch: batch, Seq: 256}
				for k := range in.IDs {
					in.IDs[k] = int64(k*7919) % int64(bc.v)
				}
				for k := range in.Lengths {
					in.Lengths[k] = 256
				}
				b.ReportAllocs()
				for b.Loop() {
					if _, err := bc.be.Run(context.Background(), in); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// TestErrorMessages pins the wording users see for the common failures.
func TestErrorMessages(t *testing.T) {
	good, err := os.ReadFile("../testdata/tiny.onnx")
	if err != nil {
		t.Fatal(err)
	}
	g := exportLikeGraph(make([]float32, 4), 2, 2, 1, []lstmWeights{{make([]float32, 8), make([]float32, 4), make([]float32, 8)}}, []float32{1, 1}, []float32{0, 0})
	g.Input = append(g.Input[:1], g.Input[2:]...)
	noLengths := marshalModel(t, g)
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"corrupt", []byte{0xff, 0xff, 0xff, 0xff}, "native: model is not a valid ONNX model: not an ONNX model: proto:"},
		{"truncated", good[:len(good)-7], "native: model is not a valid ONNX model: "},
		{"missing input", noLengths, `native: model is not a valid ONNX model: model does not follow the callwatch ONNX signature: no input "lengths"`},
	} {
		_, err := New(tc.data)
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want prefix %q", tc.name, err, tc.want)
		}
		if !errors.Is(err, ErrInvalidModel) {
			t.Errorf("%s: %v does not wrap ErrInvalidModel", tc.name, err)
		}
		t.Logf("%s: %v", tc.name, err)
	}
}

// TestRowGroupsEqualRowsAlone runs batches large enough to be split into
// row groups on several goroutines (mixed lengths, nonzero initial state, a
// 2-layer model) and wants every row bit for bit what it gives alone.
func TestRowGroupsEqualRowsAlone(t *testing.T) {
	prev := goruntime.GOMAXPROCS(4)
	defer goruntime.GOMAXPROCS(prev)
	be, err := New(randomModel(t, 3, 300, 24, 40, 2))
	if err != nil {
		t.Fatal(err)
	}
	s := be.Signature().LSTMShape()
	r := rand.New(rand.NewPCG(9, 9))
	for _, batch := range []int{16, 37, 64} {
		const seq = 45
		in := runtime.Input{IDs: make([]int64, batch*seq), Lengths: make([]int64, batch), Batch: batch, Seq: seq,
			State: [][]float32{make([]float32, s.Layers*batch*s.Hidden), make([]float32, s.Layers*batch*s.Hidden)}}
		for k := range in.IDs {
			in.IDs[k] = r.Int64N(300)
		}
		for k := range in.Lengths {
			in.Lengths[k] = 1 + r.Int64N(seq)
		}
		for k := range in.State[0] {
			in.State[0][k], in.State[1][k] = r.Float32()-0.5, 2*r.Float32()-1
		}
		all, err := be.Run(context.Background(), in)
		if err != nil {
			t.Fatal(err)
		}
		for row := 0; row < batch; row++ {
			one := runtime.Input{IDs: in.IDs[row*seq : (row+1)*seq], Lengths: in.Lengths[row : row+1], Batch: 1, Seq: seq,
				State: [][]float32{make([]float32, s.Layers*s.Hidden), make([]float32, s.Layers*s.Hidden)}}
			for l := 0; l < s.Layers; l++ {
				copy(one.State[0][l*s.Hidden:(l+1)*s.Hidden], in.State[0][(l*batch+row)*s.Hidden:])
				copy(one.State[1][l*s.Hidden:(l+1)*s.Hidden], in.State[1][(l*batch+row)*s.Hidden:])
			}
			got, err := be.Run(context.Background(), one)
			if err != nil {
				t.Fatal(err)
			}
			for c := 0; c < 2; c++ {
				if got.Probs[c] != all.Probs[row*2+c] {
					t.Fatalf("batch %d row %d: prob %v alone, %v in the batch", batch, row, got.Probs[c], all.Probs[row*2+c])
				}
			}
			for l := 0; l < s.Layers; l++ {
				for j := 0; j < s.Hidden; j++ {
					if got.State[0][l*s.Hidden+j] != all.State[0][(l*batch+row)*s.Hidden+j] || got.State[1][l*s.Hidden+j] != all.State[1][(l*batch+row)*s.Hidden+j] {
						t.Fatalf("batch %d row %d layer %d: state differs from the row alone", batch, row, l)
					}
				}
			}
		}
	}
}
