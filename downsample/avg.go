package downsample

import (
	"fmt"

	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/strata-tsdb/strata/segments"
)

// NewAvgIterator returns the average of the raw float samples of it in
// each bucket of width res (Res5m or Res1h) that holds some, at the
// bucket's end: the sum over the count that a rollup of those samples
// holds, bit for bit (5m buckets summed as Aggregate sums them; a 1h
// bucket the sum of its 5m buckets' sums, as AggregateRollup adds them).
// A querier reads the raw data past the newest rollup through it where a
// selector reads bucket averages, so that the answer does not change when
// the downsampler rolls that data up. Stale markers are dropped; a NaN
// makes its bucket's average NaN; the samples must increase in time. A
// histogram sample is an error. Seek moves forward only.
func NewAvgIterator(it chunkenc.Iterator, res int64) chunkenc.Iterator {
	a := &avgIterator{res: res, raw: it}
	a.fine.src = a.nextRaw
	a.out.src = a.fine.next
	if res == Res5m {
		a.out.src = a.nextRaw
	}
	a.fine.res, a.out.res = Res5m, res
	return a
}

var _ chunkenc.Iterator = (*avgIterator)(nil)

type avgIterator struct {
	segments.FloatOnly
	raw chunkenc.Iterator
	res int64
	// fine makes 5m buckets of raw samples for out, which makes buckets
	// of res (of raw samples itself at 5m).
	fine, out bucketer
	t         int64
	v         float64
	has       bool // positioned on a bucket
	err       error
}

// bucketer adds up the items of src into buckets of width res.
type bucketer struct {
	res     int64
	src     func() (bucketItem, bool)
	pending bucketItem // an item read past the bucket being made
	held    bool
}

// bucketItem is what a bucket adds up: a raw sample (count 1), or a finer
// bucket ending at t.
type bucketItem struct {
	t                    int64
	count, sum, min, max float64
}

// next returns the next bucket that holds items, as an item of a coarser
// bucket; false when there is none.
func (b *bucketer) next() (bucketItem, bool) {
	var cur bucket
	for {
		if !b.held {
			it, ok := b.src()
			if !ok {
				break
			}
			b.pending, b.held = it, true
		}
		if cur.n > 0 && b.pending.t > cur.end {
			break // the bucket after
		}
		if cur.n == 0 {
			end, ok := BucketEnd(b.pending.t, b.res)
			if !ok {
				break // the raw reader reports it: nothing fits after
			}
			cur.reset(end)
		}
		cur.add(b.pending.count, b.pending.sum, b.pending.min, b.pending.max)
		b.held = false
	}
	if cur.n == 0 {
		return bucketItem{}, false
	}
	return bucketItem{t: cur.end, count: cur.count, sum: cur.total(), min: cur.min, max: cur.max}, true
}

// nextRaw returns the next raw sample that is not a stale marker.
func (a *avgIterator) nextRaw() (bucketItem, bool) {
	for a.err == nil {
		vt := a.raw.Next()
		if vt == chunkenc.ValNone {
			return bucketItem{}, false
		}
		if vt != chunkenc.ValFloat {
			a.err = fmt.Errorf("%s sample at %d: %w", vt, a.raw.AtT(), errHistogramSeries)
			break
		}
		t, v := a.raw.At()
		if value.IsStaleNaN(v) {
			continue
		}
		if _, ok := BucketEnd(t, Res1h); !ok {
			a.err = fmt.Errorf("sample at %d: %w", t, ErrTimeRange)
			break
		}
		return bucketItem{t: t, count: 1, sum: v, min: v, max: v}, true
	}
	return bucketItem{}, false
}

func (a *avgIterator) Next() chunkenc.ValueType {
	b, ok := a.out.next()
	if !ok || a.err != nil {
		a.has = false
		return chunkenc.ValNone
	}
	a.t, a.v, a.has = b.t, b.sum/b.count, true
	return chunkenc.ValFloat
}

func (a *avgIterator) Seek(t int64) chunkenc.ValueType {
	return segments.SeekFloatByNext(a, a.has, t)
}

func (a *avgIterator) At() (int64, float64) { return a.t, a.v }
func (a *avgIterator) AtT() int64           { return a.t }

func (a *avgIterator) Err() error {
	if a.err != nil {
		return a.err
	}
	return a.raw.Err()
}
