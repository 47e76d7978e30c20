package buffer

import (
	"slices"
	"sync"

	"github.com/prometheus/prometheus/model/labels"
)

// stripeSeries holds the head's series in two sharded maps, by label hash
// and by reference, so that appends to different series rarely contend on
// one lock (the design of prometheus/tsdb/head.go's stripeSeries).
type stripeSeries struct {
	mask    uint64
	stripes []stripe
	syms    *symbolTable // the series' label sets are read through it
}

// stripe is one shard: its lock and the map headers it guards share a
// cache line, so that a lookup, which is mostly waiting for memory, waits
// for one line fewer. stripes[i].hashes holds the series whose label hash
// is i modulo the stripe count, stripes[i].refs those whose reference is.
type stripe struct {
	sync.RWMutex // guards hashes and refs
	hashes       seriesHashmap
	refs         map[uint64]*memSeries
	_            [16]byte // 64 bytes: stripes on separate cache lines
}

// seriesHashmap maps a label hash to the series with that hash. Collisions
// are rare: the first series of a hash is in unique, the others in
// conflicts, so that the common case costs one pointer per series rather
// than a slice (32 bytes more per series).
type seriesHashmap struct {
	unique    map[uint64]*memSeries
	conflicts map[uint64][]*memSeries // nil until a collision
}

func (m *seriesHashmap) get(syms *symbolTable, hash uint64, lset labels.Labels) *memSeries {
	if s := m.unique[hash]; s != nil && syms.equal(s.lset, lset) {
		return s
	}
	for _, s := range m.conflicts[hash] {
		if syms.equal(s.lset, lset) {
			return s
		}
	}
	return nil
}

func (m *seriesHashmap) set(hash uint64, s *memSeries) {
	if _, ok := m.unique[hash]; !ok {
		m.unique[hash] = s
		return
	}
	if m.conflicts == nil {
		m.conflicts = map[uint64][]*memSeries{}
	}
	m.conflicts[hash] = append(m.conflicts[hash], s)
}

// del removes s, which has the given hash.
func (m *seriesHashmap) del(hash uint64, s *memSeries) {
	if m.unique[hash] == s {
		// Promote a conflicting series, if any, to unique.
		if l := m.conflicts[hash]; len(l) > 0 {
			m.unique[hash] = l[0]
			m.setConflicts(hash, l[1:])
			return
		}
		delete(m.unique, hash)
		return
	}
	m.setConflicts(hash, slices.DeleteFunc(m.conflicts[hash], func(x *memSeries) bool { return x == s }))
}

func (m *seriesHashmap) setConflicts(hash uint64, l []*memSeries) {
	if len(l) == 0 {
		delete(m.conflicts, hash)
		return
	}
	m.conflicts[hash] = l
}

func newStripeSeries(n int, syms *symbolTable) *stripeSeries {
	s := &stripeSeries{mask: uint64(n - 1), stripes: make([]stripe, n), syms: syms}
	for i := range s.stripes {
		s.stripes[i].hashes = seriesHashmap{unique: map[uint64]*memSeries{}}
		s.stripes[i].refs = map[uint64]*memSeries{}
	}
	return s
}

func (s *stripeSeries) getByHash(hash uint64, lset labels.Labels) *memSeries {
	st := &s.stripes[hash&s.mask]
	st.RLock()
	ms := st.hashes.get(s.syms, hash, lset)
	st.RUnlock()
	return ms
}

func (s *stripeSeries) getByRef(ref uint64) *memSeries {
	st := &s.stripes[ref&s.mask]
	st.RLock()
	ms := st.refs[ref]
	st.RUnlock()
	return ms
}

// getOrSet returns the series with lset, or stores and returns the series
// made by create if there is none. created reports which happened.
func (s *stripeSeries) getOrSet(hash uint64, lset labels.Labels, create func() (*memSeries, error)) (ms *memSeries, created bool, err error) {
	st := &s.stripes[hash&s.mask]
	st.Lock()
	if ms = st.hashes.get(s.syms, hash, lset); ms != nil {
		st.Unlock()
		return ms, false, nil
	}
	ms, err = create()
	if err != nil {
		st.Unlock()
		return nil, false, err
	}
	st.hashes.set(hash, ms)
	st.Unlock()

	st = &s.stripes[ms.ref&s.mask]
	st.Lock()
	st.refs[ms.ref] = ms
	st.Unlock()
	return ms, true, nil
}

// forEach calls f for every series; f must not block on stripe locks.
func (s *stripeSeries) forEach(f func(*memSeries)) {
	for i := range s.stripes {
		st := &s.stripes[i]
		st.RLock()
		for _, ms := range st.refs {
			f(ms)
		}
		st.RUnlock()
	}
}
