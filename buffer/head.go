package buffer

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/strata-tsdb/strata/buffer/exemplars"
	"github.com/strata-tsdb/strata/buffer/metadata"
	"github.com/strata-tsdb/strata/buffer/wal"
	"github.com/strata-tsdb/strata/ingest"
)

// ErrTooManySeries is returned by Append when a request would create series
// beyond Options.MaxSeries. Nothing of that request is applied.
var ErrTooManySeries = errors.New("too many series in the head")

// Log is where the head makes a write durable before applying it; the WAL
// in buffer/wal implements it. Enqueue hands recs to the log, in the order
// of the calls, and the Pending's Wait returns once they are durable.
type Log interface {
	Enqueue(recs ...[]byte) wal.Pending
}

// Head is the in-memory part of the store. All methods are safe for
// concurrent use.
type Head struct {
	opts   Options
	series *stripeSeries
	index  *postingsIndex
	syms   *symbolTable // the strings of the series' label sets
	log    Log          // nil: no write-ahead log (tests, relaxed setups)

	// orderMtx makes handing a batch to the log and taking its per-series
	// apply tickets (memSeries.logTicket) one step, so that each series'
	// writes are applied in the order the log holds them.
	orderMtx sync.Mutex
	// logEpoch counts the cuts of the log that a flush may truncate below
	// (starting at 1). A batch logs a series record for every series not
	// logged in the current epoch, so that a samples record never precedes,
	// in the log kept after a truncation, the record naming its series.
	// It changes only with appends paused (Store.appendMtx).
	logEpoch atomic.Uint64
	turnMtx  sync.Mutex // with turn: appenders waiting for their ticket
	turn     *sync.Cond
	waiters  atomic.Int64 // appenders waiting on turn

	// gcEpoch counts the removals of series (gcIdleSeries), from 1:
	// KnownEpoch.
	gcEpoch atomic.Uint64

	lastRef    atomic.Uint64
	numSeries  atomic.Int64
	numSamples atomic.Int64 // samples appended since start, including replay
	numOOO     atomic.Int64 // of them, out of order
	inHead     atomic.Int64 // samples held now (appended minus flushed; duplicates count)
	inHeadCost atomic.Int64 // the same samples weighed by sampleCost: a histogram by its size
	minTime    atomic.Int64
	maxTime    atomic.Int64

	meta  *metadata.Store  // metric family metadata the writes carried
	ex    *exemplars.Store // the most recent exemplars the writes carried
	reads *readers         // queriers over the head and segments, for flushes to wait on

	// testHookFlushedSeries, when set, is called by a flush after it wrote
	// each series, with the number written so far.
	testHookFlushedSeries func(n int)

	histMtx   sync.RWMutex        // histMtx guards histNames.
	histNames map[string]struct{} // metric names that were given histograms since the head started
}

// NewHead returns an empty head. log may be nil, in which case writes are
// applied without being logged.
func NewHead(opts Options, log Log) (*Head, error) {
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("head options: %w", err)
	}
	opts = opts.withDefaults()
	opts.flushing = new(atomic.Bool)
	syms := newSymbolTable()
	h := &Head{
		opts:   opts,
		series: newStripeSeries(opts.StripeSize, syms),
		index:  newPostingsIndex(syms),
		syms:   syms,
		log:    log,
		meta:   metadata.New(opts.MaxMetadataFamilies),
		ex:     exemplars.New(opts.MaxExemplars),
		reads:  newReaders(),
	}
	h.turn = sync.NewCond(&h.turnMtx)
	h.logEpoch.Store(1)
	h.gcEpoch.Store(1)
	h.minTime.Store(math.MaxInt64)
	h.maxTime.Store(math.MinInt64)
	return h, nil
}

// Metadata returns the store of the metric family metadata the head was
// given (remote write's metadata), for reading.
func (h *Head) Metadata() *metadata.Store { return h.meta }

// Exemplars returns the store of the exemplars the head was given, for
// reading.
func (h *Head) Exemplars() *exemplars.Store { return h.ex }

// ExemplarsStored returns how many of the exemplars of b, once appended,
// are stored: all of them (repeats of a stored one included, as in
// Prometheus), or none when the head keeps no exemplars.
func (h *Head) ExemplarsStored(b *ingest.Batch) int {
	if !h.ex.Enabled() {
		return 0
	}
	return b.NumExemplars()
}

// Options returns the options the head runs with, defaults filled in.
func (h *Head) Options() Options { return h.opts }

// NumSeries returns the number of series in the head.
func (h *Head) NumSeries() int64 { return h.numSeries.Load() }

// NumSamples returns the number of samples appended since the head was
// created, out-of-order ones included.
func (h *Head) NumSamples() int64 { return h.numSamples.Load() }

// SamplesInHead returns about how many samples the head holds now.
func (h *Head) SamplesInHead() int64 { return h.inHead.Load() }

// SampleCostInHead returns about what the samples the head holds now
// weigh: a float counts 1 and a native histogram its size in float
// samples, (FloatHistogram.Size()+8)/16 as ingest.HistogramCost and
// Prometheus' engine count it. The flush trigger
// (StoreOptions.MaxHeadSamples) compares it, not SamplesInHead.
func (h *Head) SampleCostInHead() int64 { return h.inHeadCost.Load() }

// NumOutOfOrder returns how many of NumSamples arrived out of order.
func (h *Head) NumOutOfOrder() int64 { return h.numOOO.Load() }

// Bounds returns the smallest and largest timestamp appended to the head;
// min > max when the head is empty.
func (h *Head) Bounds() (mint, maxt int64) { return h.minTime.Load(), h.maxTime.Load() }

// KnownSeries returns the series equal to lset, whose Hash() is hash, as
// a handle for Append, and true; or false when the head has none
// (ingest.Known): Append then skips its lookup. The lookup compares lset
// with the series' compact label set and makes nothing.
func (h *Head) KnownSeries(hash uint64, lset labels.Labels) (any, bool) {
	if s := h.series.getByHash(hash, lset); s != nil {
		return s, true
	}
	return nil, false
}

// KnownEpoch is the epoch of the handles KnownSeries gives out
// (ingest.Known): the count of series removals (gcIdleSeries), plus one.
// A batch's handles are used only while no series was removed since its
// decoder asked.
func (h *Head) KnownEpoch() uint64 { return h.gcEpoch.Load() }

// getOrCreate returns the series for lset, creating it if needed. hash is
// lset.Hash(), or 0 when the caller does not know it.
func (h *Head) getOrCreate(lset labels.Labels, hash uint64) (*memSeries, bool, error) {
	if hash == 0 {
		hash = lset.Hash()
	}
	if s := h.series.getByHash(hash, lset); s != nil {
		return s, false, nil
	}
	s, created, err := h.series.getOrSet(hash, lset, func() (*memSeries, error) {
		// Counted as it is made (under its stripe's lock): series made
		// at once in other stripes, by batches that all passed resolve's
		// check together, cannot all pass the limit.
		if !h.countNewSeries() {
			return nil, ErrTooManySeries
		}
		// The reference is made as the series enters the postings, so
		// that references reach them in order. Until getOrSet returns, a
		// reader may find the reference there but not the series, which
		// it skips, as one removed meanwhile: it holds no sample yet.
		sl := h.syms.encode(lset)
		return newMemSeries(h.index.addNew(sl, func() uint64 { return h.lastRef.Add(1) }), sl), nil
	})
	if err != nil {
		return nil, false, err
	}
	return s, created, nil
}

// countNewSeries counts one more series in the head, unless the head
// holds Options.MaxSeries already.
func (h *Head) countNewSeries() bool {
	for {
		n := h.numSeries.Load()
		if h.opts.MaxSeries > 0 && n >= int64(h.opts.MaxSeries) {
			return false
		}
		if h.numSeries.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// createWithRef adds a series with a known reference and labels of the
// given hash, as read from the WAL, and reports whether it was new. The
// series is not added to the postings: the caller adds the new ones in
// bulk (postingsIndex.newBulk).
func (h *Head) createWithRef(ref, hash uint64, lset labels.Labels) (*memSeries, bool) {
	s, created, _ := h.series.getOrSet(hash, lset, func() (*memSeries, error) {
		return newMemSeries(ref, h.syms.encode(lset)), nil
	})
	if created {
		h.numSeries.Add(1)
		for {
			last := h.lastRef.Load()
			if ref <= last || h.lastRef.CompareAndSwap(last, ref) {
				break
			}
		}
	}
	return s, created
}

// appendStats sums what the series of one batch applied, for the head's
// figures: they are shared by every writer, and added once a batch rather
// than once a series (atomic adds to one cache line from concurrent
// writers, 2,000 times a request of Prometheus' shape).
type appendStats struct {
	n, ooo     int64
	cost       int64
	mint, maxt int64
}

func newAppendStats() appendStats {
	return appendStats{mint: math.MaxInt64, maxt: math.MinInt64}
}

// add adds st to the head's figures.
func (h *Head) add(st *appendStats) {
	if st.n == 0 {
		return
	}
	h.numSamples.Add(st.n)
	h.inHead.Add(st.n)
	h.inHeadCost.Add(st.cost)
	if st.ooo > 0 {
		h.numOOO.Add(st.ooo)
	}
	h.updateBounds(st.mint, st.maxt)
}

// appendSamples applies the samples of one series of a batch, floats first,
// then histograms (which the series takes ownership of), and adds them to
// st, which the caller adds to the head's figures (Head.add) before the
// batch counts as applied.
func (h *Head) appendSamples(s *memSeries, samples []ingest.Sample, hists []ingest.HistogramSample, st *appendStats) {
	n := len(samples) + len(hists)
	if n == 0 {
		return
	}
	mint, maxt := st.mint, st.maxt
	var ooo, cost int64
	s.mtx.Lock()
	s.idle = false
	for _, x := range samples {
		o, c := s.appendLocked(sample{T: x.T, V: x.V}, &h.opts)
		if o {
			ooo++
		}
		cost += c
		mint = min(mint, x.T)
		maxt = max(maxt, x.T)
	}
	if len(hists) > 0 {
		h.noteHistograms(h.syms.get(s.lset, labels.MetricName))
	}
	for _, x := range hists {
		o, c := s.appendLocked(sample{T: x.T, H: x.H, FH: x.FH}, &h.opts)
		if o {
			ooo++
		}
		cost += c
		mint = min(mint, x.T)
		maxt = max(maxt, x.T)
	}
	s.mtx.Unlock()
	st.n += int64(n)
	st.ooo += ooo
	st.cost += cost
	st.mint, st.maxt = mint, maxt
}

func (h *Head) updateBounds(mint, maxt int64) {
	for {
		cur := h.minTime.Load()
		if mint >= cur || h.minTime.CompareAndSwap(cur, mint) {
			break
		}
	}
	for {
		cur := h.maxTime.Load()
		if maxt <= cur || h.maxTime.CompareAndSwap(cur, maxt) {
			break
		}
	}
}

// noteHistograms records that series of the metric name hold native
// histograms.
func (h *Head) noteHistograms(name string) {
	h.histMtx.RLock()
	_, ok := h.histNames[name]
	h.histMtx.RUnlock()
	if ok {
		return
	}
	h.histMtx.Lock()
	if h.histNames == nil {
		h.histNames = map[string]struct{}{}
	}
	h.histNames[name] = struct{}{}
	h.histMtx.Unlock()
}

// HistogramNames returns the metric names of the series that were given
// native histograms since the head started (or replayed them), sorted. The
// list only grows: a name stays after its histograms are flushed.
func (h *Head) HistogramNames() []string {
	h.histMtx.RLock()
	defer h.histMtx.RUnlock()
	return slices.Sorted(maps.Keys(h.histNames))
}
