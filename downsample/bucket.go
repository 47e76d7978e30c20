package downsample

import (
	"errors"
	"fmt"
	"math"

	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/strata-tsdb/strata/segments"
)

// Errors returned by Aggregate and AggregateRollup.
var (
	// ErrUnsorted means the input samples do not strictly increase in time.
	ErrUnsorted = errors.New("samples not in increasing time order")

	// errHistogramSeries is returned for a series that holds native
	// histograms, which rollups do not hold.
	errHistogramSeries = errors.New("native histograms are not rolled up")
	// ErrMisaligned means the five aggregate chunks of a rollup series do
	// not hold samples at the same timestamps.
	ErrMisaligned = errors.New("aggregate chunks not aligned")
	// ErrTimeRange means a timestamp's bucket end does not fit an int64.
	ErrTimeRange = errors.New("timestamp out of range")
)

// BucketEnd returns the end of the bucket of width resolution that holds
// timestamp t: the smallest multiple of resolution that is >= t. Buckets are
// closed on the right, (end-resolution, end], like PromQL's range windows,
// so a sample exactly on a multiple of resolution belongs to the bucket that
// ends there. ok is false when the end does not fit an int64.
func BucketEnd(t, resolution int64) (end int64, ok bool) {
	q := t / resolution // truncates toward zero: the ceiling for t <= 0
	if t > 0 && t%resolution != 0 {
		q++
	}
	if q > math.MaxInt64/resolution {
		return 0, false
	}
	return q * resolution, true
}

// kindIndex maps an aggregate kind to its index in the parallel arrays below.
func kindIndex(k segments.ChunkKind) int { return int(k - segments.KindCount) }

// aggKinds are the aggregate kinds in on-disk order.
var aggKinds = [numAggs]segments.ChunkKind{
	segments.KindCount, segments.KindSum, segments.KindMin, segments.KindMax, segments.KindCounter,
}

const numAggs = 5

// chunkBuckets bounds the buckets in one aggregate chunk: chunks are cut
// where the bucket end crosses a multiple of chunkBuckets*resolution, so a
// 5m chunk spans 12h and a 1h chunk at most 6 days (a window: 24 buckets).
const chunkBuckets = 144

// bucket accumulates the aggregates of one bucket.
type bucket struct {
	end      int64
	n        int     // samples added; 0 means empty
	count    float64 // raw samples (for rollups of rollups: the sum of counts)
	sum, c   float64 // Kahan-Neumaier sum and its compensation
	min, max float64
}

func (b *bucket) reset(end int64) {
	*b = bucket{end: end, min: math.NaN(), max: math.NaN()}
}

// add adds count samples whose sum, min and max are given. The rules are
// PromQL's: a NaN makes the sum NaN; min and max ignore NaN unless every
// value is NaN.
func (b *bucket) add(count, sum, lo, hi float64) {
	b.n++
	b.count += count
	b.sum, b.c = kahanSumInc(sum, b.sum, b.c)
	if lo < b.min || math.IsNaN(b.min) {
		b.min = lo
	}
	if hi > b.max || math.IsNaN(b.max) {
		b.max = hi
	}
}

// kahanSumInc is PromQL's compensated summation step (Neumaier's variant).
func kahanSumInc(inc, sum, c float64) (float64, float64) {
	t := sum + inc
	switch {
	case math.IsInf(t, 0):
		c = 0
	case math.Abs(sum) >= math.Abs(inc):
		c += (sum - t) + inc
	default:
		c += (inc - t) + sum
	}
	return t, c
}

func (b *bucket) total() float64 {
	if math.IsInf(b.sum, 0) {
		return b.sum
	}
	return b.sum + b.c
}

// chunkBuilder appends buckets to the five parallel chunks of one series and
// cuts them every chunkBuckets*resolution milliseconds. It may be reused for
// the next series after finish.
type chunkBuilder struct {
	span int64 // chunkBuckets * resolution

	open   bool
	period int64 // the current chunks' period: bucket end / span, rounded up
	mint   int64
	maxt   int64
	chunks [numAggs]*chunkenc.XORChunk
	apps   [numAggs]chunkenc.Appender
	byKind [numAggs][]segments.ChunkMeta
}

func newChunkBuilder(resolution int64) *chunkBuilder {
	span := int64(math.MaxInt64)
	if resolution <= math.MaxInt64/chunkBuckets {
		span = chunkBuckets * resolution
	}
	return &chunkBuilder{span: span}
}

// append adds one bucket, ending at end, with values in aggKinds order.
// Buckets must come in increasing order of end.
func (cb *chunkBuilder) append(end int64, vals *[numAggs]float64) {
	p, _ := BucketEnd(end, cb.span) // end fits, so its period does too
	if cb.open && p != cb.period {
		cb.cut()
	}
	if !cb.open {
		cb.open, cb.period, cb.mint = true, p, end
		for i := range cb.chunks {
			cb.chunks[i] = chunkenc.NewXORChunk()
			cb.apps[i], _ = cb.chunks[i].Appender() // never fails on an empty chunk
		}
	}
	for i, app := range cb.apps {
		app.Append(0, end, vals[i])
	}
	cb.maxt = end
}

func (cb *chunkBuilder) cut() {
	for i, c := range cb.chunks {
		c.Compact()
		cb.byKind[i] = append(cb.byKind[i], segments.ChunkMeta{Kind: aggKinds[i], MinTime: cb.mint, MaxTime: cb.maxt, Chunk: c})
		cb.chunks[i], cb.apps[i] = nil, nil
	}
	cb.open = false
}

// finish returns the chunks built since the last finish, sorted by kind,
// then time, as segments.Writer.AddSeries wants them; nil if there are none.
func (cb *chunkBuilder) finish() []segments.ChunkMeta {
	if cb.open {
		cb.cut()
	}
	n := 0
	for _, cs := range cb.byKind {
		n += len(cs)
	}
	if n == 0 {
		return nil
	}
	out := make([]segments.ChunkMeta, 0, n)
	for i, cs := range cb.byKind {
		out = append(out, cs...)
		clear(cs)
		cb.byKind[i] = cs[:0]
	}
	return out
}

func checkResolution(resolution int64) error {
	if resolution <= 0 {
		return fmt.Errorf("resolution %d: must be positive", resolution)
	}
	return nil
}
