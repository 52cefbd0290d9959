// Package api holds the wire shapes that the CLI, the HTTP server and the
// client share, and the one rounding rule for scores, so that the same
// verdict prints the same bytes everywhere. It imports no inference code.
package api

import (
	"encoding/json"
	"math"
)

// Round6 rounds a score to 6 decimals, half away from zero: the one rule
// for every printed score (0.2890625 → 0.289063).
func Round6(f float64) float64 { return math.Round(f*1e6) / 1e6 }

// Level is an alert level: none, suspicious or dangerous. Its JSON form is
// the plain string. Levels only rise in importance in that order (Rank).
type Level string

// The levels, lowest first.
const (
	LevelNone       Level = "none"
	LevelSuspicious Level = "suspicious"
	LevelDangerous  Level = "dangerous"
)

// Rank orders levels: none 0, suspicious 1, dangerous 2; any other string
// (an unknown level read from outside) ranks -1.
func (l Level) Rank() int {
	switch l {
	case LevelNone:
		return 0
	case LevelSuspicious:
		return 1
	case LevelDangerous:
		return 2
	}
	return -1
}

// Valid reports whether l is one of the three levels.
func (l Level) Valid() bool { return l.Rank() >= 0 }

// Verdict is one classified text: a `classify` JSONL record and an item of
// the server's classify response.
type Verdict struct {
	ID    string  `json:"id"`
	Label string  `json:"label"`
	Score float64 `json:"score"` // P(phishing), Round6
	Level Level   `json:"level"` // none | suspicious | dangerous
	// Family is the most likely scenario family (models with a family head).
	Family     string  `json:"family,omitempty"`
	FamilyProb float64 `json:"family_prob,omitempty"`
}

// RecordError is a record that could not be scored; Line is the input line
// where there is one.
type RecordError struct {
	ID    string `json:"id"`
	Line  int    `json:"line,omitempty"`
	Error string `json:"error"`
}

// Result is a Verdict or, when Error is set, a RecordError: one per input,
// in input order.
type Result struct {
	Verdict
	Line  int
	Error string
}

// MarshalJSON writes the error shape when Error is set, else the verdict.
func (r Result) MarshalJSON() ([]byte, error) {
	if r.Error != "" {
		return json.Marshal(RecordError{ID: r.ID, Line: r.Line, Error: r.Error})
	}
	return json.Marshal(r.Verdict)
}

// UnmarshalJSON reads either shape.
func (r *Result) UnmarshalJSON(b []byte) error {
	var raw struct {
		Verdict
		Line  int    `json:"line"`
		Error string `json:"error"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	*r = Result{Verdict: raw.Verdict, Line: raw.Line, Error: raw.Error}
	return nil
}

// ScoreEvent is `stream`'s event after each segment.
type ScoreEvent struct {
	CallID     string  `json:"call_id"`
	T          float64 `json:"t"`
	Score      float64 `json:"score"`
	Level      Level   `json:"level"`
	Family     string  `json:"family,omitempty"`
	FamilyProb float64 `json:"family_prob,omitempty"`
}

// Reason is a segment (and the phrase within it) that raised the score.
type Reason struct {
	Segment int     `json:"segment"`
	Text    string  `json:"text"`
	Phrase  string  `json:"phrase,omitempty"`
	Delta   float64 `json:"delta"`
	Start   float64 `json:"start,omitempty"`
	End     float64 `json:"end,omitempty"`
}

// AlertEvent is `stream`'s event when a call's level first rises.
type AlertEvent struct {
	CallID     string   `json:"call_id"`
	Alert      Level    `json:"alert"` // the level just reached
	T          float64  `json:"t"`
	Score      float64  `json:"score"`
	Family     string   `json:"family,omitempty"`
	FamilyProb float64  `json:"family_prob,omitempty"`
	Reasons    []Reason `json:"reasons"`
}

// SegmentError is a segment that could not be scored.
type SegmentError struct {
	CallID string `json:"call_id,omitempty"`
	Line   int    `json:"line"`
	Error  string `json:"error"`
}
