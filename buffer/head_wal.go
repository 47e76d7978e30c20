package buffer

import (
	"cmp"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sync"

	"github.com/prometheus/common/model"

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
// it returns an error.
func (h *Head) logBatch(ss []*memSeries, b *ingest.Batch, tickets []uint64) ([]uint64, error) {
	wb := walBufPool.Get().(*walBuffers)
	defer walBufPool.Put(wb)
	wb.series, wb.samples, wb.hists = wb.series[:0], wb.samples[:0], wb.hists[:0]
	var unlogged []*memSeries
	epoch := h.logEpoch.Load()
	for i, s := range ss {
		if s.loggedIn.Load() != epoch {
			wb.series = append(wb.series, wal.RefSeries{Ref: s.ref, Labels: s.lset})
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

// ReplayStats describes one replay of the write-ahead log.
type ReplayStats struct {
	Records, Series, Samples int64
	UnknownRefs              int64 // samples whose series record was missing; dropped
}

// Replayer applies WAL records to a head. Feed it records in log order.
type Replayer struct {
	h       *Head
	logger  *slog.Logger
	stats   ReplayStats
	series  []wal.RefSeries
	samples []wal.RefSample
	hists   []wal.RefHistogramSample
	meta    []wal.Metadata
	ex      []wal.SeriesExemplars
	byRef   map[uint64]*memSeries
	created []*memSeries // series made by replay, not yet in the postings
}

// NewReplayer returns a Replayer that applies records to h without logging
// them again. The series it creates are indexed by Finish, which must be
// called after the last record and before the head is read.
func (h *Head) NewReplayer(logger *slog.Logger) *Replayer {
	return &Replayer{h: h, logger: logger, byRef: map[uint64]*memSeries{}}
}

// Apply decodes one record and applies it. rec is not retained.
func (r *Replayer) Apply(rec []byte) error {
	r.stats.Records++
	switch t := wal.RecordType(rec); t {
	case wal.RecordSeries:
		var err error
		r.series, err = wal.DecodeSeries(rec, r.series[:0])
		if err != nil {
			return fmt.Errorf("decode series record: %w", err)
		}
		for _, rs := range r.series {
			lset := rs.Labels.Copy() // detach from the record buffer
			s, created := r.h.createWithRef(rs.Ref, lset)
			s.loggedIn.Store(r.h.logEpoch.Load())
			if created {
				r.created = append(r.created, s)
			}
			if s.ref != rs.Ref {
				// The same labels were logged under two refs (a restart
				// between creations); map the old ref to the live series.
				r.logger.Debug("series logged under two references", "labels", lset.String(), "refs", []uint64{s.ref, rs.Ref})
			}
			r.byRef[rs.Ref] = s
			r.stats.Series++
		}
	case wal.RecordSamples:
		var err error
		r.samples, err = wal.DecodeSamples(rec, r.samples[:0])
		if err != nil {
			return fmt.Errorf("decode samples record: %w", err)
		}
		r.applySamples(r.samples, nil)
	case wal.RecordHistograms:
		var err error
		clear(r.hists)
		r.hists, err = wal.DecodeHistograms(rec, r.hists[:0])
		if err != nil {
			return fmt.Errorf("decode histograms record: %w", err)
		}
		r.applySamples(nil, r.hists)
	case wal.RecordMetadata:
		var err error
		r.meta, err = wal.DecodeMetadata(rec, r.meta[:0])
		if err != nil {
			return fmt.Errorf("decode metadata record: %w", err)
		}
		md := make([]ingest.FamilyMetadata, len(r.meta))
		for i, m := range r.meta {
			md[i] = ingest.FamilyMetadata{Family: m.Family, Metadata: ingest.Metadata{Type: model.MetricType(m.Type), Unit: m.Unit, Help: m.Help}}
		}
		r.h.meta.Add(md)
	case wal.RecordExemplars:
		var err error
		clear(r.ex)
		r.ex, err = wal.DecodeExemplars(rec, r.ex[:0])
		if err != nil {
			return fmt.Errorf("decode exemplars record: %w", err)
		}
		if len(r.ex) == 0 {
			r.h.ex.Reset() // the store is logged again whole from here
			return nil
		}
		ex := make([]ingest.SeriesExemplars, len(r.ex))
		for i, se := range r.ex {
			ex[i] = ingest.SeriesExemplars{Labels: se.Series, Exemplars: make([]ingest.Exemplar, len(se.Exemplars))}
			for j, e := range se.Exemplars {
				ex[i].Exemplars[j] = ingest.Exemplar{Labels: e.Labels, T: e.T, V: e.V}
			}
		}
		r.h.ex.Add(ex)
	default:
		return fmt.Errorf("unknown record type %d", t)
	}
	return nil
}

// applySamples applies the float samples of one record, or its histograms.
func (r *Replayer) applySamples(samples []wal.RefSample, hists []wal.RefHistogramSample) {
	o := &r.h.opts
	n := len(samples) + len(hists)
	if n == 0 {
		return
	}
	var (
		cur        *memSeries
		mint, maxt = int64(math.MaxInt64), int64(math.MinInt64)
		cost       int64
	)
	for i := range n {
		var x sample
		var ref uint64
		if samples != nil {
			ref, x = samples[i].Ref, sample{T: samples[i].T, V: samples[i].V}
		} else {
			ref, x = hists[i].Ref, sample{T: hists[i].T, H: hists[i].H, FH: hists[i].FH}
		}
		if cur == nil || cur.ref != ref {
			if cur != nil {
				cur.mtx.Unlock()
			}
			cur = r.byRef[ref]
			if cur == nil {
				cur = r.h.series.getByRef(ref)
			}
			if cur == nil {
				r.stats.UnknownRefs++
				continue
			}
			cur.mtx.Lock()
			if hists != nil {
				r.h.noteHistograms(cur.lset)
			}
		}
		ooo, c := cur.appendLocked(x, o)
		if ooo {
			r.h.numOOO.Add(1)
		}
		cost += c
		mint, maxt = min(mint, x.T), max(maxt, x.T)
		r.stats.Samples++
	}
	if cur != nil {
		cur.mtx.Unlock()
	}
	r.h.numSamples.Add(int64(n))
	r.h.inHead.Add(int64(n))
	r.h.inHeadCost.Add(cost)
	if mint <= maxt {
		r.h.updateBounds(mint, maxt)
	}
}

// Finish adds the series created by the replay to the head's postings, all
// at once (see postingsIndex.addBulk).
func (r *Replayer) Finish() {
	r.h.index.addBulk(r.created)
	r.created = nil
}

// Stats returns what has been applied so far.
func (r *Replayer) Stats() ReplayStats { return r.stats }

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
	)
	for i, s := range all {
		buf = append(buf, wal.RefSeries{Ref: s.ref, Labels: s.lset})
		if len(buf) >= maxPerRecord || i == len(all)-1 {
			out = append(out, wal.EncodeSeries(nil, buf))
			buf = buf[:0]
		}
	}
	return out
}
