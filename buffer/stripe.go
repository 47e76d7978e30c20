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
	mask   uint64
	hashes []seriesHashmap // hashes[i] is guarded by locks[i]
	refs   []map[uint64]*memSeries
	locks  []stripeLock
}

type stripeLock struct {
	sync.RWMutex
	_ [40]byte // keep locks on separate cache lines
}

// seriesHashmap maps a label hash to the series with that hash. Collisions
// are rare: the first series of a hash is in unique, the others in
// conflicts, so that the common case costs one pointer per series rather
// than a slice (32 bytes more per series).
type seriesHashmap struct {
	unique    map[uint64]*memSeries
	conflicts map[uint64][]*memSeries // nil until a collision
}

func (m *seriesHashmap) get(hash uint64, lset labels.Labels) *memSeries {
	if s := m.unique[hash]; s != nil && labels.Equal(s.lset, lset) {
		return s
	}
	for _, s := range m.conflicts[hash] {
		if labels.Equal(s.lset, lset) {
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

func newStripeSeries(n int) *stripeSeries {
	s := &stripeSeries{
		mask:   uint64(n - 1),
		hashes: make([]seriesHashmap, n),
		refs:   make([]map[uint64]*memSeries, n),
		locks:  make([]stripeLock, n),
	}
	for i := range s.hashes {
		s.hashes[i] = seriesHashmap{unique: map[uint64]*memSeries{}}
		s.refs[i] = map[uint64]*memSeries{}
	}
	return s
}

func (s *stripeSeries) getByHash(hash uint64, lset labels.Labels) *memSeries {
	i := hash & s.mask
	s.locks[i].RLock()
	ms := s.hashes[i].get(hash, lset)
	s.locks[i].RUnlock()
	return ms
}

func (s *stripeSeries) getByRef(ref uint64) *memSeries {
	i := ref & s.mask
	s.locks[i].RLock()
	ms := s.refs[i][ref]
	s.locks[i].RUnlock()
	return ms
}

// getOrSet returns the series with lset, or stores and returns the series
// made by create if there is none. created reports which happened.
func (s *stripeSeries) getOrSet(hash uint64, lset labels.Labels, create func() (*memSeries, error)) (ms *memSeries, created bool, err error) {
	i := hash & s.mask
	s.locks[i].Lock()
	if ms = s.hashes[i].get(hash, lset); ms != nil {
		s.locks[i].Unlock()
		return ms, false, nil
	}
	ms, err = create()
	if err != nil {
		s.locks[i].Unlock()
		return nil, false, err
	}
	s.hashes[i].set(hash, ms)
	s.locks[i].Unlock()

	j := ms.ref & s.mask
	s.locks[j].Lock()
	s.refs[j][ms.ref] = ms
	s.locks[j].Unlock()
	return ms, true, nil
}

// forEach calls f for every series; f must not block on stripe locks.
func (s *stripeSeries) forEach(f func(*memSeries)) {
	for i := range s.refs {
		s.locks[i].RLock()
		for _, ms := range s.refs[i] {
			f(ms)
		}
		s.locks[i].RUnlock()
	}
}
