package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/callwatch/callwatch/models"
)

// diskModelSHA is the sha256 of the model.onnx on disk now: the embed holds
// whatever models/ko-vishing-lstm held at build time, so never a constant.
func diskModelSHA(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(modelDir, models.ModelFile))
	if err != nil {
		t.Fatal(err)
	}
	return models.Sum(b)
}

func versionModel(t *testing.T, stdout string) map[string]any {
	t.Helper()
	var vi map[string]any
	if err := json.Unmarshal([]byte(stdout), &vi); err != nil {
		t.Fatalf("version output is not JSON: %v\n%s", err, stdout)
	}
	m, ok := vi["model"].(map[string]any)
	if !ok {
		t.Fatalf("version has no model: %s", stdout)
	}
	return m
}

const (
	phishText = "지금 바로 안전계좌로 이체하셔야 합니다 검찰청 수사관입니다 명의가 도용돼서요"
	normText  = "적금 만기 안내드리려고 연락드렸습니다 앱에서 확인하시거나 영업점 방문하시면 됩니다"
)

// With no --model and no models/ above the working directory or beside the
// executable, the model built into the binary classifies, with the same
// verdicts as the bundle on disk.
func TestEmbeddedModelWithoutDisk(t *testing.T) {
	want := runCLI(t, "", nil, "classify", "--model", modelDir, "--backend", "native", phishText, normText)
	if want.err != nil {
		t.Fatalf("classify --model: %v\n%s", want.err, want.stderr)
	}
	sha := diskModelSHA(t)

	r := runCLI(t, "", nil, "version")
	if m := versionModel(t, r.stdout); m["source"] != "disk" || m["sha256"] != sha || !filepath.IsAbs(m["dir"].(string)) {
		t.Errorf("version in the repository: model %v, want source disk, sha256 %s and an absolute dir", m, sha)
	}

	t.Chdir(t.TempDir())
	got := runCLI(t, "", map[string]string{"HOME": t.TempDir()}, "classify", "--backend", "native", phishText, normText)
	if got.err != nil {
		t.Fatalf("classify with the built-in model: %v\n%s", got.err, got.stderr)
	}
	if got.stdout != want.stdout {
		t.Errorf("built-in model verdicts differ from the bundle on disk:\n%s\nwant\n%s", got.stdout, want.stdout)
	}
	r = runCLI(t, "", nil, "version")
	m := versionModel(t, r.stdout)
	if m["source"] != "embedded" || m["sha256"] != sha {
		t.Errorf("version without a bundle on disk: model %v, want source embedded and sha256 %s", m, sha)
	}
	if _, ok := m["dir"]; ok {
		t.Errorf("embedded model has a dir: %v", m["dir"])
	}
	// A bad --model names fixes that need only the binary.
	r = runCLI(t, "", nil, "classify", "--model", "nope", "x")
	if r.code != exitUsage || !strings.Contains(r.stderr, "built into callwatch") || !strings.Contains(r.stderr, "--model DIR") {
		t.Errorf("classify --model nope: exit %d, stderr %q", r.code, r.stderr)
	}
}

// The binary copied out of the repository classifies on its own.
func TestBinaryCopiedOut(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	built := t.TempDir()
	bin := filepath.Join(built, "callwatch")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	// Copy it where no models/ is above or beside it.
	dir := t.TempDir()
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	copied := filepath.Join(dir, "bin", "callwatch")
	os.MkdirAll(filepath.Dir(copied), 0o755)
	if err := os.WriteFile(copied, data, 0o755); err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	runIn := func(args ...string) procResult {
		cmd := exec.Command(copied, args...)
		cmd.Dir = work
		cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + work}
		var o, e strings.Builder
		cmd.Stdout, cmd.Stderr = &o, &e
		cmd.Run()
		return procResult{stdout: o.String(), stderr: e.String(), code: cmd.ProcessState.ExitCode()}
	}
	r := runIn("classify", "--backend", "native", phishText, normText)
	if r.code != 0 || len(jsonl(t, r.stdout)) != 2 {
		t.Fatalf("copied binary classify: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	r = runIn("version")
	if m := versionModel(t, r.stdout); m["source"] != "embedded" || m["sha256"] != diskModelSHA(t) {
		t.Errorf("copied binary version: model %v", m)
	}
}
