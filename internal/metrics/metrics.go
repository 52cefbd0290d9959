// Package metrics computes call-level binary classification metrics.
package metrics

import (
	"math"
	"sort"
)

// Confusion counts outcomes at one threshold; phishing is the positive class.
type Confusion struct {
	TP int `json:"tp"`
	FP int `json:"fp"`
	TN int `json:"tn"`
	FN int `json:"fn"`
}

// AtThreshold are the metrics of predicting phishing when score >= Threshold.
type AtThreshold struct {
	Threshold float64   `json:"threshold"`
	Precision float64   `json:"precision"`
	Recall    float64   `json:"recall"`
	F1        float64   `json:"f1"`
	FPR       float64   `json:"fpr"` // share of normal calls flagged
	Accuracy  float64   `json:"accuracy"`
	Confusion Confusion `json:"confusion"`
}

// At computes metrics at threshold t. labels[i] is true for phishing.
func At(labels []bool, scores []float64, t float64) AtThreshold {
	var c Confusion
	for i, y := range labels {
		p := scores[i] >= t
		switch {
		case p && y:
			c.TP++
		case p && !y:
			c.FP++
		case !p && y:
			c.FN++
		default:
			c.TN++
		}
	}
	m := AtThreshold{Threshold: t, Confusion: c}
	m.Precision = ratio(c.TP, c.TP+c.FP)
	m.Recall = ratio(c.TP, c.TP+c.FN)
	if m.Precision+m.Recall > 0 {
		m.F1 = 2 * m.Precision * m.Recall / (m.Precision + m.Recall)
	}
	m.FPR = ratio(c.FP, c.FP+c.TN)
	m.Accuracy = ratio(c.TP+c.TN, len(labels))
	return m
}

func ratio(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// ROCAUC is the Mann–Whitney estimate with ties counted half; NaN when a
// class is absent.
func ROCAUC(labels []bool, scores []float64) float64 {
	type pair struct {
		s float64
		y bool
	}
	ps := make([]pair, len(labels))
	npos := 0
	for i, y := range labels {
		ps[i] = pair{scores[i], y}
		if y {
			npos++
		}
	}
	nneg := len(labels) - npos
	if npos == 0 || nneg == 0 {
		return math.NaN()
	}
	sort.Slice(ps, func(a, b int) bool { return ps[a].s < ps[b].s })
	rankSum := 0.0
	for i := 0; i < len(ps); {
		j := i
		for j+1 < len(ps) && ps[j+1].s == ps[i].s {
			j++
		}
		r := float64(i+j)/2 + 1
		for k := i; k <= j; k++ {
			if ps[k].y {
				rankSum += r
			}
		}
		i = j + 1
	}
	return (rankSum - float64(npos)*float64(npos+1)/2) / (float64(npos) * float64(nneg))
}
