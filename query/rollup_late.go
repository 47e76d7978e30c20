package query

import (
	"context"
	"math"
	"slices"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/strata-tsdb/strata/downsample"
	"github.com/strata-tsdb/strata/segments"
)

// Late data under rollups.
//
// A rollup holds its window's raw data as it was when the downsampler
// built it. Data that reaches the window later (a late or out-of-order
// write in the head, a raw segment flushed from it, a delete) is not in it
// until the downsampler rebuilds the window, which it does on its next
// run. Until then, a selector that reads rollups rolls such a window up
// again from raw data, for the series the change touched only, with the
// downsampler's own code (downsample.RollupWindow): its answer is the one
// it gives once the window is rebuilt, and a write is visible at rollup
// resolution as soon as it is acknowledged.
//
// Which windows and series are out of date is decided in two steps. When
// the Select starts (staleness), from what the set says: the raw segments
// under a window that its rollup's lineage does not list, a 1h rollup
// whose 5m rollup was rebuilt since, the rollup's tombstones, and the
// head's series with samples in the window. That decides which raw data
// the Select reads besides the usual. Then for each series
// (mergedSeries.staleWindows), from its own data in those sources. Only
// a window whose raw data is all there (downsample.Freshness.RawComplete)
// and inside raw retention can be rolled up again; elsewhere the rollup
// is read as it is, its tombstones hiding buckets by their end.

// staleness is what a Select knows, before it reads a series, about the
// rollup windows of its span that may be out of date.
type staleness struct {
	res int64
	agg string
	// checkable holds the windows of the span (by start) whose raw data is
	// complete and inside raw retention: those that can be rolled up again.
	checkable map[int64]*staleWindow
	// possible are the starts of the checkable windows that may be out of
	// date for some series, sorted.
	possible []int64
	// head maps the label hash of each head series with samples in a
	// checkable window to the starts of those windows.
	head map[uint64][]int64
}

// staleWindow is what may make one window out of date.
type staleWindow struct {
	all        bool            // every series: a 1h rollup whose 5m rollup was rebuilt
	late       map[string]bool // raw segments with data the rollup does not hold
	tombstoned bool            // the rollup has tombstones (deletes made after it)
	head       bool            // some head series has samples in it
}

func (w *staleWindow) possible() bool {
	return w.all || len(w.late) > 0 || w.tombstoned || w.head
}

// mayBeStale reports whether the window starting at start may be out of
// date for some series.
func (st *staleness) mayBeStale(start int64) bool {
	if st == nil {
		return false
	}
	_, ok := slices.BinarySearch(st.possible, start)
	return ok
}

// windowOf returns the start of the rollup window (start, start+Window]
// that holds t.
func windowOf(t int64) int64 {
	end, _ := downsample.BucketEnd(t, downsample.Window)
	return end - downsample.Window
}

// staleness judges the rollups of win, from the window holding from on
// (a counter's from may be before win's), among the segments of the set
// (local: acquired, with their tombstones; remote: by their metas) and the
// head's series matching ms.
func (q *querier) staleness(ctx context.Context, win rollupWindow, from int64, local []*segments.Segment, tombs segments.TombstoneView, ms []*labels.Matcher) (*staleness, error) {
	metas := make([]segments.Meta, 0, len(local))
	for _, s := range local {
		metas = append(metas, s.Meta())
	}
	if q.qb.Remote != nil {
		metas = append(metas, q.qb.Remote.Metas()...)
	}
	judged := len(metas)
	if q.set != nil {
		// A source a delete took out of the span (a day's last sample held
		// by the next day's segment) is still there: CheckFreshness looks
		// for it in every segment.
		metas = append(metas, q.set.Metas()...)
	}
	st := &staleness{res: win.res, agg: win.agg, checkable: map[int64]*staleWindow{}}
	first, last := windowOf(from), windowOf(win.to)
	rawMin := q.qb.rawMinTime()
	for _, m := range metas[:judged] {
		if m.Resolution != win.res || m.MaxTime < first+1 || m.MinTime > last+downsample.Window || m.MinTime < rawMin {
			continue // not in the span, or its raw data is (partly) past retention
		}
		f, ok := downsample.CheckFreshness(m, metas)
		if !ok || !f.RawComplete || f.Start+1 < rawMin || st.checkable[f.Start] != nil {
			continue
		}
		w := &staleWindow{all: f.Replaced, tombstoned: len(tombs[m.ID]) > 0}
		if len(f.Late) > 0 {
			w.late = map[string]bool{}
			for _, id := range f.Late {
				w.late[id] = true
			}
		}
		st.checkable[f.Start] = w
	}
	if len(st.checkable) == 0 {
		return nil, nil
	}
	if err := st.findHead(ctx, q, ms); err != nil {
		return nil, err
	}
	for start, w := range st.checkable {
		if w.possible() {
			st.possible = append(st.possible, start)
		}
	}
	slices.Sort(st.possible)
	return st, nil
}

// findHead records the head's series with samples in checkable windows.
func (st *staleness) findHead(ctx context.Context, q *querier, ms []*labels.Matcher) error {
	lo, hi := int64(math.MaxInt64), int64(math.MinInt64)
	for start := range st.checkable {
		lo, hi = min(lo, start+1), max(hi, start+downsample.Window)
	}
	hs, err := q.head.SelectLazy(ctx, lo, hi, ms...)
	if err != nil {
		return err
	}
	for _, h := range hs {
		var wins []int64
		it := h.Iterator()
		for vt := it.Next(); vt != chunkenc.ValNone; {
			start := windowOf(it.AtT())
			if w := st.checkable[start]; w != nil {
				w.head = true
				wins = append(wins, start)
			}
			vt = it.Seek(start + downsample.Window + 1)
		}
		if err := it.Err(); err != nil {
			return err
		}
		if len(wins) > 0 {
			if st.head == nil {
				st.head = map[uint64][]int64{}
			}
			h := h.Labels.Hash()
			st.head[h] = append(st.head[h], wins...)
		}
	}
	return nil
}

// rawRanges returns the ranges of raw data the Select must read besides
// [mint, maxt] (the raw data it reads anyway) to roll the possibly out of
// date windows up again: each such window, and for counters the window
// before it (whose last samples the counter continues) and every
// checkable window after the first (a counter continues across windows).
func (st *staleness) rawRanges() [][2]int64 {
	if st == nil || len(st.possible) == 0 {
		return nil
	}
	var out [][2]int64
	wins := st.possible
	if st.agg == aggCounter {
		wins = nil
		for start := range st.checkable {
			if start >= st.possible[0] {
				wins = append(wins, start)
			}
		}
		slices.Sort(wins)
	}
	for _, start := range wins {
		lo := start + 1
		if st.agg == aggCounter {
			lo -= downsample.Window
		}
		out = append(out, [2]int64{lo, start + downsample.Window})
	}
	return out
}

// staleWindows returns the starts of the windows that s must roll up
// again, in order: for counters, every checkable window from the first one
// that is out of date on.
func (s *mergedSeries) staleWindows() []int64 {
	st := s.stale
	if st == nil || len(st.possible) == 0 {
		return nil
	}
	var out []int64
	head := st.head[s.lset.Hash()]
	for _, start := range st.possible {
		if s.staleIn(start, st.checkable[start], head) {
			out = append(out, start)
		}
	}
	if len(out) == 0 || st.agg != aggCounter {
		return out
	}
	counter := out[:0:0]
	for start := range st.checkable {
		if start >= out[0] {
			counter = append(counter, start)
		}
	}
	slices.Sort(counter)
	return counter
}

// staleIn reports whether the window starting at start is out of date
// for s.
func (s *mergedSeries) staleIn(start int64, w *staleWindow, head []int64) bool {
	lo, hi := start+1, start+downsample.Window
	switch {
	case w.all:
		return true
	case slices.Contains(head, start):
		return true
	}
	for _, src := range s.segs {
		if w.late[src.seg.Meta().ID] && slices.ContainsFunc(src.metas, func(m segments.ChunkMeta) bool { return m.MinTime <= hi && m.MaxTime >= lo }) {
			return true
		}
	}
	if w.tombstoned {
		for _, src := range s.rollups {
			if src.seg.Meta().MinTime == lo && slices.ContainsFunc(src.deleted, func(r [2]int64) bool { return r[0] <= hi && r[1] >= lo }) {
				return true
			}
		}
	}
	return false
}

// rerolled rolls the windows of stale up again from raw data and returns,
// for each chunk kind kinds names, the samples in [win.from, win.to].
func (s *mergedSeries) rerolled(stale []int64, kinds []segments.ChunkKind) (map[segments.ChunkKind][]segments.Sample, error) {
	out := map[segments.ChunkKind][]segments.Sample{}
	var (
		prev    *segments.Sample
		prevRes int64
	)
	for i, start := range stale {
		if s.win.agg == aggCounter && (i == 0 || stale[i-1] != start-downsample.Window) {
			// The counter continues the previous window's rollup.
			var err error
			if prev, err = s.lastCounter(start - downsample.Window); err != nil {
				return nil, err
			}
			prevRes = s.win.res
		}
		lo := start + 1
		if prev != nil {
			lo = max(prev.T-prevRes+1, start-downsample.Window+1)
		}
		chunks, next, err := downsample.RollupWindow(s.rawIterator(lo, start+downsample.Window), s.win.res, start, prev, prevRes)
		if err != nil {
			return nil, err
		}
		if s.win.agg == aggCounter {
			prev, prevRes = next, downsample.Res5m
		}
		for _, c := range chunks {
			if !slices.Contains(kinds, c.Kind) || c.MaxTime < s.win.from || c.MinTime > s.win.to {
				continue
			}
			it := segments.NewBoundedIterator(c.Chunk.Iterator(nil), s.win.from, s.win.to)
			for it.Next() == chunkenc.ValFloat {
				t, v := it.At()
				out[c.Kind] = append(out[c.Kind], segments.Sample{T: t, V: v})
			}
			if err := it.Err(); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// lastCounter returns the last counter sample of s in the rollup of the
// window starting at start, tombstones applied; nil when it holds none.
func (s *mergedSeries) lastCounter(start int64) (*segments.Sample, error) {
	var last *segments.Sample
	for _, src := range s.rollups {
		if src.seg.Meta().MinTime != start+1 {
			continue
		}
		it, err := s.chunks(src, segments.KindCounter)
		if err != nil || it == nil {
			return nil, err
		}
		it = segments.NewDeletedIterator(it, src.deleted)
		for it.Next() == chunkenc.ValFloat {
			t, v := it.At()
			last = &segments.Sample{T: t, V: v}
		}
		if err := it.Err(); err != nil {
			return nil, err
		}
	}
	return last, nil
}
