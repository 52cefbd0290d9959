package main

import (
	"encoding/json"
	"path/filepath"
	goruntime "runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/callwatch/callwatch/runtime/ort"
)

// Version is set at build time with -ldflags "-X main.Version=...".
var Version = "dev"

type versionInfo struct {
	Program     string     `json:"program"`
	Version     string     `json:"version"`
	Commit      string     `json:"commit,omitempty"`
	Modified    bool       `json:"modified,omitempty"`
	Go          string     `json:"go"`
	Build       string     `json:"build"` // "onnxruntime+native", or "native" for -tags noort
	Model       *modelInfo `json:"model,omitempty"`
	ModelError  string     `json:"model_error,omitempty"`
	ONNXRuntime ortInfo    `json:"onnxruntime"`
}

type modelInfo struct {
	Name     string   `json:"name"`
	Version  string   `json:"version"`
	Source   string   `json:"source"`        // "disk", or "embedded": built into this binary
	Dir      string   `json:"dir,omitempty"` // absolute; empty when embedded
	SHA256   string   `json:"sha256"`
	Starter  bool     `json:"starter,omitempty"`
	State    []string `json:"state"`              // state tensors carried per call (h0, c0, p0)
	Outputs  []string `json:"outputs"`            // probs and extra outputs (family_probs)
	Families int      `json:"families,omitempty"` // classes of the family head
}

type ortInfo struct {
	Library  string `json:"library,omitempty"`
	Version  string `json:"version,omitempty"`
	Required string `json:"required"`
	Error    string `json:"error,omitempty"`
}

func (e *env) versionCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "version [--model DIR] [--ort-library FILE]",
		Short: "Print program, model and onnxruntime versions as JSON",
		Long: `version prints what would run, as JSON: the program's version and commit, the
build (onnxruntime+native, or native only), the model (name, version, sha256, and
whether it is the one built into the binary or a bundle on disk) and the
onnxruntime library found. A missing model or library is reported in the JSON
rather than failing: this is what one runs to find out why.`,
		Args: noArgs,
	}
	fs := cmd.Flags()
	// Only what changes the answer: the model and the library.
	addKeyFlags(fs, "model", "ort.library")
	cmd.RunE = func(cmd *cobra.Command, args []string) error { return e.runVersion(fs) }
	return cmd
}

// programVersion is the version set with -ldflags "-X main.Version=...",
// else the module version (set by go install ...@vX), else "dev".
func programVersion() string {
	if Version != "dev" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return Version
}

// runVersion reports what would run; a missing model or library is reported
// in the JSON rather than failing, since this is what one runs to debug that.
func (e *env) runVersion(fs *pflag.FlagSet) error {
	c, err := e.loadConfig(fs)
	if err != nil {
		return err
	}
	vi := versionInfo{Program: "callwatch", Version: programVersion(), Go: goruntime.Version(), ONNXRuntime: ortInfo{Required: ">= " + ort.MinVersion},
		Build: "onnxruntime+native"}
	if !ort.Enabled {
		vi.Build = "native (-tags noort)"
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				vi.Commit = s.Value
			case "vcs.modified":
				vi.Modified = s.Value == "true"
			}
		}
	}
	if b, err := e.loadBundle(c); err != nil {
		vi.ModelError = err.Error()
	} else {
		vi.Model = &modelInfo{Name: b.Card.Name, Version: b.Card.Version, Source: "disk", Dir: b.Dir, SHA256: b.ModelSHA256, Starter: b.Card.Starter,
			State: b.Signature.InputNames()[2:], Outputs: []string{"probs"}, Families: b.Signature.Extra("family_probs")}
		if b.Embedded() {
			vi.Model.Source, vi.Model.Dir = "embedded", ""
		} else if abs, err := filepath.Abs(b.Dir); err == nil {
			vi.Model.Dir = abs
		}
		for _, x := range b.Signature.Extras {
			vi.Model.Outputs = append(vi.Model.Outputs, x.Name)
		}
	}
	if lib, v, err := ort.Init(ort.Candidates(c.ORTLibrary, e.getenv)); err != nil {
		vi.ONNXRuntime.Error = withHint(err)
	} else {
		vi.ONNXRuntime.Library, vi.ONNXRuntime.Version = lib, v
	}
	// Readable JSON: ">= 1.24", not "\u003e= 1.24".
	enc := json.NewEncoder(e.stdout)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(vi)
}
