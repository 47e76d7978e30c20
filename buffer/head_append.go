package buffer

import (
	"fmt"
	"slices"
	"sync"
	"unsafe"

	"github.com/prometheus/prometheus/model/histogram"

	"github.com/strata-tsdb/strata/buffer/wal"
	"github.com/strata-tsdb/strata/ingest"
)

var seriesSlicePool = sync.Pool{New: func() any { return new([]*memSeries) }}

// Append makes the batch durable in the log (when the head has one) and then
// applies it. When Append returns nil every sample of b is visible to reads
// that start afterwards; when it returns an error no sample of b was
// applied. Append does not retain b, but takes ownership of its
// histograms: the caller must not use or change them afterwards.
func (h *Head) Append(b *ingest.Batch) error {
	return h.appendExpected(wal.Expected{}, b)
}

// appendExpected is Append for a call that x announced to the log
// (wal.WAL.Expect): it ends x as soon as the batch is in the log's queue,
// or as soon as it fails before.
func (h *Head) appendExpected(x wal.Expected, b *ingest.Batch) error {
	defer func() { x.Done() }() // unless logBatch has ended it
	sp := seriesSlicePool.Get().(*[]*memSeries)
	defer func() {
		clear(*sp)
		seriesSlicePool.Put(sp)
	}()
	ss, err := h.resolve(b, (*sp)[:0])
	*sp = ss
	if err != nil {
		return err
	}
	b = h.withStartZeros(ss, b)
	st := newAppendStats()
	defer h.add(&st)
	if h.log == nil {
		for i := range b.Series {
			h.appendSamples(ss[i], b.Series[i].Samples, b.Series[i].Histograms, &st)
		}
		h.meta.Add(b.Metadata)
		h.ex.Add(b.Exemplars)
		return nil
	}
	tp := ticketPool.Get().(*[]uint32)
	defer ticketPool.Put(tp)
	tickets, err := h.logBatch(ss, b, (*tp)[:0], &x)
	*tp = tickets
	// Whether or not the log took the batch, each series' ticket is used
	// in turn, so that the batches after it are not held up.
	for i := -2 * prefetchDistance; i < 0; i++ {
		prefetchAhead(ss, i)
	}
	for i := range b.Series {
		s := ss[i]
		prefetchAhead(ss, i)
		h.waitTurn(s, tickets[i])
		if err == nil {
			h.appendSamples(s, b.Series[i].Samples, b.Series[i].Histograms, &st)
		}
		s.applied.Add(1)
		if h.waiters.Load() > 0 {
			h.turnMtx.Lock()
			h.turn.Broadcast()
			h.turnMtx.Unlock()
		}
	}
	if err != nil {
		return fmt.Errorf("write ahead log: %w", err)
	}
	return nil
}

var ticketPool = sync.Pool{New: func() any { return new([]uint32) }}

// prefetchDistance is how many series ahead of the one it applies Append
// prefetches the open chunk's bytes, and twice that the series itself.
const prefetchDistance = 8

// prefetchAhead prefetches what appending to the series of ss after i
// will read: the two cache lines of ss[i+2*prefetchDistance], and the
// first and last bytes of the open chunk of ss[i+prefetchDistance],
// whose hints it reads from the series, prefetched by an earlier call.
// Applying a request of thousands of series touches each once, and
// mostly waited for memory, one series at a time: the series' lock is an
// atomic instruction that a plain load before it cannot pass, but a
// prefetch can. (The open chunks of 8,000 series, about 1 KiB each, are
// spread over more pages than the processor's TLB covers.)
func prefetchAhead(ss []*memSeries, i int) {
	if j := i + 2*prefetchDistance; j >= 0 && j < len(ss) {
		p := uintptr(unsafe.Pointer(ss[j]))
		prefetch(p, p+cacheLine, p, p)
	}
	if j := i + prefetchDistance; j >= 0 && j < len(ss) {
		s := ss[j]
		if at := s.openAt.Load(); at != 0 {
			prefetch(at, at+uintptr(s.openTail.Load()), at, at)
		}
	}
}

// waitTurn returns once every batch logged before the one holding ticket
// has been applied to s.
func (h *Head) waitTurn(s *memSeries, ticket uint32) {
	if s.applied.Load() == ticket {
		return
	}
	h.turnMtx.Lock()
	h.waiters.Add(1)
	for s.applied.Load() != ticket {
		h.turn.Wait()
	}
	h.waiters.Add(-1)
	h.turnMtx.Unlock()
}

// resolve finds or creates the series of b. When the head has a series
// limit, a batch that would cross it is refused before any series is made.
// A series with a handle from KnownSeries needs no lookup while no series
// was removed since the batch's decoder asked (removals do not run
// concurrently with Append, see gcIdleSeries).
func (h *Head) resolve(b *ingest.Batch, dst []*memSeries) ([]*memSeries, error) {
	handles := b.KnownEpoch != 0 && b.KnownEpoch == h.gcEpoch.Load()
	if h.opts.MaxSeries > 0 {
		missing := 0
		for i := range b.Series {
			if _, ok := b.Series[i].Handle.(*memSeries); ok && handles {
				continue
			}
			lset, hash := b.Series[i].Labels, b.Series[i].Hash
			if hash == 0 {
				hash = lset.Hash()
			}
			if h.series.getByHash(hash, lset) == nil {
				missing++
			}
		}
		if missing > 0 && h.numSeries.Load()+int64(missing) > int64(h.opts.MaxSeries) {
			return dst, fmt.Errorf("%w: the request adds %d series to %d, limit %d", ErrTooManySeries, missing, h.numSeries.Load(), h.opts.MaxSeries)
		}
	}
	for i := range b.Series {
		if s, ok := b.Series[i].Handle.(*memSeries); ok && handles {
			dst = append(dst, s)
			continue
		}
		s, _, err := h.getOrCreate(b.Series[i].Labels, b.Series[i].Hash)
		if err != nil {
			return dst, err
		}
		dst = append(dst, s)
	}
	return dst, nil
}

// withStartZeros returns b with the zero samples of start (created)
// timestamps added, where Prometheus 3 adds them (its
// created-timestamp-zero-ingestion, AppendSTZeroSample): before a sample
// whose start time st is before the sample and after the newest sample of
// its series, a float 0, or an empty histogram of the same schema that
// marks a counter reset, at st. So a counter's first sample after a
// start or reset gets its zero once; later samples sharing the start time
// add nothing. The series' newest sample is read when the batch is
// resolved: two requests racing on the same new start time may both add
// its zero, which then is written twice with the same value (one
// out-of-order write, no other effect). The zeros become ordinary samples
// of the batch, logged and replayed as such. b is not changed: a batch
// with start times is copied.
func (h *Head) withStartZeros(ss []*memSeries, b *ingest.Batch) *ingest.Batch {
	var out *ingest.Batch
	for i := range b.Series {
		sr := &b.Series[i]
		if sr.StartTimes == nil && sr.HistogramStartTimes == nil {
			continue
		}
		if out == nil {
			out = &ingest.Batch{Series: slices.Clone(b.Series), Exemplars: b.Exemplars, Metadata: b.Metadata}
		}
		s := ss[i]
		s.mtx.Lock()
		last := s.lastT
		s.mtx.Unlock()
		o := &out.Series[i]
		if sr.StartTimes != nil {
			o.Samples = make([]ingest.Sample, 0, len(sr.Samples)+1)
			for j, x := range sr.Samples {
				if st := sr.StartTimes[j]; st != 0 && st < x.T && st > last {
					o.Samples = append(o.Samples, ingest.Sample{T: st})
				}
				o.Samples = append(o.Samples, x)
				last = max(last, x.T)
			}
		}
		if sr.HistogramStartTimes != nil {
			o.Histograms = make([]ingest.HistogramSample, 0, len(sr.Histograms)+1)
			for j, x := range sr.Histograms {
				if st := sr.HistogramStartTimes[j]; st != 0 && st < x.T && st > last {
					o.Histograms = append(o.Histograms, zeroHistogram(st, x))
				}
				o.Histograms = append(o.Histograms, x)
				last = max(last, x.T)
			}
		}
		o.StartTimes, o.HistogramStartTimes = nil, nil
	}
	if out == nil {
		return b
	}
	return out
}

// zeroHistogram is the start-time zero sample of x, as Prometheus makes it:
// no observations, x's schema, zero threshold and custom bounds, and a
// counter reset hint.
func zeroHistogram(st int64, x ingest.HistogramSample) ingest.HistogramSample {
	if x.H != nil {
		return ingest.HistogramSample{T: st, H: &histogram.Histogram{
			CounterResetHint: histogram.CounterReset, Schema: x.H.Schema, ZeroThreshold: x.H.ZeroThreshold, CustomValues: slices.Clone(x.H.CustomValues),
		}}
	}
	return ingest.HistogramSample{T: st, FH: &histogram.FloatHistogram{
		CounterResetHint: histogram.CounterReset, Schema: x.FH.Schema, ZeroThreshold: x.FH.ZeroThreshold, CustomValues: slices.Clone(x.FH.CustomValues),
	}}
}
