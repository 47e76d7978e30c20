package buffer

import (
	"fmt"
	"sync"

	"github.com/strata-tsdb/strata/ingest"
)

var seriesSlicePool = sync.Pool{New: func() any { return new([]*memSeries) }}

// Append makes the batch durable in the log (when the head has one) and then
// applies it. When Append returns nil every sample of b is visible to reads
// that start afterwards; when it returns an error no sample of b was
// applied. Append does not retain b, but takes ownership of its
// histograms: the caller must not use or change them afterwards.
func (h *Head) Append(b *ingest.Batch) error {
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
	if h.log == nil {
		for i := range b.Series {
			h.appendSamples(ss[i], b.Series[i].Samples, b.Series[i].Histograms)
		}
		return nil
	}
	tp := ticketPool.Get().(*[]uint64)
	defer ticketPool.Put(tp)
	tickets, err := h.logBatch(ss, b, (*tp)[:0])
	*tp = tickets
	// Whether or not the log took the batch, each series' ticket is used
	// in turn, so that the batches after it are not held up.
	for i := range b.Series {
		s := ss[i]
		h.waitTurn(s, tickets[i])
		if err == nil {
			h.appendSamples(s, b.Series[i].Samples, b.Series[i].Histograms)
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

var ticketPool = sync.Pool{New: func() any { return new([]uint64) }}

// waitTurn returns once every batch logged before the one holding ticket
// has been applied to s.
func (h *Head) waitTurn(s *memSeries, ticket uint64) {
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
func (h *Head) resolve(b *ingest.Batch, dst []*memSeries) ([]*memSeries, error) {
	if h.opts.MaxSeries > 0 {
		missing := 0
		for i := range b.Series {
			lset := b.Series[i].Labels
			if h.series.getByHash(lset.Hash(), lset) == nil {
				missing++
			}
		}
		if missing > 0 && h.numSeries.Load()+int64(missing) > int64(h.opts.MaxSeries) {
			return dst, fmt.Errorf("%w: the request adds %d series to %d, limit %d", ErrTooManySeries, missing, h.numSeries.Load(), h.opts.MaxSeries)
		}
	}
	for i := range b.Series {
		s, _, err := h.getOrCreate(b.Series[i].Labels)
		if err != nil {
			return dst, err
		}
		dst = append(dst, s)
	}
	return dst, nil
}
