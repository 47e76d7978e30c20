package buffer

import (
	"fmt"
	"log/slog"
	"math"
	"sync"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/strata-tsdb/strata/buffer/wal"
	"github.com/strata-tsdb/strata/ingest"
)

// ReplayStats describes one replay of the write-ahead log.
type ReplayStats struct {
	Records, Series, Samples int64
	UnknownRefs              int64 // samples whose series record was missing; dropped
}

// replayDepth is how many decoded records may wait for the applier: enough
// to keep the decoding and applying goroutines both busy, and a bound on
// the memory decoded records hold (a record is at most a few MiB).
const replayDepth = 16

// Replayer applies WAL records to a head. Feed it records in log order
// with Apply, then call Finish.
//
// The work runs in three stages at once, so that a replay uses more than
// one core: Apply decodes each record (labels, their hash, samples) in the
// caller's goroutine, the log reader's; one goroutine applies the decoded
// records in log order (creates the series, appends the samples, fills the
// metadata and exemplar stores); another adds the series the applier
// created to the postings, which nothing reads before Finish returns.
type Replayer struct {
	h       *Head
	logger  *slog.Logger
	records int64

	work    chan *replayItem  // decoded records, in log order, for the applier
	free    chan *replayItem  // items the applier is done with, for Apply to reuse
	created chan []*memSeries // series the applier made, for the indexer
	done    chan struct{}     // closed once the applier and the indexer have ended
	finish  sync.Once

	// The applier's; read by Stats after Finish.
	stats ReplayStats
	// aliases maps a reference logged for labels that an earlier series
	// record gave another reference (a restart between two creations) to
	// the live series; every other reference is found in the head's maps.
	aliases map[uint64]*memSeries
}

// replayItem is one decoded record.
type replayItem struct {
	typ     byte
	series  []wal.RefSeries
	hashes  []uint64 // hashes[i] is series[i].Labels.Hash()
	samples []wal.RefSample
	hists   []wal.RefHistogramSample
	meta    []wal.Metadata
	ex      []wal.SeriesExemplars
}

// reset empties the item for reuse, dropping what it references.
func (it *replayItem) reset() {
	clear(it.series)
	clear(it.hists)
	clear(it.ex)
	it.series, it.hashes, it.samples, it.hists, it.meta, it.ex = it.series[:0], it.hashes[:0], it.samples[:0], it.hists[:0], it.meta[:0], it.ex[:0]
}

// NewReplayer returns a Replayer that applies records to h without logging
// them again. Finish must be called after the last record (or after a
// failed replay) and before the head is read: it waits for the records to
// be applied and the created series to be indexed.
func (h *Head) NewReplayer(logger *slog.Logger) *Replayer {
	r := &Replayer{
		h:       h,
		logger:  logger,
		work:    make(chan *replayItem, replayDepth),
		free:    make(chan *replayItem, replayDepth+1),
		created: make(chan []*memSeries, 1024),
		done:    make(chan struct{}),
	}
	for range replayDepth + 1 {
		r.free <- new(replayItem)
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		r.applyAll()
	}()
	go func() {
		defer wg.Done()
		b := h.index.newBulk()
		for ss := range r.created {
			b.add(ss)
		}
		b.finish()
	}()
	go func() {
		wg.Wait()
		close(r.done)
	}()
	return r
}

// Apply decodes one record and hands it to the applier. rec is not
// retained. An error means the record could not be decoded; nothing of it
// is applied.
func (r *Replayer) Apply(rec []byte) error {
	r.records++
	it := <-r.free
	if err := decodeRecord(rec, it); err != nil {
		it.reset()
		r.free <- it
		return err
	}
	r.work <- it
	return nil
}

// decodeRecord decodes rec into it.
func decodeRecord(rec []byte, it *replayItem) error {
	var err error
	switch it.typ = wal.RecordType(rec); it.typ {
	case wal.RecordSeries:
		if it.series, err = wal.DecodeSeries(rec, it.series); err != nil {
			return fmt.Errorf("decode series record: %w", err)
		}
		for i := range it.series {
			it.hashes = append(it.hashes, it.series[i].Labels.Hash())
		}
	case wal.RecordSamples:
		if it.samples, err = wal.DecodeSamples(rec, it.samples); err != nil {
			return fmt.Errorf("decode samples record: %w", err)
		}
	case wal.RecordHistograms:
		if it.hists, err = wal.DecodeHistograms(rec, it.hists); err != nil {
			return fmt.Errorf("decode histograms record: %w", err)
		}
	case wal.RecordMetadata:
		if it.meta, err = wal.DecodeMetadata(rec, it.meta); err != nil {
			return fmt.Errorf("decode metadata record: %w", err)
		}
	case wal.RecordExemplars:
		if it.ex, err = wal.DecodeExemplars(rec, it.ex); err != nil {
			return fmt.Errorf("decode exemplars record: %w", err)
		}
	default:
		return fmt.Errorf("unknown record type %d", it.typ)
	}
	return nil
}

// applyAll applies the decoded records in order until work is closed,
// then closes created.
func (r *Replayer) applyAll() {
	defer close(r.created)
	for it := range r.work {
		r.apply(it)
		it.reset()
		r.free <- it
	}
}

// apply applies one decoded record.
func (r *Replayer) apply(it *replayItem) {
	switch it.typ {
	case wal.RecordSeries:
		r.applySeries(it)
	case wal.RecordSamples:
		r.applySamples(it.samples, nil)
	case wal.RecordHistograms:
		r.applySamples(nil, it.hists)
	case wal.RecordMetadata:
		md := make([]ingest.FamilyMetadata, len(it.meta))
		for i, m := range it.meta {
			md[i] = ingest.FamilyMetadata{Family: m.Family, Metadata: ingest.Metadata{Type: model.MetricType(m.Type), Unit: m.Unit, Help: m.Help}}
		}
		r.h.meta.Add(md)
	case wal.RecordExemplars:
		if len(it.ex) == 0 {
			r.h.ex.Reset() // the store is logged again whole from here
			return
		}
		ex := make([]ingest.SeriesExemplars, len(it.ex))
		for i, se := range it.ex {
			ex[i] = ingest.SeriesExemplars{Labels: se.Series, Exemplars: make([]ingest.Exemplar, len(se.Exemplars))}
			for j, e := range se.Exemplars {
				ex[i].Exemplars[j] = ingest.Exemplar{Labels: e.Labels, T: e.T, V: e.V}
			}
		}
		r.h.ex.Add(ex)
	}
}

// applySeries creates the series of a series record and passes the new
// ones to the indexer.
func (r *Replayer) applySeries(it *replayItem) {
	epoch := uint32(r.h.logEpoch.Load())
	var created []*memSeries
	for i, rs := range it.series {
		// The labels do not alias the record (DecodeSeries): the series
		// keeps them as they are.
		s, isNew := r.h.createWithRef(rs.Ref, it.hashes[i], rs.Labels)
		s.loggedIn.Store(epoch)
		if isNew {
			if created == nil {
				created = make([]*memSeries, 0, len(it.series)-i)
			}
			created = append(created, s)
		}
		if s.ref != rs.Ref {
			// The same labels were logged under two refs (a restart
			// between creations); map the old ref to the live series.
			r.logger.Debug("series logged under two references", "labels", rs.Labels.String(), "refs", []uint64{s.ref, rs.Ref})
			if r.aliases == nil {
				r.aliases = map[uint64]*memSeries{}
			}
			r.aliases[rs.Ref] = s
		}
	}
	r.stats.Series += int64(len(it.series))
	if len(created) > 0 {
		r.created <- created
	}
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
		applied    int64 // n less the samples of unknown series
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
			cur = r.h.series.getByRef(ref)
			if cur == nil {
				cur = r.aliases[ref]
			}
			if cur == nil {
				r.stats.UnknownRefs++
				continue
			}
			cur.mtx.Lock()
			if hists != nil {
				r.h.noteHistograms(r.h.syms.get(cur.lset, labels.MetricName))
			}
		}
		ooo, c := cur.appendLocked(x, o)
		if ooo {
			r.h.numOOO.Add(1)
		}
		cost += c
		mint, maxt = min(mint, x.T), max(maxt, x.T)
		applied++
	}
	if cur != nil {
		cur.mtx.Unlock()
	}
	r.stats.Samples += applied
	r.h.numSamples.Add(applied)
	r.h.inHead.Add(applied)
	r.h.inHeadCost.Add(cost)
	if mint <= maxt {
		r.h.updateBounds(mint, maxt)
	}
}

// Finish waits until every record given to Apply is applied and the series
// the replay created are in the head's postings. Calling it again does
// nothing.
func (r *Replayer) Finish() {
	r.finish.Do(func() { close(r.work) })
	<-r.done
}

// Stats returns what the replay applied; complete once Finish returned.
func (r *Replayer) Stats() ReplayStats {
	st := r.stats
	st.Records = r.records
	return st
}
