package buffer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/strata-tsdb/strata/buffer/wal"
	"github.com/strata-tsdb/strata/ingest"
	"github.com/strata-tsdb/strata/segments"
)

// SegmentSink takes the segments a flush writes. segments.Set implements it.
type SegmentSink interface {
	// Dir is the directory new segments are written into.
	Dir() string
	// Publish opens the segments written under Dir and makes them visible
	// to readers. When Publish returns nil, they are durable and readable.
	Publish(metas []segments.Meta) error
	// NextSeq returns the next number of the persisted write sequence that
	// orders segments (segments.Meta.Seq): greater than every number given
	// out before, across restarts.
	NextSeq() (uint64, error)
}

// StoreOptions configures a Store.
type StoreOptions struct {
	Head Options
	WAL  wal.Options
	// BlockDuration is the span of time one flushed segment covers, in
	// milliseconds; a multiple of Head.ChunkRange. Zero means 2 h.
	BlockDuration int64
	// MaxHeadSamples makes FlushDue true once the head holds more samples,
	// weighed as the write and query limits weigh them: a float counts 1, a
	// native histogram its size (ingest.HistogramCost; Head.SampleCostInHead).
	// Zero means 20,000,000. FlushSamplesPerSeries may raise it.
	MaxHeadSamples int64
	// FlushSamplesPerSeries raises MaxHeadSamples to this many samples a
	// series in the head (Head.NumSeries) where that is more: 32 a series
	// at over 625,000 series. A flush costs mostly by series, not by
	// sample (it re-logs every series record, sorts and indexes every
	// series with data, writes a chunk and an index entry for each), so a
	// size trigger that does not grow with the series count flushes more
	// and more often as series are added, each time for fewer samples a
	// series: at 5M series and 20 M, 4 samples a series, and flushes back
	// to back (issue 20). Zero means 32; negative, no floor.
	FlushSamplesPerSeries int64
	// Now gives the time that names flushed segments (their ULIDs). It
	// decides nothing else: write order comes from the sink's sequence.
	// Nil means time.Now.
	Now func() time.Time
	// ReleaseMemory returns the memory a flush freed to the operating
	// system when the flush ends (debug.FreeOSMemory: a GC, then the free
	// pages handed back), and, in the background, what the replay at
	// OpenStore freed. What a flush allocates (series records re-logged,
	// segment indexes, a copy of each series it re-encodes) is garbage
	// once it ends, and a replay runs at replayGCPercent; without this the
	// process keeps those pages mapped and RSS stays at the peak until the
	// runtime's background scavenger gets to them. It costs one GC per
	// flush and per replay; false leaves it to the runtime.
	ReleaseMemory bool
	// ReplayProgress, when not nil, is called from OpenStore as the
	// write-ahead log is replayed (see wal.ReplayWithProgress), so that a
	// server can say how far it is before OpenStore returns.
	ReplayProgress func(wal.Progress)
	// StrictWAL makes OpenStore fail on damage in the write-ahead log that
	// is not a torn tail. When false (the default) the damaged segment is
	// rewritten without its damaged frames (replay resynchronises on the
	// next good one), a copy is moved aside into wal/quarantine, an
	// error is logged and strata_wal_corruptions_total counts it.
	StrictWAL bool
}

// DefaultStoreOptions returns the options used for fields left zero.
func DefaultStoreOptions() StoreOptions {
	return StoreOptions{
		Head:                  DefaultOptions(),
		WAL:                   wal.DefaultOptions(),
		BlockDuration:         (2 * time.Hour).Milliseconds(),
		MaxHeadSamples:        20_000_000,
		FlushSamplesPerSeries: 32,
	}
}

func (o StoreOptions) withDefaults() StoreOptions {
	d := DefaultStoreOptions()
	o.Head = o.Head.withDefaults()
	if o.BlockDuration == 0 {
		o.BlockDuration = d.BlockDuration
	}
	if o.MaxHeadSamples == 0 {
		o.MaxHeadSamples = d.MaxHeadSamples
	}
	if o.FlushSamplesPerSeries == 0 {
		o.FlushSamplesPerSeries = d.FlushSamplesPerSeries
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Validate reports the first option that is out of range.
func (o StoreOptions) Validate() error {
	if err := o.Head.Validate(); err != nil {
		return err
	}
	if err := o.WAL.Validate(); err != nil {
		return fmt.Errorf("wal: %w", err)
	}
	o = o.withDefaults()
	if o.BlockDuration < o.Head.ChunkRange || o.BlockDuration%o.Head.ChunkRange != 0 {
		return fmt.Errorf("block duration %dms must be a multiple of the chunk range %dms", o.BlockDuration, o.Head.ChunkRange)
	}
	if o.MaxHeadSamples < 0 {
		return errors.New("max head samples must not be negative")
	}
	return nil
}

// Store is the durable write path: the write-ahead log, the head it feeds,
// and flushing the head into segments.
type Store struct {
	logger *slog.Logger
	opts   StoreOptions
	head   *Head
	wal    *wal.WAL
	sink   SegmentSink

	// appendMtx is read-locked by Append from logging through applying, and
	// write-locked by Flush around cutting the log, so that everything in
	// the segments before the cut is in the head when the flush looks.
	appendMtx sync.RWMutex
	flushMtx  sync.Mutex // serialises flushes

	metrics storeMetrics
	replay  atomic.Pointer[wal.Progress] // the replay's last progress

	testHookAfterCut func() // called by a flush after it cut the log, with appends running
}

type storeMetrics struct {
	flushes, flushFailures prometheus.Counter
	seriesRemoved          prometheus.Counter
	flushDuration          prometheus.Histogram
	replayDuration         prometheus.Gauge
}

// OpenStore replays the write-ahead log under dir/wal into a new head and
// opens the log for appending. Metrics are registered with reg when it is
// not nil.
func OpenStore(logger *slog.Logger, dir string, opts StoreOptions, sink SegmentSink, reg prometheus.Registerer) (*Store, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	s := &Store{logger: logger, opts: opts, sink: sink}
	s.metrics = storeMetrics{
		flushes:        prometheus.NewCounter(prometheus.CounterOpts{Name: "strata_head_flushes_total", Help: "Flushes of the head into segments."}),
		flushFailures:  prometheus.NewCounter(prometheus.CounterOpts{Name: "strata_head_flush_failures_total", Help: "Flushes that failed."}),
		flushDuration:  prometheus.NewHistogram(prometheus.HistogramOpts{Name: "strata_head_flush_duration_seconds", Help: "Time taken by a flush.", Buckets: prometheus.ExponentialBuckets(0.01, 2, 14)}),
		replayDuration: prometheus.NewGauge(prometheus.GaugeOpts{Name: "strata_wal_replay_duration_seconds", Help: "How long the last WAL replay took."}),
		seriesRemoved:  prometheus.NewCounter(prometheus.CounterOpts{Name: "strata_head_series_removed_total", Help: "Series removed from the head after two flushes found them empty."}),
	}
	walOpts := opts.WAL
	if reg != nil {
		reg.MustRegister(s.metrics.flushes, s.metrics.flushFailures, s.metrics.flushDuration, s.metrics.replayDuration, s.metrics.seriesRemoved)
	}
	if walOpts.Metrics == nil {
		walOpts.Metrics = wal.NewMetrics(reg)
	}
	walDir := filepath.Join(dir, "wal")
	head, err := NewHead(opts.Head, nil)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	restoreGC := raiseGCForReplay()
	rp := head.NewReplayer(logger)
	err = replayWAL(logger, walDir, opts.StrictWAL, walOpts.Metrics, rp.Apply, s.replayProgress(logger, start))
	rp.Finish() // after a failed replay too: it ends the replay's goroutines
	restoreGC()
	if err != nil {
		return nil, err
	}
	st := rp.Stats()
	if opts.ReleaseMemory && st.Records > 0 {
		// What the replay freed (decoding buffers, mostly) was not
		// collected at GOGC=100's pace: return it now, in the background,
		// rather than keep it mapped until the scavenger gets to it.
		go freeOSMemory()
	}
	s.metrics.replayDuration.Set(time.Since(start).Seconds())
	logger.Info("replayed write-ahead log", "records", st.Records, "series", st.Series, "samples", st.Samples,
		"unknown_refs", st.UnknownRefs, "duration", time.Since(start).Round(time.Millisecond))
	if st.UnknownRefs > 0 {
		logger.Warn("samples in the write-ahead log had no series record and were dropped", "samples", st.UnknownRefs)
	}
	w, err := wal.Open(logger, walDir, walOpts)
	if err != nil {
		return nil, fmt.Errorf("open write-ahead log: %w", err)
	}
	head.log = w
	s.head, s.wal = head, w
	return s, nil
}

// replayGCPercent is the garbage collector's percentage (GOGC) while a
// replay runs, where the process's is lower. What a replay allocates is
// mostly the head it builds, which stays live: at GOGC=100 the collector
// marks the growing head again each time it doubles, about twice the
// final heap in all, for little garbage found. At 400 it marks about a
// quarter of that; BenchmarkReplayK8s/crash (200k series) took 3.0-3.3 µs
// of CPU per series instead of 3.8-4.1. The heap cannot grow past what the
// replay allocates (about 1.3 times the head it builds, the rest being
// decoding buffers), and a memory limit (runtime.memory_limit, or the
// container's) bounds it as ever.
const replayGCPercent = 400

// replayGC counts the replays running in the process (a test runs several
// servers in one), so that the first raises the GC percentage and the last
// puts back what was there before the first.
var replayGC struct {
	sync.Mutex
	active int
	prev   int
}

// raiseGCForReplay raises the GC percentage to replayGCPercent, unless it
// is higher or the collector is off, until the returned function is
// called.
// freeOSMemory is debug.FreeOSMemory; tests count its calls.
var freeOSMemory = debug.FreeOSMemory

func raiseGCForReplay() (restore func()) {
	replayGC.Lock()
	defer replayGC.Unlock()
	if replayGC.active == 0 {
		replayGC.prev = debug.SetGCPercent(replayGCPercent)
		if replayGC.prev < 0 || replayGC.prev > replayGCPercent {
			debug.SetGCPercent(replayGC.prev)
		}
	}
	replayGC.active++
	return func() {
		replayGC.Lock()
		defer replayGC.Unlock()
		if replayGC.active--; replayGC.active == 0 {
			debug.SetGCPercent(replayGC.prev)
		}
	}
}

// replayProgress returns the progress function of the replay: it keeps the
// figures for ReplayStatus, passes them to the options' ReplayProgress and
// logs them at most every two seconds.
func (s *Store) replayProgress(logger *slog.Logger, start time.Time) func(wal.Progress) {
	var lastLog time.Time
	return func(p wal.Progress) {
		s.replay.Store(&p)
		if s.opts.ReplayProgress != nil {
			s.opts.ReplayProgress(p)
		}
		if p.First < 0 || time.Since(lastLog) < 2*time.Second {
			return
		}
		lastLog = time.Now()
		logger.Info("replaying write-ahead log", "segment", p.Current, "first", p.First, "last", p.Last,
			"percent", p.Percent(), "elapsed", time.Since(start).Round(time.Millisecond))
	}
}

// ReplayStatus returns how far the replay at OpenStore got: after OpenStore
// returns, all of it.
func (s *Store) ReplayStatus() wal.Progress {
	if p := s.replay.Load(); p != nil {
		return *p
	}
	return wal.Progress{}
}

// replayWAL replays the log in dir into apply. Strict, damage that is not
// a torn tail fails the replay; otherwise it is repaired (see
// wal.ReplayRepair) and counted.
func replayWAL(logger *slog.Logger, dir string, strict bool, m *wal.Metrics, apply func([]byte) error, progress func(wal.Progress)) error {
	if strict {
		if err := wal.ReplayWithProgress(logger, dir, 0, apply, progress); err != nil {
			if errors.As(err, new(*wal.CorruptionError)) {
				m.Corruptions.Inc()
				return fmt.Errorf("replay write-ahead log: %w (refusing to start: storage.wal.strict is set; `strata wal repair` or a start without it removes the damaged records and keeps a copy)", err)
			}
			return fmt.Errorf("replay write-ahead log: %w", err)
		}
		return nil
	}
	rep, err := wal.ReplayRepair(logger, dir, 0, apply, progress)
	m.Corruptions.Add(float64(len(rep.Corruptions)))
	m.DamagedBytes.Add(float64(rep.DiscardedBytes))
	if err != nil {
		return fmt.Errorf("replay write-ahead log: %w", err)
	}
	return nil
}

// Head returns the store's head, for reads.
func (s *Store) Head() *Head { return s.head }

// WALErr returns why the write-ahead log cannot write now (writes are
// refused with an error wrapping wal.ErrUnwritable), or nil when it can.
func (s *Store) WALErr() error { return s.wal.Err() }

// WALSize returns the bytes on disk of the write-ahead log.
func (s *Store) WALSize() int64 { return s.wal.Size() }

// Append makes b durable in the log and visible in the head, or applies
// nothing of it and returns an error.
func (s *Store) Append(b *ingest.Batch) error {
	s.appendMtx.RLock()
	defer s.appendMtx.RUnlock()
	return s.head.Append(b)
}

// ExpectAppend announces to the write-ahead log an Append that the
// caller is about to make with AppendExpected (a request being decoded),
// so that a group commit starting meanwhile may wait for it (see
// wal.WAL.Expect). The caller must hand the result to AppendExpected, or
// call its Done if it will not append.
func (s *Store) ExpectAppend() wal.Expected { return s.wal.Expect() }

// AppendExpected is Append for the call x announced; it ends x.
func (s *Store) AppendExpected(x wal.Expected, b *ingest.Batch) error {
	if !s.appendMtx.TryRLock() {
		// A flush or a collection waits for the appends in flight,
		// whose commit may wait for x: end it before waiting.
		x.Done()
		x = wal.Expected{}
		s.appendMtx.RLock()
	}
	defer s.appendMtx.RUnlock()
	return s.head.appendExpected(x, b)
}

// KnownSeries and KnownEpoch are the head's (ingest.Known): the series
// the head holds, as handles for Append.
func (s *Store) KnownSeries(hash uint64, lset labels.Labels) (any, bool) {
	return s.head.KnownSeries(hash, lset)
}

// KnownEpoch: see KnownSeries.
func (s *Store) KnownEpoch() uint64 { return s.head.KnownEpoch() }

// ExemplarsStored says how many exemplars of an appended batch the head
// stored (api.ExemplarCounter).
func (s *Store) ExemplarsStored(b *ingest.Batch) int { return s.head.ExemplarsStored(b) }

// FlushDue reports whether the head should be flushed: it holds data of a
// block that ended more than half a block before the newest sample, or
// samples that weigh more than FlushSize.
func (s *Store) FlushDue() bool {
	if s.head.SampleCostInHead() > s.FlushSize() {
		return true
	}
	mint, maxt := s.head.Bounds()
	if mint > maxt {
		return false
	}
	return mint < rangeStart(maxt-s.opts.BlockDuration/2, s.opts.BlockDuration)
}

// FlushSize is the weight of samples (Head.SampleCostInHead) past which
// FlushDue says a flush is due: MaxHeadSamples, or FlushSamplesPerSeries a
// series in the head where that is more.
func (s *Store) FlushSize() int64 {
	n := s.opts.MaxHeadSamples
	if per := s.opts.FlushSamplesPerSeries; per > 0 {
		n = max(n, per*s.head.NumSeries())
	}
	return n
}

// Flush writes everything in the head into segments, one per block, makes
// them visible, waits for the reads that started before (Head.StartRead),
// then drops the flushed data from the head and the log
// segments it came from, and removes the series that this flush and the
// previous one both left empty.
func (s *Store) Flush(ctx context.Context) error {
	s.flushMtx.Lock()
	defer s.flushMtx.Unlock()
	start := time.Now()
	err := s.flush(ctx, false)
	s.metrics.flushDuration.Observe(time.Since(start).Seconds())
	s.metrics.flushes.Inc()
	if err != nil {
		s.metrics.flushFailures.Inc()
	}
	return err
}

// flush does the work of Flush. appendsPaused says the caller holds
// appendMtx for writing already.
func (s *Store) flush(ctx context.Context, appendsPaused bool) error {
	if s.head.SamplesInHead() == 0 {
		return nil
	}
	if !appendsPaused {
		s.appendMtx.Lock()
	}
	cut, err := s.wal.Cut()
	var (
		relogged  wal.Pending
		relogging bool
	)
	if err == nil {
		// The log before the cut goes away below: from now on a batch logs
		// the record of each of its series again before its samples.
		s.head.logEpoch.Add(1)
		// The metadata and exemplar stores hold exactly what was logged
		// before the cut now; their records go first after it, before any
		// batch's. (The exemplars start with a reset: a batch logged after
		// the cut but applied after a later snapshot would otherwise be
		// wiped on replay.)
		if recs := append(s.head.MetadataRecords(10_000), s.head.ExemplarRecords(10_000)...); len(recs) > 0 {
			relogged, relogging = s.wal.Enqueue(recs...), true
		}
	}
	if !appendsPaused {
		s.appendMtx.Unlock()
	}
	if err != nil {
		return fmt.Errorf("cut write-ahead log: %w", err)
	}
	if relogging {
		if err := relogged.Wait(); err != nil {
			return fmt.Errorf("log metadata and exemplar records: %w", err)
		}
	}
	if s.testHookAfterCut != nil {
		s.testHookAfterCut()
	}
	// Series that no batch writes after the cut keep their labels in the
	// log too (their references stay valid across a restart).
	if recs := s.head.SeriesRecords(10_000); len(recs) > 0 {
		if err := s.wal.Log(recs...); err != nil {
			return fmt.Errorf("log series records: %w", err)
		}
	}
	var (
		items    []flushItem
		dropping bool
	)
	s.head.startFlush()
	defer func() { s.head.endFlush(items, !dropping) }()
	metas, items, err := s.head.writeFlush(ctx, s.sink, s.opts.BlockDuration, s.opts.Now)
	if err != nil {
		return err
	}
	if err := s.sink.Publish(metas); err != nil {
		// Not published: remove them, the head keeps the data and the
		// next flush writes them again.
		for _, m := range metas {
			_ = os.RemoveAll(filepath.Join(s.sink.Dir(), m.ID))
		}
		return fmt.Errorf("publish flushed segments: %w", err)
	}
	// A query that started before the publish may have taken its segments
	// before it and may read the head after the drop below: it would miss
	// the flushed data. Reads that start from here on see the segments.
	if err := s.waitForReads(ctx); err != nil {
		// The data is in the segments and still in the head and the log:
		// reads resolve the duplicates, and the next flush drops them.
		return fmt.Errorf("wait for queries started before the flush: %w", err)
	}
	dropping = true
	dropped := s.head.truncateFlushed(items)
	// The items hold the last chunk of each list the flush took: let them
	// go before FreeOSMemory below (the deferred endFlush sees the
	// variable, which would keep them to the end).
	flushed := len(items)
	items = nil
	removed := 0
	if idle := s.head.sweepAfterFlush(); len(idle) > 0 {
		if !appendsPaused {
			s.appendMtx.Lock()
		}
		removed = s.head.gcIdleSeries(idle)
		if !appendsPaused {
			s.appendMtx.Unlock()
		}
		s.metrics.seriesRemoved.Add(float64(removed))
	}
	if err := s.wal.Truncate(cut); err != nil {
		return fmt.Errorf("truncate write-ahead log: %w", err)
	}
	var samples uint64
	for _, m := range metas {
		samples += m.NumSamples
	}
	s.logger.Info("flushed head", "segments", len(metas), "series", flushed, "samples", samples, "dropped_from_head", dropped, "idle_series_removed", removed)
	if s.opts.ReleaseMemory {
		debug.FreeOSMemory()
	}
	return nil
}

// readWaitWarn is how long a flush waits for the queries that started
// before its segments were published before it logs a warning.
const readWaitWarn = 30 * time.Second

// waitForReads starts a new read epoch and waits for the reads (queriers)
// of earlier epochs to end, logging a warning when that takes long.
func (s *Store) waitForReads(ctx context.Context) error {
	epoch := s.head.reads.advance()
	warn := time.AfterFunc(readWaitWarn, func() {
		s.logger.Warn("flush is waiting for queries that started before it to end before it drops the flushed data from the head",
			"waited", readWaitWarn, "queries_in_flight", s.head.reads.inFlight())
	})
	defer warn.Stop()
	return s.head.reads.waitBefore(ctx, epoch)
}

// DeleteSeries deletes what the head and the segments hold of some series
// in a time range: with appends paused, it flushes the head, so that the
// data to delete is all in segments, then calls tombstone, which must make
// the segments hide it. Writes that arrive afterwards are not affected.
// Its flush waits, with appends paused, for the queries in flight to end
// (see Flush), so a delete holds writes up for at most the longest query.
func (s *Store) DeleteSeries(ctx context.Context, tombstone func() error) error {
	s.flushMtx.Lock()
	defer s.flushMtx.Unlock()
	s.appendMtx.Lock()
	defer s.appendMtx.Unlock()
	if err := s.flush(ctx, true); err != nil {
		return fmt.Errorf("flush before delete: %w", err)
	}
	return tombstone()
}

// Exclusive runs f with the flush lock held: no flush, and no maintenance
// started by Run, overlaps it.
func (s *Store) Exclusive(f func()) {
	s.flushMtx.Lock()
	defer s.flushMtx.Unlock()
	f()
}

// Close flushes the head and closes the log. After Close the log holds
// nothing that is not in a segment, so the next start replays nothing.
// A failed flush (a full disk) is logged, not returned: every
// acknowledged write is in the log, which the next start replays; Close
// fails only when the log could not be closed.
func (s *Store) Close(ctx context.Context) error {
	if ferr := s.Flush(ctx); ferr != nil {
		s.logger.Error("flush on close failed; the write-ahead log keeps the data and the next start replays it", "err", ferr)
	}
	return s.wal.Close()
}

// sweepAfterFlush sets the head's time bounds from the data it holds, and
// in the same pass marks the series that hold none idle: it returns those
// that were marked already, the candidates for gcIdleSeries.
func (h *Head) sweepAfterFlush() (idle []*memSeries) {
	mint, maxt := int64(math.MaxInt64), int64(math.MinInt64)
	h.series.forEach(func(s *memSeries) {
		s.mtx.Lock()
		if s.emptyLocked() {
			if s.idle {
				idle = append(idle, s)
			}
			s.idle = true
		}
		for _, c := range s.chunks {
			mint, maxt = min(mint, c.minT), max(maxt, c.maxT)
		}
		if s.head != nil {
			mint, maxt = min(mint, s.head.minT), max(maxt, s.head.maxT)
		}
		for _, c := range s.oooChunks() {
			mint, maxt = min(mint, c.minT), max(maxt, c.maxT)
		}
		for _, x := range s.oooBuf() {
			mint, maxt = min(mint, x.T), max(maxt, x.T)
		}
		s.mtx.Unlock()
	})
	h.minTime.Store(mint)
	h.maxTime.Store(maxt)
	return idle
}

// Run flushes the head whenever FlushDue says so, checking every interval,
// and after each check calls maintain (compaction, in the server) holding
// the flush lock, so that no flush, not even one asked for through Flush,
// overlaps maintenance. It returns when ctx is done.
func (s *Store) Run(ctx context.Context, interval time.Duration, maintain func(context.Context)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if s.FlushDue() {
			if err := s.Flush(ctx); err != nil && ctx.Err() == nil {
				s.logger.Error("flush head", "err", err)
			}
		}
		if maintain != nil {
			s.flushMtx.Lock()
			maintain(ctx)
			s.flushMtx.Unlock()
		}
	}
}
