package api

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

func TestRound6(t *testing.T) {
	for _, c := range []struct{ in, want float64 }{
		{0.2890625, 0.289063}, // half away from zero: CLI and server used to disagree here
		{0.9999995, 1},
		{0.1234564, 0.123456},
		{0, 0},
		{-0.0000005, -0.000001},
	} {
		if got := Round6(c.in); got != c.want {
			t.Errorf("Round6(%v) = %v, want %v", c.in, got, c.want)
		}
	}
}

// TestLevel: one ordering for every user, and the JSON form is the bare
// string, as before levels were typed.
func TestLevel(t *testing.T) {
	for i, l := range []Level{LevelNone, LevelSuspicious, LevelDangerous} {
		if l.Rank() != i || !l.Valid() {
			t.Errorf("%q: rank %d valid %v, want %d true", l, l.Rank(), l.Valid(), i)
		}
		b, err := json.Marshal(l)
		if err != nil || string(b) != `"`+string(l)+`"` {
			t.Errorf("%q marshals as %s (%v)", l, b, err)
		}
		var back Level
		if err := json.Unmarshal(b, &back); err != nil || back != l {
			t.Errorf("%s unmarshals as %q (%v)", b, back, err)
		}
	}
	for _, l := range []Level{"", "high", "Dangerous"} {
		if l.Rank() != -1 || l.Valid() {
			t.Errorf("%q: rank %d valid %v, want -1 false", l, l.Rank(), l.Valid())
		}
	}
}

func TestResultShapes(t *testing.T) {
	for _, c := range []struct {
		r    Result
		want string
	}{
		{Result{Verdict: Verdict{ID: "a", Label: "normal", Score: 0, Level: "none"}}, `{"id":"a","label":"normal","score":0,"level":"none"}`},
		{Result{Verdict: Verdict{ID: "b", Label: "phishing", Score: 0.97, Level: "dangerous", Family: "prosecutor", FamilyProb: 0.91}},
			`{"id":"b","label":"phishing","score":0.97,"level":"dangerous","family":"prosecutor","family_prob":0.91}`},
		{Result{Verdict: Verdict{ID: "c"}, Line: 3, Error: "tokenize: empty text"}, `{"id":"c","line":3,"error":"tokenize: empty text"}`},
	} {
		b, err := json.Marshal(c.r)
		if err != nil || string(b) != c.want {
			t.Errorf("Marshal = %s, %v; want %s", b, err, c.want)
		}
		var back Result
		if err := json.Unmarshal(b, &back); err != nil || back != c.r {
			t.Errorf("round trip of %s = %+v, %v", b, back, err)
		}
	}
}

// TestClientIsLight: the client and this package build without cgo and link
// no inference code (onnxruntime_go, the tokenizer, the native interpreter).
func TestClientIsLight(t *testing.T) {
	cmd := exec.Command("go", "list", "-deps", "../client")
	cmd.Env = append(cmd.Environ(), "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps ./client with CGO_ENABLED=0: %v\n%s", err, out)
	}
	for _, bad := range []string{"onnxruntime_go", "sugarme", "callwatch/runtime", "callwatch/tokenize", "callwatch/server", "prometheus"} {
		if strings.Contains(string(out), bad) {
			t.Errorf("client depends on %s", bad)
		}
	}
	build := exec.Command("go", "build", "-o", "/dev/null", "../client")
	build.Env = append(build.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("CGO_ENABLED=0 go build ./client: %v\n%s", err, out)
	}
}
