package native_test

import (
	"testing"

	"github.com/callwatch/callwatch/runtime"
	"github.com/callwatch/callwatch/runtime/backendtest"
	"github.com/callwatch/callwatch/runtime/native"
)

func open(t testing.TB, path string) runtime.Backend {
	t.Helper()
	be, err := native.Open(path)
	if err != nil {
		t.Fatalf("open native backend: %v", err)
	}
	return be
}

// TestBackend runs the shared backend test body on the exporter's fixtures
// and on the pack_padded_sequence export (testdata/packed.json).
func TestBackend(t *testing.T) {
	for _, fx := range []string{"../testdata/fixtures.json", "testdata/packed.json"} {
		t.Run(fx, func(t *testing.T) { backendtest.Run(t, fx, open) })
	}
}
