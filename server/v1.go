package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/callwatch/callwatch"
	"github.com/callwatch/callwatch/api"
	"github.com/callwatch/callwatch/models"
)

// Wire types live in package api, shared with the CLI and the client.
type (
	ClassifyRequest  = api.ClassifyRequest
	Record           = api.Record
	ClassifyResult   = api.Result
	ClassifyResponse = api.ClassifyResponse
	SegmentRequest   = api.SegmentRequest
	SegmentResponse  = api.SegmentResponse
)

// decode reads a JSON body into v, mapping the body limit to 413.
func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	if err := dec.Decode(v); err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			return errorf(CodeBodyTooLarge, "request body is over %d bytes (server.max_body_bytes)", mb.Limit)
		}
		if errors.Is(err, io.EOF) {
			return errorf(CodeBadRequest, "empty request body; send JSON")
		}
		return errorf(CodeBadRequest, "request body is not valid JSON for this route: %v", err)
	}
	// Anything after the value is a client bug; reading it also enforces
	// the body limit on trailing bytes.
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			return errorf(CodeBodyTooLarge, "request body is over %d bytes (server.max_body_bytes)", mb.Limit)
		}
		return errorf(CodeBadRequest, "unexpected data after the JSON value")
	}
	return nil
}

// tokenizeAll encodes texts for the classify batcher. Tokenizing in the
// request's own goroutine spreads it over the cores; only the backend
// call is shared. Per-text failures are returned in errs.
func (s *Server) tokenizeAll(d *callwatch.Detector, texts []string) (rows [][]int64, errs []error, err error) {
	if len(texts) > s.cfg.MaxTexts {
		return nil, nil, errorf(CodeTooManyTexts, "%d texts in one request, limit %d (server.max_texts)", len(texts), s.cfg.MaxTexts)
	}
	for i, t := range texts {
		if len(t) > s.cfg.MaxTextBytes {
			return nil, nil, errorf(CodeTextTooLarge, "text %d is %d bytes, limit %d (server.max_text_bytes)", i, len(t), s.cfg.MaxTextBytes)
		}
	}
	t0 := time.Now()
	rows = make([][]int64, len(texts))
	errs = make([]error, len(texts))
	tok := d.Tokenizer()
	for i, t := range texts {
		rows[i], errs[i] = tok.Encode(t)
	}
	s.m.tokenizeSecs.Observe(time.Since(t0).Seconds())
	return rows, errs, nil
}

// score runs tokenized rows through the classify batcher; empty rows (the
// failed texts) are not sent.
func (s *Server) score(ctx context.Context, rows [][]int64) ([]float32, error) {
	var live [][]int64
	var at []int
	for i, r := range rows {
		if len(r) > 0 {
			live = append(live, r)
			at = append(at, i)
		}
	}
	out := make([]float32, len(rows))
	if len(live) == 0 {
		return out, nil
	}
	scores, err := s.classify.submit(ctx, live)
	if err != nil {
		return nil, err
	}
	for k, i := range at {
		out[i] = scores[k]
	}
	return out, nil
}

func (s *Server) execClassify(ctx context.Context, jobs []*job[[][]int64, []float32]) {
	d := s.det.Load()
	var rows [][]int64
	for _, j := range jobs {
		rows = append(rows, j.in...)
	}
	scores, _, err := d.ScoreIDs(ctx, rows, nil)
	off := 0
	for _, j := range jobs {
		if err != nil {
			j.err = err
			continue
		}
		j.out = scores[off : off+len(j.in)]
		off += len(j.in)
	}
}

func (s *Server) handleClassify(w http.ResponseWriter, r *http.Request) {
	d, err := s.detector()
	if err != nil {
		writeError(w, err)
		return
	}
	var req ClassifyRequest
	if err := decode(r, &req); err != nil {
		writeError(w, err)
		return
	}
	if len(req.Texts) > 0 && len(req.Records) > 0 {
		writeError(w, errorf(CodeBadRequest, "send either texts or records, not both"))
		return
	}
	recs := req.Records
	for i, t := range req.Texts {
		recs = append(recs, Record{ID: strconv.Itoa(i + 1), Text: t})
	}
	if len(recs) == 0 {
		writeError(w, errorf(CodeBadRequest, `no input: send {"texts":[...]} or {"records":[{"id","text"}...]}`))
		return
	}
	texts := make([]string, len(recs))
	for i, rec := range recs {
		texts[i] = rec.Text
	}
	rows, errs, err := s.tokenizeAll(d, texts)
	if err != nil {
		writeError(w, err)
		return
	}
	scores, err := s.score(r.Context(), rows)
	if err != nil {
		writeError(w, err)
		return
	}
	resp := ClassifyResponse{Results: make([]ClassifyResult, len(recs))}
	for i, rec := range recs {
		if errs[i] != nil {
			resp.Results[i] = ClassifyResult{Verdict: api.Verdict{ID: rec.ID}, Error: textError(errs[i])}
			continue
		}
		v := d.Verdict(float64(scores[i]))
		resp.Results[i] = ClassifyResult{Verdict: api.Verdict{ID: rec.ID, Label: v.Label, Score: round6(v.Score), Level: v.Level,
			Family: v.Family, FamilyProb: round6(v.FamilyProb)}}
	}
	writeJSON(w, resp)
}

// textError words a per-text failure exactly as the CLI does, so records
// from the service and from `callwatch classify` are interchangeable.
func textError(err error) string { return err.Error() }

// segJob is one segment for the segment batcher.
type segJob struct {
	sess *callwatch.Session
	seg  callwatch.Segment
}

func (s *Server) execSegments(ctx context.Context, jobs []*job[segJob, callwatch.Update]) {
	d := s.det.Load()
	// A session may appear only once per FeedBatch; the store's per-call lock
	// already keeps one call's segments apart, so this split is a safeguard.
	for len(jobs) > 0 {
		seen := map[*callwatch.Session]bool{}
		var now, later []*job[segJob, callwatch.Update]
		for _, j := range jobs {
			if seen[j.in.sess] {
				later = append(later, j)
				continue
			}
			seen[j.in.sess] = true
			now = append(now, j)
		}
		sess := make([]*callwatch.Session, len(now))
		segs := make([]callwatch.Segment, len(now))
		for i, j := range now {
			sess[i], segs[i] = j.in.sess, j.in.seg
		}
		ups, err := d.FeedBatch(ctx, sess, segs)
		for i, j := range now {
			if err != nil {
				j.err = err
				continue
			}
			j.out = ups[i]
		}
		jobs = later
	}
}

const maxCallID = 128

func (s *Server) handleSegment(w http.ResponseWriter, r *http.Request) {
	d, err := s.detector()
	if err != nil {
		writeError(w, err)
		return
	}
	callID := r.PathValue("call_id")
	if callID == "" || len(callID) > maxCallID {
		writeError(w, errorf(CodeBadRequest, "call_id must be 1..%d bytes", maxCallID))
		return
	}
	var req SegmentRequest
	if err := decode(r, &req); err != nil {
		writeError(w, err)
		return
	}
	if len(req.Text) > s.cfg.MaxTextBytes {
		writeError(w, errorf(CodeTextTooLarge, "segment text is %d bytes, limit %d (server.max_text_bytes)", len(req.Text), s.cfg.MaxTextBytes))
		return
	}
	if math.IsNaN(req.Start) || math.IsNaN(req.End) || req.End < req.Start && req.End != 0 {
		writeError(w, errorf(CodeBadRequest, "segment end (%g) is before start (%g)", req.End, req.Start))
		return
	}
	var (
		sess   *callwatch.Session
		source string
		ent    *entry
	)
	if req.State != "" {
		p, err := s.signer.verify(req.State)
		if err != nil {
			writeError(w, &Error{Code: CodeInvalidState, Message: err.Error()})
			return
		}
		if p.CallID != callID {
			writeError(w, errorf(CodeStateCallID, "state token is for call %q, not %q", p.CallID, callID))
			return
		}
		if sess, err = d.Resume(s.policy, p.State); err != nil {
			writeError(w, err) // ErrStateMismatch → state_model (409)
			return
		}
		source = "token"
	}
	if s.cfg.Sessions {
		if ent, err = s.store.acquire(callID); err != nil {
			writeError(w, err)
			return
		}
		defer ent.mu.Unlock()
		switch {
		case sess != nil: // the token wins over what this replica holds
		case ent.sess != nil:
			sess, source = ent.sess, "store"
		}
	}
	if sess == nil {
		if sess, err = d.NewSession(s.policy); err != nil {
			writeError(w, err)
			return
		}
		source = "new"
	}
	up, err := s.segments.submit(r.Context(), segJob{sess: sess, seg: callwatch.Segment{Text: req.Text, Start: req.Start, End: req.End}})
	if err == nil && up.Err != nil {
		err = errorf(CodeInvalidText, "segment %d: %s", up.Segment, textError(up.Err))
	}
	if err != nil {
		if ent != nil && ent.sess == nil {
			s.store.remove(callID) // do not keep an empty call that never started
		}
		writeError(w, err)
		return
	}
	if ent != nil {
		ent.sess = sess
	}
	s.m.segments.WithLabelValues(source).Inc()
	tok, err := s.signer.sign(callID, sess.Snapshot())
	if err != nil {
		writeError(w, fmt.Errorf("signing state: %w", err))
		return
	}
	writeJSON(w, SegmentResponse{CallID: callID, Segment: up.Segment, Score: round6(up.Score), Level: up.Level,
		Family: up.Family, FamilyProb: round6(up.FamilyProb),
		Alert: up.Alert, Reasons: up.Reasons, State: tok})
}

func (s *Server) handleEndCall(w http.ResponseWriter, r *http.Request) {
	if !s.store.remove(r.PathValue("call_id")) {
		writeError(w, errorf(CodeCallNotFound, "no call %q in this replica's session store", r.PathValue("call_id")))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// ModelInfo is GET /v1/model: what the monitor page needs to draw levels.
type ModelInfo struct {
	Name       string            `json:"name"`
	Version    string            `json:"version"`
	SHA256     string            `json:"sha256"`
	Backend    string            `json:"backend"`
	Thresholds models.Thresholds `json:"thresholds"`
	Policy     callwatch.Policy  `json:"policy"`
}

func (s *Server) handleModelInfo(w http.ResponseWriter, r *http.Request) {
	d, err := s.detector()
	if err != nil {
		writeError(w, err)
		return
	}
	b := d.Bundle()
	writeJSON(w, ModelInfo{Name: b.Card.Name, Version: b.Card.Version, SHA256: b.ModelSHA256, Backend: d.Backend().Name(),
		Thresholds: b.Card.Thresholds, Policy: s.policy})
}

func round6(f float64) float64 { return api.Round6(f) }
