//go:build !noort

package ort_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/callwatch/callwatch/runtime"
	"github.com/callwatch/callwatch/runtime/backendtest"
	"github.com/callwatch/callwatch/runtime/ort"
)

// open fails (never skips) when the library is missing: onnxruntime is a
// real component of every test run; `make test` installs it.
func open(t testing.TB, path string) runtime.Backend {
	t.Helper()
	be, err := ort.Open(path, ort.Options{})
	if err != nil {
		t.Fatalf("open onnxruntime backend: %v", err)
	}
	return be
}

func TestBackend(t *testing.T) {
	backendtest.Run(t, "../testdata/fixtures.json", open)
}

func TestLibraryErrors(t *testing.T) {
	dir := t.TempDir()
	notLib := filepath.Join(dir, "libonnxruntime.so")
	if err := os.WriteFile(notLib, []byte("not a shared library"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ort.Init(nil); err != nil && !strings.Contains(err.Error(), ort.InstallHint) {
		t.Fatalf("error lacks the fix: %v", err)
	}
	// Init with candidates that do not load must name what was tried and
	// how to fix it. (Run in a process where the environment is not yet up
	// is covered by the CLI tests; here the probe is checked directly.)
	_, err := ort.ProbeForTest(notLib)
	if err == nil {
		t.Fatal("a text file was accepted as onnxruntime")
	}
	_, err = ort.ProbeForTest(filepath.Join(dir, "missing.so"))
	if err == nil {
		t.Fatal("a missing file was accepted as onnxruntime")
	}
}

func TestVersionCheck(t *testing.T) {
	tests := []struct {
		v    string
		want bool
	}{{"1.24.3", true}, {"1.23.2", false}, {"2.0.0", true}, {"1.9.1", false}, {"1.30.0", true}}
	for _, tt := range tests {
		got, err := ort.VersionAtLeastForTest(tt.v, 1, 24)
		if err != nil || got != tt.want {
			t.Errorf("versionAtLeast(%q) = %v, %v; want %v", tt.v, got, err, tt.want)
		}
	}
	if _, err := ort.VersionAtLeastForTest("garbage", 1, 24); err == nil {
		t.Error("garbage version accepted")
	}
}

// Sessions allocate from the environment's grow-as-asked arena (peak RSS);
// Init registering it must not fail silently on a supported library.
func TestSharedArena(t *testing.T) {
	be := open(t, "../testdata/tiny.onnx")
	defer be.Close()
	if !ort.SharedArenaForTest() {
		t.Fatal("the shared CPU arena was not registered with the onnxruntime environment")
	}
}
