package runtime

import (
	"os"
	"slices"
	"testing"
)

var sigModels = []string{
	"../models/ko-vishing-lstm/model.onnx",
	"testdata/tiny.onnx",
	"native/testdata/packed.onnx",
}

func TestReadSignature(t *testing.T) {
	for _, path := range sigModels {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		sig, err := ReadSignature(data)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if got := sig.InputNames(); !slices.Equal(got[:4], []string{"input_ids", "lengths", "h0", "c0"}) {
			t.Errorf("%s: inputs %v", path, got)
		}
		if got := sig.OutputNames(); !slices.Equal(got[:3], []string{"probs", "hn", "cn"}) {
			t.Errorf("%s: outputs %v", path, got)
		}
		sh := sig.LSTMShape()
		if sh.Layers <= 0 || sh.Hidden <= 0 {
			t.Errorf("%s: LSTM shape %+v", path, sh)
		}
		h, _ := sig.State("h0")
		if h.BatchAxis != 1 || h.RowSize() != sh.Layers*sh.Hidden {
			t.Errorf("%s: h0 spec %+v", path, h)
		}
	}
}

func TestStateRows(t *testing.T) {
	for _, st := range []StateSpec{
		{In: "h0", Dims: []int{2, -1, 3}, BatchAxis: 1},
		{In: "p0", Dims: []int{-1, 5}, BatchAxis: 0},
	} {
		const batch = 4
		data := make([]float32, st.RowSize()*batch)
		for r := range batch {
			row := make([]float32, st.RowSize())
			for i := range row {
				row[i] = float32(100*r + i)
			}
			st.ScatterRow(data, row, batch, r)
		}
		for r := range batch {
			got := make([]float32, st.RowSize())
			st.GatherRow(got, data, batch, r)
			for i, v := range got {
				if v != float32(100*r+i) {
					t.Fatalf("%s row %d: got %v", st.In, r, got)
				}
			}
		}
		// The layout is the declared one: for [layers, batch, hidden] row r of
		// layer l starts at (l*batch+r)*hidden.
		if st.BatchAxis == 1 && data[(1*batch+2)*3] != float32(200+3) {
			t.Fatalf("h layout: %v", data)
		}
	}
}

func TestSignatureErrors(t *testing.T) {
	for _, b := range [][]byte{nil, []byte("not onnx"), {0x3a, 0x05, 0x5a, 0x03, 0x0a, 0x01, 0x78}} {
		if _, err := ReadSignature(b); err == nil {
			t.Errorf("%q: no error", b)
		}
	}
}

// FuzzReadSignature: any bytes give a signature or an error, never a panic.
func FuzzReadSignature(f *testing.F) {
	for _, path := range sigModels[1:] {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte{})
	f.Add([]byte{0x3a, 0x05, 0x5a, 0x03, 0x0a, 0x01, 0x78}) // graph { input { name: "x" } }
	f.Fuzz(func(t *testing.T, b []byte) {
		sig, err := ReadSignature(b)
		if err != nil && (sig.States != nil || sig.Extras != nil) {
			t.Fatalf("error %v with results", err)
		}
		for _, st := range sig.States {
			if st.RowSize() <= 0 {
				t.Fatalf("state %s with row size %d", st.In, st.RowSize())
			}
		}
	})
}
