package remote

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/strata-tsdb/strata/downsample"
	"github.com/strata-tsdb/strata/segments"
)

// ErrUnavailable is returned by reads that need the bucket when it cannot
// be reached; the message names the bucket. The API answers 503.
var ErrUnavailable = errors.New("object storage unavailable")

func unavailable(b Bucket, err error) error {
	if errors.Is(err, ErrUnavailable) || errors.Is(err, context.Canceled) {
		return err
	}
	return fmt.Errorf("%w: bucket %s: %w", ErrUnavailable, b.Name(), err)
}

// Options configures a Tier.
type Options struct {
	// Dir is the tier's own directory: the catalog of the bucket's
	// segments (catalog.json) and the remote read cache (cache/).
	Dir string
	// Ranges are the compactor's windows in milliseconds
	// (segments.CompactOptions.Ranges). A raw segment is final, and
	// uploaded, once it is the only raw segment of a window of the last
	// range and that window is over as the compactor sees it (a day
	// compacted into one segment). Empty: only UploadAfter makes a segment
	// final.
	Ranges []int64
	// UploadAfter makes final, too, a segment whose newest sample is older
	// than this by the wall clock. Zero: off.
	UploadAfter time.Duration
	// Interval is the pause between two upload rounds. Zero means 1m.
	Interval time.Duration
	// RetryMin and RetryMax bound the backoff after a failed round, which
	// doubles from RetryMin. Zero means 1s and Interval.
	RetryMin, RetryMax time.Duration
	// Keep: a local segment verified in the bucket whose newest sample is
	// older than Keep is deleted locally and read from the bucket. Zero:
	// never for its age.
	Keep time.Duration
	// MaxLocalBytes bounds the bytes of local segments: past it, the
	// oldest segments verified in the bucket are deleted locally. Zero: no
	// bound.
	MaxLocalBytes int64
	// CacheMaxBytes bounds the remote read cache: the blocks of bucket
	// segment files on disk; the indexes of the open bucket segments that
	// no query holds take at most a quarter of it in memory. Zero means
	// 1 GiB.
	CacheMaxBytes int64
	// MinTime returns the oldest time retention keeps at resolution res
	// (0 raw, else the rollup width in milliseconds); a bucket segment
	// entirely older is deleted from the bucket. Nil: none is.
	MinTime func(res int64) int64
	// Exclusive runs f serialised with flushes and compaction (the
	// store's Exclusive); local copies are deleted inside it. Nil: f runs
	// as is.
	Exclusive func(f func())
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// AbandonedAfter: objects under segments/<id>/ without a meta.json,
	// the newest of them stored longer ago than this (by the bucket's
	// clock), of a segment the set does not hold, are an upload that
	// will never finish (its writer crashed and the segment left the
	// disk, replaced by a compaction) and are deleted. The bucket is
	// swept for them once per AbandonedAfter. Zero: never.
	AbandonedAfter time.Duration
	// ExternalLabels are the writer's: written to the bucket prefix
	// (writer.json) for readers, which deduplicate replicas by them (see
	// Group). Nil: none are written.
	ExternalLabels map[string]string
	// Reader makes the tier read-only (--role=reader): a round lists the
	// bucket again (new segments appear, deleted ones go) and uploads,
	// deletes and evicts nothing.
	Reader bool
	// MergeAfter: the raw segments of a day that only the bucket holds
	// are merged (merge.go) once the newest of them has been in the
	// bucket this long by Now (late data for the day has settled), so
	// that late samples arriving round after round do not make every
	// round merge the whole day again. Zero: in the first round they are
	// all there.
	MergeAfter time.Duration
	// DeleteDelay: a bucket segment that another replaces (the output of
	// a compaction, a rewrite or a merge), or whose data a delete hid
	// all of, is deleted from the bucket once
	// this process has seen it replaced for this long by Now, so that a
	// reader that listed it before its replacement existed can finish
	// reading it (a reader reads the replacement alone from its next
	// listing on). It should exceed a reader's listing interval plus the
	// longest query. Zero: in the round the replacement is uploaded.
	DeleteDelay time.Duration
	// Downsample, when not nil, are the options of the writer's
	// downsampler: the tier then rebuilds the rollups of days only the
	// bucket holds when the raw data under them changed there
	// (rollups.go). Nil: rollups in the bucket stay as uploaded, their
	// tombstones applied at read.
	Downsample *downsample.Options
	// HeadMinTime, when not nil, returns the oldest sample time the
	// store's head holds (math.MaxInt64 when it is empty). A raw segment
	// is not final while the head holds samples of its window (or, for
	// UploadAfter, of its time range or before): a later flush writes
	// them and a compaction would replace the uploaded segment (a flush
	// runs while samples come, copying one series after another, so a
	// series' samples of a day can follow other series' next day).
	HeadMinTime func() int64
	// MergeMaxDelay: a day is merged, too, once the oldest of those
	// segments has waited this long (a merge's output counts from when
	// it was made), so that late data that never settles is merged at
	// most once per MergeMaxDelay per day. Zero means 8×MergeAfter.
	MergeMaxDelay time.Duration
}

// Validate reports the first option that is out of range.
func (o Options) Validate() error {
	switch {
	case o.Dir == "":
		return errors.New("object storage: no directory for the tier's state")
	case o.UploadAfter < 0, o.Interval < 0, o.RetryMin < 0, o.RetryMax < 0, o.Keep < 0, o.AbandonedAfter < 0,
		o.MergeAfter < 0, o.MergeMaxDelay < 0, o.DeleteDelay < 0:
		return errors.New("object storage: durations must not be negative")
	case o.MaxLocalBytes < 0, o.CacheMaxBytes < 0:
		return errors.New("object storage: byte limits must not be negative")
	}
	return nil
}

// Tier is the object storage tier of a segments.Set: it uploads the set's
// final segments to a bucket, deletes local copies that are verified there
// and past Keep or MaxLocalBytes, and gives queries the segments that are
// only in the bucket, through a bounded local cache. Nothing is deleted
// locally that is not verified in the bucket; when the bucket cannot be
// reached, segments stay local, uploads wait (Status says so), and reads
// of bucket-only segments fail with ErrUnavailable.
type Tier struct {
	logger *slog.Logger
	bucket Bucket
	set    *segments.Set
	opts   Options
	m      *metrics
	cache  *cache

	mtx     sync.Mutex
	catalog map[string]segments.Meta               // segments whose meta.json is in the bucket; guarded by mtx
	loaded  bool                                   // catalog known (from the bucket or catalog.json); guarded by mtx
	listed  bool                                   // catalog listed from the bucket by this process; guarded by mtx
	lastErr error                                  // of the last round, nil when it succeeded; guarded by mtx
	queued  int                                    // final segments not yet in the bucket; guarded by mtx
	tombs   []*tombRecord                          // in the order made (keys ascending); guarded by mtx
	onNew   func(names []string, mint, maxt int64) // see OnNewSegments; guarded by mtx
	ext     map[string]string                      // the writer's external labels; guarded by mtx
	extOK   bool                                   // ext written (writer) or read (reader); guarded by mtx
	// pins counts the queries of this process that hold each bucket
	// segment (Acquire until its release), and deleting marks those a
	// round is deleting from the bucket (read.go: pin, claimDelete); both
	// guarded by mtx.
	pins     map[string]int
	deleting map[string]bool

	// rewriting maps a bucket segment being rewritten without its deleted
	// samples to the rewrite's ID (rewrite.go); guarded by mtx.
	rewriting map[string]string
	// unaffected: bucket segments whose tombstones (this many) hide none
	// of their samples, so not rewritten; guarded by roundMtx.
	unaffected map[string]int

	// arrived: when this process first saw each bucket-only raw segment
	// that mergeSmall considers, by Now; mergeSince: since when each day
	// (by its start) has had several of them. Both guarded by roundMtx.
	arrived    map[string]time.Time
	mergeSince map[int64]time.Time
	// replacedAt: when this process first saw each bucket segment
	// replaced by another (see Options.DeleteDelay); guarded by roundMtx.
	replacedAt map[string]time.Time
	// rolledFrom: the inputs of each day's last rollup rebuild, by day
	// start (rollups.go); guarded by roundMtx.
	rolledFrom map[int64]string

	roundMtx sync.Mutex // serialises rounds
	// saveMtx serialises the writes of the state files (catalog.json,
	// tombstones.json), each from taking the state to its rename, so
	// that two saves at once (a delete's and a round's) neither share the
	// temporary file nor leave the older state last.
	saveMtx   sync.Mutex
	lastSweep time.Time    // of sweepAbandoned; guarded by roundMtx
	version   atomic.Int64 // a reader's catalog changes, two per change: odd while one is applied
	kick      chan struct{}
	stop      chan struct{}
	wg        sync.WaitGroup
}

// New returns the tier of set in bucket. It loads the catalog saved in
// opts.Dir, if any; Start (or Sync) lists the bucket. Metrics are
// registered with reg when it is not nil.
func New(logger *slog.Logger, bucket Bucket, set *segments.Set, opts Options, reg prometheus.Registerer) (*Tier, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if opts.Interval == 0 {
		opts.Interval = time.Minute
	}
	if opts.RetryMin == 0 {
		opts.RetryMin = min(time.Second, opts.Interval)
	}
	if opts.RetryMax == 0 {
		opts.RetryMax = opts.Interval
	}
	if opts.CacheMaxBytes == 0 {
		opts.CacheMaxBytes = 1 << 30
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Exclusive == nil {
		opts.Exclusive = func(f func()) { f() }
	}
	if opts.MergeMaxDelay == 0 {
		opts.MergeMaxDelay = 8 * opts.MergeAfter
	}
	m := newMetrics()
	if err := os.RemoveAll(filepath.Join(opts.Dir, rewriteDir)); err != nil {
		return nil, fmt.Errorf("clear object storage rewrites: %w", err)
	}
	c, err := newCache(filepath.Join(opts.Dir, "cache"), opts.CacheMaxBytes, bucket, m, set.PageCache())
	if err != nil {
		return nil, err
	}
	t := &Tier{logger: logger, bucket: bucket, set: set, opts: opts, m: m, cache: c,
		catalog: map[string]segments.Meta{}, pins: map[string]int{}, deleting: map[string]bool{}, rewriting: map[string]string{}, unaffected: map[string]int{}, arrived: map[string]time.Time{}, mergeSince: map[int64]time.Time{}, replacedAt: map[string]time.Time{}, rolledFrom: map[int64]string{}, kick: make(chan struct{}, 1), stop: make(chan struct{})}
	if err := t.loadSavedCatalog(); err != nil {
		return nil, err
	}
	if err := t.loadTombstones(); err != nil {
		return nil, err
	}
	if reg != nil {
		reg.MustRegister(m.collectors()...)
		reg.MustRegister(t.gauges()...)
	}
	return t, nil
}

func (t *Tier) gauges() []prometheus.Collector {
	g := func(name, help string, f func(st Status) float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 { return f(t.Status()) })
	}
	return []prometheus.Collector{
		g("strata_object_bucket_up", "1 when the last upload round reached the bucket, else 0.", func(st Status) float64 {
			if st.BucketUp {
				return 1
			}
			return 0
		}),
		g("strata_object_upload_queue_segments", "Final segments waiting to be uploaded.", func(st Status) float64 { return float64(st.Queued) }),
		g("strata_object_bucket_segments", "Segments in the bucket (the catalog).", func(st Status) float64 { return float64(st.BucketSegments) }),
		g("strata_object_catalog_version", "Grows by two with each change a reader's listing makes to its catalog; odd while one is applied (new segments readable, their cached answers not yet invalidated).", func(Status) float64 { return float64(t.version.Load()) }),
		g("strata_object_cache_bytes", "Bytes in the remote read cache.", func(st Status) float64 { return float64(st.CacheBytes) }),
	}
}

// Bucket returns the tier's bucket.
func (t *Tier) Bucket() Bucket { return t.bucket }

// Start runs upload rounds in the background until Close: one at once,
// then every Interval (after a failure, after a backoff), or when Kick is
// called.
func (t *Tier) Start() {
	t.wg.Add(1)
	go t.run()
}

// Kick asks for an upload round soon (after a flush or compaction).
func (t *Tier) Kick() {
	select {
	case t.kick <- struct{}{}:
	default:
	}
}

func (t *Tier) run() {
	defer t.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-t.stop
		cancel()
	}()
	backoff := t.opts.RetryMin
	for {
		wait := t.opts.Interval
		if err := t.Sync(ctx); err != nil && ctx.Err() == nil {
			t.logger.Warn("object storage round failed; segments stay local and are retried", "bucket", t.bucket.Name(), "retry_in", backoff, "err", err)
			wait = backoff
			backoff = min(backoff*2, t.opts.RetryMax)
		} else {
			backoff = t.opts.RetryMin
		}
		timer := time.NewTimer(wait)
		select {
		case <-t.stop:
			timer.Stop()
			return
		case <-t.kick:
			timer.Stop()
		case <-timer.C:
		}
	}
}

// Close stops the background rounds and closes the cached segments.
func (t *Tier) Close() error {
	select {
	case <-t.stop:
	default:
		close(t.stop)
	}
	t.wg.Wait()
	return t.cache.close()
}

// Status is the tier's state, for /readyz and the metrics.
type Status struct {
	Bucket string
	// BucketUp is false when the last round failed; LastError says why.
	BucketUp  bool
	LastError string
	// Queued counts final segments not yet verified in the bucket.
	Queued         int
	BucketSegments int
	CacheBytes     int64
}

// Status returns the tier's state.
func (t *Tier) Status() Status {
	t.mtx.Lock()
	st := Status{Bucket: t.bucket.Name(), BucketUp: t.lastErr == nil, Queued: t.queued, BucketSegments: len(t.catalog)}
	if t.lastErr != nil {
		st.LastError = t.lastErr.Error()
	}
	t.mtx.Unlock()
	st.CacheBytes = t.cache.bytes()
	return st
}

// Sync runs one round now: it lists the bucket if its catalog is not
// known yet, uploads the final segments not yet there, deletes from the
// bucket what a compacted upload replaced or retention expired, and
// deletes local copies past Keep or MaxLocalBytes.
func (t *Tier) Sync(ctx context.Context) error {
	t.roundMtx.Lock()
	defer t.roundMtx.Unlock()
	err := t.round(ctx)
	t.mtx.Lock()
	t.lastErr = err
	t.mtx.Unlock()
	return err
}

func (t *Tier) round(ctx context.Context) error {
	// A round that has nothing to send still tells whether the bucket
	// answers (Status, /readyz).
	if _, err := t.bucket.Stat(ctx, probeKey); err != nil && !errors.Is(err, ErrNotExist) {
		t.setQueued(len(t.pending()))
		return unavailable(t.bucket, err)
	}
	if t.opts.Reader {
		return t.relist(ctx)
	}
	// Before any upload: a reader that lists a segment of this writer
	// finds its external labels.
	if err := t.syncWriterInfo(ctx); err != nil {
		return unavailable(t.bucket, err)
	}
	if err := t.refreshCatalog(ctx); err != nil {
		t.setQueued(len(t.pending()))
		return err
	}
	// Deletes before segments: a segment a delete names is hidden from
	// the moment a reader can list it.
	if err := t.uploadTombstones(ctx); err != nil {
		return err
	}
	todo := t.pending()
	t.setQueued(len(todo))
	for i, in := range todo {
		if t.namedByPendingTombstone(in.Meta.ID) {
			continue // a delete made during this round: next round, after its tombstone
		}
		if err := t.uploadOne(ctx, in); err != nil {
			t.m.uploadFailures.Inc()
			return err
		}
		t.setQueued(len(todo) - i - 1)
	}
	if err := t.mergeSmall(ctx); err != nil {
		return err
	}
	if err := t.rewriteTombstoned(ctx); err != nil {
		return err
	}
	if err := t.rebuildRollups(ctx); err != nil {
		return err
	}
	if err := t.collectBucket(ctx); err != nil {
		return err
	}
	if err := t.collectTombstones(ctx); err != nil {
		return err
	}
	if err := t.sweepAbandoned(ctx); err != nil {
		return err
	}
	t.evictLocal()
	return nil
}

// sweepAbandoned deletes the objects of uploads that will never finish
// (see Options.AbandonedAfter), at most once per AbandonedAfter.
func (t *Tier) sweepAbandoned(ctx context.Context) error {
	grace := t.opts.AbandonedAfter
	if grace <= 0 || (!t.lastSweep.IsZero() && time.Since(t.lastSweep) < grace) {
		return nil
	}
	keys := map[string][]string{} // by segment ID, of those without meta.json
	withMeta := map[string]bool{}
	if err := t.bucket.List(ctx, segmentsPrefix, func(k string) error {
		rest := strings.TrimPrefix(k, segmentsPrefix)
		id, rel, ok := strings.Cut(rest, "/")
		if !ok || id == "" {
			return nil
		}
		if rel == metaName {
			withMeta[id] = true
		}
		keys[id] = append(keys[id], k)
		return nil
	}); err != nil {
		return unavailable(t.bucket, err)
	}
	local := map[string]bool{}
	for _, in := range t.set.Segments() {
		local[in.Meta.ID] = true // an upload of it not finished yet is completed, not deleted
	}
	for id, ks := range keys {
		if withMeta[id] || local[id] {
			continue
		}
		var newest time.Time
		for _, k := range ks {
			oi, err := t.bucket.Stat(ctx, k)
			if errors.Is(err, ErrNotExist) {
				continue
			}
			if err != nil {
				return unavailable(t.bucket, err)
			}
			if oi.Modified.After(newest) {
				newest = oi.Modified
			}
		}
		// The bucket's clock against this one's: an object is young
		// unless both agree it is old (a skew of minutes is harmless
		// against a grace of hours).
		if newest.IsZero() || time.Since(newest) < grace {
			continue
		}
		if _, err := t.bucket.Stat(ctx, metaKey(id)); !errors.Is(err, ErrNotExist) {
			continue // finished meanwhile, or the bucket did not answer
		}
		for _, k := range ks {
			if err := t.bucket.Delete(ctx, k); err != nil {
				return unavailable(t.bucket, err)
			}
		}
		t.m.abandonedDeletes.Inc()
		t.logger.Info("deleted an abandoned half-upload from object storage", "segment", id, "objects", len(ks), "newest", newest)
	}
	t.lastSweep = time.Now()
	return nil
}

// pending returns the final local segments not in the bucket's catalog.
func (t *Tier) pending() []segments.Info {
	// The head first: samples it flushes meanwhile are in the segments
	// listed after.
	headMin := int64(math.MaxInt64)
	if t.opts.HeadMinTime != nil {
		headMin = t.opts.HeadMinTime()
	}
	infos := t.set.Segments()
	var todo []segments.Info
	for _, in := range infos {
		if !t.inBucket(in.Meta.ID) && t.final(in, infos, headMin) {
			todo = append(todo, in)
		}
	}
	return todo
}

func (t *Tier) setQueued(n int) {
	t.mtx.Lock()
	t.queued = n
	t.mtx.Unlock()
}

func (t *Tier) inBucket(id string) bool {
	t.mtx.Lock()
	defer t.mtx.Unlock()
	_, ok := t.catalog[id]
	return ok
}

// final reports whether the segment in will not be compacted again in
// the ordinary course (a later delete or late write may still replace it:
// its replacement is uploaded, and it is deleted from the bucket then).
// headMin is the oldest sample time in the head (see
// Options.HeadMinTime).
func (t *Tier) final(in segments.Info, all []segments.Info, headMin int64) bool {
	m := in.Meta
	if t.opts.UploadAfter > 0 && t.opts.Now().Sub(time.UnixMilli(m.MaxTime)) >= t.opts.UploadAfter &&
		(m.Resolution != 0 || headMin > m.MaxTime) {
		return true
	}
	if len(t.opts.Ranges) == 0 {
		return false
	}
	var newest int64
	for _, o := range all {
		newest = max(newest, o.Meta.MaxTime)
	}
	r := t.opts.Ranges[len(t.opts.Ranges)-1]
	if m.Resolution != 0 {
		// A rollup is not compacted: final once its last window is over.
		return alignDown(m.MaxTime, r)+r <= newest-t.opts.Ranges[0]
	}
	w := alignDown(m.MinTime, r)
	if alignDown(m.MaxTime, r) != w || w+r > newest-t.opts.Ranges[0] {
		return false // spans windows, or its window is not over
	}
	if headMin < w+r {
		return false // the head holds samples of the window: they come next
	}
	for _, o := range all {
		if o.Meta.ID != m.ID && o.Meta.Resolution == m.Resolution &&
			alignDown(o.Meta.MinTime, r) <= w && alignDown(o.Meta.MaxTime, r) >= w {
			return false // the window is still to be compacted
		}
	}
	return true
}

func alignDown(t, r int64) int64 {
	if t >= 0 {
		return t - t%r
	}
	return -((-t + r - 1) / r * r)
}

// uploadOne uploads one local segment, held against deletion meanwhile,
// and records it in the catalog.
func (t *Tier) uploadOne(ctx context.Context, in segments.Info) error {
	segs, release := t.set.Acquire(in.Meta.MinTime, in.Meta.MaxTime)
	defer release()
	i := slices.IndexFunc(segs, func(s *segments.Segment) bool { return s.Meta().ID == in.Meta.ID })
	if i < 0 {
		return nil // replaced or dropped meanwhile
	}
	start := t.opts.Now()
	names, err := segs[i].LabelValues(labels.MetricName)
	if err != nil {
		return fmt.Errorf("read metric names of segment %s: %w", in.Meta.ID, err)
	}
	n, err := upload(ctx, t.bucket, segs[i].Dir(), in.Meta.ID, names)
	t.m.uploadedBytes.Add(float64(n))
	if err != nil {
		return unavailable(t.bucket, err)
	}
	t.m.uploads.Inc()
	t.m.uploadSeconds.Observe(t.opts.Now().Sub(start).Seconds())
	t.logger.Info("segment uploaded to object storage", "segment", in.Meta.ID, "bucket", t.bucket.Name(), "bytes_sent", n)
	t.mtx.Lock()
	t.catalog[in.Meta.ID] = in.Meta
	t.mtx.Unlock()
	return t.saveCatalog()
}

// evictLocal deletes the local copies of segments verified in the bucket
// that are past Keep, then, oldest first, those that make the local
// segments exceed MaxLocalBytes.
func (t *Tier) evictLocal() {
	if t.opts.Keep == 0 && t.opts.MaxLocalBytes == 0 {
		return
	}
	t.opts.Exclusive(func() {
		infos := t.set.Segments()
		slices.SortFunc(infos, func(a, b segments.Info) int { return cmp.Compare(a.Meta.MaxTime, b.Meta.MaxTime) })
		var total int64
		for _, in := range infos {
			total += in.Size
		}
		now := t.opts.Now()
		for _, in := range infos {
			old := t.opts.Keep > 0 && now.Sub(time.UnixMilli(in.Meta.MaxTime)) > t.opts.Keep
			over := t.opts.MaxLocalBytes > 0 && total > t.opts.MaxLocalBytes
			if !old && !over {
				continue
			}
			if !t.inBucket(in.Meta.ID) {
				continue // never delete what the bucket does not hold
			}
			if t.set.Evict(in.Meta.ID) {
				total -= in.Size
				t.m.localEvictions.Inc()
				t.logger.Info("deleted local copy of a segment verified in object storage", "segment", in.Meta.ID, "bytes", in.Size)
			}
		}
	})
}

// collectBucket deletes from the bucket the segments another bucket
// segment replaces (a compaction's output, uploaded), once they have
// been replaced for Options.DeleteDelay, and those retention expired.
func (t *Tier) collectBucket(ctx context.Context) error {
	t.mtx.Lock()
	metas := make([]segments.Meta, 0, len(t.catalog))
	for _, m := range t.catalog {
		metas = append(metas, m)
	}
	t.mtx.Unlock()
	local := map[string]bool{}
	for _, in := range t.set.Segments() {
		local[in.Meta.ID] = true
	}
	now := t.opts.Now()
	seen := map[string]bool{}
	for _, m := range metas {
		expired := t.opts.MinTime != nil && m.MaxTime < t.opts.MinTime(m.Resolution)
		if local[m.ID] && !expired {
			continue // the local copy is the set's: retention deletes it there
		}
		if !expired && !replaced(m, metas) {
			continue
		}
		if !expired {
			seen[m.ID] = true
			since, ok := t.replacedAt[m.ID]
			if !ok {
				since = now
				t.replacedAt[m.ID] = since
			}
			if now.Sub(since) < t.opts.DeleteDelay {
				continue // a reader that listed it before its replacement may be reading it
			}
		}
		if !t.claimDelete(m.ID) {
			// A query of this process still reads it: deleted by a round
			// after the query, however long it runs.
			seen[m.ID] = true
			continue
		}
		err := t.deleteSegment(ctx, m.ID)
		t.endDelete(m.ID)
		if err != nil {
			return err
		}
		t.m.bucketDeletes.Inc()
		reason := "replaced by a compacted segment"
		if expired {
			reason = "past retention"
		}
		t.logger.Info("deleted segment from object storage", "segment", m.ID, "reason", reason)
	}
	for id := range t.replacedAt {
		if !seen[id] {
			delete(t.replacedAt, id)
		}
	}
	return nil
}

// replaced reports whether another of metas holds m's data: same
// resolution, every source of m among its sources, and a later product
// (more sources, a higher level, or, equal in both, a greater ID); for a
// rollup, a rollup of the same resolution and day with a greater ID.
func replaced(m segments.Meta, metas []segments.Meta) bool {
	for _, o := range metas {
		if isRollup(m) {
			// Of two rollups of a resolution and day, the newer, as the
			// downsampler keeps (their sources are lineage; a late-data
			// rollup's are not a superset of the day's).
			if isRollup(o) && o.Resolution == m.Resolution && o.MinTime == m.MinTime && o.ID > m.ID {
				return true
			}
			continue
		}
		if o.ID == m.ID || o.Resolution != m.Resolution || !coversSources(o, m) {
			continue
		}
		lo, lm := len(o.Compaction.Sources), len(m.Compaction.Sources)
		if lo > lm || lo == lm && (o.Compaction.Level > m.Compaction.Level ||
			o.Compaction.Level == m.Compaction.Level && o.ID > m.ID) {
			return true
		}
	}
	return false
}

// coversSources reports whether every source of m is a source of o.
func coversSources(o, m segments.Meta) bool {
	if len(m.Compaction.Sources) == 0 {
		return false
	}
	for _, s := range m.Compaction.Sources {
		if !slices.Contains(o.Compaction.Sources, s) {
			return false
		}
	}
	return true
}

// deleteSegment removes a segment from the bucket: meta.json first, so
// that readers stop seeing it before any data object goes.
func (t *Tier) deleteSegment(ctx context.Context, id string) error {
	if err := t.bucket.Delete(ctx, metaKey(id)); err != nil {
		return unavailable(t.bucket, err)
	}
	t.mtx.Lock()
	delete(t.catalog, id)
	t.mtx.Unlock()
	t.cache.forget(id)
	var keys []string
	if err := t.bucket.List(ctx, segmentPrefix(id), func(k string) error {
		keys = append(keys, k)
		return nil
	}); err != nil {
		return unavailable(t.bucket, err)
	}
	for _, k := range keys {
		if err := t.bucket.Delete(ctx, k); err != nil {
			return unavailable(t.bucket, err)
		}
	}
	return t.saveCatalog()
}

// refreshCatalog lists the bucket's segments once per process (later
// rounds keep the catalog up to date themselves).
func (t *Tier) refreshCatalog(ctx context.Context) error {
	t.mtx.Lock()
	listed := t.listed
	t.mtx.Unlock()
	if listed {
		return nil
	}
	cat, err := listCatalogKeep(ctx, t.bucket, nil, t.cache.keepMeta)
	if err != nil {
		return unavailable(t.bucket, err)
	}
	// Tombstones in the bucket this writer does not know (its state was
	// lost) are adopted, so that its reads apply them and its rounds
	// delete them in time.
	keys, err := listTombstoneKeys(ctx, t.bucket)
	if err != nil {
		return unavailable(t.bucket, err)
	}
	t.mtx.Lock()
	for _, r := range t.tombs {
		delete(keys, r.Key)
	}
	t.mtx.Unlock()
	var adopted []*tombRecord
	for _, key := range slices.Sorted(maps.Keys(keys)) {
		r, err := readTombstone(ctx, t.bucket, key)
		if err != nil && !errors.Is(err, ErrNotExist) {
			return unavailable(t.bucket, err)
		}
		if err == nil {
			adopted = append(adopted, r)
		}
	}
	t.cache.keepOnly(catalogIDs(cat)) // first listing: blocks of segments gone meanwhile
	t.mtx.Lock()
	t.catalog, t.loaded, t.listed = cat, true, true
	t.tombs = append(t.tombs, adopted...)
	slices.SortFunc(t.tombs, func(a, b *tombRecord) int { return strings.Compare(a.Key, b.Key) })
	t.mtx.Unlock()
	if len(adopted) > 0 {
		if err := t.saveTombstones(); err != nil {
			return err
		}
	}
	return t.saveCatalog()
}

// relist lists the bucket again, reading the meta.json of the segments
// not known yet and the tombstones not known yet, and forgets those that
// left it (tombstones.go says why tombstones/ is listed twice).
//
// With OnNewSegments set, a new segment's metric names are read first (its
// names.json, or the segment is opened: a query would open it next
// anyway); one whose names cannot be read stays out of the catalog until
// a later round. The catalog takes the new segments and tombstones before
// OnNewSegments is called for them, so that a result computed without one
// of them was begun before the call and is invalidated by it (see
// OnNewSegments).
func (t *Tier) relist(ctx context.Context) error {
	t.mtx.Lock()
	known := maps.Clone(t.catalog)
	first := !t.listed
	knownTombs := map[string]*tombRecord{}
	for _, r := range t.tombs {
		knownTombs[r.Key] = r
	}
	onNew := t.onNew
	t.mtx.Unlock()
	before, err := listTombstoneKeys(ctx, t.bucket)
	if err != nil {
		return unavailable(t.bucket, err)
	}
	cat, err := listCatalogKeep(ctx, t.bucket, known, t.cache.keepMeta)
	if err != nil {
		return unavailable(t.bucket, err)
	}
	after, err := listTombstoneKeys(ctx, t.bucket)
	if err != nil {
		return unavailable(t.bucket, err)
	}
	maps.Copy(after, before)
	var (
		tombs    []*tombRecord
		newTombs []*tombRecord
	)
	for _, key := range slices.Sorted(maps.Keys(after)) {
		if r, ok := knownTombs[key]; ok {
			tombs = append(tombs, r)
			continue
		}
		r, err := readTombstone(ctx, t.bucket, key)
		if errors.Is(err, ErrNotExist) {
			continue // deleted since the listing: so are its segments
		}
		if err != nil {
			return unavailable(t.bucket, err)
		}
		tombs = append(tombs, r)
		newTombs = append(newTombs, r)
	}
	// After the listing: the writer put its labels there before the
	// segments listed, so they are known before those are readable.
	if err := t.syncWriterInfo(ctx); err != nil {
		return unavailable(t.bucket, err)
	}
	type found struct {
		meta  segments.Meta
		names []string
	}
	var (
		news    []found
		nameErr error
	)
	for id, m := range cat {
		if _, ok := known[id]; ok || onNew == nil {
			continue
		}
		names, err := t.metricNames(ctx, id)
		if err != nil {
			delete(cat, id) // not visible until its names are known
			nameErr = errors.Join(nameErr, fmt.Errorf("segment %s: %w", id, err))
			continue
		}
		news = append(news, found{m, names})
	}
	changed := len(news) > 0 || len(cat) != len(known) || len(newTombs) > 0 || len(tombs) != len(knownTombs)
	if changed {
		t.version.Add(1) // odd: applying
	}
	t.mtx.Lock()
	t.catalog, t.loaded, t.listed = cat, true, true
	t.tombs = tombs
	t.mtx.Unlock()
	for id := range known {
		if _, ok := cat[id]; !ok {
			t.cache.forget(id)
		}
	}
	if first {
		// Blocks an earlier process cached of segments that left the
		// bucket while it was down (and the catalog it saved may not
		// have known).
		t.cache.keepOnly(catalogIDs(cat))
	}
	for _, f := range news {
		onNew(f.names, f.meta.MinTime, f.meta.MaxTime)
		t.m.discovered.Inc()
	}
	for _, r := range newTombs {
		// What the tombstone hides lies in the segments it names that
		// are in the bucket: their days, clamped to its range. One it
		// names that comes later is a new segment, invalidated then.
		lo, hi := int64(math.MaxInt64), int64(math.MinInt64)
		for _, id := range r.Object.Segments {
			if m, ok := cat[id]; ok {
				lo, hi = min(lo, m.MinTime), max(hi, m.MaxTime)
			}
		}
		lo, hi = max(lo, r.Object.MinTime), min(hi, r.Object.MaxTime)
		if onNew != nil && lo <= hi {
			onNew(r.names(), lo, hi)
		}
		t.m.tombstonesDiscovered.Inc()
	}
	if changed {
		t.version.Add(1)
	}
	if err := t.saveCatalog(); err != nil {
		return err
	}
	if err := t.saveTombstones(); err != nil {
		return err
	}
	if nameErr != nil {
		return unavailable(t.bucket, nameErr)
	}
	return nil
}

// metricNames returns the metric names in bucket segment id: its
// names.json, or, for a segment uploaded without one, its index, read by
// range through the read cache.
func (t *Tier) metricNames(ctx context.Context, id string) ([]string, error) {
	rc, err := t.bucket.Get(ctx, objectKey(id, namesName), 0, -1)
	if err == nil {
		defer rc.Close()
		var names []string
		data, err := io.ReadAll(io.LimitReader(rc, 64<<20))
		if err != nil {
			return nil, err
		}
		if err := json.Unmarshal(data, &names); err != nil {
			return nil, fmt.Errorf("%s does not decode: %w", objectKey(id, namesName), err)
		}
		return names, nil
	}
	if !errors.Is(err, ErrNotExist) {
		return nil, err
	}
	seg, release, err := t.cache.acquire(ctx, id)
	if err != nil {
		return nil, err
	}
	defer release()
	return seg.WithContext(ctx).LabelValues(labels.MetricName)
}

// OnNewSegments sets f, called by a reader's round for each segment it
// finds new in the bucket, with the segment's metric names and time span,
// once queries can read the segment and before the round ends: a reader
// sharing a result cache invalidates there what the segment changes (a
// backfill uploaded late, a day uploaded after its answers were cached).
// Set it before Start.
func (t *Tier) OnNewSegments(f func(names []string, mint, maxt int64)) {
	t.mtx.Lock()
	t.onNew = f
	t.mtx.Unlock()
}

// catalogIDs returns the IDs of cat's segments.
func catalogIDs(cat map[string]segments.Meta) map[string]bool {
	ids := make(map[string]bool, len(cat))
	for id := range cat {
		ids[id] = true
	}
	return ids
}

// listCatalog reads the meta.json of every segment in the bucket.
func listCatalog(ctx context.Context, b Bucket) (map[string]segments.Meta, error) {
	return listCatalogKnown(ctx, b, nil)
}

// listCatalogKnown lists the bucket's segments, reading the meta.json of
// those not in known.
func listCatalogKnown(ctx context.Context, b Bucket, known map[string]segments.Meta) (map[string]segments.Meta, error) {
	return listCatalogKeep(ctx, b, known, nil)
}

// listCatalogKeep is listCatalogKnown passing each meta.json it reads to
// keep, when not nil (the read cache, so that opening the segment does
// not GET it again).
func listCatalogKeep(ctx context.Context, b Bucket, known map[string]segments.Meta, keep func(id string, meta []byte)) (map[string]segments.Meta, error) {
	var ids []string
	if err := b.List(ctx, segmentsPrefix, func(k string) error {
		if id, ok := parseMetaKey(k); ok {
			ids = append(ids, id)
		}
		return nil
	}); err != nil {
		return nil, err
	}
	cat := make(map[string]segments.Meta, len(ids))
	for _, id := range ids {
		if m, ok := known[id]; ok {
			cat[id] = m
			continue
		}
		m, data, err := readMetaBytes(ctx, b, id)
		if errors.Is(err, ErrNotExist) {
			continue // deleted since the listing
		}
		if err != nil {
			return nil, err
		}
		cat[id] = m
		if keep != nil {
			keep(id, data)
		}
	}
	return cat, nil
}

func readMeta(ctx context.Context, b Bucket, id string) (segments.Meta, error) {
	m, _, err := readMetaBytes(ctx, b, id)
	return m, err
}

// readMetaBytes returns segment id's meta.json, decoded and as it is.
func readMetaBytes(ctx context.Context, b Bucket, id string) (segments.Meta, []byte, error) {
	rc, err := b.Get(ctx, metaKey(id), 0, -1)
	if err != nil {
		return segments.Meta{}, nil, err
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, 16<<20))
	if err != nil {
		return segments.Meta{}, nil, err
	}
	var m segments.Meta
	if err := json.Unmarshal(data, &m); err != nil || m.ID != id {
		return segments.Meta{}, nil, fmt.Errorf("segment %s in %s: meta.json does not decode (%v)", id, b.Name(), err)
	}
	return m, data, nil
}

const catalogFile = "catalog.json"

// loadSavedCatalog reads the catalog the last process saved, so that
// segments only in the bucket are known (and their reads fail clearly,
// not silently) while the bucket cannot be listed.
func (t *Tier) loadSavedCatalog() error {
	b, err := os.ReadFile(filepath.Join(t.opts.Dir, catalogFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read object storage catalog: %w", err)
	}
	var metas []segments.Meta
	if err := json.Unmarshal(b, &metas); err != nil {
		t.logger.Warn("object storage catalog is damaged; the bucket will be listed", "err", err)
		return nil
	}
	for _, m := range metas {
		t.catalog[m.ID] = m
	}
	t.loaded = true
	return nil
}

// saveCatalog writes the catalog atomically.
func (t *Tier) saveCatalog() error {
	t.saveMtx.Lock()
	defer t.saveMtx.Unlock()
	t.mtx.Lock()
	metas := make([]segments.Meta, 0, len(t.catalog))
	for _, m := range t.catalog {
		metas = append(metas, m)
	}
	t.mtx.Unlock()
	slices.SortFunc(metas, func(a, b segments.Meta) int { return cmp.Compare(a.MinTime, b.MinTime) })
	b, err := json.Marshal(metas)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(t.opts.Dir, catalogFile), b); err != nil {
		return fmt.Errorf("save object storage catalog: %w", err)
	}
	return nil
}

// fsync syncs a file or a directory: a variable so that tests see what
// is synced, and in what order.
var fsync = (*os.File).Sync

// writeFileAtomic writes b to path through a synced temporary file,
// renamed over path, then syncs the directory, so that the new content
// is what a power loss leaves (a delete the server acknowledged is in
// tombstones.json).
func writeFileAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = fsync(f)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	err = fsync(d)
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// writerInfoKey is the object, at the prefix's root, where a writer puts
// its external labels.
const writerInfoKey = "writer.json"

type writerInfo struct {
	ExternalLabels map[string]string `json:"external_labels"`
}

// syncWriterInfo writes the writer's external labels once per process
// (a writer with some), or reads them until they are found (a reader).
func (t *Tier) syncWriterInfo(ctx context.Context) error {
	t.mtx.Lock()
	done := t.extOK
	t.mtx.Unlock()
	if done {
		return nil
	}
	if !t.opts.Reader {
		if len(t.opts.ExternalLabels) == 0 {
			return nil
		}
		data, err := json.Marshal(writerInfo{ExternalLabels: t.opts.ExternalLabels})
		if err != nil {
			return err
		}
		if _, err := putBytesVerified(ctx, t.bucket, writerInfoKey, data); err != nil {
			return err
		}
		t.mtx.Lock()
		t.ext, t.extOK = t.opts.ExternalLabels, true
		t.mtx.Unlock()
		return nil
	}
	rc, err := t.bucket.Get(ctx, writerInfoKey, 0, -1)
	if errors.Is(err, ErrNotExist) {
		return nil // a writer without external labels, or not started yet
	}
	if err != nil {
		return err
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, 1<<20))
	if err != nil {
		return err
	}
	var wi writerInfo
	if err := json.Unmarshal(data, &wi); err != nil {
		return fmt.Errorf("%s in %s does not decode: %w", writerInfoKey, t.bucket.Name(), err)
	}
	t.mtx.Lock()
	t.ext, t.extOK = wi.ExternalLabels, true
	t.mtx.Unlock()
	return nil
}

// ExternalLabels returns the external labels of the prefix's writer, and
// whether they are known (written by this writer, or read by this reader).
func (t *Tier) ExternalLabels() (map[string]string, bool) {
	t.mtx.Lock()
	defer t.mtx.Unlock()
	return t.ext, t.extOK
}
