package main

import (
	"encoding/json"
	"fmt"
	goruntime "runtime"
	"runtime/debug"

	"github.com/callwatch/callwatch/runtime/ort"
)

// Version is set at build time with -ldflags "-X main.Version=...".
var Version = "dev"

type versionInfo struct {
	Program     string     `json:"program"`
	Version     string     `json:"version"`
	Commit      string     `json:"commit,omitempty"`
	Go          string     `json:"go"`
	Model       *modelInfo `json:"model,omitempty"`
	ModelError  string     `json:"model_error,omitempty"`
	ONNXRuntime ortInfo    `json:"onnxruntime"`
}

type modelInfo struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Dir     string `json:"dir"`
	SHA256  string `json:"sha256"`
	Starter bool   `json:"starter,omitempty"`
}

type ortInfo struct {
	Library  string `json:"library,omitempty"`
	Version  string `json:"version,omitempty"`
	Required string `json:"required"`
	Error    string `json:"error,omitempty"`
}

// version reports what would run; a missing model or library is reported
// in the JSON rather than failing, since this is what one runs to debug that.
func (e *env) version(args []string) error {
	fs := newFlags("version", "version [--model DIR] [--ort-library FILE]", e.stderr)
	addModelFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	c, err := e.loadConfig(fs)
	if err != nil {
		return err
	}
	vi := versionInfo{Program: "callwatch", Version: Version, Go: goruntime.Version(), ONNXRuntime: ortInfo{Required: ">= " + ort.MinVersion}}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				vi.Commit = s.Value
			}
		}
	}
	if b, err := e.loadBundle(c); err != nil {
		vi.ModelError = err.Error()
	} else {
		vi.Model = &modelInfo{Name: b.Card.Name, Version: b.Card.Version, Dir: b.Dir, SHA256: b.ModelSHA256, Starter: b.Card.Starter}
	}
	if lib, v, err := ort.Init(ort.Candidates(c.ORTLibrary, e.getenv)); err != nil {
		vi.ONNXRuntime.Error = withHint(err)
	} else {
		vi.ONNXRuntime.Library, vi.ONNXRuntime.Version = lib, v
	}
	b, err := json.MarshalIndent(vi, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(e.stdout, "%s\n", b)
	return err
}
