package server

import (
	"container/list"
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/callwatch/callwatch"
	"github.com/callwatch/callwatch/api"
)

// callStore is what one replica knows about calls, keyed by each call's
// random handle (never by the client's call id, which anyone can guess).
//
// A held call lives in the store: its state, and its last answer for a
// client that sends the same segment again. Clients without the state token
// use it, with the handle from the call's first answer. Held calls are at
// most max (server.max_sessions); a new one evicts the least recently used,
// or with a per-client quota that client's own least recently used.
//
// A tracked call is one whose client carries the token: the replica keeps
// only its sequence number and history digest (about 200 bytes), so that a
// replayed or forked token is refused. Tracked calls never need a slot: when
// maxTracked is reached the least recently used is forgotten, which only
// weakens replay detection for that call.
type callStore struct {
	ttl        time.Duration
	maxHeld    int
	maxTracked int
	perOwner   int // held calls per client; 0: no quota
	now        func() time.Time
	m          *metrics

	mu       sync.Mutex
	byHandle map[string]*callRecord
	held     *list.List // *callRecord, most recently used first
	tracked  *list.List
	owners   map[string]*list.List // held calls per owner, when perOwner > 0
}

// callRecord is one call. Its lock is held while one of its segments is
// being scored, so a call's segments are scored one at a time.
type callRecord struct {
	handle, callID, owner string
	held                  bool // fixed at creation
	lock                  chan struct{}
	gone                  atomic.Bool // evicted, expired or ended

	// guarded by lock
	next        int    // the seq the call's next segment must carry
	chain, prev digest // history through segment next-1, and through next-2
	state       callwatch.SessionState
	resp        api.SegmentResponse // held: the answer to segment next-1, without its token

	// guarded by callStore.mu
	last        time.Time
	elem, oelem *list.Element
}

func newCallStore(ttl time.Duration, maxHeld, maxTracked, perOwner int, now func() time.Time, m *metrics) *callStore {
	return &callStore{ttl: ttl, maxHeld: maxHeld, maxTracked: maxTracked, perOwner: perOwner, now: now, m: m,
		byHandle: map[string]*callRecord{}, held: list.New(), tracked: list.New(), owners: map[string]*list.List{}}
}

func newRecord(handle, callID, owner string, held bool) *callRecord {
	return &callRecord{handle: handle, callID: callID, owner: owner, held: held, lock: make(chan struct{}, 1)}
}

// acquire takes the call's lock, waiting at most until ctx ends.
func (r *callRecord) acquire(ctx context.Context) error {
	select {
	case r.lock <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (r *callRecord) release() { <-r.lock }

func (r *callRecord) busy() bool { return len(r.lock) > 0 }

// get returns the live call with this handle, marking it used; nil when
// unknown, expired or gone.
func (s *callStore) get(handle string) *callRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.byHandle[handle]
	if r == nil {
		return nil
	}
	now := s.now()
	if r.last.Before(now.Add(-s.ttl)) {
		if !r.busy() {
			s.removeLocked(r, "ttl")
		}
		return nil
	}
	r.last = now
	s.listOf(r).MoveToFront(r.elem)
	if r.oelem != nil {
		s.owners[r.owner].MoveToFront(r.oelem)
	}
	return r
}

func (s *callStore) listOf(r *callRecord) *list.List {
	if r.held {
		return s.held
	}
	return s.tracked
}

// add inserts a new call, making room by eviction, and returns the record
// to use: r, or the live record another request added for the same handle
// meanwhile (two requests with one token). Only a held call can be refused
// (too_many_calls), when every call in its way is being scored right now; a
// tracked call that finds no room is simply not tracked.
func (s *callStore) add(r *callRecord) (*callRecord, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if old := s.byHandle[r.handle]; old != nil && old.callID == r.callID && !old.last.Before(s.now().Add(-s.ttl)) {
		old.last = s.now()
		s.listOf(old).MoveToFront(old.elem)
		return old, nil
	}
	if r.held {
		if s.perOwner > 0 {
			if ol := s.owners[r.owner]; ol != nil && ol.Len() >= s.perOwner && !s.evictLocked(ol, "quota") {
				return nil, errorf(CodeTooManyCalls, "this client holds %d calls (server.max_sessions_per_client), all being scored; end calls with DELETE or send the state token", ol.Len())
			}
		}
		if s.held.Len() >= s.maxHeld && !s.evictLocked(s.held, "lru") {
			return nil, errorf(CodeTooManyCalls, "session store holds %d calls (server.max_sessions), all being scored; retry or send the state token", s.held.Len())
		}
	} else if s.tracked.Len() >= s.maxTracked && !s.evictLocked(s.tracked, "lru") {
		return r, nil
	}
	r.last = s.now()
	r.elem = s.listOf(r).PushFront(r)
	if r.held && s.perOwner > 0 {
		ol := s.owners[r.owner]
		if ol == nil {
			ol = list.New()
			s.owners[r.owner] = ol
		}
		r.oelem = ol.PushFront(r)
	}
	if old := s.byHandle[r.handle]; old != nil { // expired, or another call id: not this call
		s.removeLocked(old, "replaced")
	}
	s.byHandle[r.handle] = r
	s.gauges()
	return r, nil
}

// evictLocked drops the least recently used call of l that is not being
// scored; false if the calls it looked at all are.
func (s *callStore) evictLocked(l *list.List, why string) bool {
	n := 0
	for e := l.Back(); e != nil && n < 64; e, n = e.Prev(), n+1 {
		r := e.Value.(*callRecord)
		if !r.busy() {
			s.removeLocked(r, why)
			return true
		}
	}
	return false
}

// remove ends a call.
func (s *callStore) remove(r *callRecord, why string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byHandle[r.handle] == r {
		s.removeLocked(r, why)
	}
}

func (s *callStore) removeLocked(r *callRecord, why string) {
	if r.gone.Swap(true) {
		return
	}
	delete(s.byHandle, r.handle)
	s.listOf(r).Remove(r.elem)
	if r.oelem != nil {
		ol := s.owners[r.owner]
		ol.Remove(r.oelem)
		if ol.Len() == 0 {
			delete(s.owners, r.owner)
		}
	}
	if r.held {
		s.m.callsDropped.WithLabelValues(why).Inc()
	}
	s.gauges()
}

// sweep drops calls idle for longer than the TTL (lists are in use order,
// so it looks only at the expired end).
func (s *callStore) sweep() {
	s.mu.Lock()
	defer s.mu.Unlock()
	cut := s.now().Add(-s.ttl)
	for _, l := range []*list.List{s.held, s.tracked} {
		for e := l.Back(); e != nil; {
			r := e.Value.(*callRecord)
			if !r.last.Before(cut) {
				break
			}
			prev := e.Prev()
			if !r.busy() {
				s.removeLocked(r, "ttl")
			}
			e = prev
		}
	}
}

func (s *callStore) gauges() {
	s.m.activeCalls.Set(float64(s.held.Len()))
	s.m.trackedCalls.Set(float64(s.tracked.Len()))
}

// counts returns how many calls are held and tracked.
func (s *callStore) counts() (held, tracked int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.held.Len(), s.tracked.Len()
}
