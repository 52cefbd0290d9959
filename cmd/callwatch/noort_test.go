//go:build noort

package main

import (
	"strings"
	"testing"
)

// The cgo-free build (-tags noort): auto runs native without a notice (there
// is nothing to fall back from), ort fails with a message that says why and what to do, and
// version says onnxruntime is not built in. `make test` runs these with
// CGO_ENABLED=0.
func TestNoORT(t *testing.T) {
	r := runCLI(t, "", nil, "classify", "--model", modelDir, "검찰청 수사관입니다 안전계좌로 이체하세요")
	if r.err != nil {
		t.Fatalf("auto: %v\n%s", r.err, r.stderr)
	}
	if recs := jsonl(t, r.stdout); len(recs) != 1 || recs[0]["label"] == nil {
		t.Fatalf("auto: %q", r.stdout)
	}
	if r.stderr != "" {
		t.Errorf("auto in a native-only build: want a silent stderr, got %q", r.stderr)
	}
	r = runCLI(t, "", nil, "classify", "--backend", "ort", "--model", modelDir, "검찰청 수사관입니다")
	if r.code != 2 || !strings.Contains(r.stderr, "-tags noort") || !strings.Contains(r.stderr, "native") {
		t.Fatalf("ort in a noort build: exit %d, stderr %q", r.code, r.stderr)
	}
	r = runCLI(t, "", nil, "version")
	if r.err != nil || !strings.Contains(r.stdout, "noort") {
		t.Fatalf("version: %v %q", r.err, r.stdout)
	}
}
