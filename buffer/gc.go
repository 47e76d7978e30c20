package buffer

import (
	"github.com/prometheus/prometheus/model/labels"
)

// Series churn (pods, containers, short jobs) would grow the head without
// bound if a series stayed in it forever: its labels, map entries and
// postings, and its place under Options.MaxSeries. A flush leaves a series
// that received nothing since the previous flush empty, so the head removes
// series that two flushes in a row found empty: one that was written to in
// between is kept, which spares a series with samples further apart than
// the flush interval from being dropped and made again every flush.
// Prometheus's head does the same at truncation (memSeries GC in
// tsdb/head.go), there keyed on the head's minimum time.

// emptyLocked reports whether the series holds no sample.
func (s *memSeries) emptyLocked() bool {
	return len(s.chunks) == 0 && s.head == nil && (s.ooo == nil || len(s.ooo.chunks) == 0 && len(s.ooo.buf) == 0)
}

// gcIdleSeries removes from the head the candidates that sweepAfterFlush
// returned and that are still idle and empty, and returns how many it
// removed. No append may run concurrently: Append resolves its series
// before it takes the series' lock, and samples applied to a series removed
// in between would be lost. Store.flush holds appendMtx for writing around
// it. Reads may run: a series removed after a read looked up its reference
// is skipped (getByRef returns nil).
func (h *Head) gcIdleSeries(candidates []*memSeries) int {
	removed := make(map[uint64]struct{}, len(candidates))
	var (
		lsets []seriesLabels
		hb    hashBuf
	)
	for _, s := range candidates {
		s.mtx.Lock()
		gone := s.idle && s.emptyLocked()
		s.mtx.Unlock()
		if !gone {
			continue
		}
		if len(removed) == 0 {
			// Handles given out before (KnownSeries) may name s: no
			// batch uses them from now on.
			h.gcEpoch.Add(1)
		}
		h.series.delete(s, &hb)
		removed[s.ref] = struct{}{}
		lsets = append(lsets, s.lset)
	}
	if len(removed) == 0 {
		return 0
	}
	h.index.delete(removed, lsets)
	h.numSeries.Add(-int64(len(removed)))
	return len(removed)
}

// hashBuf is what stripeSeries.delete reuses to hash series' labels.
type hashBuf struct {
	b  []byte
	sb labels.ScratchBuilder
}

// delete removes ms from both maps.
func (s *stripeSeries) delete(ms *memSeries, hb *hashBuf) {
	hash := s.syms.overwrite(ms.lset, &hb.b, &hb.sb).Hash() // as getOrSet had it
	st := &s.stripes[hash&s.mask]
	st.Lock()
	st.hashes.del(hash, ms)
	st.Unlock()

	st = &s.stripes[ms.ref&s.mask]
	st.Lock()
	delete(st.refs, ms.ref)
	st.Unlock()
}

// delete removes the references in refs, whose label sets are lsets, from
// the postings. Each affected list is rewritten once, however many of its
// references go, and a label value (or name) left without series is
// dropped, so that label values no longer lists it.
func (p *postingsIndex) delete(refs map[uint64]struct{}, lsets []seriesLabels) {
	p.mtx.Lock()
	defer p.mtx.Unlock()
	gone := func(r uint64) bool { _, ok := refs[r]; return ok }
	done := map[labels.Label]struct{}{}
	for _, lset := range lsets {
		p.syms.rangeLabels(lset, func(name, value string) {
			l := labels.Label{Name: name, Value: value}
			if _, ok := done[l]; ok {
				return // rewritten already for an earlier series
			}
			done[l] = struct{}{}
			vals := p.m[l.Name]
			list := vals[l.Value]
			list.drop(gone)
			if list.n == 0 {
				delete(vals, l.Value)
				if len(vals) == 0 {
					delete(p.m, l.Name)
				}
				return
			}
			vals[l.Value] = list
		})
	}
	p.all.drop(gone)
}
