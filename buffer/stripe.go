package buffer

import (
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

// seriesHashmap maps a label hash to the series with that hash; collisions
// are rare and kept in a slice.
type seriesHashmap map[uint64][]*memSeries

func (m seriesHashmap) get(hash uint64, lset labels.Labels) *memSeries {
	for _, s := range m[hash] {
		if labels.Equal(s.lset, lset) {
			return s
		}
	}
	return nil
}

func newStripeSeries(n int) *stripeSeries {
	s := &stripeSeries{
		mask:   uint64(n - 1),
		hashes: make([]seriesHashmap, n),
		refs:   make([]map[uint64]*memSeries, n),
		locks:  make([]stripeLock, n),
	}
	for i := range s.hashes {
		s.hashes[i] = seriesHashmap{}
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
	s.hashes[i][hash] = append(s.hashes[i][hash], ms)
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
