package server

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
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
func (s *Server) score(ctx context.Context, rows [][]int64) ([]callwatch.Scores, error) {
	var live [][]int64
	var at []int
	for i, r := range rows {
		if len(r) > 0 {
			live = append(live, r)
			at = append(at, i)
		}
	}
	out := make([]callwatch.Scores, len(rows))
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

func (s *Server) execClassify(ctx context.Context, jobs []*job[[][]int64, []callwatch.Scores]) {
	d := s.det.Load()
	var rows [][]int64
	for _, j := range jobs {
		rows = append(rows, j.in...)
	}
	scores, _, err := d.Score(ctx, rows, nil)
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
	req, err := s.decodeClassify(r)
	if err != nil {
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
		v := d.VerdictOf(scores[i])
		s.m.verdicts.WithLabelValues(v.Label, string(v.Level)).Inc()
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
		ups, err := d.FeedBatchScores(ctx, sess, segs)
		if err == nil {
			// The phrases of the candidates these segments made, for the
			// whole batch in one backend call (see handleSegment); what
			// this leaves (very long segments, or all after an error) each
			// request finds on its own.
			_ = d.ResolveReasonsBatch(ctx, sess)
		}
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

// handleSegment scores one segment of a call. The call's state comes from
// the state token, from this replica's store (with the call's handle), or is
// new (seq 0). Every segment carries its sequence number (the token carries
// it too), and a segment is applied only when its answer is sent:
//
//   - seq is the call's next one: scored and applied;
//   - seq is the last one applied, with the same text and times: answered
//     again without applying it twice (a client retrying after a lost answer
//     or a 504);
//   - anything else (an old token replayed, a segment skipped, a token
//     continued two ways) is 409 out_of_order with expected_seq;
//   - seq > 0 for a call the replica does not hold is 410 call_expired,
//     never a silent restart at segment 0.
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
	if strings.TrimSpace(req.Text) == "" {
		writeError(w, errorf(CodeBadRequest, "the segment has no text: send {\"text\": \"...\"} with what was said"))
		return
	}
	if len(req.Text) > s.cfg.MaxTextBytes {
		writeError(w, errorf(CodeTextTooLarge, "segment text is %d bytes, limit %d (server.max_text_bytes)", len(req.Text), s.cfg.MaxTextBytes))
		return
	}
	if math.IsInf(req.Start, 0) || math.IsInf(req.End, 0) || math.IsNaN(req.Start) || math.IsNaN(req.End) || req.End < req.Start && req.End != 0 {
		writeError(w, errorf(CodeBadRequest, "segment end (%g) is before start (%g)", req.End, req.Start))
		return
	}
	ctx := r.Context()
	seg := callwatch.Segment{Text: req.Text, Start: req.Start, End: req.End}

	// Where the call's state comes from, and its sequence number.
	var (
		tok      *tokenPayload
		tokChain digest
		tokSess  *callwatch.Session
		seq      int
	)
	if req.State != "" {
		p, chain, err := s.signer.verify(req.State)
		if err != nil {
			writeError(w, &Error{Code: CodeInvalidState, Message: err.Error()})
			return
		}
		if p.CallID != callID {
			writeError(w, errorf(CodeStateCallID, "state token is for call %q, not %q", p.CallID, callID))
			return
		}
		if req.Handle != "" && req.Handle != p.Handle {
			writeError(w, errorf(CodeBadRequest, "the handle and the state token belong to different calls; send one of them"))
			return
		}
		// The state is checked (model, ranges, sizes) before anything else
		// looks at it, its sequence number included.
		if tokSess, err = d.Resume(s.policy, p.State); err != nil {
			writeError(w, err) // ErrInvalidState → invalid_state (400), ErrStateMismatch → state_model (409)
			return
		}
		tok, tokChain = &p, chain
		seq = p.State.Segments
		if req.Seq != nil && *req.Seq != seq {
			writeError(w, outOfOrder(seq, "seq %d, but the state token is the call after %d segments: its next seq is %d", *req.Seq, seq, seq))
			return
		}
	} else {
		if req.Seq == nil {
			writeError(w, errorf(CodeBadRequest, `"seq" is required without a state token: 0 for a call's first segment, then the previous answer's "segment"+1`))
			return
		}
		seq = *req.Seq
		if seq < 0 || seq > callwatch.MaxSegments {
			writeError(w, errorf(CodeBadRequest, "seq %d is not in [0, %d]", seq, callwatch.MaxSegments))
			return
		}
	}

	// The call's record on this replica.
	var rec *callRecord
	fresh := false
	switch {
	case tok != nil:
		if rec = s.calls.get(tok.Handle); rec == nil || rec.callID != callID {
			rec = newRecord(tok.Handle, callID, "", false)
			rec.next, rec.chain = seq, tokChain
			rec, _ = s.calls.add(rec) // a tracked call never needs a slot, so never fails
		}
	case req.Handle != "":
		if rec = s.calls.get(req.Handle); rec == nil || rec.callID != callID || !rec.held {
			writeError(w, expired(callID, seq))
			return
		}
	case seq == 0:
		handle := newHandle()
		rec = newRecord(handle, callID, s.clientOf(r), s.cfg.Sessions)
		rec.chain = chainStart(handle)
		if rec, err = s.calls.add(rec); err != nil {
			writeError(w, err)
			return
		}
		fresh = true
	default:
		writeError(w, expired(callID, seq))
		return
	}
	if err := rec.acquire(ctx); err != nil {
		writeError(w, err)
		return
	}
	defer rec.release()
	if rec.held && !fresh && rec.gone.Load() { // evicted or ended while we waited
		writeError(w, expired(callID, seq))
		return
	}

	// The sequence check.
	chainIn := rec.chain
	if tok != nil {
		chainIn = tokChain
	}
	retry := false
	switch {
	case seq == rec.next:
		if tok != nil && tokChain != rec.chain {
			writeError(w, outOfOrder(rec.next, "this state token continues call %q differently from the segments this replica already scored for it (an older token reused: the call would fork); continue from the latest token", callID))
			return
		}
	case seq == rec.next-1 && tok == nil && rec.prev.extend(seg) == rec.chain:
		// The store's last answer, sent again.
		resp := rec.resp
		if resp.State, err = s.signer.sign(callID, rec.handle, rec.chain, rec.state); err != nil {
			writeError(w, fmt.Errorf("signing state: %w", err))
			return
		}
		s.m.segments.WithLabelValues("retry").Inc()
		writeJSON(w, resp)
		return
	case seq == rec.next-1 && tok != nil && tokChain.extend(seg) == rec.chain:
		retry = true // scored again from the same token: the same answer, nothing applied twice
	case tok != nil && seq > rec.next:
		// The call went on at another replica; follow it.
	case seq == rec.next-1:
		writeError(w, outOfOrder(rec.next, "segment %d of call %q was already scored with other text or times; the call expects seq %d", seq, callID, rec.next))
		return
	default:
		writeError(w, outOfOrder(rec.next, "call %q expects seq %d, got %d (a replayed older token or a skipped segment)", callID, rec.next, seq))
		return
	}

	// Score on a private session: nothing is applied until the answer goes.
	var sess *callwatch.Session
	source := "new"
	switch {
	case tok != nil:
		sess = tokSess
		source = "token"
	case rec.next > 0:
		sess, err = d.Resume(s.policy, rec.state)
		source = "store"
	default:
		sess, err = d.NewSession(s.policy)
	}
	if retry {
		source = "retry"
	}
	var up callwatch.Update
	if err == nil {
		up, err = s.segments.submit(ctx, segJob{sess: sess, seg: seg})
	}
	if err == nil && up.Err != nil {
		if errors.Is(up.Err, callwatch.ErrInvalidState) {
			err = &Error{Code: CodeInvalidState, Message: up.Err.Error()}
		} else {
			err = errorf(CodeInvalidText, "segment %d: %s", up.Segment, textError(up.Err))
		}
	}
	if err == nil {
		// The phrase of a segment just kept as a reason candidate is found
		// now, from the exact state before it, so that the token carries the
		// phrase instead of that state (2 numbers instead of 577 floats).
		// The batch found it already unless the segment is longer than one
		// backend window: that search runs here, under this request's
		// deadline, not inside the shared batch.
		err = sess.ResolveReasons(ctx)
	}
	if err == nil && up.Alert != "" {
		up.Reasons, err = sess.Reasons(ctx) // phrases resolved: no backend work
	}
	var (
		snap     callwatch.SessionState
		newChain = chainIn.extend(seg)
		token    string
	)
	if err == nil {
		snap = sess.Snapshot()
		if s.signer.half {
			// Every replica continues from the state the token carries,
			// this one's store included, so the call never forks by where
			// its segments are served.
			roundStateHalf(&snap)
		}
		token, err = s.signer.sign(callID, rec.handle, newChain, snap)
	}
	if err == nil {
		err = ctx.Err() // too late to answer: not applied, the client retries
	}
	if err != nil {
		if fresh {
			s.calls.remove(rec, "failed") // do not keep a call that never started
		}
		writeError(w, err)
		return
	}
	resp := SegmentResponse{CallID: callID, Segment: seq, Score: round6(up.Score), Level: up.Level,
		Family: up.Family, FamilyProb: round6(up.FamilyProb), Alert: up.Alert, Reasons: up.Reasons}
	if rec.held {
		resp.Handle = rec.handle
	}
	if !retry {
		rec.prev, rec.chain, rec.next = chainIn, newChain, seq+1
		if rec.held {
			rec.state, rec.resp = snap, resp
		}
	}
	s.m.segments.WithLabelValues(source).Inc()
	if !retry {
		s.m.levels.WithLabelValues(string(resp.Level)).Inc()
		if resp.Alert != "" {
			s.m.alerts.WithLabelValues(string(resp.Alert)).Inc()
		}
	}
	resp.State = token
	writeJSONSized(w, http.StatusOK, resp, len(token)+64*len(resp.Reasons)*4)
}

// expired is the 410 for a later segment of a call this replica cannot find.
func expired(callID string, seq int) *Error {
	return errorf(CodeCallExpired, "segment %d of call %q: this replica does not hold the call (it expired after server.session_ttl, was evicted or ended, the server restarted, or the handle is wrong); send the call's latest state token, or start the call again with seq 0", seq, callID)
}

func (s *Server) handleEndCall(w http.ResponseWriter, r *http.Request) {
	callID := r.PathValue("call_id")
	h := r.Header.Get(api.HandleHeader)
	if h == "" {
		writeError(w, errorf(CodeBadRequest, "send the call's handle (the \"handle\" of its answers) in %s", api.HandleHeader))
		return
	}
	rec := s.calls.get(h)
	if rec == nil || rec.callID != callID || !rec.held {
		writeError(w, errorf(CodeCallNotFound, "no call %q with this handle in this replica's session store", callID))
		return
	}
	s.calls.remove(rec, "ended")
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
