package server

import (
	"net/http"
	"slices"

	"github.com/callwatch/callwatch"
	"github.com/callwatch/callwatch/api"
)

// Open Inference Protocol v2 (KServe / Triton) over JSON. The model takes
// one BYTES tensor "text" of shape [N] and returns "probabilities" FP32
// [N,2] (normal, phishing), "label" BYTES [N] and "level" BYTES [N].

// The protocol's wire types live in package api.
type (
	V2Tensor        = api.V2Tensor
	V2InferRequest  = api.V2InferRequest
	V2OutputWanted  = api.V2OutputWanted
	V2InferResponse = api.V2InferResponse
)

type v2TensorMeta struct {
	Name     string  `json:"name"`
	Datatype string  `json:"datatype"`
	Shape    []int64 `json:"shape"`
}

type v2ModelMeta struct {
	Name     string         `json:"name"`
	Versions []string       `json:"versions"`
	Platform string         `json:"platform"`
	Inputs   []v2TensorMeta `json:"inputs"`
	Outputs  []v2TensorMeta `json:"outputs"`
}

const (
	v2Input     = "text"
	v2OutProbs  = "probabilities"
	v2OutLabel  = "label"
	v2OutLevel  = "level"
	v2ServerExt = "callwatch"
)

func (s *Server) handleV2Server(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, map[string]any{"name": v2ServerExt, "version": "1", "extensions": []string{}})
}

func (s *Server) handleLive(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, map[string]bool{"live": true})
}

func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) {
	if !s.Ready() {
		code := CodeNotReady
		if s.draining.Load() {
			code = CodeShuttingDown
		}
		writeV2Error(w, errorf(code, "not ready"))
		return
	}
	writeJSON(w, map[string]bool{"ready": true})
}

// v2Model resolves {name} to the loaded detector.
func (s *Server) v2Model(r *http.Request) (*callwatch.Detector, error) {
	d := s.det.Load()
	name := r.PathValue("name")
	if d == nil {
		return nil, errorf(CodeNotReady, "model is loading")
	}
	if name != d.Bundle().Card.Name {
		return nil, errorf(CodeModelNotFound, "unknown model %q; this server serves %q", name, d.Bundle().Card.Name)
	}
	return d, nil
}

func (s *Server) handleV2Model(w http.ResponseWriter, r *http.Request) {
	d, err := s.v2Model(r)
	if err != nil {
		writeV2Error(w, err)
		return
	}
	c := d.Bundle().Card
	writeJSON(w, v2ModelMeta{
		Name: c.Name, Versions: []string{c.Version}, Platform: "onnxruntime_onnx",
		Inputs: []v2TensorMeta{{Name: v2Input, Datatype: "BYTES", Shape: []int64{-1}}},
		Outputs: []v2TensorMeta{
			{Name: v2OutProbs, Datatype: "FP32", Shape: []int64{-1, 2}},
			{Name: v2OutLabel, Datatype: "BYTES", Shape: []int64{-1}},
			{Name: v2OutLevel, Datatype: "BYTES", Shape: []int64{-1}},
		},
	})
}

func (s *Server) handleV2ModelReady(w http.ResponseWriter, r *http.Request) {
	d, err := s.v2Model(r)
	if err == nil && !s.Ready() {
		err = errorf(CodeNotReady, "model is warming up")
	}
	if err != nil {
		writeV2Error(w, err)
		return
	}
	writeJSON(w, map[string]any{"name": d.Bundle().Card.Name, "ready": true})
}

func (s *Server) handleV2Infer(w http.ResponseWriter, r *http.Request) {
	d, err := s.v2Model(r)
	if err == nil && !s.Ready() {
		err = errorf(CodeNotReady, "model is warming up")
	}
	if err != nil {
		writeV2Error(w, err)
		return
	}
	req, err := s.decodeV2(r)
	if err != nil {
		writeV2Error(w, err)
		return
	}
	texts, err := v2Texts(req)
	if err != nil {
		writeV2Error(w, err)
		return
	}
	rows, errs, err := s.tokenizeAll(d, texts)
	if err != nil {
		writeV2Error(w, err)
		return
	}
	// A tensor has no room for per-element errors: one bad text fails the
	// request and names its index.
	for i, e := range errs {
		if e != nil {
			writeV2Error(w, errorf(CodeInvalidText, "text %d: %s", i, textError(e)))
			return
		}
	}
	scores, err := s.score(r.Context(), rows)
	if err != nil {
		writeV2Error(w, err)
		return
	}
	n := int64(len(texts))
	probs := make([]any, 0, 2*n)
	labels := make([]any, 0, n)
	levels := make([]any, 0, n)
	for _, sc := range scores {
		p := sc.Phishing
		v := d.Verdict(float64(p))
		s.m.verdicts.WithLabelValues(v.Label, string(v.Level)).Inc()
		probs = append(probs, 1-p, p)
		labels = append(labels, v.Label)
		levels = append(levels, string(v.Level))
	}
	all := []V2Tensor{
		{Name: v2OutProbs, Datatype: "FP32", Shape: []int64{n, 2}, Data: probs},
		{Name: v2OutLabel, Datatype: "BYTES", Shape: []int64{n}, Data: labels},
		{Name: v2OutLevel, Datatype: "BYTES", Shape: []int64{n}, Data: levels},
	}
	outs := all
	if len(req.Outputs) > 0 {
		outs = nil
		for _, want := range req.Outputs {
			i := slices.IndexFunc(all, func(t V2Tensor) bool { return t.Name == want.Name })
			if i < 0 {
				writeV2Error(w, errorf(CodeBadRequest, "unknown output %q; outputs are %s, %s, %s", want.Name, v2OutProbs, v2OutLabel, v2OutLevel))
				return
			}
			outs = append(outs, all[i])
		}
	}
	c := d.Bundle().Card
	writeJSON(w, V2InferResponse{ModelName: c.Name, ModelVersion: c.Version, ID: req.ID, Outputs: outs})
}

// v2Texts checks the request's one input tensor and returns its strings.
func v2Texts(req V2InferRequest) ([]string, error) {
	if len(req.Inputs) != 1 {
		return nil, errorf(CodeBadRequest, "want exactly one input tensor %q, got %d", v2Input, len(req.Inputs))
	}
	in := req.Inputs[0]
	if in.Name != v2Input {
		return nil, errorf(CodeBadRequest, "input tensor is named %q; this model's input is %q", in.Name, v2Input)
	}
	if in.Datatype != "BYTES" {
		return nil, errorf(CodeBadRequest, "input %q must have datatype BYTES, got %q", v2Input, in.Datatype)
	}
	n := int64(1)
	for _, d := range in.Shape {
		n *= d
	}
	if len(in.Shape) == 0 || len(in.Shape) > 2 || (len(in.Shape) == 2 && in.Shape[1] != 1) || n != int64(len(in.Data)) {
		return nil, errorf(CodeBadRequest, "input %q shape %v must be [N] or [N,1] with N = %d data elements", v2Input, in.Shape, len(in.Data))
	}
	texts := make([]string, len(in.Data))
	for i, v := range in.Data {
		t, ok := v.(string)
		if !ok {
			return nil, errorf(CodeBadRequest, "input %q element %d is %s; BYTES elements are JSON strings", v2Input, i, jsonValueKind(v))
		}
		texts[i] = t
	}
	if len(texts) == 0 {
		return nil, errorf(CodeBadRequest, "input %q is empty", v2Input)
	}
	return texts, nil
}
