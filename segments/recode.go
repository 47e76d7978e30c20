package segments

import (
	"sync"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
)

// histogramCounterResetPos is the byte of a histogram chunk that holds its
// counter-reset header (chunkenc's histogramFlagPos).
const histogramCounterResetPos = 2

// recodeHistograms re-encodes the integer histograms of c into a new chunk
// whose bucket layout is h's, which must hold every bucket of c's layout
// (as after an append of h to c failed with a forward insert: the appender
// has then widened h's spans with c's buckets). h is then appended to the
// new chunk without another recode. It returns false, leaving c untouched,
// when it cannot (a layout that is not a superset, an append the appender
// refuses); the caller then lets chunkenc recode.
//
// It does what chunkenc's HistogramAppender.recode does, with the same
// bytes as a result, without allocating the buckets of every sample again:
// a chunk that takes new buckets every few samples (a latency histogram
// meeting rare slow requests) is recoded often, and that allocation was
// most of what a histogram append cost.
func recodeHistograms(c chunkenc.Chunk, t int64, h *histogram.Histogram) (chunkenc.Chunk, chunkenc.Appender, bool) {
	hc, ok := c.(*chunkenc.HistogramChunk)
	if !ok {
		return nil, nil, false
	}
	header := hc.GetCounterResetHeader()
	nc := chunkenc.NewHistogramChunk()
	app, err := nc.Appender()
	if err != nil {
		return nil, nil, false
	}
	buf := recodePool.Get().(*recodeBuffers)
	defer recodePool.Put(buf)
	var (
		it = c.Iterator(buf.it)
		i  int
	)
	buf.it = it
	for vt := it.Next(); vt != chunkenc.ValNone; vt = it.Next() {
		if vt != chunkenc.ValHistogram {
			return nil, nil, false
		}
		ts, old := it.AtHistogram(&buf.scratch)
		out := &buf.outs[i%2]
		pos, ok := expandDeltas(out.PositiveBuckets[:0], old.PositiveSpans, old.PositiveBuckets, h.PositiveSpans)
		if !ok {
			return nil, nil, false
		}
		neg, ok := expandDeltas(out.NegativeBuckets[:0], old.NegativeSpans, old.NegativeBuckets, h.NegativeSpans)
		if !ok {
			return nil, nil, false
		}
		*out = histogram.Histogram{
			CounterResetHint: old.CounterResetHint,
			Schema:           old.Schema,
			ZeroThreshold:    old.ZeroThreshold,
			ZeroCount:        old.ZeroCount,
			Count:            old.Count,
			Sum:              old.Sum,
			PositiveSpans:    h.PositiveSpans,
			NegativeSpans:    h.NegativeSpans,
			PositiveBuckets:  pos,
			NegativeBuckets:  neg,
			CustomValues:     old.CustomValues,
		}
		if _, _, app, err = app.AppendHistogram(nil, 0, ts, out, true); err != nil {
			return nil, nil, false
		}
		i++
	}
	if it.Err() != nil || i == 0 {
		return nil, nil, false
	}
	// The first histogram could not say how the old chunk began (an
	// iterator reports "unknown" for it): copy the header over, as
	// chunkenc's recode does. Bytes aliases the chunk's stream.
	b := nc.Bytes()
	b[histogramCounterResetPos] = b[histogramCounterResetPos]&^chunkenc.CounterResetHeaderMask | byte(header)
	if nc.GetCounterResetHeader() != header {
		return nil, nil, false
	}
	if _, _, app, err = app.AppendHistogram(nil, 0, t, h, true); err != nil {
		return nil, nil, false
	}
	return nc, app, true
}

// recodeBuffers are what recodeHistograms reuses from one call to the next.
type recodeBuffers struct {
	it      chunkenc.Iterator
	scratch histogram.Histogram // the histogram read
	// The appender keeps the buckets of the last histogram to encode the
	// next one against: two buffers, written alternately.
	outs [2]histogram.Histogram
	// The same for float histograms.
	fscratch histogram.FloatHistogram
	fouts    [2]histogram.FloatHistogram
}

// recodePool holds recodeBuffers. The appender of a recoded chunk refers
// to none of them once the call returns (its last append is the new
// histogram's); the iterator keeps the last chunk read until the next
// call.
var recodePool = sync.Pool{New: func() any { return &recodeBuffers{} }}

// bucketCursor walks the buckets of a span layout with their absolute
// counts (from deltas).
type bucketCursor struct {
	spans  []histogram.Span
	deltas []int64 // nil: indices only
	si     int     // next span
	left   uint32  // buckets left in the current span
	i      int     // buckets visited: the next delta's index
	idx    int32   // index of the current bucket
	count  int64   // count of the current bucket
}

// next moves to the next bucket and reports whether there was one.
func (b *bucketCursor) next() bool {
	for b.left == 0 {
		if b.si == len(b.spans) {
			return false
		}
		s := b.spans[b.si]
		if b.si == 0 {
			b.idx = s.Offset - 1
		} else {
			b.idx += s.Offset
		}
		b.si++
		b.left = s.Length
	}
	b.left--
	b.idx++
	if b.deltas != nil {
		if b.i == len(b.deltas) {
			return false
		}
		b.count += b.deltas[b.i]
	}
	b.i++
	return true
}

// expandDeltas appends to dst the deltas of the buckets (spans, deltas)
// laid out as to, whose buckets are a superset; the buckets to adds are
// empty. It returns false when a bucket of spans is missing from to.
func expandDeltas(dst []int64, spans []histogram.Span, deltas []int64, to []histogram.Span) ([]int64, bool) {
	from := bucketCursor{spans: spans, deltas: deltas}
	into := bucketCursor{spans: to}
	more := from.next()
	var prev int64
	for into.next() {
		var c int64
		if more && from.idx < into.idx {
			return dst, false
		}
		if more && from.idx == into.idx {
			c = from.count
			more = from.next()
		}
		dst = append(dst, c-prev)
		prev = c
	}
	return dst, !more && from.i == len(deltas)
}

// expandCounts is expandDeltas for the absolute counts of a float
// histogram.
func expandCounts(dst []float64, spans []histogram.Span, counts []float64, to []histogram.Span) ([]float64, bool) {
	from := bucketCursor{spans: spans}
	into := bucketCursor{spans: to}
	more := from.next() && from.i <= len(counts)
	for into.next() {
		var c float64
		if more && from.idx < into.idx {
			return dst, false
		}
		if more && from.idx == into.idx {
			c = counts[from.i-1]
			more = from.next() && from.i <= len(counts)
		}
		dst = append(dst, c)
	}
	return dst, !more && from.i == len(counts)
}

// recodeFloatHistograms is recodeHistograms for a float histogram chunk
// and a float histogram h.
func recodeFloatHistograms(c chunkenc.Chunk, t int64, h *histogram.FloatHistogram) (chunkenc.Chunk, chunkenc.Appender, bool) {
	fc, ok := c.(*chunkenc.FloatHistogramChunk)
	if !ok {
		return nil, nil, false
	}
	header := fc.GetCounterResetHeader()
	nc := chunkenc.NewFloatHistogramChunk()
	app, err := nc.Appender()
	if err != nil {
		return nil, nil, false
	}
	buf := recodePool.Get().(*recodeBuffers)
	defer recodePool.Put(buf)
	it := c.Iterator(buf.it)
	buf.it = it
	i := 0
	for vt := it.Next(); vt != chunkenc.ValNone; vt = it.Next() {
		if vt != chunkenc.ValFloatHistogram {
			return nil, nil, false
		}
		ts, old := it.AtFloatHistogram(&buf.fscratch)
		out := &buf.fouts[i%2]
		pos, ok := expandCounts(out.PositiveBuckets[:0], old.PositiveSpans, old.PositiveBuckets, h.PositiveSpans)
		if !ok {
			return nil, nil, false
		}
		neg, ok := expandCounts(out.NegativeBuckets[:0], old.NegativeSpans, old.NegativeBuckets, h.NegativeSpans)
		if !ok {
			return nil, nil, false
		}
		*out = histogram.FloatHistogram{
			CounterResetHint: old.CounterResetHint,
			Schema:           old.Schema,
			ZeroThreshold:    old.ZeroThreshold,
			ZeroCount:        old.ZeroCount,
			Count:            old.Count,
			Sum:              old.Sum,
			PositiveSpans:    h.PositiveSpans,
			NegativeSpans:    h.NegativeSpans,
			PositiveBuckets:  pos,
			NegativeBuckets:  neg,
			CustomValues:     old.CustomValues,
		}
		if _, _, app, err = app.AppendFloatHistogram(nil, 0, ts, out, true); err != nil {
			return nil, nil, false
		}
		i++
	}
	if it.Err() != nil || i == 0 {
		return nil, nil, false
	}
	b := nc.Bytes()
	b[histogramCounterResetPos] = b[histogramCounterResetPos]&^chunkenc.CounterResetHeaderMask | byte(header)
	if nc.GetCounterResetHeader() != header {
		return nil, nil, false
	}
	if _, _, app, err = app.AppendFloatHistogram(nil, 0, t, h, true); err != nil {
		return nil, nil, false
	}
	return nc, app, true
}
