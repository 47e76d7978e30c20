package query

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/strata-tsdb/strata/cache"
	"github.com/strata-tsdb/strata/ingest"
)

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
	// default). Zero means 24 h.
	SplitInterval time.Duration
	// Freshness is how far back from now results are never cached: data
	// that recent may still change without a tag being bumped. Zero means
	// 60 s.
	Freshness time.Duration
}

// DefaultFrontendOptions returns the options used for fields left zero.
func DefaultFrontendOptions() FrontendOptions {
	return FrontendOptions{SplitInterval: 24 * time.Hour, Freshness: time.Minute}
}

// Validate reports the first option out of range.
func (o FrontendOptions) Validate() error {
	if o.SplitInterval < 0 || o.Freshness < 0 {
		return errors.New("split interval and freshness must not be negative")
	}
	if o.SplitInterval != 0 && o.SplitInterval < time.Minute {
		return fmt.Errorf("split interval %s: must be at least 1m", o.SplitInterval)
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
	// minTime returns the retention bound of raw data now (ms); nil: none.
	minTime func() int64
	// slack is how long a stored extent may be served (TTL + grace): an
	// extent is cached only if its data stays inside retention that long.
	slack time.Duration
	// OnInvalidate, when set, is called after tags were bumped (a Warmer's
	// Kick). Set it before the frontend is used.
	OnInvalidate func()
}

func (f *Frontend) invalidated() {
	if f.OnInvalidate != nil {
		f.OnInvalidate()
	}
}

// NewFrontend returns a frontend over engine and c (which may be nil).
// now is the clock (nil: time.Now); minTime gives the oldest timestamp of
// raw data inside retention (nil: none); slack is the cache's TTL + grace.
func NewFrontend(engine *Engine, c *cache.Cache, opts FrontendOptions, now func() time.Time, minTime func() int64, slack time.Duration) (*Frontend, error) {
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
	if now == nil {
		now = time.Now
	}
	return &Frontend{engine: engine, cache: c, opts: opts, now: now, minTime: minTime, slack: slack}, nil
}

// Engine returns the engine the frontend evaluates with.
func (f *Frontend) Engine() *Engine { return f.engine }

// cutoff returns the last timestamp (ms) whose result may be cached now.
func (f *Frontend) cutoff() int64 { return f.now().Add(-f.opts.Freshness).UnixMilli() - 1 }

// plan is what the frontend knows of one query: its canonical text, the
// metric names its selectors touch, and how to find the data range of an
// evaluation window.
type plan struct {
	res   Resolution // the data the query reads
	norm  string
	names []string // metric names; "*" for a selector without a fixed name
	expr  parser.Expr
	lookb time.Duration
}

// newPlan parses qs; ok is false when the query depends on the query's own
// window (@ start(), @ end() and the like) and so cannot be split or cached.
func (f *Frontend) newPlan(qs string, start, end time.Time, step time.Duration) (*plan, bool, error) {
	p := f.engine.Parser()
	expr, err := p.ParseExpr(qs)
	if err != nil {
		return nil, false, wrapParseError(err)
	}
	norm := expr.String()
	pre, err := promql.PreprocessExpr(expr, start, end, step)
	if err != nil {
		return nil, false, wrapParseError(err)
	}
	// The same query over another window must preprocess to the same
	// expression, or its answer at a step depends on the window.
	other, err := p.ParseExpr(qs)
	if err != nil {
		return nil, false, wrapParseError(err)
	}
	shift := max(step, time.Minute)
	other, err = promql.PreprocessExpr(other, start.Add(shift), end.Add(2*shift), step)
	if err != nil || other.String() != pre.String() {
		return nil, false, nil
	}
	names := map[string]struct{}{}
	var dropsNames, relabels bool
	parser.Inspect(pre, func(n parser.Node, _ []parser.Node) error {
		switch n := n.(type) {
		case *parser.Call:
			dropsNames = true
			if n.Func.Name == "label_replace" || n.Func.Name == "label_join" {
				relabels = true
			}
		case *parser.BinaryExpr:
			dropsNames = true
		case *parser.VectorSelector:
			name := "*"
			for _, m := range n.LabelMatchers {
				if m.Name == labels.MetricName && m.Type == labels.MatchEqual {
					name = m.Value
				}
			}
			names[name] = struct{}{}
		}
		return nil
	})
	// The engine refuses a result holding two series with the same labels
	// anywhere in the whole range ("vector cannot contain metrics with the
	// same labelset"); evaluated in pieces, each piece may hold only one of
	// them and pass. That can happen when series of several names lose
	// their names, or when labels are rewritten: such queries are not split.
	if _, wildcard := names["*"]; relabels || wildcard && dropsNames {
		return nil, false, nil
	}
	pl := &plan{norm: norm, expr: pre, lookb: f.engine.opts.LookbackDelta}
	for n := range names {
		pl.names = append(pl.names, n)
	}
	slices.Sort(pl.names)
	return pl, true, nil
}

// maxTagDays bounds the days an extent is tagged with; a query reading
// more than that at once is not cached.
const maxTagDays = 800

// dataRange returns the span of data an evaluation over [start, end] reads;
// ok is false when it reads none.
func (p *plan) dataRange(start, end int64, step time.Duration) (int64, int64, bool) {
	mint, maxt := promql.FindMinMaxTime(&parser.EvalStmt{
		Expr: p.expr, Start: time.UnixMilli(start), End: time.UnixMilli(end), Interval: step, LookbackDelta: p.lookb,
	})
	if mint == math.MaxInt64 || maxt == math.MinInt64 || (mint == 0 && maxt == 0) {
		return 0, 0, false
	}
	return mint, maxt, true
}

// Tag returns the cache tag of a metric name ("*" for any) on a UTC day.
func Tag(name string, day time.Time) string {
	return "m:" + name + ":" + day.UTC().Format(time.DateOnly)
}

// tags returns the tags of data in [mint, maxt]; ok is false when there
// would be too many.
func (p *plan) tags(mint, maxt int64) ([]string, bool) {
	first := time.UnixMilli(mint).UTC().Truncate(24 * time.Hour)
	last := time.UnixMilli(maxt).UTC().Truncate(24 * time.Hour)
	days := int(last.Sub(first)/(24*time.Hour)) + 1
	if days > maxTagDays {
		return nil, false
	}
	out := make([]string, 0, days*len(p.names))
	for d := first; !d.After(last); d = d.Add(24 * time.Hour) {
		for _, n := range p.names {
			out = append(out, Tag(n, d))
		}
	}
	return out, true
}

// cacheableData reports whether data from mint stays inside retention for
// as long as an entry may be served.
func (f *Frontend) cacheableData(mint int64) bool {
	if f.minTime == nil {
		return true
	}
	return mint >= f.minTime()+f.slack.Milliseconds()
}

// Range answers a range query, through the cache unless bypass is set.
func (f *Frontend) Range(ctx context.Context, r RangeQuery, bypass bool) (*Result, error) {
	if err := r.Validate(f.engine.opts.MaxPointsPerSeries); err != nil {
		return nil, err
	}
	res, err := f.engine.ChooseResolution(r.Query, r.Start, r.End, r.Step, r.MaxSourceResolution)
	if err != nil {
		return nil, err
	}
	if bypass || f.cache == nil {
		return f.evalWhole(ctx, r, res)
	}
	pl, ok, err := f.newPlan(r.Query, r.Start, r.End, r.Step)
	if err != nil {
		return nil, err
	}
	if !ok {
		return f.evalWhole(ctx, r, res)
	}
	pl.res = res
	var (
		start, end = r.Start.UnixMilli(), r.End.UnixMilli()
		step       = r.Step.Milliseconds()
		split      = f.opts.SplitInterval.Milliseconds()
		cutoff     = f.cutoff()
		grid       = func(t int64) int64 { return start + floorDiv(t-start, step)*step } // last grid point ≤ t
		pieces     []promql.Matrix
		warnings   []string
		cached     int // pieces answered (at least partly) from the cache
		computed   int // pieces computed
		stale      bool
	)
	if step <= 0 {
		return f.evalWhole(ctx, r, res)
	}
	// Steps up to ce are old enough to cache, extent by extent; the rest
	// is computed in one piece.
	ce := min(end, grid(cutoff))
	if ce >= start {
		// With a shared L2 tier, fetch every extent in one round trip.
		var keys [][]byte
		for ws := alignDown(start, split); ws <= ce; ws += split {
			keys = append(keys, f.rangeKey(pl, step, mod(start, step), ws))
		}
		f.cache.Prefetch(ctx, keys)
	}
	for ws := alignDown(start, split); ws <= ce; ws += split {
		a := grid(ws - 1 + step) // first grid point ≥ ws
		if ws <= start {
			a = start
		}
		b := min(grid(ws+split-1), ce)
		if a > b {
			continue
		}
		m, w, st, err := f.extent(ctx, r, pl, ws, a, b)
		if err != nil {
			return nil, err
		}
		pieces, warnings = append(pieces, m), append(warnings, w...)
		switch st {
		case CacheHit:
			cached++
		case CacheStale:
			cached++
			stale = true
		case CachePartial:
			cached++
			computed++
		default:
			computed++
		}
	}
	if a := max(start, ce+step); a <= end {
		m, w, err := f.eval(ctx, r.Query, pl.res, a, end, r.Step)
		if err != nil {
			return nil, err
		}
		pieces, warnings = append(pieces, m), append(warnings, w...)
		computed++
	}
	status := CacheMiss
	switch {
	case cached > 0 && computed == 0 && stale:
		status = CacheStale
	case cached > 0 && computed == 0:
		status = CacheHit
	case cached > 0:
		status = CachePartial
		f.cache.RecordPartialHit()
	}
	return &Result{Value: mergeMatrices(pieces), Warnings: dedupStrings(warnings), Cache: status, Resolution: res}, nil
}

// evalWhole evaluates a range query on data of resolution res without the
// cache.
func (f *Frontend) evalWhole(ctx context.Context, r RangeQuery, res Resolution) (*Result, error) {
	out, err := f.engine.RangeAt(ctx, r, res)
	if err != nil {
		return nil, err
	}
	w, i := out.Warnings.AsStrings(r.Query, 10, 10)
	return &Result{Value: out.Value, Warnings: w, Infos: i, Cache: CacheBypass, Resolution: res}, nil
}

// eval evaluates the query on data of resolution res at the grid steps
// from a to b.
func (f *Frontend) eval(ctx context.Context, qs string, res Resolution, a, b int64, step time.Duration) (promql.Matrix, []string, error) {
	out, err := f.engine.RangeAt(ctx, RangeQuery{Query: qs, Start: time.UnixMilli(a), End: time.UnixMilli(b), Step: step}, res)
	if err != nil {
		return nil, nil, err
	}
	m, err := out.Matrix()
	if err != nil {
		return nil, nil, err
	}
	w, _ := out.Warnings.AsStrings(qs, 10, 0)
	return m, w, nil
}

// rangeKey is the cache key of the extent starting at ws: everything that
// decides its points.
func (f *Frontend) rangeKey(pl *plan, step, offset, ws int64) []byte {
	k := make([]byte, 0, 64+len(pl.norm))
	k = append(k, "r1\x00"...)
	k = append(k, pl.norm...)
	k = append(k, 0)
	k = strconv.AppendInt(k, step, 10)
	k = append(k, 0)
	k = strconv.AppendInt(k, offset, 10)
	k = append(k, 0)
	k = strconv.AppendInt(k, int64(pl.res), 10)
	k = append(k, 0)
	k = strconv.AppendInt(k, ws, 10)
	k = append(k, 0)
	return strconv.AppendInt(k, f.opts.SplitInterval.Milliseconds(), 10)
}

// extent answers the steps from a to b (all older than the freshness
// window) of the extent starting at ws, from the cache where it can.
func (f *Frontend) extent(ctx context.Context, r RangeQuery, pl *plan, ws, a, b int64) (promql.Matrix, []string, CacheStatus, error) {
	step := r.Step.Milliseconds()
	split := f.opts.SplitInterval.Milliseconds()
	// Tag by what the whole extent could ever read: its stored range only
	// grows inside [ws, ws+split).
	mint, maxt, reads := pl.dataRange(ws, ws+split-1, r.Step)
	var tags []string
	if reads {
		var ok bool
		if tags, ok = pl.tags(mint, maxt); !ok || !f.cacheableData(mint) {
			m, w, err := f.eval(ctx, r.Query, pl.res, a, b, r.Step)
			return m, w, CacheMiss, err
		}
	}
	key := f.rangeKey(pl, step, mod(r.Start.UnixMilli(), step), ws)
	// Taken before anything is read: a tag bumped from now on makes what
	// this call stores a miss.
	snap := f.cache.Snapshot()
	v, st, err := f.cache.GetOrCompute(ctx, key, tags, func(ctx context.Context) ([]byte, time.Duration, error) {
		m, w, err := f.eval(ctx, r.Query, pl.res, a, b, r.Step)
		if err != nil {
			return nil, 0, err
		}
		return appendExtent(nil, &extent{Key: key, Kind: 'm', From: a, To: b, Matrix: m, Warnings: w}), 0, nil
	})
	if err != nil {
		return nil, nil, "", err
	}
	e, derr := decodeExtent(v)
	if derr != nil || !bytes.Equal(e.Key, key) {
		// Never trust a value stored under another key.
		m, w, err := f.eval(ctx, r.Query, pl.res, a, b, r.Step)
		return m, w, CacheMiss, err
	}
	status := CacheHit
	switch st {
	case cache.StatusMiss, cache.StatusShared:
		status = CacheMiss
	case cache.StatusStale:
		status = CacheStale
	}
	if e.From <= a && e.To >= b {
		return trimMatrix(e.Matrix, a, b), e.Warnings, status, nil
	}
	// The stored extent covers part of what is needed: compute the rest
	// next to it, and store the union.
	parts := []promql.Matrix{e.Matrix}
	warnings := e.Warnings
	from, to := e.From, e.To
	if a < from {
		m, w, err := f.eval(ctx, r.Query, pl.res, a, from-step, r.Step)
		if err != nil {
			return nil, nil, "", err
		}
		parts, warnings, from = append(parts, m), append(warnings, w...), a
	}
	if b > to {
		m, w, err := f.eval(ctx, r.Query, pl.res, to+step, b, r.Step)
		if err != nil {
			return nil, nil, "", err
		}
		parts, warnings, to = append(parts, m), append(warnings, w...), b
	}
	merged := mergeMatrices(parts)
	warnings = dedupStrings(warnings)
	_ = f.cache.Set(key, tags, snap, appendExtent(nil, &extent{Key: key, Kind: 'm', From: from, To: to, Matrix: merged, Warnings: warnings}), 0)
	return trimMatrix(merged, a, b), warnings, CachePartial, nil
}

// Instant answers an instant query, through the cache when its time is
// older than the freshness window and bypass is not set. max caps the
// resolution read.
func (f *Frontend) Instant(ctx context.Context, qs string, ts time.Time, max Resolution, bypass bool) (*Result, error) {
	res, err := f.engine.ChooseResolution(qs, ts, ts, 0, max)
	if err != nil {
		return nil, err
	}
	if bypass || f.cache == nil || ts.UnixMilli() > f.cutoff() {
		return f.evalInstant(ctx, qs, ts, res, CacheBypass)
	}
	pl, ok, err := f.newPlan(qs, ts, ts, 0)
	if err != nil {
		return nil, err
	}
	if !ok {
		return f.evalInstant(ctx, qs, ts, res, CacheBypass)
	}
	mint, maxt, reads := pl.dataRange(ts.UnixMilli(), ts.UnixMilli(), 0)
	var tags []string
	if reads {
		if tags, ok = pl.tags(mint, maxt); !ok || !f.cacheableData(mint) {
			return f.evalInstant(ctx, qs, ts, res, CacheMiss)
		}
	}
	key := append([]byte("i1\x00"+pl.norm+"\x00"+strconv.FormatInt(int64(res), 10)+"\x00"), strconv.FormatInt(ts.UnixMilli(), 10)...)
	v, st, err := f.cache.GetOrCompute(ctx, key, tags, func(ctx context.Context) ([]byte, time.Duration, error) {
		res, err := f.evalInstant(ctx, qs, ts, res, CacheMiss)
		if err != nil {
			return nil, 0, err
		}
		e := &extent{Key: key, From: ts.UnixMilli(), To: ts.UnixMilli(), Warnings: res.Warnings}
		switch val := res.Value.(type) {
		case promql.Matrix:
			e.Kind, e.Matrix = 'm', val
		case promql.Vector:
			e.Kind = 'v'
			for _, s := range val {
				if s.H != nil {
					return appendExtent(nil, e), -1, nil // not cacheable
				}
				e.Matrix = append(e.Matrix, promql.Series{Metric: s.Metric, Floats: []promql.FPoint{{T: s.T, F: s.F}}})
			}
		case promql.Scalar:
			e.Kind = 's'
			e.Matrix = promql.Matrix{{Floats: []promql.FPoint{{T: val.T, F: val.V}}}}
		default:
			e.Kind = 'x' // strings: computed each time
			return appendExtent(nil, e), -1, nil
		}
		return appendExtent(nil, e), 0, nil
	})
	if err != nil {
		return nil, err
	}
	e, derr := decodeExtent(v)
	if derr != nil || !bytes.Equal(e.Key, key) || e.Kind == 'x' {
		return f.evalInstant(ctx, qs, ts, res, CacheMiss)
	}
	out := &Result{Warnings: e.Warnings, Cache: CacheHit, Resolution: res}
	switch st {
	case cache.StatusMiss, cache.StatusShared:
		out.Cache = CacheMiss
	case cache.StatusStale:
		out.Cache = CacheStale
	}
	switch e.Kind {
	case 'm':
		out.Value = e.Matrix
	case 'v':
		vec := make(promql.Vector, 0, len(e.Matrix))
		for _, s := range e.Matrix {
			if len(s.Floats) != 1 {
				return f.evalInstant(ctx, qs, ts, res, CacheMiss)
			}
			vec = append(vec, promql.Sample{Metric: s.Metric, T: s.Floats[0].T, F: s.Floats[0].F})
		}
		out.Value = vec
	case 's':
		if len(e.Matrix) != 1 || len(e.Matrix[0].Floats) != 1 {
			return f.evalInstant(ctx, qs, ts, res, CacheMiss)
		}
		out.Value = promql.Scalar{T: e.Matrix[0].Floats[0].T, V: e.Matrix[0].Floats[0].F}
	default:
		return f.evalInstant(ctx, qs, ts, res, CacheMiss)
	}
	return out, nil
}

func (f *Frontend) evalInstant(ctx context.Context, qs string, ts time.Time, res Resolution, status CacheStatus) (*Result, error) {
	out, err := f.engine.InstantAt(ctx, qs, ts, res)
	if err != nil {
		return nil, err
	}
	w, i := out.Warnings.AsStrings(qs, 10, 10)
	return &Result{Value: out.Value, Warnings: w, Infos: i, Cache: status, Resolution: res}, nil
}

// Invalidate bumps the tags of metric name (or "*" for every name) on the
// UTC days from mint to maxt (ms). A range wider than maxTagDays resets the
// whole cache instead.
func (f *Frontend) Invalidate(names []string, mint, maxt int64) {
	if f.cache == nil || mint > maxt {
		return
	}
	first := time.UnixMilli(mint).UTC().Truncate(24 * time.Hour)
	last := time.UnixMilli(maxt).UTC().Truncate(24 * time.Hour)
	if last.Sub(first) > maxTagDays*24*time.Hour {
		f.cache.Reset()
		f.invalidated()
		return
	}
	var tags []string
	for d := first; !d.After(last); d = d.Add(24 * time.Hour) {
		for _, n := range names {
			tags = append(tags, Tag(n, d))
		}
		tags = append(tags, Tag("*", d))
	}
	f.cache.InvalidateTags(tags...) // one round trip when the tags are shared in Redis
	f.invalidated()
}

// InvalidateBatch bumps the tags of every sample of b older than the
// freshness window: such a sample may change a cached extent. Call it once
// the batch is visible to queries and before acknowledging it.
func (f *Frontend) InvalidateBatch(b *ingest.Batch) {
	if f.cache == nil {
		return
	}
	cutoff := f.now().Add(-f.opts.Freshness).UnixMilli()
	type nameDay struct {
		name string
		day  int64
	}
	var (
		seen map[nameDay]struct{}
		tags []string
	)
	for i := range b.Series {
		s := &b.Series[i]
		name, named := "", false
		for _, x := range s.Samples {
			if x.T >= cutoff {
				continue
			}
			if !named {
				name, named = s.Labels.Get(labels.MetricName), true
			}
			k := nameDay{name, floorDiv(x.T, dayMillis)}
			if _, ok := seen[k]; ok {
				continue
			}
			if seen == nil {
				seen = map[nameDay]struct{}{}
			}
			seen[k] = struct{}{}
			day := time.UnixMilli(x.T).UTC()
			tags = append(tags, Tag(name, day), Tag("*", day))
		}
	}
	if len(tags) > 0 {
		f.cache.InvalidateTags(tags...) // duplicates of "*" are folded by the cache
		f.invalidated()
	}
}

const dayMillis = 24 * 3600 * 1000

// mergeMatrices joins pieces of one query evaluated over consecutive step
// ranges (in time order) into one matrix sorted by labels.
func mergeMatrices(parts []promql.Matrix) promql.Matrix {
	switch len(parts) {
	case 0:
		return promql.Matrix{}
	case 1:
		return parts[0]
	}
	// First pass: the output series of every input series, and how many
	// points each output series gets; then one array holds every point.
	idx := make(map[uint64][]int, len(parts[0]))
	var (
		out    promql.Matrix
		counts []int
		total  int
	)
	where := make([][]int, len(parts))
	for p, m := range parts {
		where[p] = make([]int, len(m))
		for j, s := range m {
			h := s.Metric.Hash()
			found := -1
			for _, i := range idx[h] {
				if labels.Equal(out[i].Metric, s.Metric) {
					found = i
					break
				}
			}
			if found < 0 {
				found = len(out)
				idx[h] = append(idx[h], found)
				out = append(out, promql.Series{Metric: s.Metric})
				counts = append(counts, 0)
			}
			where[p][j] = found
			counts[found] += len(s.Floats)
			total += len(s.Floats)
		}
	}
	all := make([]promql.FPoint, total)
	off := 0
	for i := range out {
		out[i].Floats = all[off : off : off+counts[i]]
		off += counts[i]
	}
	for p, m := range parts {
		for j, s := range m {
			i := where[p][j]
			out[i].Floats = append(out[i].Floats, s.Floats...)
		}
	}
	for i := range out {
		f := out[i].Floats
		if !slices.IsSortedFunc(f, func(a, b promql.FPoint) int { return cmpInt64(a.T, b.T) }) {
			slices.SortStableFunc(f, func(a, b promql.FPoint) int { return cmpInt64(a.T, b.T) })
		}
	}
	slices.SortFunc(out, func(a, b promql.Series) int { return labels.Compare(a.Metric, b.Metric) })
	return out
}

// trimMatrix keeps the points in [a, b], dropping series left empty.
func trimMatrix(m promql.Matrix, a, b int64) promql.Matrix {
	out := make(promql.Matrix, 0, len(m))
	for _, s := range m {
		lo, _ := slices.BinarySearchFunc(s.Floats, a, func(p promql.FPoint, t int64) int { return cmpInt64(p.T, t) })
		hi, found := slices.BinarySearchFunc(s.Floats, b, func(p promql.FPoint, t int64) int { return cmpInt64(p.T, t) })
		if found {
			hi++
		}
		if lo < hi {
			out = append(out, promql.Series{Metric: s.Metric, Floats: s.Floats[lo:hi]})
		}
	}
	return out
}

func dedupStrings(s []string) []string {
	if len(s) < 2 {
		return s
	}
	slices.Sort(s)
	return slices.Compact(s)
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

func mod(a, b int64) int64 { return a - floorDiv(a, b)*b }

func alignDown(t, r int64) int64 { return floorDiv(t, r) * r }
