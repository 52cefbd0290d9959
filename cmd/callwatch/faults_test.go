package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/callwatch/callwatch/models"
	cwruntime "github.com/callwatch/callwatch/runtime"
)

// Each fault must end the run with one line on stderr naming the cause and
// the fix, the documented exit code, and no partial record on stdout.

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// copyBundle copies the shipped bundle into a temp dir.
func copyBundle(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "bundle")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{models.ModelFile, models.TokenizerFile, models.CardFile} {
		copyFile(t, filepath.Join(modelDir, f), filepath.Join(dir, f))
	}
	return dir
}

func fileSum(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// rewriteCard edits dir's card.json and re-pins the digests of the files
// now in dir, so only the edit itself can be at fault.
func rewriteCard(t *testing.T, dir string, edit func(card map[string]any)) {
	t.Helper()
	path := filepath.Join(dir, models.CardFile)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var card map[string]any
	if err := json.Unmarshal(b, &card); err != nil {
		t.Fatal(err)
	}
	card["files"] = map[string]any{
		models.ModelFile:     map[string]any{"sha256": fileSum(t, filepath.Join(dir, models.ModelFile))},
		models.TokenizerFile: map[string]any{"sha256": fileSum(t, filepath.Join(dir, models.TokenizerFile))},
	}
	// The contract fields describe the shipped graph; a test model put in
	// its place has its own (the loader checks them against the graph).
	if m, err := os.ReadFile(filepath.Join(dir, models.ModelFile)); err == nil {
		if sig, err := cwruntime.ReadSignature(m); err == nil {
			if sig.Extra(cwruntime.OutputFamily) == 0 {
				delete(card, "families")
			}
			if _, ok := sig.State("p0"); !ok {
				delete(card, "state")
				delete(card, "outputs")
			}
		}
	}
	edit(card)
	out, err := json.MarshalIndent(card, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
}

// tinyBundle is a second, self-consistent-looking bundle: the runtime test
// model (embedding of 64 rows) with the shipped tokenizer (8,000 tokens).
func tinyBundle(t *testing.T, vocab any) string {
	t.Helper()
	dir := copyBundle(t)
	copyFile(t, filepath.Join("..", "..", "runtime", "testdata", "tiny.onnx"), filepath.Join(dir, models.ModelFile))
	rewriteCard(t, dir, func(c map[string]any) {
		c["name"] = "tiny"
		arch := map[string]any{"type": "embedding-lstm-linear-softmax", "embed": 8, "hidden": 16, "layers": 2}
		if vocab != nil {
			arch["vocab_size"] = vocab
		}
		c["architecture"] = arch
	})
	return dir
}

// oneLine fails unless s is exactly one non-empty line.
func oneLine(t *testing.T, s string) {
	t.Helper()
	if s == "" || strings.Count(s, "\n") != 1 || !strings.HasSuffix(s, "\n") {
		t.Errorf("stderr is not exactly one line: %q", s)
	}
}

func TestBundleFaults(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T) string // returns the --model dir
		want  []string
	}{
		{"model directory missing", func(t *testing.T) string { return filepath.Join(t.TempDir(), "nope") },
			[]string{"directory not found", "--model DIR"}},
		{"model path is a file", func(t *testing.T) string { return filepath.Join(copyBundle(t), models.CardFile) },
			[]string{"directory not found"}},
	}
	for _, f := range []string{models.ModelFile, models.TokenizerFile, models.CardFile} {
		tests = append(tests, struct {
			name  string
			setup func(t *testing.T) string
			want  []string
		}{f + " missing", func(t *testing.T) string {
			dir := copyBundle(t)
			os.Remove(filepath.Join(dir, f))
			return dir
		}, []string{f, "missing", "make model"}})
		wantTrunc := []string{f, "sha256", "truncated, corrupt or from another model", "make model"}
		if f == models.CardFile {
			wantTrunc = []string{f, "not valid JSON", "make model"}
		}
		tests = append(tests, struct {
			name  string
			setup func(t *testing.T) string
			want  []string
		}{f + " truncated", func(t *testing.T) string {
			dir := copyBundle(t)
			p := filepath.Join(dir, f)
			b, _ := os.ReadFile(p)
			os.WriteFile(p, b[:len(b)/3], 0o644)
			return dir
		}, wantTrunc})
	}
	tests = append(tests, []struct {
		name  string
		setup func(t *testing.T) string
		want  []string
	}{
		{"model.onnx swapped for another model's", func(t *testing.T) string {
			dir := copyBundle(t)
			copyFile(t, filepath.Join("..", "..", "runtime", "testdata", "tiny.onnx"), filepath.Join(dir, models.ModelFile))
			return dir
		}, []string{models.ModelFile, "from another model", "restore the bundle's original files together"}},
		{"tokenizer.json swapped for another model's", func(t *testing.T) string {
			dir := copyBundle(t)
			copyFile(t, filepath.Join("..", "..", "tokenize", "testdata", "tokenizer.json"), filepath.Join(dir, models.TokenizerFile))
			return dir
		}, []string{models.TokenizerFile, "from another model"}},
		{"card.json swapped for another model's", func(t *testing.T) string {
			dir := copyBundle(t)
			copyFile(t, filepath.Join(tinyBundle(t, 64), models.CardFile), filepath.Join(dir, models.CardFile))
			return dir
		}, []string{models.ModelFile, "does not match card.json"}},
		{"tokenizer vocabulary is not the embedding's (card agrees with the model)", func(t *testing.T) string { return tinyBundle(t, 64) },
			[]string{models.TokenizerFile, "vocabulary has 8000 tokens but the model's embedding has 64", "belongs to another model"}},
		{"tokenizer vocabulary is not the embedding's (card silent)", func(t *testing.T) string { return tinyBundle(t, nil) },
			[]string{models.TokenizerFile, "vocabulary has 8000 tokens but the model's embedding has 64"}},
		{"card vocab_size is not the embedding's (card agrees with the tokenizer)", func(t *testing.T) string { return tinyBundle(t, 8000) },
			[]string{models.CardFile, "vocab_size is 8000 but model.onnx's embedding has 64 rows", "make model"}},
		{"model.onnx is not ONNX (but pinned)", func(t *testing.T) string {
			dir := copyBundle(t)
			os.WriteFile(filepath.Join(dir, models.ModelFile), []byte("#!/bin/sh\necho not a model\n"), 0o644)
			rewriteCard(t, dir, func(map[string]any) {})
			return dir
		}, []string{models.ModelFile, "is not a valid ONNX model"}},
		{"card.json names a text normalizer this build does not know", func(t *testing.T) string {
			dir := copyBundle(t)
			rewriteCard(t, dir, func(c map[string]any) { c["text_normalizer"] = "lowercase-v9" })
			return dir
		}, []string{models.CardFile, `text_normalizer "lowercase-v9"`, "newer callwatch"}},
		{"card.json has wrong types", func(t *testing.T) string {
			dir := copyBundle(t)
			rewriteCard(t, dir, func(c map[string]any) { c["max_seq_len"] = "512" })
			return dir
		}, []string{models.CardFile, "not valid JSON", "max_seq_len"}},
	}...)
	for _, tt := range tests {
		for _, be := range []string{"native", "ort"} {
			t.Run(be+"/"+tt.name, func(t *testing.T) {
				dir := tt.setup(t)
				r := runCLI(t, "", nil, "classify", "--model", dir, "--backend", be, "안전계좌로 이체하세요")
				if r.code != exitUsage {
					t.Fatalf("exit %d, want %d\nstdout %s\nstderr %s", r.code, exitUsage, r.stdout, r.stderr)
				}
				if r.stdout != "" {
					t.Errorf("stdout not empty: %q", r.stdout)
				}
				t.Logf("exit %d: %s", r.code, strings.TrimSpace(r.stderr))
				oneLine(t, r.stderr)
				for _, w := range tt.want {
					if !strings.Contains(r.stderr, w) {
						t.Errorf("stderr does not mention %q:\n%s", w, r.stderr)
					}
				}
			})
		}
	}
}

func TestConfigFaults(t *testing.T) {
	dir := t.TempDir()
	asDir := filepath.Join(dir, "conf.yaml")
	os.Mkdir(asDir, 0o755)
	badYAML := filepath.Join(dir, "bad.yaml")
	os.WriteFile(badYAML, []byte("backend: [unclosed\n"), 0o644)
	badType := filepath.Join(dir, "type.yaml")
	os.WriteFile(badType, []byte("batch: many\n"), 0o644)
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want []string
	}{
		{"config is a directory", []string{"--config", asDir}, nil, []string{"cannot read config file", asDir, "fix or remove it"}},
		{"config is not YAML", []string{"--config", badYAML}, nil, []string{"cannot read config file", badYAML}},
		{"config file missing", []string{"--config", filepath.Join(dir, "missing.yaml")}, nil, []string{"cannot read config file", "missing.yaml"}},
		{"config from env missing", nil, map[string]string{"CALLWATCH_CONFIG": filepath.Join(dir, "env.yaml")}, []string{"cannot read config file", "env.yaml"}},
		{"config value of the wrong type", []string{"--config", badType}, nil, []string{`batch must be a whole number, got "many"`}},
		{"env value of the wrong type", nil, map[string]string{"CALLWATCH_THREADS": "two"}, []string{`threads must be a whole number, got "two"`}},
	}
	if os.Geteuid() != 0 {
		unreadable := filepath.Join(dir, "secret.yaml")
		os.WriteFile(unreadable, []byte("batch: 4\n"), 0o000)
		tests = append(tests, struct {
			name string
			args []string
			env  map[string]string
			want []string
		}{"config without read permission", []string{"--config", unreadable}, nil, []string{"cannot read config file", "permission denied"}})
	} else {
		t.Log("running as root: a mode-0 file is readable, so the unreadable case is the directory above")
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"classify", "--model", modelDir, "--backend", "native"}, tt.args...)
			r := runCLI(t, "", tt.env, append(args, "안녕하세요")...)
			if r.code != exitUsage || r.stdout != "" {
				t.Fatalf("exit %d (want %d), stdout %q, stderr %q", r.code, exitUsage, r.stdout, r.stderr)
			}
			oneLine(t, r.stderr)
			for _, w := range tt.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr does not mention %q: %s", w, r.stderr)
				}
			}
		})
	}
}

// buildCLI builds the callwatch binary for the subprocess tests.
func buildCLI(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "callwatch")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

type procResult struct {
	stdout, stderr string
	code           int
	signal         syscall.Signal // set when the process died of a signal
}

func runBin(t *testing.T, bin string, stdin io.Reader, args ...string) procResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	cmd.Stdin = stdin
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	return procResult{stdout: o.String(), stderr: e.String(), code: cmd.ProcessState.ExitCode(), signal: termSignal(err)}
}

func termSignal(err error) syscall.Signal {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return ws.Signal()
		}
	}
	return 0
}

// oldORT returns libonnxruntime from onnxruntime-node@1.23.2 (C API 23,
// one release too old), fetched with `npm pack` like scripts/setup-ort.sh
// and cached in the user cache directory.
func oldORT(t *testing.T) string {
	t.Helper()
	const version = "1.23.2"
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "callwatch-test", "onnxruntime-"+version)
	lib := filepath.Join(dir, "libonnxruntime.so."+version)
	if _, err := os.Stat(lib); err == nil {
		return lib
	}
	if _, err := exec.LookPath("npm"); err != nil {
		t.Fatalf("npm is needed to fetch onnxruntime-node@%s for this test: %v (install nodejs/npm)", version, err)
	}
	tmp := t.TempDir()
	pack := exec.Command("npm", "pack", "--silent", "onnxruntime-node@"+version)
	pack.Dir = tmp
	if out, err := pack.CombinedOutput(); err != nil {
		t.Fatalf("npm pack onnxruntime-node@%s failed — is the npm registry reachable (npm config get registry)? %v\n%s", version, err, out)
	}
	tgz := filepath.Join(tmp, "onnxruntime-node-"+version+".tgz")
	member := "package/bin/napi-v6/linux/x64/libonnxruntime.so.1"
	if out, err := exec.Command("tar", "-xzf", tgz, "-C", tmp, member).CombinedOutput(); err != nil {
		t.Fatalf("extracting %s: %v\n%s", member, err, out)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	copyFile(t, filepath.Join(tmp, member), lib+".partial")
	if err := os.Rename(lib+".partial", lib); err != nil {
		t.Fatal(err)
	}
	return lib
}

func TestORTLibraryFaults(t *testing.T) {
	bin := buildCLI(t)
	model, _ := filepath.Abs(modelDir)
	dir := t.TempDir()
	old := oldORT(t)
	notLib := filepath.Join(dir, "libonnxruntime.so")
	os.WriteFile(notLib, []byte("\x7fELF but not really a library"), 0o644)
	script := filepath.Join(dir, "script.so")
	os.WriteFile(script, []byte("#!/bin/sh\n"), 0o755)
	libc := "/lib/x86_64-linux-gnu/libc.so.6" // a real library, but not onnxruntime
	tests := []struct {
		name    string
		backend string
		lib     string
		code    int
		records int
		want    []string
	}{
		{"onnxruntime 1.23.2 with --backend ort", "ort", old, exitUsage, 0, []string{"onnxruntime 1.23.2", "needs >= 1.24", "make ort"}},
		{"onnxruntime 1.23.2 with --backend auto falls back", "auto", old, exitOK, 1, []string{"onnxruntime 1.23.2", "needs >= 1.24", "native backend"}},
		{"a file that is not a library", "ort", notLib, exitUsage, 0, []string{notLib, "make ort"}},
		{"a script named .so", "ort", script, exitUsage, 0, []string{script}},
		{"a directory", "ort", dir, exitUsage, 0, []string{dir}},
		{"a library that is not onnxruntime", "ort", libc, exitUsage, 0, []string{"not an onnxruntime library"}},
		{"a missing path", "ort", filepath.Join(dir, "missing.so"), exitUsage, 0, []string{"missing.so", "make ort"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.lib == libc {
				if _, err := os.Stat(libc); err != nil {
					t.Fatalf("%s not found on this machine: %v", libc, err)
				}
			}
			r := runBin(t, bin, nil, "classify", "--model", model, "--backend", tt.backend, "--ort-library", tt.lib, "안전계좌로 옮기세요")
			if r.code != tt.code {
				t.Fatalf("exit %d, want %d\nstdout %s\nstderr %s", r.code, tt.code, r.stdout, r.stderr)
			}
			if got := len(jsonl(t, r.stdout)); got != tt.records {
				t.Errorf("%d records, want %d", got, tt.records)
			}
			t.Logf("exit %d: %s", r.code, strings.TrimSpace(r.stderr))
			oneLine(t, r.stderr)
			for _, w := range tt.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr does not mention %q:\n%s", w, r.stderr)
				}
			}
		})
	}
}

// bigInput writes n text records and returns the file.
func bigInput(t *testing.T, n int) string {
	t.Helper()
	var sb strings.Builder
	for i := range n {
		fmt.Fprintf(&sb, "여보세요 %d번 고객님 서울중앙지검 수사관입니다 안전계좌로 이체하셔야 합니다 적금 만기 안내도 드립니다\n", i)
	}
	p := filepath.Join(t.TempDir(), "big.txt")
	if err := os.WriteFile(p, []byte(sb.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestStdoutClosedEarly is `callwatch classify … | head -1`: the reader
// goes away after one line. The line read must be a whole record and the
// program must end quietly (SIGPIPE, as for any Unix filter, or exit 0)
// without writing to stderr.
func TestStdoutClosedEarly(t *testing.T) {
	bin := buildCLI(t)
	model, _ := filepath.Abs(modelDir)
	in := bigInput(t, 3000)
	for _, be := range []string{"native", "ort"} {
		t.Run(be, func(t *testing.T) {
			cmd := exec.Command(bin, "classify", "--model", model, "--backend", be, "--input", in)
			cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			line, err := bufio.NewReader(out).ReadString('\n')
			out.Close() // head -1 exits
			if err != nil {
				t.Fatalf("reading the first line: %v", err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			var werr error
			select {
			case werr = <-done:
			case <-time.After(time.Minute):
				cmd.Process.Kill()
				t.Fatal("callwatch did not exit after its reader went away")
			}
			var rec map[string]any
			if err := json.Unmarshal([]byte(line), &rec); err != nil || rec["id"] != "1" {
				t.Fatalf("first line is not a whole record: %q (%v)", line, err)
			}
			sig := termSignal(werr)
			if !(werr == nil || sig == syscall.SIGPIPE) {
				t.Errorf("ended with %v, want SIGPIPE or exit 0", werr)
			}
			if stderr.Len() != 0 {
				t.Errorf("stderr not quiet: %q", stderr.String())
			}
			t.Logf("ended with %v", werr)
		})
	}
}

// TestInterrupt sends SIGINT or SIGTERM while classify works through a
// large input: the records written so far stay valid JSONL with no partial
// line, ids in order, exit 130, and one stderr line saying what happened.
func TestInterrupt(t *testing.T) {
	bin := buildCLI(t)
	model, _ := filepath.Abs(modelDir)
	const n = 40000
	in := bigInput(t, n)
	for _, tc := range []struct {
		sig     syscall.Signal
		backend string
	}{{syscall.SIGINT, "native"}, {syscall.SIGTERM, "ort"}} {
		t.Run(tc.sig.String(), func(t *testing.T) {
			cmd := exec.Command(bin, "classify", "--model", model, "--backend", tc.backend, "--batch", "7", "--input", in)
			cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			br := bufio.NewReader(out)
			first, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("first line: %v", err)
			}
			if err := cmd.Process.Signal(tc.sig); err != nil {
				t.Fatal(err)
			}
			rest, err := io.ReadAll(br)
			if err != nil {
				t.Fatal(err)
			}
			werr := cmd.Wait()
			code := cmd.ProcessState.ExitCode()
			if code != exitInterrupted {
				t.Fatalf("exit %d (%v), want %d; stderr %q", code, werr, exitInterrupted, stderr.String())
			}
			all := first + string(rest)
			if !strings.HasSuffix(all, "\n") {
				t.Fatalf("output ends in a partial line: %q", all[max(0, len(all)-80):])
			}
			recs := jsonl(t, all)
			if len(recs) == 0 || len(recs) >= n {
				t.Fatalf("%d records written of %d: the signal did not land mid-run", len(recs), n)
			}
			for i, rec := range recs {
				if rec["id"] != fmt.Sprint(i+1) {
					t.Fatalf("record %d has id %v: lost or reordered", i, rec["id"])
				}
			}
			oneLine(t, stderr.String())
			if want := fmt.Sprintf("interrupted after %d records", len(recs)); !strings.Contains(stderr.String(), want) {
				t.Errorf("stderr %q does not say %q", stderr.String(), want)
			}
			t.Logf("%s after %d of %d records: %s", tc.sig, len(recs), n, strings.TrimSpace(stderr.String()))
		})
	}
}
