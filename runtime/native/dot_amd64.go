//go:build !purego

package native

// The LSTM spends nearly all its time in float32 dot products; an AVX2/FMA
// kernel makes it several times faster than scalar Go. Build with
// -tags purego to use the portable code only.

//go:noescape
func dotAVX2(a, b *float32, n int) float32

func cpuid(eaxArg, ecxArg uint32) (eax, ebx, ecx, edx uint32)
func xgetbv() (eax, edx uint32)

// hasAVX2FMA is set once at init and only read afterwards.
var hasAVX2FMA = detectAVX2FMA()

func detectAVX2FMA() bool {
	maxID, _, _, _ := cpuid(0, 0)
	if maxID < 7 {
		return false
	}
	_, _, c1, _ := cpuid(1, 0)
	const fma, osxsave, avx = 1 << 12, 1 << 27, 1 << 28
	if c1&(fma|osxsave|avx) != fma|osxsave|avx {
		return false
	}
	if xcr0, _ := xgetbv(); xcr0&6 != 6 { // OS saves XMM and YMM state
		return false
	}
	_, b7, _, _ := cpuid(7, 0)
	return b7&(1<<5) != 0
}

// dot is a float32 inner product of a and b[:len(a)].
func dot(a, b []float32) float32 {
	n := len(a)
	b = b[:n]
	if !hasAVX2FMA || n < 8 {
		return dotGeneric(a, b)
	}
	m := n &^ 7
	s := dotAVX2(&a[0], &b[0], m)
	if m < n {
		s += dotGeneric(a[m:], b[m:])
	}
	return s
}

//go:noescape
func gemvTAVX2(out, x, m *float32, k, cols, stride int)

// gemvT adds xᵀ·m to out, where m is row-major [len(x), len(out)].
func gemvT(out, x, m []float32) {
	n, k := len(out), len(x)
	if len(m) < k*n {
		panic("native: gemvT: matrix too small")
	}
	cols := n &^ 7
	if !hasAVX2FMA || cols == 0 || k == 0 {
		gemvTGeneric(out, x, m)
		return
	}
	gemvTAVX2(&out[0], &x[0], &m[0], k, cols, n)
	if cols < n {
		for i, xv := range x {
			row := m[i*n+cols : (i+1)*n]
			for j, v := range row {
				out[cols+j] += xv * v
			}
		}
	}
}

//go:noescape
func actAVX2(dst, src *float32, n int, m, a, b float32)

// sigmoidVec sets dst[i] = σ(src[i]); dst may be src.
func sigmoidVec(dst, src []float32) { act(dst, src, -1, 1, 0, sigmoid) }

// tanhVec sets dst[i] = tanh(src[i]) as 2σ(2x)-1; dst may be src.
func tanhVec(dst, src []float32) { act(dst, src, -2, 2, -1, tanh) }

func act(dst, src []float32, m, a, b float32, f func(float32) float32) {
	n := len(src)
	dst = dst[:n]
	v := n &^ 7
	if hasAVX2FMA && v > 0 {
		actAVX2(&dst[0], &src[0], v, m, a, b)
	} else {
		v = 0
	}
	for k := v; k < n; k++ {
		dst[k] = f(src[k])
	}
}

//go:noescape
func gemmT4AVX2(o0, o1, o2, o3, x0, x1, x2, x3, m *float32, k, cols, stride int)

// gemmT4 does gemvT(out[r], x[r], m) for four rows at once; all outs have
// one length and all xs another.
func gemmT4(out, x *[4][]float32, m []float32) {
	n, k := len(out[0]), len(x[0])
	for r := 0; r < 4; r++ {
		if len(out[r]) != n || len(x[r]) != k {
			panic("native: gemmT4: ragged rows")
		}
	}
	cols := n &^ 15
	if !hasAVX2FMA || cols == 0 || k == 0 {
		for r := 0; r < 4; r++ {
			gemvT(out[r], x[r], m)
		}
		return
	}
	if len(m) < k*n {
		panic("native: gemmT4: matrix too small")
	}
	gemmT4AVX2(&out[0][0], &out[1][0], &out[2][0], &out[3][0], &x[0][0], &x[1][0], &x[2][0], &x[3][0], &m[0], k, cols, n)
	if cols < n {
		for r := 0; r < 4; r++ {
			for i, xv := range x[r] {
				row := m[i*n+cols : (i+1)*n]
				o := out[r][cols:]
				for j, v := range row {
					o[j] += xv * v
				}
			}
		}
	}
}
