package native

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/callwatch/callwatch/runtime"
)

// fuzzMaxModel bounds the fuzzed model size: tiny.onnx is 21 KB, and larger
// inputs only slow the fuzzer down without reaching new code.
const fuzzMaxModel = 64 << 10

// FuzzLoad feeds corrupt and mutated model bytes to the loader. Every input
// must give either an error wrapping ErrInvalidModel or a backend that runs a
// small batch to completion (or fails with an error) — never a panic, a hang
// or an allocation that takes the process down.
func FuzzLoad(f *testing.F) {
	for _, p := range []string{"../testdata/tiny.onnx", "testdata/packed.onnx"} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(b[:len(b)/2])
		f.Add(b[:len(b)-1])
	}
	f.Add([]byte{})
	f.Add([]byte("not an onnx model"))
	f.Add([]byte{0x08, 0x08, 0x3a, 0x02, 0x0a, 0x00}) // ir_version 8 and an empty graph
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > fuzzMaxModel {
			t.Skip()
		}
		type loaded struct {
			b   *Backend
			err error
		}
		done := make(chan loaded, 1)
		go func() {
			b, err := New(data)
			done <- loaded{b, err}
		}()
		var l loaded
		select {
		case l = <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("loading %d bytes did not finish in 10s", len(data))
		}
		b, err := l.b, l.err
		if err != nil {
			if !errors.Is(err, ErrInvalidModel) {
				t.Fatalf("load error does not wrap ErrInvalidModel: %v", err)
			}
			if err.Error() == "" {
				t.Fatal("empty error message")
			}
			return
		}
		s := b.Signature().LSTMShape()
		if s.Layers <= 0 || s.Hidden <= 0 {
			t.Fatalf("loaded model has state shape %+v", s)
		}
		if s.Layers*s.Hidden > 1<<20 {
			return // a plausible but huge state; running it proves nothing more
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		in := runtime.Input{IDs: []int64{1, 2, 3, 0, 1, 0}, Lengths: []int64{3, 2}, Batch: 2, Seq: 3}
		out, err := b.Run(ctx, in)
		if err != nil {
			return // a model that loads may still fail on input; it must say so
		}
		n := s.Layers * 2 * s.Hidden
		if len(out.Probs) != 4 || len(out.State[0]) != n || len(out.State[1]) != n {
			t.Fatalf("output sizes probs %d hn %d cn %d, want 4, %d, %d", len(out.Probs), len(out.State[0]), len(out.State[1]), n, n)
		}
	})
}
