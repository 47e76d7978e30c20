package downsample

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/strata-tsdb/strata/segments"
)

// Freshness says how a rollup stands against the raw data under its
// window now: what a reader must know to tell where the rollup no longer
// holds what raw data would answer (late samples, written after the
// window was rolled up), and whether it can roll the window up again from
// raw data itself, as Run will.
type Freshness struct {
	// Start is the window's start: the window is (Start, Start+Window].
	Start int64
	// Late lists the IDs of the raw segments overlapping the window that
	// hold data the rollup was not built from.
	Late []string
	// Replaced is true for a 1h rollup whose 5m rollup has been rebuilt
	// since the 1h rollup was built from it: any of its series may differ
	// from what raw data answers.
	Replaced bool
	// Relinked is true for a 5m rollup that continues the counters of a
	// rollup of the window before that is no longer that window's newest
	// (it was rebuilt): Run rebuilds it too.
	Relinked bool
	// RawComplete is true when every raw segment the rollup was built from
	// is among the segments given (its data, or what deletes left of it,
	// whatever time range they narrowed it to): the window's raw data is
	// all there, so rolling it up again (RollupWindow) gives what Run would
	// write.
	RawComplete bool
}

// CheckFreshness judges the rollup r against metas, the metas of every
// segment of the set (duplicates are fine), as Run judges whether a window
// is due again. ok is false when r is not a rollup this package wrote.
// Deletes are not judged here: a delete tombstones the rollup itself, and
// the tombstones of a rollup are data it still holds.
func CheckFreshness(r segments.Meta, metas []segments.Meta) (f Freshness, ok bool) {
	ri, ok := asRollup(r)
	if !ok {
		return Freshness{}, false
	}
	f.Start = ri.start
	lin := ri.lin
	if r.Resolution == Res1h {
		// A 1h rollup holds what its 5m rollup held: judge by that one's
		// lineage, or by the current 5m rollup's when it was rebuilt.
		var cur *rollupInfo
		for _, m := range metas {
			if m.Resolution != Res5m || m.MinTime != r.MinTime {
				continue
			}
			if r5, ok := asRollup(m); ok && (cur == nil || byID(r5, *cur) > 0) {
				cur = &r5
			}
		}
		if cur == nil {
			return f, true // nothing to judge it by: the 5m rollups expired
		}
		f.Replaced = cur.meta.ID != lin.link
		lin = cur.lin
	}
	if r.Resolution == Res5m {
		var prev *rollupInfo
		for _, m := range metas {
			if m.Resolution != Res5m || m.MaxTime != ri.start {
				continue
			}
			if p, ok := asRollup(m); ok && (prev == nil || byID(p, *prev) > 0) {
				prev = &p
			}
		}
		f.Relinked = prev != nil && prev.meta.ID != lin.link
	}
	var srcs []string
	seen := map[string]bool{}
	for _, m := range metas {
		if m.Resolution != 0 || !overlaps(m, ri.start+1, ri.start+Window) || seen[m.ID] {
			continue
		}
		seen[m.ID] = true
		s := rawSources(m)
		if !subset(s, lin.raw) {
			f.Late = append(f.Late, m.ID)
		}
		srcs = append(srcs, s...)
	}
	slices.Sort(srcs)
	f.RawComplete = rawKept(lin.raw, slices.Compact(srcs), slices.Values(metas))
	return f, true
}

// RollupWindow rolls one series' raw samples up into the buckets of
// resolution res (Res5m or Res1h) of the window (start, start+Window],
// exactly as Run writes them into that window's rollup: a reader uses it
// where a rollup is out of date, until Run has rebuilt it, and answers
// the same before and after.
//
// it gives the series' raw samples in time order, tombstones applied, at
// least over the window; samples outside the window only serve prev.
// prev, when not nil, is the last counter sample of the series in the
// rollup of the window before, of resolution prevRes, which the window's
// counters continue as Run continues them (it should then hold the raw
// samples from prev.T-prevRes+1 on); nil means that rollup does not hold
// the series, and the counter starts again at the raw value.
//
// It returns the aggregate chunks, as Aggregate does (Chunk set), and the
// prev of the window after: the series' last 5m counter sample in this
// window, nil if it has none. A series with a native histogram sample in
// the window has no buckets, as Run leaves it out.
func RollupWindow(it chunkenc.Iterator, res, start int64, prev *segments.Sample, prevRes int64) ([]segments.ChunkMeta, *segments.Sample, error) {
	if res != Res5m && res != Res1h {
		return nil, nil, fmt.Errorf("resolution %d: only %d and %d are rolled up", res, Res5m, Res1h)
	}
	var cr *carry
	lo := start + 1
	if prev != nil && !math.IsNaN(prev.V) {
		cr = &carry{from: start, t: prev.T, adj: prev.V}
		lo = max(prev.T-prevRes+1, start-Window+1)
	}
	chunks, err := newRawAggregator(Res5m).run(segments.NewBoundedIterator(it, lo, start+Window), cr)
	if errors.Is(err, errHistogramSeries) {
		return nil, nil, nil
	}
	if err != nil || len(chunks) == 0 {
		return nil, nil, err
	}
	var next *segments.Sample
	for _, c := range chunks {
		if c.Kind != segments.KindCounter {
			continue
		}
		cit := c.Chunk.Iterator(nil)
		for cit.Next() == chunkenc.ValFloat {
			t, v := cit.At()
			next = &segments.Sample{T: t, V: v}
		}
	}
	if next != nil && math.IsNaN(next.V) {
		next = nil
	}
	if res == Res1h {
		chunks, err = AggregateRollup(chunks, Res1h)
	}
	return chunks, next, err
}
