package ort

import (
	"errors"
	"fmt"

	ortgo "github.com/yalue/onnxruntime_go"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/callwatch/callwatch/runtime/onnxpb"
)

// Field numbers from onnx.proto.
const (
	modelGraph       = 7  // ModelProto.graph
	graphInitializer = 5  // GraphProto.initializer
	graphInput       = 11 // GraphProto.input
	graphOutput      = 12 // GraphProto.output
	tensorName       = 8  // TensorProto.name
)

// signature reads the graph's inputs and outputs the way onnxruntime reports
// them (a graph input that is also an initializer is not an input), straight
// from the protobuf. onnxruntime_go's GetInputOutputInfoWithONNXData builds a
// whole temporary session for this, 15–20 ms of every cold start. Initializer
// data is skipped, not copied. A file this accepts can still be refused when
// the session is created; that error is reported then.
func signature(model []byte) (ins, outs []ortgo.InputOutputInfo, err error) {
	graph, err := field(model, modelGraph)
	if err != nil {
		return nil, nil, err
	}
	if graph == nil {
		return nil, nil, errors.New("no graph")
	}
	inits := map[string]bool{}
	var in, out [][]byte
	b := graph
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, nil, protowire.ParseError(n)
		}
		b = b[n:]
		if typ != protowire.BytesType {
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return nil, nil, protowire.ParseError(n)
			}
			b = b[n:]
			continue
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return nil, nil, protowire.ParseError(n)
		}
		b = b[n:]
		switch num {
		case graphInitializer:
			name, err := field(v, tensorName)
			if err != nil {
				return nil, nil, fmt.Errorf("initializer: %w", err)
			}
			inits[string(name)] = true
		case graphInput:
			in = append(in, v)
		case graphOutput:
			out = append(out, v)
		}
	}
	for _, v := range in {
		info, err := valueInfo(v)
		if err != nil {
			return nil, nil, fmt.Errorf("graph input: %w", err)
		}
		if !inits[info.Name] {
			ins = append(ins, info)
		}
	}
	for _, v := range out {
		info, err := valueInfo(v)
		if err != nil {
			return nil, nil, fmt.Errorf("graph output: %w", err)
		}
		outs = append(outs, info)
	}
	return ins, outs, nil
}

// field returns the last occurrence of a length-delimited field (protobuf's
// rule for a non-repeated message or string), or nil.
func field(b []byte, want protowire.Number) ([]byte, error) {
	var got []byte
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, protowire.ParseError(n)
		}
		b = b[n:]
		if num == want && typ == protowire.BytesType {
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return nil, protowire.ParseError(n)
			}
			got, b = v, b[n:]
			continue
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return nil, protowire.ParseError(n)
		}
		b = b[n:]
	}
	return got, nil
}

// valueInfo converts a ValueInfoProto. ONNX's TensorProto.DataType and
// onnxruntime's element types share their numbering; symbolic or missing
// dimensions are -1, as onnxruntime reports them.
func valueInfo(b []byte) (ortgo.InputOutputInfo, error) {
	var vi onnxpb.ValueInfoProto
	if err := proto.Unmarshal(b, &vi); err != nil {
		return ortgo.InputOutputInfo{}, err
	}
	info := ortgo.InputOutputInfo{Name: vi.GetName()}
	tt := vi.GetType().GetTensorType()
	if tt == nil {
		return info, nil // OrtValueType stays unknown: not a tensor
	}
	info.OrtValueType = ortgo.ONNXTypeTensor
	info.DataType = ortgo.TensorElementDataType(tt.GetElemType())
	if sh := tt.GetShape(); sh != nil {
		dims := make([]int64, len(sh.GetDim()))
		for i, d := range sh.GetDim() {
			dims[i] = -1
			if _, ok := d.GetValue().(*onnxpb.TensorShapeProto_Dimension_DimValue); ok {
				dims[i] = d.GetDimValue()
			}
		}
		info.Dimensions = ortgo.NewShape(dims...)
	}
	return info, nil
}
