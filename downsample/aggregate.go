package downsample

import (
	"fmt"
	"math"

	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/strata-tsdb/strata/segments"
)

// Aggregate rolls the raw samples of it, which must strictly increase in
// time, up into buckets of width resolution (milliseconds) and returns the
// five aggregate kinds as parallel XOR chunks: for every bucket that holds
// at least one sample that is not a stale marker, one sample at the
// bucket's end in each of the KindCount, KindSum, KindMin, KindMax and
// KindCounter chunks. The chunks are sorted by (kind, time), ready for
// segments.Writer.AddSeries, and belong to the caller. See the package
// documentation for what each aggregate holds.
//
// Aggregate returns nil chunks when it has no sample, an error wrapping
// ErrUnsorted for samples out of order, ErrTimeRange for a timestamp whose
// bucket end overflows, and the iterator's own error.
func Aggregate(it chunkenc.Iterator, resolution int64) ([]segments.ChunkMeta, error) {
	if err := checkResolution(resolution); err != nil {
		return nil, err
	}
	return newRawAggregator(resolution).run(it, nil)
}

// carry is where a window's counter continues from: the last counter
// sample of the series in the rollup of the previous window.
type carry struct {
	// from is the window's start: samples at or before it are not
	// aggregated, they only bring the counter up to date.
	from int64
	t    int64   // the timestamp of that counter sample (a bucket end)
	adj  float64 // its value
}

// rawAggregator rolls raw samples up. It reuses its buffers from one series
// to the next; it is not safe for concurrent use.
type rawAggregator struct {
	res int64
	cb  *chunkBuilder
	b   bucket
	cnt counter
}

func newRawAggregator(resolution int64) *rawAggregator {
	return &rawAggregator{res: resolution, cb: newChunkBuilder(resolution)}
}

// run aggregates the samples of it. With a carry, samples at or before
// cr.from only advance the counter: the last raw value at or before cr.t
// is the one the carried value stands for, so the counter continues from
// it; without such a value it continues from cr.adj at the first value
// after cr.t, counting no increase in between.
func (a *rawAggregator) run(it chunkenc.Iterator, cr *carry) ([]segments.ChunkMeta, error) {
	a.b.n, a.cnt = 0, counter{}
	var (
		prevT      int64
		seen       bool
		endRaw     float64 // last raw value at or before cr.t
		haveEndRaw bool
		settled    = cr == nil
	)
	settle := func() {
		settled = true
		if haveEndRaw {
			a.cnt = counter{ok: true, last: endRaw, offset: cr.adj - endRaw, adj: cr.adj}
		} else {
			a.cnt = counter{pending: true, carryAdj: cr.adj}
		}
	}
	for vt := it.Next(); vt != chunkenc.ValNone; vt = it.Next() {
		if vt != chunkenc.ValFloat {
			a.cb.finish()
			return nil, fmt.Errorf("%s sample at %d: %w", vt, it.AtT(), errHistogramSeries)
		}
		t, v := it.At()
		if seen && t <= prevT {
			a.cb.finish()
			return nil, fmt.Errorf("sample at %d after %d: %w", t, prevT, ErrUnsorted)
		}
		seen, prevT = true, t
		if value.IsStaleNaN(v) {
			continue
		}
		if !settled {
			if t <= cr.t {
				if !math.IsNaN(v) {
					endRaw, haveEndRaw = v, true
				}
				continue
			}
			settle()
		}
		if cr != nil && t <= cr.from {
			a.cnt.observe(v)
			continue
		}
		// Samples increase, so a sample after the first of the bucket is
		// in it unless it is past its end.
		if a.b.n > 0 && t > a.b.end {
			a.flush()
		}
		if a.b.n == 0 {
			end, ok := BucketEnd(t, a.res)
			if !ok {
				a.cb.finish()
				return nil, fmt.Errorf("sample at %d: %w", t, ErrTimeRange)
			}
			a.b.reset(end)
		}
		a.b.add(1, v, v, v)
		a.cnt.observe(v)
	}
	if err := it.Err(); err != nil {
		a.cb.finish()
		return nil, err
	}
	if a.b.n > 0 {
		a.flush()
	}
	return a.cb.finish(), nil
}

func (a *rawAggregator) flush() {
	vals := [numAggs]float64{a.b.count, a.b.total(), a.b.min, a.b.max, a.cnt.value()}
	a.cb.append(a.b.end, &vals)
	a.b.n = 0
}

// AggregateRollup rolls the aggregate chunks of one rollup series (as
// Aggregate returns them, or as read from a rollup segment with Chunk set)
// up into coarser buckets of width resolution, which should be a multiple
// of the source resolution. Counts and sums add up, min and max combine,
// and the counter of a bucket is the last counter value in it; the result
// is exactly what Aggregate would return for the raw samples at the coarser
// resolution (up to rounding of the sums).
//
// The chunks of each kind must be sorted by time, and the five kinds must
// hold samples at the same timestamps; otherwise the error wraps
// ErrMisaligned or ErrUnsorted. KindRaw chunks are an error.
func AggregateRollup(chunks []segments.ChunkMeta, resolution int64) ([]segments.ChunkMeta, error) {
	return aggregateRollup(chunks, resolution, nil)
}

// aggregateRollup is AggregateRollup without the source buckets whose end
// lies in one of the deleted ranges.
func aggregateRollup(chunks []segments.ChunkMeta, resolution int64, deleted [][2]int64) ([]segments.ChunkMeta, error) {
	if err := checkResolution(resolution); err != nil {
		return nil, err
	}
	var (
		byKind [numAggs][]chunkenc.Chunk
		maxTs  [numAggs][]int64
	)
	for _, c := range chunks {
		if c.Kind < segments.KindCount || c.Kind > segments.KindCounter {
			return nil, fmt.Errorf("%s chunk in a rollup series: %w", c.Kind, ErrMisaligned)
		}
		if c.Chunk == nil {
			return nil, fmt.Errorf("%s chunk at %d: no data", c.Kind, c.MinTime)
		}
		i := kindIndex(c.Kind)
		byKind[i] = append(byKind[i], c.Chunk)
		maxTs[i] = append(maxTs[i], c.MaxTime)
	}
	var its [numAggs]chunkenc.Iterator
	for i := range its {
		its[i] = segments.NewDeletedIterator(segments.NewChainIterator(byKind[i], maxTs[i]), deleted)
	}
	return runRollup(its, resolution, newChunkBuilder(resolution))
}

// runRollup aggregates five aligned aggregate iterators (aggKinds order).
func runRollup(its [numAggs]chunkenc.Iterator, resolution int64, cb *chunkBuilder) ([]segments.ChunkMeta, error) {
	var (
		b       bucket
		ctr     float64
		haveCtr bool
		prevT   int64
		seen    bool
		vals    [numAggs]float64
		nextErr error
		vts     [numAggs]chunkenc.ValueType
	)
	flush := func() {
		c := math.NaN()
		if haveCtr {
			c = ctr
		}
		out := [numAggs]float64{b.count, b.total(), b.min, b.max, c}
		cb.append(b.end, &out)
		b.n, haveCtr = 0, false
	}
	for {
		none := 0
		for i, it := range its {
			vts[i] = it.Next()
			if vts[i] == chunkenc.ValNone {
				none++
			}
		}
		if none == numAggs {
			break
		}
		if none > 0 {
			nextErr = fmt.Errorf("%d of %d aggregates end early: %w", none, numAggs, ErrMisaligned)
			break
		}
		t := its[0].AtT()
		for i, it := range its {
			if vts[i] != chunkenc.ValFloat {
				nextErr = fmt.Errorf("%s sample in %s chunk: %w", vts[i], aggKinds[i], ErrMisaligned)
				break
			}
			var ti int64
			ti, vals[i] = it.At()
			if ti != t {
				nextErr = fmt.Errorf("%s sample at %d, count at %d: %w", aggKinds[i], ti, t, ErrMisaligned)
				break
			}
		}
		if nextErr != nil {
			break
		}
		if seen && t <= prevT {
			nextErr = fmt.Errorf("bucket at %d after %d: %w", t, prevT, ErrUnsorted)
			break
		}
		seen, prevT = true, t
		end, ok := BucketEnd(t, resolution)
		if !ok {
			nextErr = fmt.Errorf("bucket at %d: %w", t, ErrTimeRange)
			break
		}
		if b.n > 0 && end != b.end {
			flush()
		}
		if b.n == 0 {
			b.reset(end)
		}
		b.add(vals[0], vals[1], vals[2], vals[3])
		if c := vals[4]; !math.IsNaN(c) || !haveCtr {
			ctr, haveCtr = c, !math.IsNaN(c)
		}
	}
	if nextErr == nil {
		for _, it := range its {
			if err := it.Err(); err != nil {
				nextErr = err
				break
			}
		}
	}
	if nextErr != nil {
		cb.finish()
		return nil, nextErr
	}
	if b.n > 0 {
		flush()
	}
	return cb.finish(), nil
}
