//go:build !noort

package ort

import (
	"os"
	"slices"
	"testing"

	ortgo "github.com/yalue/onnxruntime_go"

	"github.com/callwatch/callwatch/runtime"
)

var signatureModels = []string{
	"../../models/ko-vishing-lstm/model.onnx",
	"../testdata/tiny.onnx",
	"../native/testdata/packed.onnx",
}

// TestSignatureMatchesSession checks runtime.ReadSignature (the one reader of
// the contract) against what onnxruntime itself reports through a temporary
// session, on every model the repository has: same inputs and outputs, same
// static state dimensions.
func TestSignatureMatchesSession(t *testing.T) {
	if _, _, err := Init(Candidates("", os.Getenv)); err != nil {
		t.Fatalf("%v (run `make ort`)", err)
	}
	for _, path := range signatureModels {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		wantIn, wantOut, err := ortgo.GetInputOutputInfoWithONNXData(data)
		if err != nil {
			t.Fatalf("%s: onnxruntime: %v", path, err)
		}
		sig, err := runtime.ReadSignature(data)
		if err != nil {
			t.Fatalf("%s: ReadSignature: %v", path, err)
		}
		names := func(infos []ortgo.InputOutputInfo) []string {
			var out []string
			for _, i := range infos {
				out = append(out, i.Name)
			}
			slices.Sort(out)
			return out
		}
		gotIn, gotOut := slices.Sorted(slices.Values(sig.InputNames())), slices.Sorted(slices.Values(sig.OutputNames()))
		if !slices.Equal(gotIn, names(wantIn)) || !slices.Equal(gotOut, names(wantOut)) {
			t.Fatalf("%s: signature %v → %v, onnxruntime %v → %v", path, gotIn, gotOut, names(wantIn), names(wantOut))
		}
		for _, in := range wantIn {
			st, ok := sig.State(in.Name)
			if !ok {
				continue
			}
			for i, d := range in.Dimensions {
				if i != st.BatchAxis && d > 0 && int(d) != st.Dims[i] {
					t.Errorf("%s: %s dim %d is %d, onnxruntime %d", path, in.Name, i, st.Dims[i], d)
				}
			}
		}
	}
}
