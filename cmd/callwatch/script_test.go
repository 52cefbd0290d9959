package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/callwatch/callwatch/runtime/ort"
)

// TestMain lets the test binary act as callwatch: testscript runs the
// scripts' "exec callwatch ..." as this binary, entering main, so the scripts
// test the real program (flags, exit codes, stdout/stderr) without a build.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){"callwatch": main})
}

// TestScript runs the CLI scripts in testdata/script: help, usage errors
// and exit codes, suggestions, completion, man pages, version, and the
// commands on small inputs. Each script runs in its own empty directory
// with HOME unset, so the model is the one built into the binary and no
// callwatch.yaml is found; scripts that need onnxruntime carry [ort].
func TestScript(t *testing.T) {
	lib, _ := filepath.Abs(filepath.Join("..", "..", ".ort", "libonnxruntime.so"))
	_, err := os.Stat(lib)
	haveORT := err == nil && ort.Enabled
	testscript.Run(t, testscript.Params{
		Dir:                 filepath.Join("testdata", "script"),
		RequireExplicitExec: true,
		Setup: func(env *testscript.Env) error {
			if haveORT {
				env.Setenv("CALLWATCH_ORT_LIBRARY", lib)
			}
			return nil
		},
		Condition: func(cond string) (bool, error) {
			switch cond {
			case "ort":
				return haveORT, nil
			}
			return false, errors.New("unknown condition " + cond)
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"exitcode": cmdExitCode,
		},
	})
}

// cmdExitCode is "exitcode N command [args...]": runs the command like exec
// and fails unless it exits with status N (exec alone tells only zero from
// non-zero, and callwatch's codes 1, 2 and 130 mean different things).
// stdout and stderr are kept for the assertions that follow.
func cmdExitCode(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("exitcode does not take !: name the expected code")
	}
	if len(args) < 2 {
		ts.Fatalf("usage: exitcode N command [args...]")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil {
		ts.Fatalf("exitcode: %q is not a number", args[0])
	}
	got := 0
	if err := ts.Exec(args[1], args[2:]...); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			ts.Fatalf("exitcode: %v", err)
		}
		got = ee.ExitCode()
	}
	if got != want {
		ts.Fatalf("%s exited with %d, want %d", args[1], got, want)
	}
}
