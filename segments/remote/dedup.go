package remote

import (
	"context"
	"slices"
	"strings"
	"sync"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/strata-tsdb/strata/segments"
)

// Replica deduplication, per series (after Thanos' penalty-based rule):
// a series is answered from the first replica (by the replica label's
// value) wherever that one has samples of it, and from a later replica
// only where every earlier one has a gap in that series longer than the
// series' gap threshold: twice its usual sample interval in the earlier
// replicas (their median), and at least dedupGap plus the resolution. So
// an outage of the preferred replica inside one of its segments is filled
// from the other, and a series that only a later replica holds is
// answered from it.
//
// A later replica's segment is read with a per-series tombstone
// (segments.Tombstone.Series) hiding its samples inside the earlier
// replicas' runs of samples of the same series: each run starts at a
// sample and ends at the last sample before a gap wider than the
// threshold (widened by the usual interval: runs). Computing it reads the earlier replicas' samples of every
// series the segment holds, once per segment and set of earlier segments
// (coverMemo).

// coverMemo keeps the per-series ranges computed for a later replica's
// segment, by the segment's ID and the IDs of the earlier replicas'
// segments they were computed from: segments are immutable, so an entry
// is right for as long as those are the segments.
type coverMemo struct {
	mtx     sync.Mutex
	entries map[string]segments.SeriesRanges // guarded by mtx
}

// coverMemoMax bounds the memo: past it, it starts again empty.
const coverMemoMax = 1024

func (c *coverMemo) get(key string) (segments.SeriesRanges, bool) {
	c.mtx.Lock()
	defer c.mtx.Unlock()
	sr, ok := c.entries[key]
	return sr, ok
}

func (c *coverMemo) put(key string, sr segments.SeriesRanges) {
	c.mtx.Lock()
	defer c.mtx.Unlock()
	if c.entries == nil || len(c.entries) >= coverMemoMax {
		c.entries = map[string]segments.SeriesRanges{}
	}
	c.entries[key] = sr
}

// covered returns what of seg (a later replica's) the earlier replicas
// earlier hold, per series: nil when they hold none of its time.
func (g *Group) covered(ctx context.Context, seg *segments.Segment, earlier []*Tier, local []segments.Meta) (segments.SeriesRanges, error) {
	m := seg.Meta()
	reach := 2*dedupGap + m.Resolution // a neighbour's samples bridge a gap at the segment's edge
	var (
		as       []*segments.Segment
		releases []func()
	)
	defer func() {
		for _, r := range releases {
			r()
		}
	}()
	sameRes := func(o segments.Meta) bool { return o.Resolution == m.Resolution }
	for _, t := range earlier {
		segs, _, release, err := t.Acquire(ctx, m.MinTime-reach, m.MaxTime+reach, local, sameRes)
		if err != nil {
			return nil, err
		}
		releases = append(releases, release)
		as = append(as, segs...)
	}
	if len(as) == 0 {
		return nil, nil
	}
	ids := make([]string, 0, len(as)+1)
	for _, a := range as {
		ids = append(ids, a.Meta().ID)
	}
	slices.Sort(ids)
	key := m.ID + ":" + strings.Join(ids, ",")
	if sr, ok := g.memo.get(key); ok {
		return sr, nil
	}
	sr, err := coverOf(ctx, seg, as)
	if err != nil {
		return nil, err
	}
	g.memo.put(key, sr)
	return sr, nil
}

// coverOf returns, for each series of b, the runs of samples that the
// segments as (of earlier replicas, b's resolution) hold of it.
func coverOf(ctx context.Context, b *segments.Segment, as []*segments.Segment) (segments.SeriesRanges, error) {
	type cursor struct {
		seg *segments.Segment
		it  segments.SeriesIterator
		ok  bool
	}
	curs := make([]*cursor, 0, len(as))
	for _, a := range as {
		if err := a.PrefetchAll(); err != nil {
			return nil, err
		}
		it, err := a.Select()
		if err != nil {
			return nil, err
		}
		curs = append(curs, &cursor{seg: a, it: it, ok: it.Next()})
		if err := it.Err(); err != nil {
			return nil, err
		}
	}
	bit, err := b.Select()
	if err != nil {
		return nil, err
	}
	res := b.Meta().Resolution
	out := segments.SeriesRanges{}
	var ts []int64
	for n := 0; bit.Next(); n++ {
		if n%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		lset := bit.Labels()
		ts = ts[:0]
		for _, c := range curs {
			for c.ok && labels.Compare(c.it.Labels(), lset) < 0 {
				c.ok = c.it.Next()
			}
			if err := c.it.Err(); err != nil {
				return nil, err
			}
			if !c.ok || labels.Compare(c.it.Labels(), lset) != 0 {
				continue
			}
			chks := c.it.Chunks()
			if len(chks) == 0 {
				continue
			}
			// Rollup kinds share their bucket ends: one kind tells them.
			it, err := c.seg.KindIterator(chks, chks[0].Kind)
			if err != nil {
				return nil, err
			}
			for it != nil && it.Next() != chunkenc.ValNone {
				ts = append(ts, it.AtT())
			}
			if it != nil && it.Err() != nil {
				return nil, it.Err()
			}
		}
		if err := bit.Err(); err != nil {
			return nil, err
		}
		if len(ts) == 0 {
			continue
		}
		slices.Sort(ts)
		out.Add(lset, runs(ts, res))
	}
	return out, bit.Err()
}

// runs joins sorted timestamps into runs: a gap wider than the series'
// threshold (twice its median interval, at least dedupGap plus the
// resolution) ends one. Each run reaches a median interval, less a
// millisecond, beyond its first and last samples: a later replica's
// sample of the same scrape, a little before or after, is not shown too.
func runs(ts []int64, res int64) [][2]int64 {
	threshold, interval := int64(dedupGap)+res, int64(0)
	if len(ts) > 1 {
		deltas := make([]int64, 0, len(ts)-1)
		for i := 1; i < len(ts); i++ {
			if d := ts[i] - ts[i-1]; d > 0 {
				deltas = append(deltas, d)
			}
		}
		if len(deltas) > 0 {
			slices.Sort(deltas)
			interval = deltas[len(deltas)/2]
			threshold = max(threshold, 2*interval)
		}
	}
	reach := max(interval-1, 0)
	out := [][2]int64{{ts[0] - reach, ts[0] + reach}}
	for _, t := range ts[1:] {
		last := &out[len(out)-1]
		if t-(last[1]-reach) <= threshold {
			last[1] = t + reach
			continue
		}
		out = append(out, [2]int64{t - reach, t + reach})
	}
	return out
}
