//go:build !amd64 || purego

package native

// dot is a float32 inner product of a and b[:len(a)].
func dot(a, b []float32) float32 { return dotGeneric(a, b) }

// gemvT adds xᵀ·m to out, where m is row-major [len(x), len(out)].
func gemvT(out, x, m []float32) { gemvTGeneric(out, x, m) }

// sigmoidVec sets dst[i] = σ(src[i]); dst may be src.
func sigmoidVec(dst, src []float32) {
	for k, v := range src {
		dst[k] = sigmoid(v)
	}
}

// tanhVec sets dst[i] = tanh(src[i]); dst may be src.
func tanhVec(dst, src []float32) {
	for k, v := range src {
		dst[k] = tanh(v)
	}
}

// gemmT4 does gemvT(out[r], x[r], m) for four rows.
func gemmT4(out, x *[4][]float32, m []float32) {
	for r := 0; r < 4; r++ {
		gemvT(out[r], x[r], m)
	}
}
