//go:build !noort

package runtime_test

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/callwatch/callwatch/runtime"
	"github.com/callwatch/callwatch/runtime/backendtest"
	"github.com/callwatch/callwatch/runtime/native"
	"github.com/callwatch/callwatch/runtime/ort"
)

const python = "/usr/bin/python3"

// TestExportRoundTrip trains a tiny model in PyTorch, exports it with
// scripts/export.py and checks both backends against PyTorch's outputs on
// the exported file. It needs Debian's python3-torch; without it the test
// is skipped with the command that enables it (the one skip the issue
// allows: `make test` and .ci/run install it first).
func TestExportRoundTrip(t *testing.T) {
	if err := exec.Command(python, "-c", "import torch, onnx").Run(); err != nil {
		t.Skipf("PyTorch not available to %s (%v): run `make torch` (apt-get install python3-torch python3-onnx) to enable the export round trip", python, err)
	}
	cases := []struct {
		name string
		args []string
	}{
		{"last", []string{"--arch", "last"}},
		{"pooled", []string{"--arch", "pooled"}},
		// compact state (no max_h accumulator), sqrt pooling, the gated mean att_h and the
		// signed-log reads of the sums (slog_h, slog_e: Relu/Log/Sub in the graph)
		{"pooled-att", []string{"--arch", "pooled", "--features", "mean_h,last_h,mean_e,att_h,slog_h,slog_e", "--pool-norm", "sqrt"}},
		// means over n^0.75 (Sqrt of a Sqrt, times it) beside the same sums over n (avg_h, avg_e)
		// and over their root mean square (rms_h, rms_e)
		{"pooled-pow", []string{"--arch", "pooled", "--features", "mean_h,last_h,mean_e,avg_h,avg_e,rms_h,rms_e", "--pool-norm", "pow0.75"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { roundTrip(t, c.args) })
	}
}

// roundTrip exports one model: "--arch last" is the v1 signature (h, c),
// "--arch pooled" the v2 one (h, c, p state; family_probs output).
func roundTrip(t *testing.T, args []string) {
	dir := t.TempDir()
	cmd := exec.Command(python, append([]string{filepath.Join("..", "scripts", "roundtrip.py"), "--out", dir, "--seed", "3"}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("scripts/roundtrip.py failed: %v\n%s", err, out.String())
	}
	t.Logf("roundtrip.py: %s", bytes.TrimSpace(out.Bytes()))
	fixtures := filepath.Join(dir, "fixtures.json")
	t.Run("ort", func(t *testing.T) {
		backendtest.Run(t, fixtures, func(t testing.TB, path string) runtime.Backend {
			be, err := ort.Open(path, ort.Options{})
			if err != nil {
				t.Fatalf("onnxruntime: %v", err)
			}
			return be
		})
	})
	t.Run("native", func(t *testing.T) {
		backendtest.Run(t, fixtures, func(t testing.TB, path string) runtime.Backend {
			be, err := native.Open(path)
			if err != nil {
				t.Fatalf("native: %v", err)
			}
			return be
		})
	})
}
