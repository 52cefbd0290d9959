package metrics

import (
	"math"
	"testing"
)

func TestAt(t *testing.T) {
	labels := []bool{true, true, false, false, true}
	scores := []float64{0.9, 0.4, 0.6, 0.1, 0.7}
	m := At(labels, scores, 0.5)
	want := Confusion{TP: 2, FP: 1, TN: 1, FN: 1}
	if m.Confusion != want {
		t.Fatalf("confusion %+v, want %+v", m.Confusion, want)
	}
	if math.Abs(m.Precision-2.0/3) > 1e-12 || math.Abs(m.Recall-2.0/3) > 1e-12 || math.Abs(m.FPR-0.5) > 1e-12 {
		t.Fatalf("metrics %+v", m)
	}
}

func TestROCAUC(t *testing.T) {
	tests := []struct {
		name   string
		labels []bool
		scores []float64
		want   float64
	}{
		{"perfect", []bool{false, false, true, true}, []float64{0.1, 0.2, 0.8, 0.9}, 1},
		{"inverted", []bool{true, true, false, false}, []float64{0.1, 0.2, 0.8, 0.9}, 0},
		{"all tied", []bool{true, false, true, false}, []float64{0.5, 0.5, 0.5, 0.5}, 0.5},
		{"one swap", []bool{false, true, false, true}, []float64{0.1, 0.2, 0.3, 0.4}, 0.75},
	}
	for _, tt := range tests {
		if got := ROCAUC(tt.labels, tt.scores); math.Abs(got-tt.want) > 1e-12 {
			t.Errorf("%s: AUC %g, want %g", tt.name, got, tt.want)
		}
	}
	if !math.IsNaN(ROCAUC([]bool{true}, []float64{1})) {
		t.Error("single class should give NaN")
	}
}
