package query

import (
	"math"
	"slices"

	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/strata-tsdb/strata/downsample"
	"github.com/strata-tsdb/strata/segments"
)

// rollupWindow says which aggregate of which resolution a selector reads,
// and the span [from, to] answered from rollups; data outside it comes from
// raw samples.
type rollupWindow struct {
	agg      string
	res      int64
	from, to int64
}

// aggKinds are the chunk kinds an aggregate is read from.
var aggKinds = map[string][]segments.ChunkKind{
	aggSum: {segments.KindSum}, aggCount: {segments.KindCount}, aggMin: {segments.KindMin},
	aggMax: {segments.KindMax}, aggCounter: {segments.KindCounter}, aggAvg: {segments.KindSum, segments.KindCount},
}

// rollupChunks keeps the chunks the window's aggregate needs in
// [from, w.to].
func rollupChunks(metas []segments.ChunkMeta, w rollupWindow, from int64) []segments.ChunkMeta {
	kinds := aggKinds[w.agg]
	return filterMetas(metas, func(m *segments.ChunkMeta) bool {
		return slices.Contains(kinds, m.Kind) && m.MinTime <= w.to && m.MaxTime >= from
	})
}

// rollupSamples reads one kind of the series' rollup chunks in [from, to],
// but those of the windows in stale (by start), and adds the samples
// rolled up again for those.
func (s *mergedSeries) rollupSamples(kind segments.ChunkKind, stale []int64, rerolled map[segments.ChunkKind][]segments.Sample) ([]segments.Sample, error) {
	out := slices.Clone(rerolled[kind])
	for _, src := range s.rollups { // windows do not overlap; sorted below
		if slices.Contains(stale, src.seg.Meta().MinTime-1) {
			continue
		}
		it, err := s.chunks(src, kind)
		if err != nil {
			return nil, err
		}
		if it == nil {
			continue
		}
		it = segments.NewDeletedIterator(segments.NewBoundedIterator(it, s.win.from, s.win.to), src.deleted)
		for it.Next() == chunkenc.ValFloat {
			t, v := it.At()
			out = append(out, segments.Sample{T: t, V: v})
		}
		if err := it.Err(); err != nil {
			return nil, err
		}
	}
	slices.SortFunc(out, func(a, b segments.Sample) int { return cmpInt64(a.T, b.T) })
	return out, nil
}

// rollupIterator answers a selector that reads rollups: the aggregate's
// samples inside the rollup span, raw samples (turned into the same
// aggregate) outside it.
func (s *mergedSeries) rollupIterator() chunkenc.Iterator {
	var (
		roll []segments.Sample
		err  error
	)
	if s.win.from <= s.win.to {
		kinds := aggKinds[s.win.agg]
		stale := s.staleWindows()
		var rerolled map[segments.ChunkKind][]segments.Sample
		if len(stale) > 0 {
			rerolled, err = s.rerolled(stale, kinds)
		}
		switch {
		case err != nil:
		case s.win.agg == aggAvg:
			roll, err = s.avgSamples(stale, rerolled)
		default:
			roll, err = s.rollupSamples(kinds[0], stale, rerolled)
		}
		if err != nil {
			return errIterator{err}
		}
	}
	raw := s.rawIterator(s.mint, s.maxt)
	var rawPart chunkenc.Iterator
	switch {
	case s.win.agg == aggCounter:
		// Raw values are on another scale once the counter reset; continue
		// the adjusted counter from its last rolled-up value. And the
		// rewritten query reads the counter one bucket wider than the raw
		// window: it must find bucket-end values, not raw samples, there,
		// or its rate spans a bucket more than the raw query's.
		if len(roll) > 0 {
			last := roll[len(roll)-1]
			rawPart = downsample.NewCounterIterator(segments.NewBoundedIterator(raw, last.T-s.win.res+1, math.MaxInt64), last.T, last.V)
		} else {
			rawPart = downsample.NewAdjustedIterator(raw)
		}
		rawPart = &bucketEndIterator{it: &outsideIterator{Iterator: rawPart, from: s.win.from, to: s.win.to}, res: s.win.res}
	case s.win.agg == aggCount:
		rawPart = &onesIterator{outsideIterator{Iterator: raw, from: s.win.from, to: s.win.to}}
	case s.win.agg == aggAvg:
		// A plain selector reads bucket averages, raw data past the
		// newest rollup too: read as raw samples, its answer changed when
		// the downsampler rolled that data up, and an extent cached
		// before it differed from a fresh answer until the new rollup's
		// days were invalidated, after the downsampler's whole run
		// (TestNewRollupNotServedBeforeInvalidated).
		rawPart = downsample.NewAvgIterator(&outsideIterator{Iterator: raw, from: s.win.from, to: s.win.to}, s.win.res)
	default:
		rawPart = &outsideIterator{Iterator: raw, from: s.win.from, to: s.win.to}
	}
	if len(roll) == 0 {
		return rawPart
	}
	return segments.NewMergeIterator([]chunkenc.Iterator{segments.NewSliceIterator(roll), rawPart})
}

// avgSamples divides the sum by the count of every bucket.
func (s *mergedSeries) avgSamples(stale []int64, rerolled map[segments.ChunkKind][]segments.Sample) ([]segments.Sample, error) {
	sums, err := s.rollupSamples(segments.KindSum, stale, rerolled)
	if err != nil {
		return nil, err
	}
	counts, err := s.rollupSamples(segments.KindCount, stale, rerolled)
	if err != nil {
		return nil, err
	}
	out := sums[:0]
	j := 0
	for _, x := range sums {
		for j < len(counts) && counts[j].T < x.T {
			j++
		}
		if j < len(counts) && counts[j].T == x.T && counts[j].V > 0 {
			out = append(out, segments.Sample{T: x.T, V: x.V / counts[j].V})
		}
	}
	return out, nil
}

// outsideIterator drops the samples inside [from, to].
type outsideIterator struct {
	chunkenc.Iterator
	from, to int64
}

func (o *outsideIterator) skip(vt chunkenc.ValueType) chunkenc.ValueType {
	for vt != chunkenc.ValNone && o.Iterator.AtT() >= o.from && o.Iterator.AtT() <= o.to {
		vt = o.Iterator.Next()
	}
	return vt
}

func (o *outsideIterator) Next() chunkenc.ValueType        { return o.skip(o.Iterator.Next()) }
func (o *outsideIterator) Seek(t int64) chunkenc.ValueType { return o.skip(o.Iterator.Seek(t)) }

// onesIterator answers count: every raw sample counts one.
type onesIterator struct{ outsideIterator }

func (o *onesIterator) At() (int64, float64) { return o.Iterator.AtT(), 1 }

// bucketEndIterator turns adjusted counter samples into the counter
// aggregate of a rollup: for each bucket (e-res, e] holding samples, the
// last one's value at e.
type bucketEndIterator struct {
	segments.FloatOnly
	it      chunkenc.Iterator
	res     int64
	started bool // it has been advanced
	ahead   bool // it is on a sample not yet in a bucket
	t       int64
	v       float64
	has     bool // positioned on a bucket
}

func (b *bucketEndIterator) Next() chunkenc.ValueType {
	if !b.started {
		b.started = true
		b.ahead = b.it.Next() == chunkenc.ValFloat
	}
	b.has = false
	if !b.ahead {
		return chunkenc.ValNone
	}
	t, v := b.it.At()
	end, ok := downsample.BucketEnd(t, b.res)
	if !ok {
		end = math.MaxInt64
	}
	for {
		if b.ahead = b.it.Next() == chunkenc.ValFloat; !b.ahead {
			break
		}
		t2, v2 := b.it.At()
		if t2 > end {
			break
		}
		v = v2
	}
	b.t, b.v, b.has = end, v, true
	return chunkenc.ValFloat
}

func (b *bucketEndIterator) Seek(t int64) chunkenc.ValueType {
	return segments.SeekFloatByNext(b, b.has, t)
}

func (b *bucketEndIterator) At() (int64, float64) { return b.t, b.v }
func (b *bucketEndIterator) AtT() int64           { return b.t }
func (b *bucketEndIterator) Err() error           { return b.it.Err() }
