//go:build !noort

package ort

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"

	ortgo "github.com/yalue/onnxruntime_go"

	"github.com/callwatch/callwatch/runtime"
)

// Enabled reports whether this binary was built with onnxruntime support.
const Enabled = true

// env is the process-wide onnxruntime environment. onnxruntime_go keeps the
// loaded library and its environment in package globals, so one process can
// hold exactly one library; this guards that single initialisation.
var env struct {
	sync.Mutex
	path    string
	version string
	// sharedArena: a CPU arena registered with the environment (see
	// registerArena) that every session allocates from.
	sharedArena bool
}

// Init loads the first usable library among candidates and initialises the
// environment. Calling it again is a no-op if the same library is requested;
// asking for a different one after the first succeeded is an error, since
// onnxruntime cannot be swapped inside a process.
func Init(candidates []string) (path, version string, err error) {
	env.Lock()
	defer env.Unlock()
	if env.path != "" {
		return env.path, env.version, nil
	}
	var reasons []string
	for _, c := range candidates {
		v, perr := probeLibrary(c)
		if perr != nil {
			reasons = append(reasons, fmt.Sprintf("%s: %v", c, perr))
			continue
		}
		ok, verr := versionAtLeast(v, 1, 24)
		if verr != nil || !ok {
			return "", "", &LibraryError{Kind: ErrLibraryVersion,
				Cause: fmt.Sprintf("%s is onnxruntime %s, but callwatch needs >= %s (C API 24)", c, v, MinVersion)}
		}
		ortgo.SetSharedLibraryPath(c)
		if ierr := ortgo.InitializeEnvironment(ortgo.WithLogLevelError()); ierr != nil {
			return "", "", &LibraryError{Kind: ErrLibraryVersion, Cause: fmt.Sprintf("%s (onnxruntime %s): %v", c, v, ierr)}
		}
		env.sharedArena = registerArena() == nil
		env.path, env.version = c, v
		return c, v, nil
	}
	cause := "no candidate could be loaded"
	if len(reasons) > 0 {
		cause = reasons[0]
	}
	return "", "", &LibraryError{Kind: ErrLibraryNotFound, Tried: candidates, Cause: cause}
}

// registerArena gives the environment one CPU arena that grows by what is
// asked (kSameAsRequested) instead of doubling (onnxruntime's default per
// session). The LSTM's buffers change size with every batch's shape, so the
// doubling arena kept chunks it never reused: peak RSS of `classify` over
// 2,000 calls fell by ~5 MB with it. A failure leaves each session its own
// default arena, which only costs memory.
func registerArena() error {
	cfg, err := ortgo.NewArenaCfg(0, 1, -1, -1)
	if err != nil {
		return err
	}
	defer cfg.Destroy()
	mi, err := ortgo.GetMemoryInfo()
	if err != nil {
		return err
	}
	return ortgo.CreateAndRegisterAllocator(mi, cfg)
}

// Backend is an onnxruntime session over one model. DynamicAdvancedSession
// is safe for concurrent Run calls, so one Backend serves many goroutines.
type Backend struct {
	sess    *ortgo.DynamicAdvancedSession
	sig     runtime.Signature
	lib     string
	version string
}

// Open loads the library (once per process) and creates a session for the
// model file at modelPath.
func Open(modelPath string, opts Options) (*Backend, error) {
	data, err := os.ReadFile(modelPath)
	if err != nil {
		return nil, fmt.Errorf("ort: read model: %w", err)
	}
	return New(data, opts)
}

// New is Open on model bytes already in memory; it reads the signature
// itself. Callers that loaded a bundle pass the bundle's with NewWithSignature.
func New(model []byte, opts Options) (*Backend, error) {
	sig, err := runtime.ReadSignature(model)
	if err != nil {
		return nil, fmt.Errorf("ort: model is not a valid callwatch ONNX file: %w", err)
	}
	return NewWithSignature(model, sig, opts)
}

// NewWithSignature creates a session for model, whose signature was read
// when its bundle loaded.
func NewWithSignature(model []byte, sig runtime.Signature, opts Options) (*Backend, error) {
	getenv := opts.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	lib, version, err := Init(Candidates(opts.Library, getenv))
	if err != nil {
		return nil, err
	}
	so, err := ortgo.NewSessionOptions()
	if err != nil {
		return nil, fmt.Errorf("ort: session options: %w", err)
	}
	defer so.Destroy()
	threads := opts.IntraOpThreads
	if threads <= 0 {
		threads = 1
	}
	if err := so.SetIntraOpNumThreads(threads); err != nil {
		return nil, fmt.Errorf("ort: set intra-op threads: %w", err)
	}
	if err := so.SetInterOpNumThreads(1); err != nil {
		return nil, fmt.Errorf("ort: set inter-op threads: %w", err)
	}
	env.Lock()
	shared := env.sharedArena
	env.Unlock()
	if shared {
		if err := so.AddSessionConfigEntry("session.use_env_allocators", "1"); err != nil {
			return nil, fmt.Errorf("ort: use the shared arena: %w", err)
		}
	}
	// Memory patterns pre-plan buffers per input shape; batch and window
	// shapes vary from run to run here, so the plans only held memory.
	if err := so.SetMemPattern(false); err != nil {
		return nil, fmt.Errorf("ort: memory patterns: %w", err)
	}
	sess, err := ortgo.NewDynamicAdvancedSessionWithONNXData(model, sig.InputNames(), sig.OutputNames(), so)
	if err != nil {
		return nil, fmt.Errorf("ort: model is not a valid ONNX file for onnxruntime %s: %w", version, err)
	}
	return &Backend{sess: sess, sig: sig, lib: lib, version: version}, nil
}

// Name implements runtime.Backend.
func (b *Backend) Name() string { return "ort" }

// Signature implements runtime.Backend.
func (b *Backend) Signature() runtime.Signature { return b.sig }

// Library reports the loaded library path and version.
func (b *Backend) Library() (path, version string) { return b.lib, b.version }

// Run implements runtime.Backend.
func (b *Backend) Run(ctx context.Context, in runtime.Input) (runtime.Output, error) {
	if err := in.Validate(b.sig); err != nil {
		return runtime.Output{}, err
	}
	if err := ctx.Err(); err != nil {
		return runtime.Output{}, err
	}
	B, S := int64(in.Batch), int64(in.Seq)
	state := in.StateOrZeros(b.sig)
	out := runtime.Output{Probs: make([]float32, 2*in.Batch),
		State: make([][]float32, len(b.sig.States)), Extras: make([][]float32, len(b.sig.Extras))}

	var vals []ortgo.Value
	defer func() {
		for _, v := range vals {
			v.Destroy()
		}
	}()
	var errs []error
	mk := func(v ortgo.Value, err error) {
		if err != nil {
			errs = append(errs, fmt.Errorf("ort: tensor: %w", err))
			return
		}
		vals = append(vals, v)
	}
	mk(tensor(ortgo.NewShape(B, S), in.IDs))
	mk(tensor(ortgo.NewShape(B), in.Lengths))
	for k, st := range b.sig.States {
		mk(tensor(ortgo.NewShape(st.Shape(in.Batch)...), state[k]))
	}
	nIn := len(vals)
	mk(tensor(ortgo.NewShape(B, 2), out.Probs))
	for k, st := range b.sig.States {
		out.State[k] = make([]float32, st.RowSize()*in.Batch)
		mk(tensor(ortgo.NewShape(st.Shape(in.Batch)...), out.State[k]))
	}
	for k, e := range b.sig.Extras {
		out.Extras[k] = make([]float32, e.Width*in.Batch)
		mk(tensor(ortgo.NewShape(B, int64(e.Width)), out.Extras[k]))
	}
	if len(errs) > 0 {
		return runtime.Output{}, errors.Join(errs...)
	}

	ro, err := ortgo.NewRunOptions()
	if err != nil {
		return runtime.Output{}, fmt.Errorf("ort: run options: %w", err)
	}
	defer ro.Destroy()
	// Terminate the run if the caller gives up; onnxruntime checks the flag
	// between kernels.
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-ctx.Done():
			ro.Terminate()
		case <-done:
		}
	}()
	if err := b.sess.RunWithOptions(vals[:nIn], vals[nIn:], ro); err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return runtime.Output{}, cerr
		}
		return runtime.Output{}, fmt.Errorf("ort: run: %w", err)
	}
	return out, nil
}

func tensor[T ortgo.TensorData](s ortgo.Shape, data []T) (ortgo.Value, error) {
	t, err := ortgo.NewTensor(s, data)
	if err != nil {
		return nil, err
	}
	return t, nil
}

// Close implements runtime.Backend. The process-wide environment stays up:
// other backends may still use it, and re-initialising is not supported.
func (b *Backend) Close() error {
	if b.sess == nil {
		return nil
	}
	err := b.sess.Destroy()
	b.sess = nil
	return err
}
