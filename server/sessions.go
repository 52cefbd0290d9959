package server

import (
	"sync"
	"time"

	"github.com/callwatch/callwatch"
)

// store keeps calls server-side for clients that do not carry the state
// token. It is per replica: behind a load balancer without sticky sessions,
// use the token.
type store struct {
	ttl   time.Duration
	max   int
	now   func() time.Time
	gauge interface{ Set(float64) }

	mu    sync.Mutex
	calls map[string]*entry
}

// entry is one call; its mutex is held while a segment is being scored, so
// concurrent segments of one call are scored one after another.
type entry struct {
	mu   sync.Mutex
	sess *callwatch.Session
	last time.Time // guarded by store.mu
}

func newStore(ttl time.Duration, max int, now func() time.Time, gauge interface{ Set(float64) }) *store {
	return &store{ttl: ttl, max: max, now: now, gauge: gauge, calls: map[string]*entry{}}
}

// acquire returns the call's entry locked, creating it when absent (sess nil
// then). It fails with too_many_calls when the store is full.
func (s *store) acquire(id string) (*entry, error) {
	s.mu.Lock()
	e, ok := s.calls[id]
	if !ok {
		if len(s.calls) >= s.max {
			s.sweepLocked()
		}
		if len(s.calls) >= s.max {
			s.mu.Unlock()
			return nil, errorf(CodeTooManyCalls, "session store holds %d calls (server.max_sessions); end calls with DELETE or send the state token", s.max)
		}
		e = &entry{}
		s.calls[id] = e
		s.gauge.Set(float64(len(s.calls)))
	}
	e.last = s.now()
	s.mu.Unlock()
	e.mu.Lock()
	return e, nil
}

// remove ends a call; false if it was not there.
func (s *store) remove(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.calls[id]
	delete(s.calls, id)
	s.gauge.Set(float64(len(s.calls)))
	return ok
}

// sweep drops calls idle for longer than the TTL.
func (s *store) sweep() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweepLocked()
}

func (s *store) sweepLocked() {
	cut := s.now().Add(-s.ttl)
	for id, e := range s.calls {
		if e.last.Before(cut) && e.mu.TryLock() { // a call being scored is not idle
			delete(s.calls, id)
			e.mu.Unlock()
		}
	}
	s.gauge.Set(float64(len(s.calls)))
}

func (s *store) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.calls)
}
