package ort

import (
	"os"
	"testing"

	ortgo "github.com/yalue/onnxruntime_go"
)

var signatureModels = []string{
	"../../models/ko-vishing-lstm/model.onnx",
	"../testdata/tiny.onnx",
	"../native/testdata/packed.onnx",
}

// TestSignatureMatchesSession compares the protobuf reading with what
// onnxruntime itself reports through a temporary session, on every model the
// repository has.
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
		gotIn, gotOut, err := signature(data)
		if err != nil {
			t.Fatalf("%s: signature: %v", path, err)
		}
		for _, c := range []struct {
			what      string
			got, want []ortgo.InputOutputInfo
		}{{"inputs", gotIn, wantIn}, {"outputs", gotOut, wantOut}} {
			if len(c.got) != len(c.want) {
				t.Fatalf("%s %s: got %v, onnxruntime %v", path, c.what, c.got, c.want)
			}
			for i := range c.got {
				g, w := c.got[i], c.want[i]
				if g.Name != w.Name || g.DataType != w.DataType || g.OrtValueType != w.OrtValueType || g.Dimensions.String() != w.Dimensions.String() {
					t.Errorf("%s %s[%d]: got %s %v, onnxruntime %s %v", path, c.what, i, g.String(), g.Dimensions, w.String(), w.Dimensions)
				}
			}
		}
	}
}

// FuzzSignature: any bytes give inputs/outputs or an error, never a panic.
func FuzzSignature(f *testing.F) {
	for _, path := range signatureModels[1:] {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte{})
	f.Add([]byte{0x3a, 0x05, 0x5a, 0x03, 0x0a, 0x01, 0x78}) // graph { input { name: "x" } }
	f.Fuzz(func(t *testing.T, b []byte) {
		ins, outs, err := signature(b)
		if err != nil && (ins != nil || outs != nil) {
			t.Fatalf("error %v with results", err)
		}
	})
}
