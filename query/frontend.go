package query

import (
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/prometheus/prometheus/promql/parser"

	"github.com/strata-tsdb/strata/cache"
)

// The frontend is split by concern:
//
//	frontend.go             options, the Frontend type, statuses
//	frontend_plan.go        parsing, tags, data ranges, cacheability, keys
//	frontend_range.go       the range path: extents, runs of misses, merge
//	frontend_memo.go        what a range query's text and window give, kept
//	frontend_instant.go     the instant path
//	frontend_invalidate.go  tag bumps for writes, deletes and retention
//	merge.go                matrix and annotation merging
//
// The cache rules, in one place (frontend_plan.go has the code):
//   - an extent (or instant answer) is cached only if every sample it reads
//     is older than now - Freshness: the data range of each step comes from
//     promql.FindMinMaxTime, which applies offsets (negative ones too) and
//     @, so those are handled like any other selector, not refused;
//   - and only if its data stays inside the retention of the resolution it
//     reads for as long as the entry may be served (TTL + grace);
//   - it is tagged with the metric names its selectors can touch and the
//     UTC days of its data range; writes older than the freshness window,
//     deletes and retention bump those tags;
//   - its key holds a fingerprint of everything that shapes answers
//     (lookback delta, engine options, resolution rules, value format,
//     FrontendOptions.Fingerprint), so a saved or shared (Redis) entry of
//     another configuration is never read.

// CacheStatus says how the frontend answered a query; the API sends it as
// the X-Strata-Cache header.
type CacheStatus string

// The statuses, in the order of how much of the answer came from the cache.
const (
	CacheHit     CacheStatus = "hit"     // every extent from the cache
	CacheStale   CacheStatus = "stale"   // from the cache, some past their TTL (being refreshed)
	CachePartial CacheStatus = "partial" // some from the cache, some computed
	CacheMiss    CacheStatus = "miss"    // all computed
	CacheBypass  CacheStatus = "bypass"  // the cache was not consulted
)

// FrontendOptions configures the range-query frontend.
type FrontendOptions struct {
	// SplitInterval is the length of the extents a range query is split
	// into, aligned to multiples of it since the epoch (UTC days for the
	// default). A query whose step is at least this long is not split (or
	// cached). Zero means 24 h.
	SplitInterval time.Duration
	// Freshness is how far back from now data is never cached: data that
	// recent may still change without a tag being bumped. Zero means 60 s.
	Freshness time.Duration
	// MaxParallel is how many runs of missing extents of one query are
	// evaluated at once. Zero means GOMAXPROCS; 1 evaluates each run of
	// contiguous missing extents in one engine call.
	MaxParallel int
	// MaxParallelTotal bounds the evaluations of missing extents running
	// at once over all queries. Zero means GOMAXPROCS.
	MaxParallelTotal int
	// Fingerprint describes the settings outside the engine that shape
	// answers (rollup and retention rules, say); it goes into every cache
	// key with the engine's own settings. Empty is fine.
	Fingerprint string
}

// DefaultFrontendOptions returns the options used for fields left zero.
func DefaultFrontendOptions() FrontendOptions {
	return FrontendOptions{
		SplitInterval: 24 * time.Hour, Freshness: time.Minute,
		MaxParallel: runtime.GOMAXPROCS(0), MaxParallelTotal: runtime.GOMAXPROCS(0),
	}
}

// Validate reports the first option out of range.
func (o FrontendOptions) Validate() error {
	if o.SplitInterval < 0 || o.Freshness < 0 {
		return errors.New("split interval and freshness must not be negative")
	}
	if o.SplitInterval != 0 && o.SplitInterval < time.Minute {
		return fmt.Errorf("split interval %s: must be at least 1m", o.SplitInterval)
	}
	if o.MaxParallel < 0 || o.MaxParallelTotal < 0 {
		return errors.New("parallelism must not be negative")
	}
	return nil
}

// Result is a query's answer as the frontend gives it.
type Result struct {
	Value           parser.Value
	Warnings, Infos []string
	Cache           CacheStatus
	// Resolution is the data the answer was computed from.
	Resolution Resolution
}

// Frontend answers queries through the result cache: a range query is split
// into extents on a fixed interval whose boundaries lie on the query's step
// grid, each extent is looked up, computed or extended, and the pieces are
// merged. Every cached extent is tagged with the metric names its selectors
// can touch and the UTC days its data range covers; writes older than the
// freshness window, deletes and retention bump those tags, so a cached
// answer is always the answer the engine would give now.
type Frontend struct {
	engine *Engine
	cache  *cache.Cache // nil: every query bypasses
	opts   FrontendOptions
	now    func() time.Time
	// minTime returns the retention bound (ms) of data of a resolution
	// now; nil: none.
	minTime func(Resolution) int64
	// slack is how long a stored extent may be served (TTL + grace): an
	// extent is cached only if its data stays inside retention that long.
	slack time.Duration
	// fingerprint starts every cache key: the settings that shape answers.
	fingerprint string
	// sem bounds the evaluations of missing extents over all queries.
	sem chan struct{}
	// memo keeps range queries' analyses (frontend_memo.go).
	memo *rangeMemo
	// evals counts the engine evaluations made for cacheable queries.
	evals atomic.Uint64
	// OnInvalidate, when set, is called after tags were bumped (a Warmer's
	// Kick). Set it before the frontend is used.
	OnInvalidate func()
}

// NewFrontend returns a frontend over engine and c (which may be nil).
// now is the clock (nil: time.Now); minTime gives the oldest timestamp (ms)
// inside retention of data of a resolution, ResolutionRaw for raw data
// (nil: none); slack is the cache's TTL + grace.
func NewFrontend(engine *Engine, c *cache.Cache, opts FrontendOptions, now func() time.Time, minTime func(Resolution) int64, slack time.Duration) (*Frontend, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	d := DefaultFrontendOptions()
	if opts.SplitInterval == 0 {
		opts.SplitInterval = d.SplitInterval
	}
	if opts.Freshness == 0 {
		opts.Freshness = d.Freshness
	}
	if opts.MaxParallel == 0 {
		opts.MaxParallel = d.MaxParallel
	}
	if opts.MaxParallelTotal == 0 {
		opts.MaxParallelTotal = d.MaxParallelTotal
	}
	if now == nil {
		now = time.Now
	}
	f := &Frontend{
		engine: engine, cache: c, opts: opts, now: now, minTime: minTime, slack: slack,
		sem: make(chan struct{}, opts.MaxParallelTotal), memo: &rangeMemo{},
	}
	f.fingerprint = configFingerprint(engine.opts, opts)
	return f, nil
}

// Engine returns the engine the frontend evaluates with.
func (f *Frontend) Engine() *Engine { return f.engine }

// cutoff returns the last timestamp (ms) of data that may be cached now.
func (f *Frontend) cutoff() int64 { return f.now().Add(-f.opts.Freshness).UnixMilli() - 1 }

func (f *Frontend) invalidated() {
	if f.OnInvalidate != nil {
		f.OnInvalidate()
	}
}

// Evaluations returns the number of engine evaluations the frontend made
// to answer range queries through the cache (missing extents, extensions,
// refreshes, uncached tails); not those of queries that bypass the cache,
// nor of instant queries.
func (f *Frontend) Evaluations() uint64 { return f.evals.Load() }
