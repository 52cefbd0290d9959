package main

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/callwatch/callwatch/runtime/ort"
)

// The record-reading commands answer live input as it arrives: each record
// of tokenize and classify is written while the input is still open, in
// input order, one output record per input record.
func TestLiveInputAnswered(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string // a field every answer has
	}{
		{"tokenize", []string{"tokenize", "--model", modelDir, "--input", "-"}, "ids"},
		{"classify", []string{"classify", "--model", modelDir, "--backend", "native", "--input", "-"}, "label"},
	}
	texts := []string{phishText, normText, "택배 기사인데요 문 앞에 두고 갈게요"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pr, pw := io.Pipe()
			defer pw.Close()
			out := newLineSink()
			res := startCLI(context.Background(), pr, out, tt.args...)
			for i, text := range texts {
				if _, err := io.WriteString(pw, text+"\n"); err != nil {
					t.Fatal(err)
				}
				line := out.waitLine(t, time.Minute, tt.name+" answer while the input is open")
				var rec map[string]any
				if err := json.Unmarshal([]byte(line), &rec); err != nil {
					t.Fatalf("record %d: %v: %q", i+1, err, line)
				}
				if rec["id"] != []string{"1", "2", "3"}[i] || rec[tt.want] == nil {
					t.Fatalf("record %d: got %q", i+1, line)
				}
			}
			pw.Close()
			select {
			case r := <-res:
				if r.err != nil {
					t.Fatalf("%s: %v\n%s", tt.name, r.err, r.stderr)
				}
			case <-time.After(time.Minute):
				t.Fatalf("%s did not end after its input closed", tt.name)
			}
			if extra := out.raw(); strings.Count(extra, "\n") != len(texts) {
				t.Fatalf("want %d output records, got:\n%s", len(texts), extra)
			}
		})
	}
}

// Ctrl-C while a record-reading command waits for more input ends it at
// once with exit 130; before, these commands read in blocking 512-record
// chunks and noticed Ctrl-C only when the input closed.
func TestInterruptWhileWaitingEveryCommand(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		first string // the first input line
		ort   bool
	}{
		{"tokenize", []string{"tokenize", "--model", modelDir, "--input", "-"}, phishText, false},
		{"eval", []string{"eval", "--model", modelDir, "--backend", "native", "--data", "-"},
			`{"id":"p","text":"` + phishText + `","label":"phishing"}`, false},
		{"parity", []string{"parity", "--model", modelDir, "--input", "-"}, phishText, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.ort && !haveORTLibrary() {
				t.Skip("onnxruntime library not installed (make ort)")
			}
			pr, pw := io.Pipe()
			defer pw.Close()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var out lockedBuffer
			res := startCLI(ctx, pr, &out, tt.args...)
			// A pipe's write returns once the command has read the line.
			wrote := make(chan error, 1)
			go func() { _, err := io.WriteString(pw, tt.first+"\n"); wrote <- err }()
			select {
			case err := <-wrote:
				if err != nil {
					t.Fatal(err)
				}
			case r := <-res:
				t.Fatalf("%s ended before reading its input: %v\n%s", tt.name, r.err, r.stderr)
			case <-time.After(time.Minute):
				t.Fatalf("%s did not read its input", tt.name)
			}
			// Then it waits for more, the input still open.
			time.Sleep(200 * time.Millisecond)
			cancel()
			select {
			case r := <-res:
				if code := exitCode(r.err); code != exitInterrupted {
					t.Fatalf("exit %d (%v), want %d\n%s", code, r.err, exitInterrupted, r.stderr)
				}
				if !strings.Contains(r.stderr, "interrupted after") {
					t.Fatalf("stderr does not say it was interrupted: %q", r.stderr)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("Ctrl-C was not honoured while %s waited for input", tt.name)
			}
		})
	}
}

// haveORTLibrary reports whether this build can use onnxruntime and the
// library make ort installs is there.
func haveORTLibrary() bool {
	_, err := os.Stat(filepath.Join("..", "..", ".ort", "libonnxruntime.so"))
	return err == nil && ort.Enabled
}
