package buffer

import (
	"cmp"
	"slices"
	"sync"
	"unsafe"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/strata-tsdb/strata/buffer/wal"
	"github.com/strata-tsdb/strata/ingest"
)

type walBuffers struct {
	series  []wal.RefSeries
	samples []wal.RefSample
	hists   []wal.RefHistogramSample
	meta    []ingest.FamilyMetadata
	walMeta []wal.Metadata
	walEx   []wal.SeriesExemplars
	bufs    [5][]byte // encoding buffers: series, samples, histograms, metadata, exemplars records
	list    [5][]byte // the records to log, pointing into bufs
}

var walBufPool = sync.Pool{New: func() any { return new(walBuffers) }}

// logBatch writes the records for a batch: the series that have not been
// logged in the current log epoch, then the float samples, then the histograms. A series record may be logged more than once
// (two requests racing on a new series); replay treats repeats as one.
// It appends to tickets the apply ticket of each series of ss, taken in
// the same step as the records go to the log, and returns them even when
// it returns an error. It ends x (zeroing it) once the records are in
// the log's queue.
func (h *Head) logBatch(ss []*memSeries, b *ingest.Batch, tickets []uint32, x *wal.Expected) ([]uint32, error) {
	wb := walBufPool.Get().(*walBuffers)
	defer walBufPool.Put(wb)
	wb.series, wb.samples, wb.hists = wb.series[:0], wb.samples[:0], wb.hists[:0]
	var unlogged []*memSeries
	epoch := uint32(h.logEpoch.Load())
	for i, s := range ss {
		if j := i + 2*prefetchDistance; j < len(ss) {
			// What this loop and the tickets' read of each series
			// (loggedIn, ref, logTicket) are in its first cache line.
			p := uintptr(unsafe.Pointer(ss[j]))
			prefetch(p, p, p, p)
		}
		if s.loggedIn.Load() != epoch {
			wb.series = append(wb.series, wal.RefSeries{Ref: s.ref, Labels: b.Series[i].Labels}) // s's labels
			unlogged = append(unlogged, s)
		}
		for _, x := range b.Series[i].Samples {
			wb.samples = append(wb.samples, wal.RefSample{Ref: s.ref, T: x.T, V: x.V})
		}
		for _, x := range b.Series[i].Histograms {
			wb.hists = append(wb.hists, wal.RefHistogramSample{Ref: s.ref, T: x.T, H: x.H, FH: x.FH})
		}
	}
	// The list must not alias bufs: appending bufs[1] to a slice of bufs
	// itself would overwrite bufs[0], and the two pooled buffers would
	// then share memory.
	recs := wb.list[:0]
	if len(wb.series) > 0 {
		wb.bufs[0] = wal.EncodeSeries(wb.bufs[0][:0], wb.series)
		recs = append(recs, wb.bufs[0])
	}
	if len(wb.samples) > 0 {
		wb.bufs[1] = wal.EncodeSamples(wb.bufs[1][:0], wb.samples)
		recs = append(recs, wb.bufs[1])
	}
	if len(wb.hists) > 0 {
		wb.bufs[2] = wal.EncodeHistograms(wb.bufs[2][:0], wb.hists)
		recs = append(recs, wb.bufs[2])
	}
	// Metadata is logged only when it changes the store: senders repeat
	// it with every request.
	wb.meta = h.meta.Changes(b.Metadata, wb.meta[:0])
	if len(wb.meta) > 0 {
		wb.walMeta = metadataRecords(wb.walMeta[:0], wb.meta)
		wb.bufs[3] = wal.EncodeMetadata(wb.bufs[3][:0], wb.walMeta)
		recs = append(recs, wb.bufs[3])
		clear(wb.walMeta)
	}
	// An exemplars record without exemplars means "reset" (see
	// ExemplarRecords): a batch never logs one.
	logExemplars := h.ex.Enabled() && b.NumExemplars() > 0
	if logExemplars {
		wb.walEx = exemplarRecords(wb.walEx[:0], b.Exemplars)
		wb.bufs[4] = wal.EncodeExemplars(wb.bufs[4][:0], wb.walEx)
		recs = append(recs, wb.bufs[4])
		clear(wb.walEx)
	}
	clear(wb.series) // drop label references held by the pool
	clear(wb.hists)
	h.orderMtx.Lock()
	var p wal.Pending
	if len(recs) > 0 {
		p = h.log.Enqueue(recs...)
	}
	for _, s := range ss {
		tickets = append(tickets, s.logTicket)
		s.logTicket++
	}
	h.orderMtx.Unlock()
	x.Done()
	*x = wal.Expected{}
	if len(recs) == 0 {
		return tickets, nil
	}
	if err := p.Wait(); err != nil {
		clear(wb.meta)
		return tickets, err
	}
	for _, s := range unlogged {
		s.loggedIn.Store(epoch) // an older epoch than the current one only makes the next batch log it again
	}
	h.meta.Add(wb.meta)
	clear(wb.meta)
	if logExemplars {
		h.ex.Add(b.Exemplars)
	}
	return tickets, nil
}

// exemplarRecords appends the WAL form of ex to dst.
func exemplarRecords(dst []wal.SeriesExemplars, ex []ingest.SeriesExemplars) []wal.SeriesExemplars {
	for _, se := range ex {
		w := wal.SeriesExemplars{Series: se.Labels, Exemplars: make([]wal.Exemplar, len(se.Exemplars))}
		for i, e := range se.Exemplars {
			w.Exemplars[i] = wal.Exemplar{Labels: e.Labels, T: e.T, V: e.V}
		}
		dst = append(dst, w)
	}
	return dst
}

// ExemplarRecords encodes the whole exemplar store, oldest first, in
// records of at most about maxPerRecord exemplars, for re-logging after a
// cut: first an empty exemplars record, which tells replay to empty the
// store, since what follows is all of it (the segments before the cut may
// still be there if the flush fails before truncating them; replaying
// their exemplars and then these would hold each one twice).
//
// An empty store logs nothing: whatever exemplars the segments before the
// cut hold are in the store unless newer ones evicted them.
func (h *Head) ExemplarRecords(maxPerRecord int) [][]byte {
	all := h.ex.All()
	if len(all) == 0 {
		return nil
	}
	var (
		out  = [][]byte{wal.EncodeExemplars(nil, nil)}
		recs []wal.SeriesExemplars
		n    int
	)
	for _, se := range all {
		recs = exemplarRecords(recs, []ingest.SeriesExemplars{se})
		if n += len(se.Exemplars); n >= maxPerRecord {
			out = append(out, wal.EncodeExemplars(nil, recs))
			recs, n = recs[:0], 0
		}
	}
	if len(recs) > 0 {
		out = append(out, wal.EncodeExemplars(nil, recs))
	}
	return out
}

// metadataRecords appends the WAL form of md to dst.
func metadataRecords(dst []wal.Metadata, md []ingest.FamilyMetadata) []wal.Metadata {
	for _, m := range md {
		dst = append(dst, wal.Metadata{Family: m.Family, Type: string(m.Type), Unit: m.Unit, Help: m.Help})
	}
	return dst
}

// MetadataRecords encodes the whole metadata store in records of at most
// maxPerRecord entries, for re-logging after older log segments are
// truncated.
func (h *Head) MetadataRecords(maxPerRecord int) [][]byte {
	all := h.meta.All()
	var out [][]byte
	for len(all) > 0 {
		n := min(len(all), maxPerRecord)
		out = append(out, wal.EncodeMetadata(nil, metadataRecords(nil, all[:n])))
		all = all[n:]
	}
	return out
}

// SeriesRecords encodes a series record for every series in the head, for
// re-logging after older log segments are truncated. The series come in
// reference order, so that the replay after a graceful stop finds every
// postings list already sorted (stripe order made it sort them all).
func (h *Head) SeriesRecords(maxPerRecord int) [][]byte {
	var all []*memSeries
	h.series.forEach(func(s *memSeries) { all = append(all, s) })
	slices.SortFunc(all, func(a, b *memSeries) int { return cmp.Compare(a.ref, b.ref) })
	var (
		out [][]byte
		buf []wal.RefSeries
		// One buffer a slot of buf, reused record after record.
		bufs [][]byte
		sbs  []labels.ScratchBuilder
	)
	for i, s := range all {
		if len(buf) == len(sbs) {
			sbs, bufs = append(sbs, labels.NewScratchBuilder(16)), append(bufs, nil)
		}
		lset := h.syms.overwrite(s.lset, &bufs[len(buf)], &sbs[len(buf)])
		buf = append(buf, wal.RefSeries{Ref: s.ref, Labels: lset})
		if len(buf) >= maxPerRecord || i == len(all)-1 {
			out = append(out, wal.EncodeSeries(nil, buf))
			buf = buf[:0]
		}
	}
	return out
}
