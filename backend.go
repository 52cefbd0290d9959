package callwatch

import (
	"errors"
	"fmt"

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

// OpenBackend opens the named backend over model bytes. With "auto" it uses
// onnxruntime when its library loads and otherwise falls back to the pure-Go
// backend, calling notify once with the reason (the CLI prints it on stderr).
func OpenBackend(kind string, model []byte, o ort.Options, notify func(string)) (runtime.Backend, error) {
	switch kind {
	case BackendORT:
		return ort.New(model, o)
	case BackendNative:
		return native.New(model)
	case BackendAuto, "":
		be, err := ort.New(model, o)
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
		return native.New(model)
	default:
		return nil, fmt.Errorf("%w %q: use auto, ort or native", ErrUnknownBackend, kind)
	}
}
