package query

import (
	"container/heap"
	"context"
	"math"
	"slices"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/util/annotations"

	"github.com/strata-tsdb/strata/buffer"
	"github.com/strata-tsdb/strata/segments"
)

// A selection is a k-way merge of one sorted cursor per source: each
// segment that overlaps the query, then the head, as Prometheus'
// storage.NewMergeSeriesSet merges series sets. A cursor decodes a series
// only when the merge reaches it, so a selection never holds every
// matching series at once unless its caller keeps them (the engine does;
// /api/v1/series streams them), and a listing with a limit stops after
// limit series. The merge joins the cursors standing on one label set
// into one series, in source order, so that the newest write wins when
// its samples are merged. (storage.NewMergeSeriesSet itself would need a
// series per source and per label set, and makes a new merged series each
// time At is called: a third more allocations than the map it replaced.)

// mergedSeriesBytes is what a selected series costs against the select
// budget besides its labels and chunk references.
const mergedSeriesBytes = SelectedSeriesBytes - buffer.SeriesBytes

// selectCtx is what the cursors of one Select share.
type selectCtx struct {
	ctx        context.Context
	q          *querier
	budget     *selectBudget
	labelsOnly bool  // hints.Func "series": no chunk references are kept
	mint, maxt int64 // the raw data a series reads besides rollups
	win        rollupWindow
	rollFrom   int64      // rollup chunks are read from here to win.to
	stale      *staleness // where the rollups may be out of date (nil: nowhere)
	ranges     [][2]int64 // the raw data selected: [mint, maxt] and what stale needs
}

// cursor is one source's matching series in label order.
type cursor interface {
	// next advances to the source's next series.
	next() bool
	labels() labels.Labels
	// addTo adds the current series' data to s.
	addTo(s *mergedSeries)
	err() error
}

// segCursor walks a segment's matching series as the merge advances.
type segCursor struct {
	sc     *selectCtx
	seg    *segments.Segment
	ms     []*labels.Matcher
	rollup bool
	// staleable: the rollup's window may be out of date, so a series whose
	// buckets its tombstones all hide may still have raw data left there.
	staleable bool
	tombs     []segments.Tombstone
	it        segments.SeriesIterator // nil until the first next
	lset      labels.Labels
	src       segSource
	n         int
	e         error
	// refs are the chunks of the series given so far, for a segment read
	// by range from object storage: prefetched together once the last
	// series is given, before the engine reads them one by one.
	refs []segments.ChunkRef
}

func (c *segCursor) next() bool {
	if c.e != nil {
		return false
	}
	if c.it == nil {
		if c.it, c.e = c.seg.SelectShared(c.ms...); c.e != nil {
			return false
		}
	}
	for c.it.Next() {
		if c.n++; c.n%1024 == 0 {
			if c.e = c.sc.ctx.Err(); c.e != nil {
				return false
			}
		}
		var metas []segments.ChunkMeta
		if c.rollup {
			metas = rollupChunks(c.it.Chunks(), c.sc.win, c.sc.rollFrom)
		} else {
			metas = overlapping(c.it.Chunks(), c.sc.ranges)
		}
		if len(metas) == 0 {
			continue
		}
		c.lset = c.it.Labels()
		deleted := segments.DeletedRanges(c.tombs, c.lset)
		if allDeleted(metas, deleted) && !c.staleable {
			continue
		}
		if c.sc.labelsOnly {
			metas, deleted = nil, nil
		}
		c.src = segSource{seg: c.seg, metas: metas, deleted: deleted}
		if c.seg.FromSource() {
			for _, m := range metas {
				c.refs = append(c.refs, m.Ref)
			}
		}
		return true
	}
	c.e = c.it.Err()
	if c.e == nil && len(c.refs) > 0 {
		c.e = c.seg.Prefetch(c.refs)
		c.refs = nil
	}
	return false
}

func (c *segCursor) labels() labels.Labels { return c.lset }
func (c *segCursor) err() error            { return c.e }

func (c *segCursor) addTo(s *mergedSeries) {
	if c.sc.labelsOnly {
		return
	}
	if c.rollup {
		s.rollups = append(s.rollups, c.src)
	} else {
		s.segs = append(s.segs, c.src)
	}
}

// headCursor is the head's matching series, sorted by labels when
// selected: references to the head's series, which copy their samples
// only when iterated.
type headCursor struct {
	hs []buffer.Series
	i  int
}

// selectHead selects the head's series for sc, sorted by labels; with a
// limit only the limit smallest. What they hold (buffer.SeriesBytes per
// matching series, and for the engine their labels and the series it will
// make of them) is charged at once, so that a query whose selectors
// select too much from the head fails before the engine evaluates any of
// them. A series' labels are made when the merge reaches it (the head
// keeps them compact): a listing holds one at a time.
func (sc *selectCtx) selectHead(limit int, ms []*labels.Matcher) (*headCursor, error) {
	mint, maxt := int64(math.MaxInt64), int64(math.MinInt64)
	for _, r := range sc.ranges {
		mint, maxt = min(mint, r[0]), max(maxt, r[1])
	}
	hs, err := sc.q.head.SelectRefs(sc.ctx, mint, maxt, ms...)
	if err != nil {
		return nil, err
	}
	if err := sc.q.charge(sc.budget, int64(len(hs))*buffer.SeriesBytes); err != nil {
		return nil, err
	}
	if limit > 0 && len(hs) > limit {
		hs = smallest(hs, limit, buffer.CompareSeries)
	} else {
		slices.SortFunc(hs, buffer.CompareSeries)
	}
	if !sc.labelsOnly {
		cost := int64(len(hs)) * mergedSeriesBytes
		for i := range hs {
			cost += int64(hs[i].LabelsSize()) // made as the merge reaches it, and kept by the engine
		}
		if err := sc.q.charge(sc.budget, cost); err != nil {
			return nil, err
		}
	}
	return &headCursor{hs: hs, i: -1}, nil
}

func (c *headCursor) next() bool {
	if c.i >= 0 {
		c.hs[c.i] = buffer.Series{} // the merge is past it: let it go
	}
	c.i++
	if c.i < len(c.hs) {
		c.hs[c.i].MakeLabels()
		return true
	}
	return false
}

func (c *headCursor) labels() labels.Labels { return c.hs[c.i].Labels }
func (c *headCursor) err() error            { return nil }

func (c *headCursor) addTo(s *mergedSeries) {
	s.head, s.hasHead = c.hs[c.i], true
	s.lset = c.hs[c.i].Labels // made by next, charged by selectHead: no other copy is held
}

// mergeSet is the storage.SeriesSet of a Select: the merge of its cursors,
// started by the first Next (the engine selects for every selector before
// it evaluates the first).
type mergeSet struct {
	sc      *selectCtx
	cursors []cursor // in source order: a later one holds newer writes
	limit   int      // the most series it gives; 0: all
	started bool
	h       cursorHeap
	popped  []*rankedCursor
	given   int
	cur     *mergedSeries
	e       error
	// series and srcs are slabs the series given and their segment
	// sources are cut from: a selection of many series makes a few large
	// allocations rather than a series and a growing slice each.
	series []mergedSeries
	srcs   []segSource
}

// slabLen is the most series a slab of a mergeSet holds (and a quarter
// of the most segment sources).
const slabLen = 64

// nextSlab is the capacity of the slab after one of capacity last: small
// for the first (a selection of one series costs about what it did),
// doubling up to most.
func nextSlab(last, most int) int {
	return min(max(2*last, 4), most)
}

func (m *mergeSet) Next() bool {
	if m.e != nil || (m.limit > 0 && m.given >= m.limit) {
		return false
	}
	if !m.started {
		m.started = true
		for i, c := range m.cursors {
			if c.next() {
				m.h.items = append(m.h.items, &rankedCursor{c, i})
			} else if m.e = c.err(); m.e != nil {
				return false
			}
		}
		heap.Init(&m.h)
	}
	if len(m.h.items) == 0 {
		return false
	}
	// Pop every cursor on the smallest label set, in source order (the
	// heap breaks ties by rank), and advance it.
	lset := m.h.items[0].labels()
	s := m.newSeries(lset)
	m.popped = m.popped[:0]
	for len(m.h.items) > 0 && labels.Equal(m.h.items[0].labels(), lset) {
		m.popped = append(m.popped, heap.Pop(&m.h).(*rankedCursor))
	}
	if !m.sc.labelsOnly {
		// Room for every popped cursor's source (the head's adds none).
		if cap(m.srcs)-len(m.srcs) < len(m.popped) {
			m.srcs = make([]segSource, 0, max(nextSlab(cap(m.srcs), slabLen*4), len(m.popped)))
		}
		s.segs = m.srcs[len(m.srcs):len(m.srcs)]
	}
	for _, rc := range m.popped {
		rc.addTo(s)
	}
	if n := len(s.segs); n > 0 {
		m.srcs = m.srcs[:len(m.srcs)+n]
		s.segs = s.segs[:n:n] // an append made later must not reach the next series'
	} else {
		s.segs = nil
	}
	for _, rc := range m.popped {
		if rc.next() {
			heap.Push(&m.h, rc)
		} else if m.e = rc.err(); m.e != nil {
			return false
		}
	}
	if !m.sc.labelsOnly {
		cost := int64(len(s.segs)+len(s.rollups)) * chunkMetaBytes // each segSource's header, about
		for _, srcs := range [2][]segSource{s.segs, s.rollups} {
			for _, src := range srcs {
				cost += int64(len(src.metas))*chunkMetaBytes + int64(len(src.deleted))*16
			}
		}
		if !s.hasHead { // a head series was charged when selected
			cost += mergedSeriesBytes + int64(s.lset.ByteSize())
		}
		if m.e = m.sc.q.charge(m.sc.budget, cost); m.e != nil {
			return false
		}
	}
	m.cur = s
	m.given++
	return true
}

func (m *mergeSet) At() storage.Series                { return m.cur }
func (m *mergeSet) Err() error                        { return m.e }
func (m *mergeSet) Warnings() annotations.Annotations { return nil }

// newSeries returns a series without data yet, cut from the merge's slab.
func (m *mergeSet) newSeries(lset labels.Labels) *mergedSeries {
	if len(m.series) == cap(m.series) {
		m.series = make([]mergedSeries, 0, nextSlab(cap(m.series), slabLen))
	}
	sc := m.sc
	m.series = append(m.series, mergedSeries{lset: lset, mint: sc.mint, maxt: sc.maxt, win: sc.win, stale: sc.stale, set: sc.q.set, labelsOnly: sc.labelsOnly})
	return &m.series[len(m.series)-1]
}

type rankedCursor struct {
	cursor
	rank int
}

// cursorHeap orders cursors by their current labels, then by rank.
type cursorHeap struct{ items []*rankedCursor }

func (h *cursorHeap) Len() int { return len(h.items) }
func (h *cursorHeap) Less(i, j int) bool {
	if c := labels.Compare(h.items[i].labels(), h.items[j].labels()); c != 0 {
		return c < 0
	}
	return h.items[i].rank < h.items[j].rank
}
func (h *cursorHeap) Swap(i, j int) { h.items[i], h.items[j] = h.items[j], h.items[i] }
func (h *cursorHeap) Push(x any)    { h.items = append(h.items, x.(*rankedCursor)) }
func (h *cursorHeap) Pop() any {
	v := h.items[len(h.items)-1]
	h.items = h.items[:len(h.items)-1]
	return v
}

// smallest returns the k smallest elements of s by cmp, sorted, in s's
// memory: O(len(s)·log k), where sorting all of s is O(len(s)·log len(s)).
func smallest[T any](s []T, k int, cmp func(a, b T) int) []T {
	h := &maxHeap[T]{s: slices.Clone(s[:k]), cmp: cmp}
	heap.Init(h)
	for _, v := range s[k:] {
		if cmp(v, h.s[0]) < 0 {
			h.s[0] = v
			heap.Fix(h, 0)
		}
	}
	out := s[:len(h.s)]
	copy(out, h.s)
	slices.SortFunc(out, cmp)
	clear(s[len(out):])
	return out
}

// maxHeap keeps its largest element at s[0].
type maxHeap[T any] struct {
	s   []T
	cmp func(a, b T) int
}

func (h *maxHeap[T]) Len() int           { return len(h.s) }
func (h *maxHeap[T]) Less(i, j int) bool { return h.cmp(h.s[i], h.s[j]) > 0 }
func (h *maxHeap[T]) Swap(i, j int)      { h.s[i], h.s[j] = h.s[j], h.s[i] }
func (h *maxHeap[T]) Push(any)           { panic("maxHeap: fixed size") }
func (h *maxHeap[T]) Pop() any           { panic("maxHeap: fixed size") }
