package native

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestDot checks dot (the AVX2 kernel where the CPU has it) and dotGeneric
// against a float64 sum on lengths around the kernel's block sizes.
func TestDot(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for n := 0; n <= 300; n++ {
		a, b := randFloats(r, n, 1), randFloats(r, n+5, 1) // b may be longer
		var want, mag float64
		for k := 0; k < n; k++ {
			want += float64(a[k]) * float64(b[k])
			mag += math.Abs(float64(a[k]) * float64(b[k]))
		}
		tol := 1e-6 * (mag + 1)
		for name, f := range map[string]func(a, b []float32) float32{"dot": dot, "dotGeneric": dotGeneric} {
			if got := float64(f(a, b)); math.Abs(got-want) > tol {
				t.Errorf("%s n=%d: %v, want %v (±%g)", name, n, got, want, tol)
			}
		}
	}
}

func BenchmarkDot(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	m, v := randFloats(r, 512*128, 1), randFloats(r, 128, 1)
	out := make([]float32, 512)
	for name, f := range map[string]func(a, b []float32) float32{"dot": dot, "dotGeneric": dotGeneric} {
		b.Run(name+"/matvec512x128", func(b *testing.B) {
			for b.Loop() {
				for g := range out {
					out[g] = f(m[g*128:(g+1)*128], v)
				}
			}
		})
	}
}

func TestGemvT(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, k := range []int{0, 1, 3, 17, 128} {
		for _, n := range []int{0, 1, 7, 8, 9, 63, 64, 65, 136, 512} {
			x, m := randFloats(r, k, 1), randFloats(r, k*n, 1)
			init := randFloats(r, n, 1)
			for name, f := range map[string]func(out, x, m []float32){"gemvT": gemvT, "gemvTGeneric": gemvTGeneric} {
				out := append([]float32(nil), init...)
				f(out, x, m)
				for j := 0; j < n; j++ {
					want, mag := float64(init[j]), math.Abs(float64(init[j]))
					for i := 0; i < k; i++ {
						want += float64(x[i]) * float64(m[i*n+j])
						mag += math.Abs(float64(x[i]) * float64(m[i*n+j]))
					}
					if d := math.Abs(float64(out[j]) - want); d > 1e-6*(mag+1) {
						t.Fatalf("%s k=%d n=%d out[%d] = %v, want %v", name, k, n, j, out[j], want)
					}
				}
			}
		}
	}
}

// TestActivations bounds the vector sigmoid and tanh (the AVX2 Cephes-exp
// kernel where available) against float64 math over the useful range and
// at saturation.
func TestActivations(t *testing.T) {
	var xs []float32
	for x := float32(-100); x <= 100; x += 0.000917 {
		xs = append(xs, x)
	}
	xs = append(xs, 0, -1e-30, 1e-30, 1e-8, 200, -200, float32(math.Inf(1)), float32(math.Inf(-1)))
	s, th := make([]float32, len(xs)), make([]float32, len(xs))
	sigmoidVec(s, xs)
	tanhVec(th, xs)
	var ws, wt float64
	for k, x := range xs {
		ws = max(ws, math.Abs(float64(s[k])-1/(1+math.Exp(-float64(x)))))
		wt = max(wt, math.Abs(float64(th[k])-math.Tanh(float64(x))))
	}
	t.Logf("max abs error: sigmoid %.3g, tanh %.3g", ws, wt)
	if ws > 2e-7 || wt > 3e-7 || math.IsNaN(ws) || math.IsNaN(wt) {
		t.Errorf("activation error too large: sigmoid %.3g, tanh %.3g", ws, wt)
	}
}

func BenchmarkActivations(b *testing.B) {
	xs := make([]float32, 512)
	for k := range xs {
		xs[k] = float32(k-256) / 32
	}
	out := make([]float32, len(xs))
	b.Run("sigmoidVec", func(b *testing.B) {
		for b.Loop() {
			sigmoidVec(out, xs)
		}
	})
	b.Run("scalar", func(b *testing.B) {
		for b.Loop() {
			for k, x := range xs {
				out[k] = sigmoid(x)
			}
		}
	})
}

func TestGemmT4(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, k := range []int{0, 1, 5, 64, 128} {
		for _, n := range []int{0, 1, 8, 15, 16, 17, 40, 64, 512, 520} {
			m := randFloats(r, k*n, 1)
			var out, x, want [4][]float32
			for row := 0; row < 4; row++ {
				x[row] = randFloats(r, k, 1)
				out[row] = randFloats(r, n, 1)
				want[row] = append([]float32(nil), out[row]...)
				gemvTGeneric(want[row], x[row], m)
			}
			gemmT4(&out, &x, m)
			for row := 0; row < 4; row++ {
				for j := 0; j < n; j++ {
					if d := math.Abs(float64(out[row][j] - want[row][j])); d > 1e-5 {
						t.Fatalf("k=%d n=%d row %d col %d: %v, want %v", k, n, row, j, out[row][j], want[row][j])
					}
				}
			}
		}
	}
}
