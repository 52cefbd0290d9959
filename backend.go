package callwatch

import (
	"errors"
	"fmt"
	"os"

	"github.com/callwatch/callwatch/models"
	"github.com/callwatch/callwatch/runtime"
	"github.com/callwatch/callwatch/runtime/native"
	"github.com/callwatch/callwatch/runtime/ort"
)

// Backend kinds accepted by OpenBackend.
const (
	BackendAuto   = "auto"
	BackendORT    = "ort"
	BackendNative = "native"
)

// ErrUnknownBackend is returned for a backend name other than the three kinds.
var ErrUnknownBackend = errors.New("unknown backend")

// PreloadORT starts loading the onnxruntime library in the background for
// backend kind "ort" or "auto", so that its dlopen and environment set-up
// (~30 ms, most of a cold start) overlap loading the bundle and tokenizer.
// OpenBackend waits for it; a failure is reported there, not here.
func PreloadORT(kind string, o ort.Options) {
	if kind != BackendORT && kind != BackendAuto && kind != "" {
		return
	}
	getenv := o.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	go ort.Init(ort.Candidates(o.Library, getenv)) //nolint:errcheck // reported by OpenBackend
}

// OpenBackend opens the named backend over model bytes. With "auto" it uses
// onnxruntime when its library loads and otherwise falls back to the pure-Go
// backend, calling notify once with the reason (the CLI prints it on stderr).
// The bundle's signature, read once when it loaded, is what both backends run.
func OpenBackend(kind string, b *models.Bundle, o ort.Options, notify func(string)) (runtime.Backend, error) {
	openNative := func() (runtime.Backend, error) {
		if b.Proto != nil {
			return native.NewFromProto(b.Proto, b.Signature)
		}
		return native.New(b.Model)
	}
	openORT := func() (runtime.Backend, error) {
		if b.Proto != nil {
			return ort.NewWithSignature(b.Model, b.Signature, o)
		}
		return ort.New(b.Model, o)
	}
	switch kind {
	case BackendORT:
		return openORT()
	case BackendNative:
		return openNative()
	case BackendAuto, "":
		if !ort.Enabled {
			// A native-only build has nothing to fall back from: no notice.
			return openNative()
		}
		be, err := openORT()
		if err == nil {
			return be, nil
		}
		var le *ort.LibraryError
		if !errors.As(err, &le) {
			// The library loaded but the model did not: native would fail the
			// same way or, worse, hide an onnxruntime incompatibility.
			return nil, err
		}
		if notify != nil {
			notify(fmt.Sprintf("onnxruntime unavailable (%v); using the pure-Go native backend", le.Cause))
		}
		return openNative()
	default:
		return nil, fmt.Errorf("%w %q: use auto, ort or native", ErrUnknownBackend, kind)
	}
}
