//go:build !noort

// Not under -tags noort: `make test-noort` runs ./internal/... again, and the
// release build is the same either way, so it runs once, in `go test ./...`.

package release

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"debug/buildinfo"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// version is stamped into the test's release; it appears nowhere in the sources.
const version = "v0.0.0-releasetest.1"

// ortVersion is the onnxruntime the ort archives carry (scripts/release.sh ORT_VERSION).
const ortVersion = "1.24.3"

type target struct {
	arch string // GOARCH
	kind string // "native" (static, -tags noort) or "ort" (cgo)
}

func (t target) name() string {
	return fmt.Sprintf("callwatch-%s-linux-%s-%s", version, t.arch, t.kind)
}

var targets = []target{{"amd64", "native"}, {"amd64", "ort"}, {"arm64", "native"}, {"arm64", "ort"}}

var machines = map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}

var loaders = map[string]string{"amd64": "/lib64/ld-linux-x86-64.so.2", "arm64": "/lib/ld-linux-aarch64.so.1"}

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "scripts", "release.sh")); err != nil {
		t.Fatalf("repository root not found from the test's directory: %v", err)
	}
	return root
}

// TestRelease runs `make release` into a temporary directory and checks what
// it produced as a user who downloads it would.
func TestRelease(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping `make release` (4 cross builds)")
	}
	root := repoRoot(t)
	for _, tool := range []string{"make", "bash", "sha256sum"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("make release needs %s: %v", tool, err)
		}
	}
	// make release installs the arm64 cross compiler with apt (sudo when not root); a sudo that would ask for a
	// password would hang here, so say how to get it instead.
	if _, err := exec.LookPath("aarch64-linux-gnu-gcc"); err != nil && os.Geteuid() != 0 {
		if exec.Command("sudo", "-n", "true").Run() != nil {
			t.Fatal("the arm64 onnxruntime binary needs the C cross compiler aarch64-linux-gnu-gcc, which is not installed, " +
				"and sudo needs a password: run `sudo apt-get install gcc-aarch64-linux-gnu` (Debian/Ubuntu) or `make release` once")
		}
	}
	tmp := t.TempDir()
	dist := filepath.Join(tmp, "dist")

	ctx := context.Background()
	if d, ok := t.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, d.Add(-30*time.Second))
		defer cancel()
	}
	start := time.Now()
	cmd := exec.CommandContext(ctx, "make", "-C", root, "--no-print-directory", "release", "DIST="+dist, "VERSION="+version)
	// The Go build cache is the caller's (GOCACHE is inherited): a second run rebuilds nothing but the links.
	cmd.Env = append(os.Environ(), "ORT_BUNDLE=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		// scripts/release.sh says what is missing and how to get it (the arm64 cross compiler, npm for onnxruntime).
		t.Fatalf("make release: %v\n%s", err, tail(out, 60))
	}
	t.Logf("make release: %s", time.Since(start).Round(time.Second))

	sums := checkSums(t, dist)
	for _, tg := range targets {
		if _, ok := sums[tg.name()]; !ok {
			t.Errorf("%s: not in the release", tg.name())
		}
		if tg.kind == "ort" {
			if _, ok := sums[tg.name()+".tar.gz"]; !ok {
				t.Errorf("%s.tar.gz: not in the release", tg.name())
			}
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	for _, tg := range targets {
		t.Run("binary/"+tg.arch+"-"+tg.kind, func(t *testing.T) {
			checkBinary(t, filepath.Join(dist, tg.name()), tg)
		})
		if tg.kind == "ort" {
			t.Run("archive/"+tg.arch, func(t *testing.T) {
				checkArchive(t, dist, tg)
			})
		}
	}

	// A binary-only user: the files copied out of the repository, run from a directory outside it, with no config.
	var native, ort []verdict
	t.Run("run/amd64-native", func(t *testing.T) {
		dir := filepath.Join(tmp, "native")
		exe := filepath.Join(dir, "callwatch")
		copyFile(t, filepath.Join(dist, targets[0].name()), exe, 0o755)
		v := runVersion(t, tmp, exe)
		if strings.Contains(v.Build, "onnxruntime") {
			t.Errorf("version build %q: want the native-only build", v.Build)
		}
		if v.ONNXRuntime.Version != "" {
			t.Errorf("the native-only binary reports onnxruntime %q", v.ONNXRuntime.Version)
		}
		native = runClassify(t, tmp, root, exe, "native")
	})
	t.Run("run/amd64-ort", func(t *testing.T) {
		dir := filepath.Join(tmp, "ort")
		extract(t, filepath.Join(dist, targets[1].name()+".tar.gz"), dir)
		exe := filepath.Join(dir, targets[1].name(), "callwatch")
		v := runVersion(t, tmp, exe)
		if !strings.Contains(v.Build, "onnxruntime") {
			t.Errorf("version build %q: want the onnxruntime build", v.Build)
		}
		if want := filepath.Join(filepath.Dir(exe), "libonnxruntime.so"); v.ONNXRuntime.Library != want || v.ONNXRuntime.Version != ortVersion {
			t.Errorf("version onnxruntime: library %q version %q (error %q), want the archive's %s, %s",
				v.ONNXRuntime.Library, v.ONNXRuntime.Version, v.ONNXRuntime.Error, want, ortVersion)
		}
		ort = runClassify(t, tmp, root, exe, "ort")
	})
	if len(native) > 0 && len(native) == len(ort) {
		for i := range native {
			if native[i].ID != ort[i].ID || native[i].Label != ort[i].Label || math.Abs(native[i].Score-ort[i].Score) > 1e-4 {
				t.Errorf("record %d: native %+v, ort %+v", i, native[i], ort[i])
			}
		}
	}
}

// checkSums checks that SHA256SUMS lists every other file in dist, once,
// with its sha256, and returns the names it lists.
func checkSums(t *testing.T, dist string) map[string]bool {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dist, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		// sha256sum's format: 64 hex digits, a space, ' ' (text) or '*' (binary), the name.
		line := sc.Text()
		if len(line) < 67 || line[64] != ' ' || (line[65] != ' ' && line[65] != '*') {
			t.Fatalf("SHA256SUMS line %d: %q is not in sha256sum format", n, line)
		}
		want, name := line[:64], line[66:]
		if _, err := hex.DecodeString(want); err != nil || strings.ToLower(want) != want {
			t.Fatalf("SHA256SUMS line %d: %q is not a lowercase sha256", n, want)
		}
		if listed[name] || strings.Contains(name, "/") {
			t.Fatalf("SHA256SUMS line %d: %q listed twice or not a plain file name", n, name)
		}
		listed[name] = true
		if got := fileSHA256(t, filepath.Join(dist, name)); got != want {
			t.Errorf("%s: sha256 %s, SHA256SUMS says %s", name, got, want)
		}
	}
	entries, err := os.ReadDir(dist)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() != "SHA256SUMS" && !listed[e.Name()] {
			t.Errorf("%s: in the release but not in SHA256SUMS", e.Name())
		}
	}
	// sha256sum itself agrees (what the README tells users to run).
	cmd := exec.Command("sha256sum", "--check", "--strict", "SHA256SUMS")
	cmd.Dir = dist
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("sha256sum --check: %v\n%s", err, out)
	}
	return listed
}

// checkBinary checks a binary's architecture, linking and build settings
// without running it (the arm64 ones cannot run here).
func checkBinary(t *testing.T, path string, tg target) {
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Class != elf.ELFCLASS64 || f.Machine != machines[tg.arch] {
		t.Errorf("ELF %v %v, want ELFCLASS64 %v", f.Class, f.Machine, machines[tg.arch])
	}
	interp := ""
	dynamic := false
	for _, p := range f.Progs {
		switch p.Type {
		case elf.PT_INTERP:
			b, err := io.ReadAll(p.Open())
			if err != nil {
				t.Fatal(err)
			}
			interp = string(bytes.TrimRight(b, "\x00"))
		case elf.PT_DYNAMIC:
			dynamic = true
		}
	}
	libs, err := f.ImportedLibraries()
	if err != nil && !errors.Is(err, elf.ErrNoSymbols) {
		t.Fatalf("imported libraries: %v", err)
	}
	switch tg.kind {
	case "native":
		if interp != "" || dynamic || len(libs) > 0 {
			t.Errorf("not statically linked: interpreter %q, dynamic section %v, libraries %v", interp, dynamic, libs)
		}
	case "ort":
		if interp != loaders[tg.arch] {
			t.Errorf("interpreter %q, want %s", interp, loaders[tg.arch])
		}
		if !slices.Contains(libs, "libc.so.6") {
			t.Errorf("libraries %v: want glibc's libc.so.6", libs)
		}
		for _, l := range libs {
			if strings.Contains(l, "onnxruntime") {
				t.Errorf("linked against %s: onnxruntime must be loaded at run time, so that the binary starts without it", l)
			}
		}
	}

	bi, err := buildinfo.ReadFile(path)
	if err != nil {
		t.Fatalf("build info: %v", err)
	}
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	cgo, tags := "1", ""
	if tg.kind == "native" {
		cgo, tags = "0", "noort"
	}
	want := map[string]string{"GOOS": "linux", "GOARCH": tg.arch, "CGO_ENABLED": cgo, "-trimpath": "true", "-tags": tags}
	for k, v := range want {
		if settings[k] != v {
			t.Errorf("build setting %s=%q, want %q", k, settings[k], v)
		}
	}
	if bi.Path != "github.com/callwatch/callwatch/cmd/callwatch" {
		t.Errorf("main package %q, want cmd/callwatch", bi.Path)
	}
	// -trimpath keeps -ldflags out of the build info: look for the stamped string itself.
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(data, []byte(version)) {
		t.Errorf("the version %q (-X main.Version) is not in the binary", version)
	}
}

// checkArchive checks an ort archive: one directory named like the binary,
// holding that same binary, libonnxruntime.so for its architecture, and notes.
func checkArchive(t *testing.T, dist string, tg target) {
	dir := t.TempDir()
	members := extract(t, filepath.Join(dist, tg.name()+".tar.gz"), dir)
	for _, m := range members {
		if m != tg.name()+"/" && !strings.HasPrefix(m, tg.name()+"/") {
			t.Errorf("archive member %q outside the directory %s/", m, tg.name())
		}
	}
	top := filepath.Join(dir, tg.name())
	for _, m := range []string{"callwatch", "libonnxruntime.so", "ONNXRUNTIME.txt", "README.md"} {
		if _, err := os.Stat(filepath.Join(top, m)); err != nil {
			t.Errorf("archive: %v", err)
		}
	}
	if got, want := fileSHA256(t, filepath.Join(top, "callwatch")), fileSHA256(t, filepath.Join(dist, tg.name())); got != want {
		t.Errorf("the archive's callwatch differs from %s", tg.name())
	}
	if st, err := os.Stat(filepath.Join(top, "callwatch")); err == nil && st.Mode().Perm()&0o111 == 0 {
		t.Errorf("the archive's callwatch is not executable (%v)", st.Mode())
	}
	f, err := elf.Open(filepath.Join(top, "libonnxruntime.so"))
	if err != nil {
		t.Fatalf("libonnxruntime.so: %v", err)
	}
	defer f.Close()
	if f.Machine != machines[tg.arch] {
		t.Errorf("libonnxruntime.so is for %v, want %v", f.Machine, machines[tg.arch])
	}
	if names, _ := f.DynString(elf.DT_SONAME); !slices.Contains(names, "libonnxruntime.so.1") {
		t.Errorf("libonnxruntime.so soname %v, want libonnxruntime.so.1", names)
	}
}

type versionJSON struct {
	Version string `json:"version"`
	Build   string `json:"build"`
	Model   *struct {
		Name   string `json:"name"`
		Source string `json:"source"`
	} `json:"model"`
	ModelError  string `json:"model_error"`
	ONNXRuntime struct {
		Library string `json:"library"`
		Version string `json:"version"`
		Error   string `json:"error"`
	} `json:"onnxruntime"`
}

type verdict struct {
	ID    string  `json:"id"`
	Label string  `json:"label"`
	Score float64 `json:"score"`
	Level string  `json:"level"`
	Error string  `json:"error"`
}

// userCmd runs exe as a user who has only the binary: working directory
// outside the repository, no CALLWATCH_* variables, no config file.
func userCmd(t *testing.T, tmp, exe string, args ...string) *exec.Cmd {
	t.Helper()
	work := filepath.Join(tmp, "work")
	home := filepath.Join(tmp, "home")
	for _, d := range []string{work, home} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, exe, args...)
	cmd.Dir = work
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + home, "XDG_CONFIG_HOME=" + filepath.Join(home, ".config"), "LANG=C.UTF-8"}
	return cmd
}

func runVersion(t *testing.T, tmp, exe string) versionJSON {
	t.Helper()
	cmd := userCmd(t, tmp, exe, "version")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s version: %v\n%s%s", exe, err, out, stderr.Bytes())
	}
	var v versionJSON
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatalf("version: not JSON: %v\n%s", err, out)
	}
	if v.Version != version {
		t.Errorf("version %q, want the stamped %q", v.Version, version)
	}
	if v.Model == nil || v.Model.Source != "embedded" {
		t.Errorf("version model %+v (error %q): want the embedded model", v.Model, v.ModelError)
	}
	return v
}

func runClassify(t *testing.T, tmp, root, exe, backend string) []verdict {
	t.Helper()
	samples := filepath.Join(tmp, "work", "calls.jsonl")
	copyFile(t, filepath.Join(root, "corpus", "samples", "calls.jsonl"), samples, 0o644)
	var ids []string
	data, err := os.ReadFile(samples)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var r struct{ ID string }
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("sample line: %v", err)
		}
		ids = append(ids, r.ID)
	}
	cmd := userCmd(t, tmp, exe, "classify", "--backend", backend, "--input", "calls.jsonl")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("classify --backend %s: %v\n%s%s", backend, err, out, stderr.Bytes())
	}
	var vs []verdict
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var v verdict
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Fatalf("classify output %q: %v", l, err)
		}
		vs = append(vs, v)
	}
	if len(vs) != len(ids) {
		t.Fatalf("classify: %d verdicts for %d records\n%s", len(vs), len(ids), out)
	}
	for i, v := range vs {
		if v.ID != ids[i] || v.Error != "" || (v.Label != "phishing" && v.Label != "normal") || v.Score < 0 || v.Score > 1 {
			t.Errorf("verdict %d: %+v (record %s)", i, v, ids[i])
		}
	}
	return vs
}

// extract unpacks a .tar.gz into dir and returns its member names.
func extract(t *testing.T, archive, dir string) []string {
	t.Helper()
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("%s: %v", archive, err)
	}
	tr := tar.NewReader(zr)
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", archive, err)
		}
		names = append(names, h.Name)
		if !filepath.IsLocal(h.Name) {
			t.Fatalf("%s: member %q is not a local path", archive, h.Name)
		}
		p := filepath.Join(dir, h.Name)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			w, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, h.FileInfo().Mode().Perm())
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(w, tr); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
		default:
			t.Errorf("%s: member %q of type %c: want plain files and directories", archive, h.Name, h.Typeflag)
		}
	}
	return names
}

func copyFile(t *testing.T, src, dst string, mode os.FileMode) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, data, mode); err != nil {
		t.Fatal(err)
	}
}

func fileSHA256(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func tail(b []byte, lines int) []byte {
	s := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(s) > lines {
		s = s[len(s)-lines:]
	}
	return []byte(strings.Join(s, "\n"))
}
