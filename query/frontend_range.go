package query

import (
	"bytes"
	"context"
	"sync"
	"time"

	"github.com/prometheus/prometheus/promql"

	"github.com/strata-tsdb/strata/cache"
)

// piece is one extent of a range query (or its uncacheable tail) and, once
// answered, its part of the answer.
type piece struct {
	ws, a, b int64    // extent start; first and last step answered (ms)
	key      []byte   // nil: not cached
	tags     []string // what the extent can read
	// chained says that tags must be widened (rangeCall.widen) before the
	// extent is stored: it reads counters from rollups, whose level
	// depends on every day from rangeCall.chainFrom to maxt.
	chained bool
	maxt    int64

	m          promql.Matrix
	warn, info []string
	status     CacheStatus
}

// rangeCall is one range query on its way through the frontend.
type rangeCall struct {
	f    *Frontend
	r    RangeQuery
	a    *rangeAnalysis
	pl   *plan // a.pl with this call's resolution
	step int64 // ms
	// ce is the last step whose data is older than the freshness window
	// (start-step if none); ext the extents of the steps up to it.
	ce  int64
	ext []extentData
	// chainFrom is where the level of the counters the query reads from
	// rollups starts to depend on data (Frontend.counterChainFrom): its
	// extents are tagged from there on.
	chainFrom int64
}

// Range answers a range query, through the cache unless bypass is set.
func (f *Frontend) Range(ctx context.Context, r RangeQuery, bypass bool) (*Result, error) {
	q, res, err := f.newRangeCall(ctx, r, bypass)
	if err != nil {
		return nil, err
	}
	if q == nil {
		return f.evalWhole(ctx, r, res)
	}
	pieces, err := q.pieces(ctx)
	if err != nil {
		return nil, err
	}
	return q.run(ctx, pieces)
}

// newRangeCall checks and plans r. A nil call (and no error) means r is
// evaluated whole, without the cache, from data of resolution res.
func (f *Frontend) newRangeCall(ctx context.Context, r RangeQuery, bypass bool) (*rangeCall, Resolution, error) {
	if err := r.Validate(f.engine.opts.MaxPointsPerSeries); err != nil {
		return nil, 0, err
	}
	step := r.Step.Milliseconds()
	if bypass || f.cache == nil || step <= 0 || step >= f.opts.SplitInterval.Milliseconds() {
		// A step at least as long as an extent would make every step an
		// engine call of its own, for nothing: each extent holds one point.
		res, err := f.engine.ChooseResolution(r.Query, r.Start, r.End, r.Step, r.MaxSourceResolution)
		return nil, res, err
	}
	a, err := f.rangeAnalysis(ctx, r)
	if err != nil {
		return nil, 0, err
	}
	res := f.engine.chooseResolution(a.rq, r.Start, r.Step, r.MaxSourceResolution)
	if a.pl == nil {
		return nil, res, nil
	}
	pl := *a.pl
	pl.res = res
	q := &rangeCall{f: f, r: r, a: a, pl: &pl, step: step, ce: a.settledUpTo(f.cutoff()), chainFrom: f.counterChainFrom(&pl)}
	if q.ext, err = f.extents(ctx, a, q.ce); err != nil {
		return nil, 0, err
	}
	return q, res, nil
}

// run answers the pieces and merges them.
func (q *rangeCall) run(ctx context.Context, pieces []*piece) (*Result, error) {
	if err := q.answer(ctx, pieces); err != nil {
		return nil, err
	}
	return q.result(pieces), nil
}

// pieces cuts the query into extents: those whose steps read only data
// older than the freshness window, then one uncached piece for the rest.
func (q *rangeCall) pieces(ctx context.Context) ([]*piece, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	start, end := q.a.start, q.a.end
	out := make([]*piece, 0, len(q.ext)+1)
	for i := range q.ext {
		x := &q.ext[i]
		p := &piece{ws: x.ws, a: x.a, b: x.b}
		if q.cached(x) { // (the tags are shared with other calls: never modified)
			p.tags, p.key = x.tags, q.f.rangeKey(q.pl, q.step, mod(start, q.step), x.ws)
			if x.reads && q.chainFrom < x.mint {
				// Widened only if the extent is stored: a hit needs no tags.
				p.chained, p.maxt = true, x.maxt
				if tagDays(q.chainFrom, x.maxt) > maxTagDays { // as plan.tags refuses
					p.tags, p.key, p.chained = nil, nil, false
				}
			}
		}
		out = append(out, p)
	}
	if a := max(start, q.ce+q.step); a <= end {
		out = append(out, &piece{a: a, b: end})
	}
	return out, nil
}

// cached reports whether extent x is cached: its data spans few enough
// days to be tagged, and stays inside retention while it may be served.
func (q *rangeCall) cached(x *extentData) bool {
	return x.tagged && (!x.reads || q.f.cacheableData(x.mint, q.pl.res))
}

// answer fills in every piece: hits from the cache; runs of contiguous
// missing extents each in as few engine calls as the parallelism allows;
// extents found stale or covering part of their steps one by one. The
// work runs concurrently, MaxParallel at a time for this query.
func (q *rangeCall) answer(ctx context.Context, pieces []*piece) error {
	f := q.f
	var keys [][]byte
	for _, p := range pieces {
		if p.key != nil {
			keys = append(keys, p.key)
		}
	}
	f.cache.Prefetch(ctx, keys) // one round trip with a shared L2 tier
	var (
		jobs []func(context.Context) error
		run  []*piece // missing cacheable extents, contiguous
		cold []*piece // uncacheable pieces, contiguous
	)
	flushRun := func() {
		jobs = append(jobs, q.runJobs(run)...)
		run = nil
	}
	flushCold := func() {
		if len(cold) > 0 {
			ps := cold
			jobs = append(jobs, func(ctx context.Context) error { return q.evalCold(ctx, ps) })
		}
		cold = nil
	}
	for _, p := range pieces {
		if err := ctx.Err(); err != nil {
			return err
		}
		if p.key == nil {
			flushRun()
			cold = append(cold, p)
			continue
		}
		flushCold()
		v, st := f.cache.Peek(p.key)
		if st == cache.StatusMiss {
			q.widen(p)
			run = append(run, p)
			continue
		}
		flushRun()
		if e, err := decodeExtent(v); err == nil && bytes.Equal(e.Key, p.key) && st != cache.StatusStale && e.Kind == 'm' && e.serves(p.a, p.b) {
			p.m, p.warn, p.info, p.status = trimMatrix(e.Matrix, p.a, p.b), e.Warnings, e.Infos, CacheHit
			continue
		}
		q.widen(p)
		// Stale, partial or unreadable: extended or refreshed alone.
		jobs = append(jobs, func(ctx context.Context) error { return q.extent(ctx, p) })
	}
	flushRun()
	flushCold()
	return runJobs(ctx, jobs, f.opts.MaxParallel)
}

// widen gives a piece that reads counters from rollups the tags of every
// day its answer depends on, before it is stored.
func (q *rangeCall) widen(p *piece) {
	if p.chained {
		p.tags, _ = q.pl.tags(q.chainFrom, p.maxt) // (counted in pieces: never too many)
		p.chained = false
	}
}

// runJobs runs jobs, at most limit at once; the first error cancels the
// others and is returned.
func runJobs(ctx context.Context, jobs []func(context.Context) error, limit int) error {
	if len(jobs) == 1 {
		return jobs[0](ctx)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	sem := make(chan struct{}, max(limit, 1))
	var wg sync.WaitGroup
	for _, job := range jobs {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := job(ctx); err != nil {
				cancel(err)
			}
		}()
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return err
	}
	return nil
}

// runJobs cuts a run of contiguous missing extents into at most
// MaxParallel chunks of contiguous extents, each evaluated in one engine
// call.
func (q *rangeCall) runJobs(run []*piece) []func(context.Context) error {
	if len(run) == 0 {
		return nil
	}
	n := min(len(run), q.f.opts.MaxParallel)
	size := (len(run) + n - 1) / n
	var jobs []func(context.Context) error
	for i := 0; i < len(run); i += size {
		chunk := run[i:min(i+size, len(run))]
		jobs = append(jobs, func(ctx context.Context) error { return q.evalRun(ctx, chunk) })
	}
	return jobs
}

// evalCold evaluates contiguous uncacheable pieces in one engine call.
func (q *rangeCall) evalCold(ctx context.Context, ps []*piece) error {
	m, w, i, err := q.f.eval(ctx, q.r.Query, q.pl.res, ps[0].a, ps[len(ps)-1].b, q.r.Step)
	if err != nil {
		return err
	}
	for _, p := range ps {
		p.status = CacheMiss
	}
	ps[0].m, ps[0].warn, ps[0].info = m, w, i
	return nil
}

// evalRun evaluates contiguous missing extents in one engine call, as the
// computation of the first one's key (concurrent queries share it), and
// stores every extent. Annotations cannot be told apart by extent: a call
// that has any stores the first extent alone, evaluated again, and the
// others are computed one by one.
func (q *rangeCall) evalRun(ctx context.Context, ps []*piece) error {
	if len(ps) == 1 {
		return q.extent(ctx, ps[0])
	}
	f, first, last := q.f, ps[0], ps[len(ps)-1]
	var (
		ran, annotated bool
		parts          = make([]promql.Matrix, len(ps))
	)
	v, st, err := f.cache.GetOrCompute(ctx, first.key, first.tags, func(ctx context.Context) ([]byte, time.Duration, error) {
		snap := f.cache.Snapshot()
		m, w, i, err := f.eval(ctx, q.r.Query, q.pl.res, first.a, last.b, q.r.Step)
		if err != nil {
			return nil, 0, err
		}
		ran = true
		if len(w)+len(i) > 0 {
			annotated = true
			m, w, i, err = f.eval(ctx, q.r.Query, q.pl.res, first.a, first.b, q.r.Step)
			if err != nil {
				return nil, 0, err
			}
			return appendExtent(nil, &extent{Key: first.key, Kind: 'm', From: first.a, To: first.b, Matrix: m, Warnings: w, Infos: i}), 0, nil
		}
		for j, p := range ps {
			parts[j] = trimMatrix(m, p.a, p.b)
			if j > 0 {
				_ = f.cache.Set(p.key, p.tags, snap, appendExtent(nil, &extent{Key: p.key, Kind: 'm', From: p.a, To: p.b, Matrix: parts[j]}), 0)
			}
		}
		return appendExtent(nil, &extent{Key: first.key, Kind: 'm', From: first.a, To: first.b, Matrix: parts[0]}), 0, nil
	})
	if err != nil {
		return err
	}
	if !q.fill(first, v, st) {
		if err := q.extent(ctx, first); err != nil {
			return err
		}
	}
	for j, p := range ps[1:] {
		if err := ctx.Err(); err != nil {
			return err
		}
		if st == cache.StatusMiss && ran && !annotated {
			p.m, p.status = parts[j+1], CacheMiss
			continue
		}
		if v, pst := f.cache.Peek(p.key); pst == cache.StatusHit || pst == cache.StatusHitL2 {
			if q.fill(p, v, cache.StatusHit) {
				continue
			}
		}
		if err := q.extent(ctx, p); err != nil {
			return err
		}
	}
	return nil
}

// fill answers p from a cached value v if it covers p's steps.
func (q *rangeCall) fill(p *piece, v []byte, st cache.Status) bool {
	e, err := decodeExtent(v)
	if err != nil || !bytes.Equal(e.Key, p.key) || e.Kind != 'm' || !e.serves(p.a, p.b) {
		return false
	}
	p.m, p.warn, p.info, p.status = trimMatrix(e.Matrix, p.a, p.b), e.Warnings, e.Infos, cacheStatus(st)
	return true
}

// cacheStatus maps how the cache served a value to how the frontend
// reports it.
func cacheStatus(st cache.Status) CacheStatus {
	switch st {
	case cache.StatusMiss, cache.StatusShared:
		return CacheMiss
	case cache.StatusStale:
		return CacheStale
	}
	return CacheHit
}

// extent answers one extent from the cache where it can: computed (once
// for concurrent queries) when missing, refreshed in the background when
// stale, extended when it covers only part of p's steps. An extension is
// de-duplicated like a miss: concurrent queries needing p's steps share
// one, on this instance and, with a shared tier, across instances.
func (q *rangeCall) extent(ctx context.Context, p *piece) error {
	f := q.f
	usable := func(e *extent, err error) bool { return err == nil && bytes.Equal(e.Key, p.key) && e.Kind == 'm' }
	accept := func(v []byte) bool {
		e, err := decodeExtent(v)
		return usable(e, err) && e.serves(p.a, p.b)
	}
	// Set by the computation when this call's ran it (read after
	// GetOrExtend returns, which follows its end).
	var (
		extended     bool
		pwarn, pinfo []string
	)
	v, st, ran, err := f.cache.GetOrExtend(ctx, p.key, p.tags, accept, func(ctx context.Context, old []byte) ([]byte, time.Duration, error) {
		// An extent with annotations is computed anew for exactly p's
		// steps: its annotations may come from steps outside them.
		if e, err := decodeExtent(old); old != nil && usable(e, err) && !e.annotated() {
			b, w, i, err := q.extend(ctx, p, e)
			if err != nil {
				return nil, 0, err
			}
			extended, pwarn, pinfo = true, w, i
			return b, 0, nil
		}
		m, w, i, err := f.eval(ctx, q.r.Query, q.pl.res, p.a, p.b, q.r.Step)
		if err != nil {
			return nil, 0, err
		}
		return appendExtent(nil, &extent{Key: p.key, Kind: 'm', From: p.a, To: p.b, Matrix: m, Warnings: w, Infos: i}), 0, nil
	})
	if err != nil {
		return err
	}
	e, derr := decodeExtent(v)
	if !usable(e, derr) || !e.serves(p.a, p.b) {
		// Never trust a value stored under another key; a stale value
		// that covers part of p's steps is being refreshed: compute p.
		m, w, i, err := f.eval(ctx, q.r.Query, q.pl.res, p.a, p.b, q.r.Step)
		p.m, p.warn, p.info, p.status = m, w, i, CacheMiss
		return err
	}
	p.m, p.warn, p.info, p.status = trimMatrix(e.Matrix, p.a, p.b), e.Warnings, e.Infos, cacheStatus(st)
	if ran && extended {
		p.warn, p.info, p.status = dedupStrings(pwarn), dedupStrings(pinfo), CachePartial
	}
	return nil
}

// extend computes the steps of p that the stored extent e (without
// annotations) lacks, next to it, and returns the encoded union and the
// annotations of the computed ranges inside p's steps. The union has
// those of every computed range (e has none); the stored extent may lie
// wholly before or after p's steps, leaving a gap that is computed too.
func (q *rangeCall) extend(ctx context.Context, p *piece, e *extent) ([]byte, []string, []string, error) {
	f, step := q.f, q.step
	parts := []promql.Matrix{e.Matrix}
	var warn, info, pwarn, pinfo []string
	from, to := e.From, e.To
	fill := func(x, y int64) error {
		for _, r := range [][2]int64{{x, min(y, p.a-step)}, {max(x, p.a), min(y, p.b)}, {max(x, p.b+step), y}} {
			if r[0] > r[1] {
				continue
			}
			m, w, i, err := f.eval(ctx, q.r.Query, q.pl.res, r[0], r[1], q.r.Step)
			if err != nil {
				return err
			}
			parts, warn, info = append(parts, m), append(warn, w...), append(info, i...)
			if r[0] >= p.a && r[1] <= p.b {
				pwarn, pinfo = append(pwarn, w...), append(pinfo, i...)
			}
		}
		return nil
	}
	if p.a < from {
		if err := fill(p.a, from-step); err != nil {
			return nil, nil, nil, err
		}
		from = p.a
	}
	if p.b > to {
		if err := fill(to+step, p.b); err != nil {
			return nil, nil, nil, err
		}
		to = p.b
	}
	merged := mergeMatrices(parts)
	b := appendExtent(nil, &extent{Key: p.key, Kind: 'm', From: from, To: to, Matrix: merged, Warnings: dedupStrings(warn), Infos: dedupStrings(info)})
	return b, pwarn, pinfo, nil
}

// result merges the answered pieces.
func (q *rangeCall) result(pieces []*piece) *Result {
	var (
		parts                    []promql.Matrix
		warn, info               []string
		cached, computed, stales int
	)
	for _, p := range pieces {
		if p.m != nil {
			parts = append(parts, p.m)
		}
		warn, info = append(warn, p.warn...), append(info, p.info...)
		switch p.status {
		case CacheHit:
			cached++
		case CacheStale:
			cached++
			stales++
		case CachePartial:
			cached++
			computed++
		default:
			computed++
		}
	}
	status := CacheMiss
	switch {
	case cached > 0 && computed == 0 && stales > 0:
		status = CacheStale
	case cached > 0 && computed == 0:
		status = CacheHit
	case cached > 0:
		status = CachePartial
		q.f.cache.RecordPartialHit()
	}
	return &Result{
		Value:    mergeMatrices(parts),
		Warnings: limitAnnotations(dedupStrings(warn), "warning"),
		Infos:    limitAnnotations(dedupStrings(info), "info"),
		Cache:    status, Resolution: q.pl.res,
	}
}

// evalWhole evaluates a range query on data of resolution res without the
// cache.
func (f *Frontend) evalWhole(ctx context.Context, r RangeQuery, res Resolution) (*Result, error) {
	out, err := f.engine.RangeAt(ctx, r, res)
	if err != nil {
		return nil, err
	}
	w, i := annotationStrings(r.Query, out.Warnings)
	return &Result{Value: out.Value, Warnings: limitAnnotations(w, "warning"), Infos: limitAnnotations(i, "info"), Cache: CacheBypass, Resolution: res}, nil
}

// eval evaluates the query on data of resolution res at the grid steps
// from a to b, as one of at most MaxParallelTotal evaluations of the
// frontend at once.
func (f *Frontend) eval(ctx context.Context, qs string, res Resolution, a, b int64, step time.Duration) (promql.Matrix, []string, []string, error) {
	select {
	case f.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, nil, nil, ctx.Err()
	}
	defer func() { <-f.sem }()
	f.evals.Add(1)
	out, err := f.engine.RangeAt(ctx, RangeQuery{Query: qs, Start: time.UnixMilli(a), End: time.UnixMilli(b), Step: step}, res)
	if err != nil {
		return nil, nil, nil, err
	}
	m, err := out.Matrix()
	if err != nil {
		return nil, nil, nil, err
	}
	w, i := annotationStrings(qs, out.Warnings)
	return m, w, i, nil
}
