package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// modelDir is the shipped bundle; every CLI test runs the real model.
var modelDir = filepath.Join("..", "..", "models", "ko-vishing-lstm")

type result struct {
	stdout, stderr string
	err            error
	code           int
}

// callwatch drives run in-process, as main does.
func runCLI(t *testing.T, stdin string, env map[string]string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	getenv := func(k string) string { return env[k] }
	err := run(context.Background(), args, getenv, strings.NewReader(stdin), &out, &errb)
	return result{stdout: out.String(), stderr: errb.String(), err: err, code: exitCode(err)}
}

// jsonl parses every stdout line as a JSON object; a line that is not one
// fails the test, since output must pipe into jq.
func jsonl(t *testing.T, s string) []map[string]any {
	t.Helper()
	var recs []map[string]any
	for i, line := range strings.Split(strings.TrimSuffix(s, "\n"), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("stdout line %d is not a JSON object: %v\n%s", i+1, err, line)
		}
		recs = append(recs, m)
	}
	return recs
}

func TestClassifyVerdicts(t *testing.T) {
	for _, backend := range []string{"native", "ort"} {
		t.Run(backend, func(t *testing.T) {
			r := runCLI(t, "", nil, "classify", "--model", modelDir, "--backend", backend,
				"지금 바로 안전계좌로 이체하셔야 합니다 검찰청 수사관입니다 명의가 도용돼서요",
				"적금 만기 안내드리려고 연락드렸습니다 앱에서 확인하시거나 영업점 방문하시면 됩니다")
			if r.err != nil {
				t.Fatalf("classify: %v\n%s", r.err, r.stderr)
			}
			recs := jsonl(t, r.stdout)
			if len(recs) != 2 {
				t.Fatalf("want 2 records, got %d: %s", len(recs), r.stdout)
			}
			for i, rec := range recs {
				if rec["id"] != []string{"1", "2"}[i] {
					t.Errorf("record %d id = %v", i, rec["id"])
				}
				score, ok := rec["score"].(float64)
				if !ok || score < 0 || score > 1 {
					t.Errorf("record %d score = %v", i, rec["score"])
				}
				if l := rec["label"]; l != "phishing" && l != "normal" {
					t.Errorf("record %d label = %v", i, l)
				}
				if l := rec["level"]; l != "none" && l != "suspicious" && l != "dangerous" {
					t.Errorf("record %d level = %v", i, l)
				}
			}
		})
	}
}

func TestClassifyBadRecords(t *testing.T) {
	big := strings.Repeat("안전계좌로 이체하세요 ", 5<<20/len("안전계좌로 이체하세요 ")+1)
	lines := []string{
		`{"id":"ok1","text":"여보세요 택배 기사인데요 문 앞에 두고 갈게요"}`,
		`{"id":"broken","text":`, // malformed JSON
		`{"id":"bad-utf8","text":"` + "\xff\xfe 계좌 \xc3" + `"}`,
		`{"id":"empty","text":""}`,
		`{"id":"spaces","text":"` + strings.Repeat(" ", 10000) + `"}`,
		`{"id":"num","text":12}`,
		`{"id":"big","text":"` + big + `"}`,
		`{"id":7,"text":"숫자 아이디도 됩니다"}`,
		`{"id":"ok2","text":"엄마 나야 폰이 고장나서 그러는데 상품권 좀 사서 보내줘"}`,
	}
	in := strings.Join(lines, "\n") + "\n"
	r := runCLI(t, in, nil, "classify", "--model", modelDir, "--backend", "native", "--input", "-", "--format", "jsonl")
	if r.code != exitFailed {
		t.Fatalf("exit code %d, want %d (some records failed); err %v\n%s", r.code, exitFailed, r.err, r.stderr)
	}
	recs := jsonl(t, r.stdout)
	if len(recs) != len(lines) {
		t.Fatalf("%d input records gave %d output records", len(lines), len(recs))
	}
	want := []struct {
		id      string
		failed  bool
		line    float64
		errPart string
	}{
		{"ok1", false, 0, ""},
		{"2", true, 2, "not a JSON object"},
		{"bad-utf8", false, 0, ""},
		{"empty", true, 4, "empty"},
		{"spaces", true, 5, "empty"},
		{"num", true, 6, `"text" must be a string`},
		{"big", false, 0, ""},
		{"7", false, 0, ""},
		{"ok2", false, 0, ""},
	}
	for i, w := range want {
		rec := recs[i]
		if rec["id"] != w.id {
			t.Errorf("record %d: id %v, want %q", i, rec["id"], w.id)
		}
		_, hasErr := rec["error"]
		if hasErr != w.failed {
			t.Errorf("record %d (%s): error present %v, want %v: %v", i, w.id, hasErr, w.failed, rec)
			continue
		}
		if w.failed {
			if rec["line"] != w.line {
				t.Errorf("record %d: line %v, want %v", i, rec["line"], w.line)
			}
			if !strings.Contains(rec["error"].(string), w.errPart) {
				t.Errorf("record %d: error %q does not mention %q", i, rec["error"], w.errPart)
			}
		} else if _, ok := rec["score"]; !ok {
			t.Errorf("record %d (%s): no score: %v", i, w.id, rec)
		}
	}
}

func TestClassifyCSVAndText(t *testing.T) {
	csvIn := "id,text\r\na,\"여보세요 여기 은행인데요\r\n적금 만기 안내드립니다\"\r\nb,검찰청입니다 안전계좌로 옮기세요\r\n"
	r := runCLI(t, csvIn, nil, "classify", "--model", modelDir, "--backend", "native", "--input", "-", "--format", "csv")
	if r.err != nil {
		t.Fatalf("csv: %v\n%s", r.err, r.stderr)
	}
	recs := jsonl(t, r.stdout)
	if len(recs) != 2 || recs[0]["id"] != "a" || recs[1]["id"] != "b" {
		t.Fatalf("csv records: %s", r.stdout)
	}
	r = runCLI(t, "\xef\xbb\xbf첫 줄입니다\r\n\r\n둘째 줄 계좌 이체\r\n", nil, "classify", "--model", modelDir, "--backend", "native", "--input", "-")
	if r.err != nil {
		t.Fatalf("text: %v\n%s", r.err, r.stderr)
	}
	recs = jsonl(t, r.stdout)
	if len(recs) != 2 || recs[0]["id"] != "1" || recs[1]["id"] != "3" {
		t.Fatalf("text records (ids are line numbers, blank lines skipped): %s", r.stdout)
	}
}

func TestBackendsAgreeThroughCLI(t *testing.T) {
	in, err := os.ReadFile(filepath.Join("..", "..", "corpus", "samples", "calls.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	scores := map[string][]any{}
	for _, be := range []string{"ort", "native"} {
		r := runCLI(t, string(in), nil, "classify", "--model", modelDir, "--backend", be, "--input", "-", "--format", "jsonl")
		if r.err != nil {
			t.Fatalf("%s: %v\n%s", be, r.err, r.stderr)
		}
		for _, rec := range jsonl(t, r.stdout) {
			scores[be] = append(scores[be], rec["score"])
		}
	}
	if len(scores["ort"]) == 0 || len(scores["ort"]) != len(scores["native"]) {
		t.Fatalf("record counts differ: %d vs %d", len(scores["ort"]), len(scores["native"]))
	}
	for i := range scores["ort"] {
		a, b := scores["ort"][i].(float64), scores["native"][i].(float64)
		if d := a - b; d > 2e-6 || d < -2e-6 { // scores are printed rounded to 6 decimals
			t.Errorf("sample %d: ort %v vs native %v", i, a, b)
		}
	}
}

// TestWindowDoesNotChangeScores: --window only changes how many tokens go to
// the backend per run (the state is carried), so the output is the same.
func TestWindowDoesNotChangeScores(t *testing.T) {
	in, err := os.ReadFile(filepath.Join("..", "..", "testdata", "parity_calls.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	// The state (h, c and the pooled sums p) is carried exactly across
	// windows; only float32 summation order differs, so scores agree to
	// rounding, and labels, levels and families agree unless a score sits
	// at a threshold.
	var want []map[string]any
	for _, w := range []string{"32", "5", "512"} {
		r := runCLI(t, string(in), nil, "classify", "--model", modelDir, "--backend", "native", "--window", w, "--input", "-", "--format", "jsonl")
		if r.err != nil {
			t.Fatalf("--window %s: %v\n%s", w, r.err, r.stderr)
		}
		got := jsonl(t, r.stdout)
		if len(got) != 252 {
			t.Fatalf("--window %s: %d records, want 252", w, len(got))
		}
		if want == nil {
			want = got
			continue
		}
		for i := range got {
			a, b := got[i]["score"].(float64), want[i]["score"].(float64)
			if math.Abs(a-b) > 1e-5 || got[i]["id"] != want[i]["id"] {
				t.Fatalf("--window %s: record %d score %v, window 32 gave %v", w, i, got[i], want[i])
			}
			if got[i]["level"] != want[i]["level"] && math.Abs(a-b) < 1e-6 {
				continue // a score at a threshold may round either way
			}
			if got[i]["level"] != want[i]["level"] || got[i]["family"] != want[i]["family"] {
				t.Fatalf("--window %s: record %d %v, window 32 gave %v", w, i, got[i], want[i])
			}
		}
	}
}

func TestParityCommand(t *testing.T) {
	r := runCLI(t, "", nil, "parity", "--model", modelDir, "--input", filepath.Join("..", "..", "testdata", "parity_calls.jsonl"), "--batch", "16")
	if r.err != nil {
		t.Fatalf("parity: %v\n%s\n%s", r.err, r.stdout, r.stderr)
	}
	var rep parityReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("parity output: %v\n%s", err, r.stdout)
	}
	if rep.Scored < 200 || !rep.OK || rep.MaxAbsDiff > 1e-5 {
		t.Fatalf("parity report: %+v", rep)
	}
	t.Logf("parity over %d transcripts (%d tokens): probs %.3g, state %.3g", rep.Scored, rep.Tokens, rep.MaxAbsProbs, rep.MaxAbsState)
}

func TestTokenizeCommand(t *testing.T) {
	r := runCLI(t, `{"id":"x","text":"안전계좌 이체","label":"phishing","group":"g1"}`+"\n", nil, "tokenize", "--model", modelDir, "--input", "-", "--format", "jsonl")
	if r.err != nil {
		t.Fatalf("tokenize: %v\n%s", r.err, r.stderr)
	}
	recs := jsonl(t, r.stdout)
	if len(recs) != 1 || recs[0]["id"] != "x" || recs[0]["label"] != "phishing" || recs[0]["group"] != "g1" {
		t.Fatalf("tokenize output: %s", r.stdout)
	}
	if ids, ok := recs[0]["ids"].([]any); !ok || len(ids) == 0 {
		t.Fatalf("no ids: %s", r.stdout)
	}
}

// TestTokenizeNormalizer: tokenize --normalizer folds formal endings as a
// bundle naming it would; an unknown name and --normalizer without
// --tokenizer are command-line errors, and so is vocab with an unknown name.
func TestTokenizeNormalizer(t *testing.T) {
	tok := filepath.Join(modelDir, "tokenizer.json")
	ids := func(args ...string) string {
		t.Helper()
		r := runCLI(t, "", nil, append([]string{"tokenize", "--tokenizer", tok}, args...)...)
		if r.err != nil {
			t.Fatalf("tokenize %v: %v\n%s", args, r.err, r.stderr)
		}
		return fmt.Sprint(jsonl(t, r.stdout)[0]["ids"])
	}
	folded := ids("--normalizer", "polite-endings", "본인 확인하겠습니다 검찰청입니다")
	if polite := ids("본인 확인할게요 검찰청이에요"); folded != polite {
		t.Fatalf("folded formal text %s, its polite form %s", folded, polite)
	}
	if raw := ids("본인 확인하겠습니다 검찰청입니다"); raw == folded {
		t.Fatalf("the normalizer changed nothing: %s", raw)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"tokenize", "--tokenizer", tok, "--normalizer", "shout", "네"}, `"shout"`},
		{[]string{"tokenize", "--model", modelDir, "--normalizer", "polite-endings", "네"}, "--normalizer goes with --tokenizer"},
		{[]string{"vocab", "--out", filepath.Join(t.TempDir(), "t.json"), "--normalizer", "shout", "네"}, `"shout" is not a text normalizer`},
	} {
		r := runCLI(t, "", nil, c.args...)
		if r.code != 2 || !strings.Contains(r.stderr+fmt.Sprint(r.err), c.want) {
			t.Errorf("%v: exit %d, %v %s; want exit 2 and %q", c.args, r.code, r.err, r.stderr, c.want)
		}
	}
}

func TestVersionCommand(t *testing.T) {
	r := runCLI(t, "", nil, "version", "--model", modelDir)
	if r.err != nil {
		t.Fatalf("version: %v", r.err)
	}
	var vi versionInfo
	if err := json.Unmarshal([]byte(r.stdout), &vi); err != nil {
		t.Fatalf("version output: %v\n%s", err, r.stdout)
	}
	if vi.Program != "callwatch" || vi.Model == nil || len(vi.Model.SHA256) != 64 || vi.ONNXRuntime.Version == "" {
		t.Fatalf("version info incomplete: %s", r.stdout)
	}
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"no command", nil, exitUsage, "no command"},
		{"unknown command", []string{"frobnicate"}, exitUsage, "unknown command"},
		{"help", []string{"help"}, exitOK, ""},
		{"classify help", []string{"classify", "--help"}, exitOK, ""},
		{"bad flag", []string{"classify", "--nope"}, exitUsage, "unknown flag"},
		{"nothing to read", []string{"classify", "--model", modelDir}, exitUsage, "nothing to read"},
		{"bad backend", []string{"classify", "--backend", "gpu", "x"}, exitUsage, "unknown backend"},
		{"missing model", []string{"classify", "--model", "/nonexistent/bundle", "x"}, exitUsage, "directory not found"},
		{"bad format", []string{"classify", "--input", "-", "--format", "xml"}, exitUsage, "unknown input format"},
		{"missing input file", []string{"classify", "--input", "/nonexistent.jsonl"}, exitUsage, "cannot open input"},
		{"batch zero", []string{"classify", "--batch", "0", "x"}, exitUsage, "batch must be"},
		{"window zero", []string{"classify", "--window", "0", "x"}, exitUsage, "window must be"},
		{"window not a number", []string{"classify", "--window", "wide", "x"}, exitUsage, "invalid argument"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCLI(t, "", nil, tt.args...)
			if r.code != tt.code {
				t.Fatalf("exit %d, want %d (err %v)", r.code, tt.code, r.err)
			}
			if tt.msg != "" && !strings.Contains(r.stderr, tt.msg) {
				t.Fatalf("stderr %q does not mention %q", r.stderr, tt.msg)
			}
		})
	}
}

func TestConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "callwatch.yaml")
	if err := os.WriteFile(cfg, []byte("backend: native\nbatch: 7\nthreads: 3\nwindow: 48\nort:\n  library: /from/file.so\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	xdg := filepath.Join(dir, "xdg")
	os.MkdirAll(filepath.Join(xdg, "callwatch"), 0o755)
	if err := os.WriteFile(filepath.Join(xdg, "callwatch", "callwatch.yaml"), []byte("batch: 5\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		backend string
		batch   int
		threads int
		lib     string
		window  int
	}{
		{"defaults", nil, nil, "auto", 32, 1, "", 32},
		{"file", nil, []string{"--config", cfg}, "native", 7, 3, "/from/file.so", 48},
		{"env over file", map[string]string{"CALLWATCH_BATCH": "9", "CALLWATCH_ORT_LIBRARY": "/from/env.so", "CALLWATCH_WINDOW": "96"}, []string{"--config", cfg}, "native", 9, 3, "/from/env.so", 96},
		{"flag over env", map[string]string{"CALLWATCH_BATCH": "9", "CALLWATCH_BACKEND": "ort", "CALLWATCH_WINDOW": "96"}, []string{"--config", cfg, "--batch", "11", "--window", "200"}, "ort", 11, 3, "/from/file.so", 200},
		{"XDG config", map[string]string{"XDG_CONFIG_HOME": xdg}, nil, "auto", 5, 1, "", 32},
		{"explicit file beats XDG", map[string]string{"XDG_CONFIG_HOME": xdg}, []string{"--config", cfg}, "native", 7, 3, "/from/file.so", 48},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := &env{getenv: func(k string) string { return tt.env[k] }, stderr: &bytes.Buffer{}}
			fs, err := commandFlags(e, "classify", tt.args)
			if err != nil {
				t.Fatal(err)
			}
			c, err := e.loadConfig(fs)
			if err != nil {
				t.Fatal(err)
			}
			if c.Backend != tt.backend || c.Batch != tt.batch || c.Threads != tt.threads || c.ORTLibrary != tt.lib || c.Window != tt.window {
				t.Fatalf("got %+v", c)
			}
		})
	}
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("backend: [unclosed\n"), 0o644)
	r := runCLI(t, "", nil, "classify", "--config", bad, "x")
	if r.code != exitUsage || !strings.Contains(r.stderr, "cannot read config file") {
		t.Fatalf("bad config: exit %d, stderr %q", r.code, r.stderr)
	}
}

// TestWithoutORTLibrary runs the built binary in a directory where no
// onnxruntime library can be found: native must work, auto must fall back
// with one stderr line, ort must fail saying how to install it.
func TestWithoutORTLibrary(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "callwatch")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	model, _ := filepath.Abs(modelDir)
	runBin := func(args ...string) (string, string, int) {
		cmd := exec.Command(bin, args...)
		cmd.Dir = dir
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "CALLWATCH_ORT_LIBRARY=" + filepath.Join(dir, "nope.so")}
		var o, e bytes.Buffer
		cmd.Stdout, cmd.Stderr = &o, &e
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		return o.String(), e.String(), code
	}
	out, stderr, code := runBin("classify", "--model", model, "--backend", "native", "안전계좌로 옮기세요")
	if code != 0 || len(jsonl(t, out)) != 1 {
		t.Fatalf("native without onnxruntime: exit %d\n%s\n%s", code, out, stderr)
	}
	out, stderr, code = runBin("classify", "--model", model, "--backend", "auto", "안전계좌로 옮기세요")
	if code != 0 || len(jsonl(t, out)) != 1 || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, "native") {
		t.Fatalf("auto without onnxruntime: exit %d\nstdout %s\nstderr %q", code, out, stderr)
	}
	out, stderr, code = runBin("classify", "--model", model, "--backend", "ort", "안전계좌로 옮기세요")
	if code != exitUsage || out != "" || !strings.Contains(stderr, "make ort") {
		t.Fatalf("ort without onnxruntime: exit %d\nstdout %s\nstderr %q", code, out, stderr)
	}
	// A file that is not a library is named as such.
	fake := filepath.Join(dir, "libonnxruntime.so")
	os.WriteFile(fake, []byte("not a library"), 0o644)
	_, stderr, code = runBin("classify", "--model", model, "--backend", "ort", "--ort-library", fake, "x")
	if code != exitUsage || !strings.Contains(stderr, fake) {
		t.Fatalf("fake library: exit %d, stderr %q", code, stderr)
	}
}

// TestEvalFamilies: records that name their family get a per-family table.
func TestEvalFamilies(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "val.jsonl")
	lines := `{"id":"1","family":"prosecutor","label":"phishing","text":"서울중앙지검 수사관입니다 명의가 도용돼서 안전계좌로 옮기셔야 합니다"}
{"id":"2","family":"prosecutor","label":"phishing","text":"검찰청입니다 사건에 연루되셨어요 지금 통화 끊지 마시고 현금 인출하세요"}
{"id":"3","family":"bank_callcenter","label":"normal","text":"네 고객센터입니다 적금 만기 안내는 앱에서 확인하시면 됩니다"}
`
	if err := os.WriteFile(data, []byte(lines), 0o644); err != nil {
		t.Fatal(err)
	}
	r := runCLI(t, "", nil, "eval", "--model", modelDir, "--backend", "native", "--data", data)
	if r.err != nil {
		t.Fatalf("eval: %v\n%s", r.err, r.stderr)
	}
	var rep struct {
		Families map[string]struct {
			Label   string `json:"label"`
			Calls   int    `json:"calls"`
			Flagged int    `json:"flagged_suspicious"`
		} `json:"families"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatal(err)
	}
	p, n := rep.Families["prosecutor"], rep.Families["bank_callcenter"]
	if p.Calls != 2 || p.Label != "phishing" || n.Calls != 1 || n.Label != "normal" {
		t.Fatalf("families table %+v", rep.Families)
	}
}

// TestEvalLabelsAndFailures: labels in any accepted spelling, an unknown one
// is a failed record naming its line (exit 1), CSV input, and roc_auc null
// with one class.
func TestEvalLabelsAndFailures(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	jl := write("mixed.jsonl", `{"id":"a","label":"Phishing","text":"검찰청 수사관입니다 안전계좌로 이체하세요"}
{"id":"b","label":"0","text":"적금 만기 안내드립니다 앱에서 확인하세요"}
{"id":"c","label":"VISHING","text":"금감원입니다 명의가 도용되었습니다"}
{"id":"d","label":"benign","text":"택배 기사입니다 경비실에 맡겨 드릴게요"}
{"id":"e","label":"spam","text":"안녕하세요"}
`)
	r := runCLI(t, "", nil, "eval", "--model", modelDir, "--backend", "native", "--data", jl)
	if r.code != 1 {
		t.Fatalf("exit %d, want 1 (one record failed)\n%s", r.code, r.stderr)
	}
	var rep struct {
		Phishing, Normal, Failed int
		ROCAUC                   *float64 `json:"roc_auc"`
		Errors                   []struct{ Error string }
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Phishing != 2 || rep.Normal != 2 || rep.Failed != 1 || rep.ROCAUC == nil ||
		len(rep.Errors) != 1 || !strings.Contains(rep.Errors[0].Error, `line 5: unknown label "spam"`) {
		t.Fatalf("report %+v", rep)
	}
	csv := write("one.csv", "id,label,text\n1,normal,적금 만기 안내드립니다\n2,Normal,택배 왔습니다\n")
	r = runCLI(t, "", nil, "eval", "--model", modelDir, "--backend", "native", "--data", csv)
	if r.err != nil {
		t.Fatalf("csv: %v\n%s", r.err, r.stderr)
	}
	if !strings.Contains(r.stdout, `"roc_auc": null`) || !strings.Contains(r.stdout, `"normal": 2`) {
		t.Fatalf("one-class CSV report:\n%s", r.stdout)
	}
}
