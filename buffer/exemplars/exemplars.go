// Package exemplars keeps the most recent exemplars writes carried, in a
// bounded circular store indexed by series, for /api/v1/query_exemplars
// (as Prometheus' CircularExemplarStorage). It owns the in-memory store
// only: the head logs exemplars in the write-ahead log, replays them, and
// re-logs the whole store after each cut. It must not touch files.
package exemplars

import (
	"cmp"
	"slices"
	"sync"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/strata-tsdb/strata/ingest"
)

// Store holds at most a fixed number of exemplars; adding one past it
// drops the oldest of all. It is safe for concurrent use.
type Store struct {
	mtx    sync.RWMutex // mtx guards everything below.
	ring   []entry      // len: the bound; ring[next] is the oldest once full
	next   int
	n      int                       // exemplars held
	series map[uint64][]*seriesEntry // by labels hash; collisions share a slice
}

type entry struct {
	ex   ingest.Exemplar
	s    *seriesEntry // nil: empty slot
	next int          // next newer entry of the same series, -1: none
}

type seriesEntry struct {
	lset           labels.Labels
	oldest, newest int // ring indexes, oldest first
}

// New returns a store of at most max exemplars (zero: it keeps none).
func New(max int) *Store {
	return &Store{ring: make([]entry, max), series: map[uint64][]*seriesEntry{}}
}

// Reset empties the store.
func (s *Store) Reset() {
	s.mtx.Lock()
	defer s.mtx.Unlock()
	clear(s.ring)
	s.next, s.n = 0, 0
	s.series = map[uint64][]*seriesEntry{}
}

// Enabled reports whether the store keeps exemplars at all.
func (s *Store) Enabled() bool { return len(s.ring) > 0 }

// Len returns the number of exemplars held.
func (s *Store) Len() int {
	s.mtx.RLock()
	defer s.mtx.RUnlock()
	return s.n
}

// Add stores the exemplars of b, in order. An exemplar equal to the newest
// one of its series (same labels, timestamp and value) is a repeat and is
// not stored again, as in Prometheus; exemplars may come in any time order
// (answers are sorted by time).
func (s *Store) Add(b []ingest.SeriesExemplars) {
	if len(s.ring) == 0 || len(b) == 0 {
		return
	}
	s.mtx.Lock()
	defer s.mtx.Unlock()
	for i := range b {
		if len(b[i].Exemplars) == 0 {
			continue
		}
		se := s.getOrCreateLocked(b[i].Labels)
		for _, ex := range b[i].Exemplars {
			if se.newest >= 0 {
				last := s.ring[se.newest].ex
				if last.T == ex.T && sameValue(last.V, ex.V) && labels.Equal(last.Labels, ex.Labels) {
					continue
				}
			}
			s.addLocked(se, ex)
		}
	}
}

func sameValue(a, b float64) bool { return a == b || (a != a && b != b) }

func (s *Store) getOrCreateLocked(lset labels.Labels) *seriesEntry {
	h := lset.Hash()
	for _, se := range s.series[h] {
		if labels.Equal(se.lset, lset) {
			return se
		}
	}
	// A copy: a decoder's label sets may share memory with many others
	// (ingest's label arena), which the store would keep alive.
	se := &seriesEntry{lset: lset.Copy(), oldest: -1, newest: -1}
	s.series[h] = append(s.series[h], se)
	return se
}

// addLocked writes ex into the next slot, evicting what was there.
func (s *Store) addLocked(se *seriesEntry, ex ingest.Exemplar) {
	i := s.next
	if old := s.ring[i].s; old == nil {
		s.n++
	} else {
		// The oldest slot of all holds the oldest exemplar of its series.
		old.oldest = s.ring[i].next
		if old.oldest < 0 {
			old.newest = -1
			s.removeSeriesLocked(old)
		}
	}
	if se.oldest < 0 && se.newest < 0 {
		// se may have been removed just above (its last exemplar
		// evicted): make sure it is indexed.
		s.indexLocked(se)
		se.oldest = i
	} else {
		s.ring[se.newest].next = i
	}
	s.ring[i] = entry{ex: ex, s: se, next: -1}
	se.newest = i
	s.next = (i + 1) % len(s.ring)
}

func (s *Store) indexLocked(se *seriesEntry) {
	h := se.lset.Hash()
	if slices.Contains(s.series[h], se) {
		return
	}
	s.series[h] = append(s.series[h], se)
}

func (s *Store) removeSeriesLocked(se *seriesEntry) {
	h := se.lset.Hash()
	ss := slices.DeleteFunc(s.series[h], func(x *seriesEntry) bool { return x == se })
	if len(ss) == 0 {
		delete(s.series, h)
	} else {
		s.series[h] = ss
	}
}

// Select returns, for every series matching all matchers of any of the
// sets, its exemplars with timestamps in [mint, maxt] (milliseconds),
// sorted by time; series sorted by labels, those without such exemplars
// left out. The result shares nothing with the store.
func (s *Store) Select(mint, maxt int64, sets ...[]*labels.Matcher) []ingest.SeriesExemplars {
	s.mtx.RLock()
	defer s.mtx.RUnlock()
	var out []ingest.SeriesExemplars
	for _, ss := range s.series {
		for _, se := range ss {
			if !matchesAny(se.lset, sets) {
				continue
			}
			var exs []ingest.Exemplar
			for i := se.oldest; i >= 0; i = s.ring[i].next {
				if ex := s.ring[i].ex; ex.T >= mint && ex.T <= maxt {
					exs = append(exs, ex)
				}
			}
			if len(exs) == 0 {
				continue
			}
			slices.SortStableFunc(exs, func(a, b ingest.Exemplar) int { return cmp.Compare(a.T, b.T) })
			out = append(out, ingest.SeriesExemplars{Labels: se.lset, Exemplars: exs})
		}
	}
	slices.SortFunc(out, func(a, b ingest.SeriesExemplars) int { return labels.Compare(a.Labels, b.Labels) })
	return out
}

func matchesAny(lset labels.Labels, sets [][]*labels.Matcher) bool {
	for _, set := range sets {
		ok := true
		for _, m := range set {
			if !m.Matches(lset.Get(m.Name)) {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

// All returns every exemplar in the order it was added, oldest first,
// consecutive exemplars of one series grouped: Add(All()) into an empty
// store of the same size rebuilds this one.
func (s *Store) All() []ingest.SeriesExemplars {
	s.mtx.RLock()
	defer s.mtx.RUnlock()
	var out []ingest.SeriesExemplars
	n := len(s.ring)
	for k := range n {
		e := &s.ring[(s.next+k)%n]
		if e.s == nil {
			continue
		}
		if l := len(out); l > 0 && labels.Equal(out[l-1].Labels, e.s.lset) {
			out[l-1].Exemplars = append(out[l-1].Exemplars, e.ex)
			continue
		}
		out = append(out, ingest.SeriesExemplars{Labels: e.s.lset, Exemplars: []ingest.Exemplar{e.ex}})
	}
	return out
}
