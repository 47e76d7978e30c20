package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mathrand "math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"

	"github.com/strata-tsdb/strata/api"
	"github.com/strata-tsdb/strata/buffer"
	"github.com/strata-tsdb/strata/buffer/wal"
	"github.com/strata-tsdb/strata/cache"
	"github.com/strata-tsdb/strata/docstore"
	"github.com/strata-tsdb/strata/downsample"
	"github.com/strata-tsdb/strata/ingest"
	"github.com/strata-tsdb/strata/query"
	"github.com/strata-tsdb/strata/retention"
	"github.com/strata-tsdb/strata/segments"
	"github.com/strata-tsdb/strata/segments/remote"
	"github.com/strata-tsdb/strata/web"
)

// run parses args, starts the server and serves until ctx is done. When
// started is not nil it is called with the server's address once it listens.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, environ func(string) (string, bool), started func(addr string)) error {
	fs := newFlagSet(stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return errHelp
		}
		return err
	}
	if ok, _ := fs.GetBool("version"); ok {
		b := buildInfo()
		fmt.Fprintf(stdout, "strata %s (revision %s, %s)\n", b.Version, b.Revision, b.GoVersion)
		return nil
	}
	v, err := loadConfig(fs, environ)
	if err != nil {
		return err
	}
	logger, err := newLogger(v, stderr)
	if err != nil {
		return err
	}
	// Before the replay, which builds most of the heap.
	readRuntimePolicy(v, os.LookupEnv, cgroupMemoryLimit).apply(logger)
	// Settings read from files are checked before anything is opened.
	tlsConfig, err := loadTLS(v)
	if err != nil {
		return err
	}
	l, err := listen(logger, v, tlsConfig)
	if err != nil {
		return err
	}
	logger.Info("strata listening; opening storage", "version", version, "listen", l.url, "data_dir", v.GetString("data_dir"))
	if hook, ok := ctx.Value(listenHookKey{}).(func(string)); ok {
		hook(l.ln.Addr().String())
	}
	srv, err := newServer(logger, v, tlsConfig, l.onReplay(ctx))
	if err != nil {
		return errors.Join(err, l.close())
	}
	return srv.serve(ctx, stdout, started, l)
}

// server is Strata wired together.
type server struct {
	logger    *slog.Logger
	reg       *prometheus.Registry
	store     *buffer.Store
	set       *segments.Set
	compactor *segments.Compactor
	retention *retention.Enforcer
	scrubber  *segments.Scrubber
	rollups   *downsample.Downsampler // nil when disabled
	tier      *remote.Group           // nil without storage.object.url
	cache     *cache.Cache            // nil when disabled
	frontend  *query.Frontend
	warmer    *query.Warmer
	api       *api.API
	lock      *buffer.DirLock // held on data_dir until serve returns

	lastRetention time.Time   // guarded by the store's flush lock (maintain)
	tls           *tls.Config // nil: plain HTTP
	cfg           serveConfig
}

// serveConfig is the configuration read after the start, read once from
// viper when the server is wired.
type serveConfig struct {
	dataDir             string
	logJSON             bool          // log.format=json
	retentionInterval   time.Duration // retention.interval
	maintenanceInterval time.Duration // storage.maintenance_interval
	shutdownTimeout     time.Duration // shutdown_timeout
}

func readServeConfig(v *viper.Viper) serveConfig {
	return serveConfig{
		dataDir:             v.GetString("data_dir"),
		logJSON:             v.GetString("log.format") == "json",
		retentionInterval:   v.GetDuration("retention.interval"),
		maintenanceInterval: v.GetDuration("storage.maintenance_interval"),
		shutdownTimeout:     v.GetDuration("shutdown_timeout"),
	}
}

// newServer opens the storage and wires the server; replay is told how the
// write-ahead log replay progresses.
func newServer(logger *slog.Logger, v *viper.Viper, tlsConfig *tls.Config, replay func(wal.Progress)) (_ *server, err error) {
	dataDir := v.GetString("data_dir")
	// Settings read from files are checked before anything is opened.
	tokens, err := authTokens(v)
	if err != nil {
		return nil, err
	}
	otlpOpts := otlpOptions(v)
	if err := otlpOpts.Validate(); err != nil {
		return nil, err
	}
	legacyNames := v.GetString("ingest.name_validation") == "legacy"
	if legacyNames && otlpOpts.KeepsUTF8() {
		return nil, fmt.Errorf("otlp.translation_strategy %s keeps names that ingest.name_validation legacy refuses: choose an UnderscoreEscaping strategy or utf8 names", otlpOpts.TranslationStrategy)
	}
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	// Nothing in the data dir is read or written before the lock is held.
	lock, err := buffer.LockDir(dataDir)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = lock.Release()
		}
	}()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	storeOpts, compactOpts, err := storageOptions(v)
	if err != nil {
		return nil, err
	}
	storeOpts.ReplayProgress = replay
	// A flush's transient copy of the head goes back to the OS at once, so
	// RSS stays flat across flushes (docs/benchmarks.md).
	storeOpts.ReleaseMemory = true
	set, err := segments.OpenSet(logger, filepath.Join(dataDir, "segments"))
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = set.Close()
		}
	}()
	compactor, err := segments.NewCompactor(logger, set, compactOpts, reg)
	if err != nil {
		return nil, err
	}
	store, err := buffer.OpenStore(logger, dataDir, storeOpts, set, reg)
	if err != nil {
		return nil, err
	}
	head := store.Head()
	registerStorageMetrics(reg, store, set)

	policy := retention.Policy{
		Raw: v.GetDuration("retention.raw"), FiveMinute: v.GetDuration("retention.5m"), OneHour: v.GetDuration("retention.1h"),
		MaxBytes: v.GetInt64("retention.max_bytes"),
	}
	enforcer, err := retention.New(logger, set, policy, time.Now, reg)
	if err != nil {
		return nil, err
	}

	tier, err := openTier(logger, v, set, store, compactOpts, policy, reg)
	if err != nil {
		return nil, err
	}
	queryable := query.NewQueryable(head, set)
	var readyDetail func() string
	if tier != nil {
		queryable.Remote = tier
		readyDetail = tierDetail(tier)
	}
	queryable.MinTime = func(res int64) int64 { return policy.MinTime(res, time.Now()) }
	queryable.MaxSelectBytes = v.GetInt64("query.max_select_bytes")
	queryable.MaxSelectSeries = v.GetInt("query.max_series")
	engine, err := query.NewEngine(logger, reg, queryable, query.Options{
		Timeout:            v.GetDuration("query.timeout"),
		MaxSamples:         v.GetInt("query.max_samples"),
		LookbackDelta:      v.GetDuration("query.lookback_delta"),
		MaxPointsPerSeries: v.GetInt("query.max_points_per_series"),
		Shards:             v.GetInt("query.shards"),
	})
	if err != nil {
		return nil, err
	}
	scrubOpts := segments.ScrubOptions{BytesPerSecond: v.GetInt64("storage.scrub.bytes_per_second"), Pause: v.GetDuration("storage.scrub.pause")}
	if err := scrubOpts.Validate(); err != nil {
		return nil, err
	}
	scrubber := segments.NewScrubber(logger, set, scrubOpts, segments.NewScrubMetrics(reg))
	srv := &server{cfg: readServeConfig(v), logger: logger, reg: reg, store: store, set: set, compactor: compactor, retention: enforcer, scrubber: scrubber, tls: tlsConfig, lock: lock, tier: tier}
	if v.GetBool("downsample.enabled") {
		srv.rollups, err = downsample.New(logger, set, downsample.Options{
			Raw5mAfter: v.GetDuration("downsample.raw_to_5m_after"), FiveM1hAfter: v.GetDuration("downsample.5m_to_1h_after"),
		}, reg)
		if err != nil {
			return nil, fmt.Errorf("downsample: %w", err)
		}
	}
	if err := srv.openCache(v, filepath.Join(dataDir, "cache"), engine, policy); err != nil {
		return nil, err
	}
	enforcer.OnDrop = srv.invalidateDropped
	if tier != nil && v.GetString("role") == "reader" {
		tier.OnNewSegments(srv.invalidateNewSegment)
	}
	var cacheAdmin api.CacheAdmin
	if srv.cache != nil {
		cacheAdmin = cacheStatus{srv.cache, srv.frontend}
	}
	var deleter api.Deleter
	if v.GetString("role") != "reader" {
		// A reader deletes nothing: deletes are made on the writer, whose
		// tombstones reach the readers through the bucket.
		d := &query.Deleter{Store: store, Set: set, Queryable: queryable, Frontend: srv.frontend}
		if tier != nil {
			d.Remote = tier
		}
		deleter = d
	}
	dashboards, err := docstore.Open(filepath.Join(dataDir, "dashboards"))
	if err != nil {
		return nil, err
	}
	srv.api, err = api.New(logger, reg, reg, store, srv.frontend, queryable, api.Options{
		MaxBodyBytes:   v.GetInt64("limits.max_body_bytes"),
		MaxQuerySeries: v.GetInt("query.max_series"),
		MaxFutureSkew:  v.GetDuration("limits.max_future_skew"),
		MaxSampleAge:   v.GetDuration("limits.max_sample_age"),
		IngestLimits: ingest.Limits{
			MaxSeriesPerRequest:  v.GetInt("limits.max_series_per_request"),
			MaxSamplesPerRequest: v.GetInt("limits.max_samples_per_request"),
			MaxLabelsPerSeries:   v.GetInt("limits.max_labels_per_series"),
			MaxLabelNameLength:   v.GetInt("limits.max_label_name_length"),
			MaxLabelValueLength:  v.GetInt("limits.max_label_value_length"),
			LegacyNames:          legacyNames,
		},
		OTLP:        otlpOpts,
		Build:       buildInfo(),
		EnableAdmin: v.GetBool("enable_admin_api"),
		Flusher:     store,
		Deleter:     deleter,
		Cache:       cacheAdmin,
		Jobs: map[string]func(context.Context) (any, error){
			"retention":  func(ctx context.Context) (any, error) { return srv.runRetention(ctx) },
			"downsample": func(ctx context.Context) (any, error) { return srv.runDownsample(ctx) },
			"compaction": func(ctx context.Context) (any, error) { return srv.runCompaction(ctx) },
			"upload":     func(ctx context.Context) (any, error) { return srv.runUpload(ctx) },
		},
		Config:     effectiveConfig(v),
		StartTime:  time.Now(),
		GOGC:       readRuntimePolicy(v, os.LookupEnv, cgroupMemoryLimit).gogc(),
		TSDBStatus: func(limit int) api.TSDBStatus { return tsdbStatus(store, set, limit) },
		WALReplay: func() api.WALReplay {
			p := store.ReplayStatus()
			return walReplayStatus(&p)
		},
		UI: web.Handler(),
		Concurrency: api.ConcurrencyLimits{
			MaxQueries: v.GetInt("limits.max_concurrent_queries"), MaxQueuedQueries: v.GetInt("limits.max_queued_queries"),
			MaxWrites: v.GetInt("limits.max_concurrent_writes"), MaxQueuedWrites: v.GetInt("limits.max_queued_writes"),
			QueueTimeout: v.GetDuration("limits.queue_timeout"),
		},
		Tokens:      tokens,
		Snapshot:    srv.snapshot,
		Ready:       store.WALErr,
		ReadOnly:    readOnlyReason(v),
		ReadyDetail: readyDetail,
		Dashboards:  dashboards,
		Metadata:    head.Metadata(),
		Exemplars:   head.Exemplars(),
	})
	if err != nil {
		return nil, err
	}
	return srv, nil
}

// frontendOptions maps the configuration into the query frontend's
// options.
func frontendOptions(v *viper.Viper) query.FrontendOptions {
	return query.FrontendOptions{
		SplitInterval: v.GetDuration("cache.split_interval"), Freshness: v.GetDuration("cache.freshness"),
		MaxParallel: v.GetInt("query.max_parallel"), MaxParallelTotal: v.GetInt("query.max_parallel_total"),
		// Whether rollups are built changes which resolution a query reads;
		// a reader answers from its bucket alone, not from a writer's head
		// and local segments, so readers share extents with each other
		// only (docs/scaling.md).
		Fingerprint: fmt.Sprintf("downsample=%t", v.GetBool("downsample.enabled")) + readerFingerprint(v),
	}
}

// openCache creates (or loads from dir) the result cache and the frontend.
func (s *server) openCache(v *viper.Viper, dir string, engine *query.Engine, policy retention.Policy) error {
	fopts := frontendOptions(v)
	minTime := func(res query.Resolution) int64 { return policy.MinTime(max(int64(res), 0), time.Now()) }
	if !v.GetBool("cache.enabled") {
		f, err := query.NewFrontend(engine, nil, fopts, time.Now, minTime, 0)
		s.frontend = f
		return err
	}
	copts := cache.DefaultOptions()
	copts.MaxBytes = int(v.GetInt64("cache.max_bytes"))
	if copts.MaxBytes == 0 {
		copts.MaxBytes = defaultCacheBytes()
	}
	copts.TTL = v.GetDuration("cache.ttl")
	copts.Grace = v.GetDuration("cache.grace")
	if url := v.GetString("cache.l2.redis_url"); url != "" {
		copts.L2 = cache.L2Options{
			URL: url, Prefix: v.GetString("cache.l2.prefix"), OpTimeout: v.GetDuration("cache.l2.timeout"),
			PartnerLag: partnerLag(v.GetDuration("cache.l2.partner_lag")),
			Logger:     s.logger.With("component", "cache-l2"),
		}
	}
	c, err := cache.Load(dir, copts)
	var ce *cache.CorruptionError
	if errors.As(err, &ce) {
		s.logger.Warn("saved result cache is damaged; starting empty", "err", err)
		c, err = cache.New(copts)
	}
	if err != nil {
		return fmt.Errorf("result cache: %w", err)
	}
	s.cache = c
	s.reg.MustRegister(c.Collector())
	if s.frontend, err = query.NewFrontend(engine, c, fopts, time.Now, minTime, copts.TTL+copts.Grace); err != nil {
		return err
	}
	warm, err := query.ParseWarmQueries(v.GetString("cache.warm_queries"))
	if err != nil {
		return fmt.Errorf("cache.warm_queries: %w", err)
	}
	if len(warm) > 0 {
		s.warmer = query.NewWarmer(s.logger, s.frontend, warm, v.GetDuration("cache.warm_pause"))
		s.frontend.OnInvalidate = s.warmer.Kick
	}
	return nil
}

// partnerLag maps cache.l2.partner_lag to cache.L2Options.PartnerLag,
// where zero means the default and a negative value means off.
func partnerLag(d time.Duration) time.Duration {
	if d <= 0 {
		return -1
	}
	return d
}

// defaultCacheBytes is an eighth of the machine's memory, at least 32 MiB;
// 256 MiB where the memory size is unknown.
func defaultCacheBytes() int {
	total, ok := totalMemory()
	if !ok {
		return 256 << 20
	}
	return max(32<<20, int(total/8))
}

// invalidateDropped bumps the cache tags of the data retention deleted.
func (s *server) invalidateDropped(rep retention.Report) {
	for _, d := range rep.Dropped {
		// Made here in any case; one that cannot be made durable is
		// logged by the cache, and a partner applies the same retention.
		_ = s.frontend.Invalidate(d.MetricNames, d.MinTime, d.MaxTime)
	}
}

// invalidateNewSegment bumps the cache tags of a segment a reader found
// new in the bucket: answers cached before it (by this reader or, through
// the L2, by any instance) are recomputed with it.
func (s *server) invalidateNewSegment(names []string, mint, maxt int64) {
	if err := s.frontend.Invalidate(names, mint, maxt); err != nil {
		// Made here all the same; the other readers find the segment and
		// bump the tags themselves.
		s.logger.Warn("invalidate the cached answers a new bucket segment changes", "err", err)
	}
}

// cacheStatus adapts the cache to the API's status endpoint.
type cacheStatus struct {
	c *cache.Cache
	f *query.Frontend
}

func (c cacheStatus) Invalidate(tag string) error { return c.c.Invalidate(tag) }
func (c cacheStatus) Reset() error                { return c.c.Reset() }
func (c cacheStatus) Status() api.CacheStatus {
	st := c.c.Stats()
	lookups := st.Hits + st.Stale + st.Misses
	ratio := 0.0
	if lookups > 0 {
		ratio = float64(st.Hits+st.Stale) / float64(lookups)
	}
	return api.CacheStatus{
		Entries: st.Entries, Bytes: st.Bytes, MaxBytes: st.MaxBytes, EvictedBytes: st.EvictedBytes,
		Hits: st.Hits, PartialHits: st.PartialHits, Misses: st.Misses, StaleServed: st.Stale,
		SharedWaits: st.SharedWaits, Computations: st.Computations, ExtentEvaluations: c.f.Evaluations(), Refreshes: st.Refreshes,
		RefreshFailures: st.RefreshFailures, Invalidations: st.Invalidations, HitRatio: ratio,
		Generation: st.Generation,
		L2Enabled:  st.L2Enabled, L2Connected: st.L2Connected, L2Hits: st.L2Hits, L2Misses: st.L2Misses,
		L2Errors: st.L2Errors, L2Writes: st.L2Writes, L2WritesDropped: st.L2WritesDropped,
		L2LockWaits: st.L2LockWaits, L2Resyncs: st.L2Resyncs, L2Unshared: st.L2Unshared,
	}
}

// runDownsample builds the rollups that are due now, serialised with
// flushes and compaction.
func (s *server) runDownsample(ctx context.Context) (map[string]int, error) {
	if s.rollups == nil {
		return nil, errors.New("downsampling is disabled (downsample.enabled=false)")
	}
	var (
		n   int
		err error
	)
	s.store.Exclusive(func() { n, err = s.downsample(ctx) })
	return map[string]int{"rollupsWritten": n}, err
}

// downsample builds the rollups that are due; the frontend forgets the
// cached answers they change.
func (s *server) downsample(ctx context.Context) (int, error) {
	return s.frontend.InvalidateNewRollups(s.logger, s.set, func() (int, error) { return s.rollups.Run(ctx) })
}

// runRetention applies the retention policy now, serialised with flushes
// and compaction.
func (s *server) runRetention(ctx context.Context) (retention.Report, error) {
	var (
		rep retention.Report
		err error
	)
	s.store.Exclusive(func() { rep, err = s.retention.Run(ctx) })
	return rep, err
}

// compactionReport is what POST /api/v1/admin/compaction/run answers.
type compactionReport struct {
	Compactions int `json:"compactions"`
}

// runCompaction runs every compaction due now (merges within a block, day
// segments of days that are over, rewrites for tombstones), under the
// store's flush lock as the maintenance loop does.
func (s *server) runCompaction(ctx context.Context) (compactionReport, error) {
	var (
		n   int
		err error
	)
	s.store.Exclusive(func() { n, err = s.compactor.Compact(ctx) })
	return compactionReport{Compactions: n}, err
}

// storageOptions maps the config onto the store's and compactor's options.
func storageOptions(v *viper.Viper) (buffer.StoreOptions, segments.CompactOptions, error) {
	o := buffer.DefaultStoreOptions()
	o.Head.ChunkSamples = v.GetInt("head.chunk_samples")
	o.Head.MaxSeries = v.GetInt("limits.max_series")
	o.Head.MaxMetadataFamilies = v.GetInt("storage.metadata.max_families")
	o.Head.MaxExemplars = v.GetInt("storage.exemplars.max")
	o.MaxHeadSamples = v.GetInt64("head.max_samples")
	block := v.GetDuration("storage.block_duration").Milliseconds()
	o.BlockDuration = block
	if block < o.Head.ChunkRange {
		o.Head.ChunkRange = block // chunks must not cross block boundaries
	}
	mode, err := wal.ParseSyncMode(v.GetString("wal.sync"))
	if err != nil {
		return o, segments.CompactOptions{}, fmt.Errorf("wal.sync: %w", err)
	}
	o.WAL.SyncMode = mode
	o.WAL.SyncInterval = v.GetDuration("wal.sync_interval")
	o.WAL.SegmentSize = v.GetInt64("wal.segment_size")
	o.StrictWAL = v.GetBool("storage.wal.strict")

	var c segments.CompactOptions
	c.ChunkSamples = o.Head.ChunkSamples
	for _, part := range strings.Split(v.GetString("storage.compaction_ranges"), ",") {
		d, err := time.ParseDuration(strings.TrimSpace(part))
		if err != nil {
			return o, c, fmt.Errorf("storage.compaction_ranges: %w", err)
		}
		c.Ranges = append(c.Ranges, d.Milliseconds())
	}
	if len(c.Ranges) == 0 || c.Ranges[0] != block {
		return o, c, fmt.Errorf("storage.compaction_ranges %q: the first range must equal storage.block_duration (%s)", v.GetString("storage.compaction_ranges"), v.GetDuration("storage.block_duration"))
	}
	if err := o.Validate(); err != nil {
		return o, c, err
	}
	return o, c, c.Validate()
}

func registerStorageMetrics(reg prometheus.Registerer, store *buffer.Store, set *segments.Set) {
	h := store.Head()
	reg.MustRegister(
		set.PageCache(),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "strata_head_series", Help: "Series in the head."},
			func() float64 { return float64(h.NumSeries()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "strata_head_samples", Help: "Samples held in the head."},
			func() float64 { return float64(h.SamplesInHead()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "strata_head_sample_cost", Help: "What the samples held in the head weigh against head.max_samples: a float 1, a native histogram its size, (bytes + 8) / 16."},
			func() float64 { return float64(h.SampleCostInHead()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "strata_head_samples_appended_total", Help: "Samples appended to the head."},
			func() float64 { return float64(h.NumSamples()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "strata_head_out_of_order_samples_total", Help: "Samples appended out of time order."},
			func() float64 { return float64(h.NumOutOfOrder()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "strata_exemplars", Help: "Exemplars held (at most storage.exemplars.max)."},
			func() float64 { return float64(h.Exemplars().Len()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "strata_metadata_families", Help: "Metric families with metadata held (at most storage.metadata.max_families)."},
			func() float64 { return float64(h.Metadata().Len()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "strata_metadata_dropped_total", Help: "Metadata entries not kept because storage.metadata.max_families was reached, counted per write that carried them."},
			func() float64 { return float64(h.Metadata().Dropped()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "strata_wal_bytes", Help: "Bytes on disk of the write-ahead log."},
			func() float64 { return float64(store.WALSize()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "strata_segments", Help: "Segments on disk."},
			func() float64 { return float64(len(set.Segments())) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "strata_segments_quarantined", Help: "Damaged segments moved to segments/quarantine (at start, by a read or by the scrub), kept for inspection."},
			func() float64 { return float64(set.Quarantined()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "strata_segment_bytes", Help: "Bytes on disk of all segments."},
			func() float64 {
				var n int64
				for _, in := range set.Segments() {
					n += in.Size
				}
				return float64(n)
			}),
	)
}

// tsdbStatus gathers what /api/v1/status/tsdb reports.
func tsdbStatus(store *buffer.Store, set *segments.Set, limit int) api.TSDBStatus {
	h := store.Head()
	mint, maxt := h.Bounds()
	card := h.Cardinality(limit)
	stats := func(in []buffer.CardinalityStat) []api.TSDBStat {
		out := make([]api.TSDBStat, len(in))
		for i, s := range in {
			out[i] = api.TSDBStat(s)
		}
		return out
	}
	st := api.TSDBStatus{
		NumLabelPairs:               card.NumLabelPairs,
		SeriesCountByMetricName:     stats(card.SeriesCountByMetricName),
		LabelValueCountByLabelName:  stats(card.LabelValueCountByLabelName),
		MemoryInBytesByLabelName:    stats(card.MemoryInBytesByLabelName),
		SeriesCountByLabelValuePair: stats(card.SeriesCountByLabelValuePair),
		HeadSeries:                  h.NumSeries(),
		HeadSamples:                 h.SamplesInHead(),
		HeadMinTime:                 mint,
		HeadMaxTime:                 maxt,
		WALBytes:                    store.WALSize(),
	}
	if mint > maxt {
		st.HeadMinTime, st.HeadMaxTime = 0, 0
	}
	for _, in := range set.Segments() {
		st.Segments = append(st.Segments, api.SegmentStatus{
			ID: in.Meta.ID, MinTime: in.Meta.MinTime, MaxTime: in.Meta.MaxTime, Resolution: in.Meta.Resolution,
			Series: in.Meta.NumSeries, Samples: in.Meta.NumSamples, Bytes: in.Size, Level: in.Meta.Compaction.Level,
		})
		st.SegmentBytes += in.Size
		st.SegmentSamples += in.Meta.NumSamples
	}
	return st
}

// serve listens, serves until ctx is done, then shuts down gracefully.
//
// l has listened since before the storage was opened; serve hands it the
// API, which makes the server ready.
func (s *server) serve(ctx context.Context, stdout io.Writer, started func(string), l *listener) error {
	apiHandler := s.api.Handler()
	l.api.Store(&apiHandler)
	hs, errc, handlers := l.hs, l.errc, &l.handlers
	url := l.url
	s.logger.Info("strata started", "version", version, "listen", url, "data_dir", s.cfg.dataDir)
	banner := fmt.Sprintf("Strata is listening on %s/ (dashboard), push to %s/api/v1/write", url, url)
	if s.cfg.logJSON {
		// In JSON mode every line is JSON, the banner on stdout too.
		slog.New(slog.NewJSONHandler(stdout, nil)).Info(banner, "dashboard", url+"/", "write", url+"/api/v1/write")
	} else {
		fmt.Fprintln(stdout, banner)
	}
	if started != nil {
		started(l.ln.Addr().String())
	}

	mctx, stopMaintenance := context.WithCancel(context.Background())
	if s.tier != nil {
		s.tier.Start()
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.store.Run(mctx, s.cfg.maintenanceInterval, s.maintain)
	}()
	s.scrubber.Start()
	if s.warmer != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.warmer.Run(mctx)
		}()
	}

	var serveErr error
	select {
	case err := <-errc:
		serveErr = fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
		if sig := (signalCause{}); errors.As(context.Cause(ctx), &sig) {
			s.logger.Info("received "+sig.sig.String()+", shutting down gracefully (send it again to exit at once)", "signal", sig.sig.String())
		}
	}
	s.logger.Info("shutting down: finishing in-flight requests")
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.shutdownTimeout)
	defer cancel()
	handlersDone := true
	if err := hs.Shutdown(sctx); err != nil {
		s.logger.Warn("in-flight requests did not finish in time; closing their connections", "err", err)
		// Closing a connection cancels its request's context, which stops
		// queries and the waits of queued requests.
		_ = hs.Close()
		handlersDone = waitIdle(handlers, 5*time.Second)
	}
	stopMaintenance()
	s.scrubber.Stop()
	wg.Wait()
	if s.tier != nil {
		if err := s.tier.Close(); err != nil {
			serveErr = errors.Join(serveErr, fmt.Errorf("close object storage tier: %w", err))
		}
	}
	if !handlersDone {
		// Closing the storage under a running handler could crash it; the
		// write-ahead log already holds every acknowledged write, so
		// leaving the head unflushed loses nothing.
		return errors.Join(serveErr, errors.New("requests still running after the shutdown timeout; exiting without flushing the head (the write-ahead log keeps its data)"))
	}
	// Every acknowledged write is in the log already; flushing now only
	// makes the next start quick. The flush is not bounded by the
	// shutdown timeout (a second signal stops the process at once).
	if err := s.store.Close(context.Background()); err != nil {
		serveErr = errors.Join(serveErr, fmt.Errorf("close store: %w", err))
	}
	if err := s.set.Close(); err != nil {
		serveErr = errors.Join(serveErr, fmt.Errorf("close segments: %w", err))
	}
	if s.cache != nil {
		if err := s.cache.Save(filepath.Join(s.cfg.dataDir, "cache")); err != nil {
			s.logger.Warn("save result cache", "err", err)
		}
		if err := s.cache.Close(); err != nil {
			serveErr = errors.Join(serveErr, fmt.Errorf("close cache: %w", err))
		}
	}
	if err := s.lock.Release(); err != nil {
		serveErr = errors.Join(serveErr, fmt.Errorf("release data dir lock: %w", err))
	}
	s.logger.Info("stopped")
	return serveErr
}

// maintain runs the background work that follows a flush check; the store
// holds its flush lock around it.
func (s *server) maintain(ctx context.Context) {
	if time.Since(s.lastRetention) >= s.cfg.retentionInterval {
		s.lastRetention = time.Now()
		// Roll up before retention deletes the raw data the rollups need.
		if s.rollups != nil {
			if _, err := s.downsample(ctx); err != nil && ctx.Err() == nil {
				s.logger.Error("downsample", "err", err)
			}
		}
		if _, err := s.retention.Run(ctx); err != nil && ctx.Err() == nil {
			s.logger.Error("apply retention", "err", err)
		}
	}
	if _, err := s.compactor.Compact(ctx); err != nil && ctx.Err() == nil {
		s.logger.Error("compact segments", "err", err)
	}
	if s.tier != nil {
		s.tier.Kick() // a compacted day is final
	}
}

// runUpload runs one object storage round now: uploads, bucket deletions,
// local evictions.
func (s *server) runUpload(ctx context.Context) (remote.Status, error) {
	if s.tier == nil {
		return remote.Status{}, errors.New("object storage is off (storage.object.url is empty)")
	}
	err := s.tier.Sync(ctx)
	return s.tier.Status(), err
}

// effectiveConfig renders every option's value in effect. Keys whose name
// says they hold a secret are masked.
func effectiveConfig(v *viper.Viper) map[string]string {
	out := make(map[string]string, len(options))
	for _, o := range options {
		val := optionText(v, o)
		if isSecretKey(o.key) && val != "" {
			val = "<secret>"
		}
		out[o.key] = val
	}
	return out
}

func isSecretKey(k string) bool {
	for _, w := range []string{"token", "password", "secret", "redis_url"} {
		if strings.Contains(k, w) {
			return true
		}
	}
	return false
}

// authTokens reads the role tokens, each from auth.<role>_token or the file
// named by auth.<role>_token_file (surrounding whitespace trimmed).
func authTokens(v *viper.Viper) (api.Tokens, error) {
	var t api.Tokens
	for _, r := range []struct {
		role string
		dst  *string
	}{{"read", &t.Read}, {"write", &t.Write}, {"admin", &t.Admin}} {
		key := "auth." + r.role + "_token"
		val, file := v.GetString(key), v.GetString(key+"_file")
		switch {
		case val != "" && file != "":
			return t, fmt.Errorf("%s and %s_file are both set: use one", key, key)
		case file != "":
			b, err := os.ReadFile(file)
			if err != nil {
				return t, fmt.Errorf("%s_file: %w", key, err)
			}
			if val = strings.TrimSpace(string(b)); val == "" {
				return t, fmt.Errorf("%s_file %s is empty", key, file)
			}
		}
		*r.dst = val
	}
	return t, t.Validate()
}

// loadTLS loads tls.cert_file and tls.key_file; nil means plain HTTP.
func loadTLS(v *viper.Viper) (*tls.Config, error) {
	cert, key := v.GetString("tls.cert_file"), v.GetString("tls.key_file")
	if cert == "" && key == "" {
		return nil, nil
	}
	if cert == "" || key == "" {
		return nil, errors.New("tls.cert_file and tls.key_file must be set together")
	}
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		return nil, fmt.Errorf("load TLS certificate: %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}, nil
}

// waitIdle waits until n is zero or d passed, and reports whether n is zero.
func waitIdle(n *atomic.Int64, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for n.Load() > 0 {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

// snapshot flushes the head, then hard-links every segment and copies the
// tombstones into <data_dir>/snapshots/<name>/segments, a directory that
// can replace <data_dir>/segments on restore. Segments are immutable, so a
// link is a copy that costs no space until the original is deleted.
func (s *server) snapshot(ctx context.Context) (string, error) {
	if err := s.store.Flush(ctx); err != nil {
		return "", fmt.Errorf("flush: %w", err)
	}
	name := fmt.Sprintf("%s-%08x", time.Now().UTC().Format("20060102T150405Z"), mathrand.Uint32())
	dir := filepath.Join(s.cfg.dataDir, "snapshots", name)
	var err error
	// No compaction, retention or flush changes the set while linking.
	s.store.Exclusive(func() { err = segments.LinkSnapshot(s.set.Dir(), s.set.Segments(), filepath.Join(dir, "segments")) })
	if err != nil {
		_ = os.RemoveAll(dir)
		return "", err
	}
	return dir, nil
}

// otlpOptions maps the otlp.* options, the otlp: section of Prometheus'
// configuration, onto the OTLP translator's options.
func otlpOptions(v *viper.Viper) ingest.OTLPOptions {
	return ingest.OTLPOptions{
		TranslationStrategy:               v.GetString("otlp.translation_strategy"),
		PromoteResourceAttributes:         listOption(v, "otlp.promote_resource_attributes"),
		PromoteAllResourceAttributes:      v.GetBool("otlp.promote_all_resource_attributes"),
		IgnoreResourceAttributes:          listOption(v, "otlp.ignore_resource_attributes"),
		KeepIdentifyingResourceAttributes: v.GetBool("otlp.keep_identifying_resource_attributes"),
		ConvertHistogramsToNHCB:           v.GetBool("otlp.convert_histograms_to_nhcb"),
		PromoteScopeMetadata:              v.GetBool("otlp.promote_scope_metadata"),
		LookbackDelta:                     v.GetDuration("query.lookback_delta"),
	}
}
