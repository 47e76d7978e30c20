package query

// Direct, sharded evaluation of range functions.
//
// PromQL's engine evaluates avg_over_time(x[1h]) one series at a time,
// pulling every sample through a chain of iterators and a ring buffer per
// step. For the queries that dominate dashboards (an aggregation over a
// *_over_time of a selector) this file evaluates the inner range function
// itself: it selects the series once, splits them into shards evaluated
// concurrently (one goroutine per core at most), reads each series' samples
// into one array, and calls Prometheus' own function (promql.FunctionCalls)
// on each step's window of that array, so every value is computed by the
// same code, on the same samples, in the same order as the engine would.
// The call in the query is then replaced by a selector of the precomputed
// series, and the engine evaluates the rest of the query (the aggregation)
// over them as usual.
//
// A call is evaluated here only where nothing can tell the difference:
// it is the whole query or sits under aggregations (and parentheses) only;
// it is a float range function that drops the metric name; its selector has
// no @, no duration expression, no anchored or smoothed modifier. When the
// data turn out to hold native histograms, when two results would share a
// label set, or when the query asks for statistics, the query is evaluated
// by the plain engine instead, which then gives its own answer or error.

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/promql/parser/posrange"
	"github.com/prometheus/prometheus/schema"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/util/annotations"
	"github.com/prometheus/prometheus/util/stats"
)

// shardedFuncs are the range functions evaluated directly: float
// functions of the window's samples alone (and the selector's range and
// offset) that drop the metric name. The counter functions (rate, irate,
// increase, resets) would read start timestamps where the engine is told
// to use them; Strata stores none (its iterators' AtST is 0), and a start
// timestamp of 0 changes nothing in them, so calling them without any is
// the same.
var shardedFuncs = map[string]bool{
	"avg_over_time":    true,
	"sum_over_time":    true,
	"min_over_time":    true,
	"max_over_time":    true,
	"count_over_time":  true,
	"stddev_over_time": true,
	"stdvar_over_time": true,
	"rate":             true,
	"increase":         true,
	"delta":            true,
	"irate":            true,
	"idelta":           true,
	"resets":           true,
	"changes":          true,
}

// preName is the metric name of the selector that replaces a call
// evaluated directly, followed by the call's index in the query: short
// enough for the shortest call (rate(x[1s]) takes 11 bytes), so that the
// rewritten query keeps every position, and reserved (names starting with
// two underscores are for internal use).
const preName = "__strata"

// errPlain makes a query fall back to the plain engine.
var errPlain = errors.New("evaluate with the plain engine")

// shardEngine is a promql.QueryEngine that evaluates the range functions it
// can (see the file comment) directly and in parallel, and hands the rest
// of the query to inner.
type shardEngine struct {
	inner  promql.QueryEngine
	parser parser.Parser
	// shards is the most goroutines evaluating one call; at least 1.
	shards int
	// maxSamples bounds the points a direct evaluation returns (the
	// engine's MaxSamples): past it, the plain engine evaluates the query
	// and reports the limit.
	maxSamples int
	// timeout bounds the direct evaluation (the engine's Timeout).
	timeout time.Duration
	// used counts the calls evaluated directly (for tests).
	used atomic.Int64
	// noStats reads every chunk, never its statistics (for tests and
	// benchmarks).
	noStats bool
	// covered counts, by coverage, the blocks that windows took from
	// statistics (for tests).
	covered [4]atomic.Int64
	// runs counts the windows that took an hour run (for tests).
	runs atomic.Int64
}

var _ promql.QueryEngine = (*shardEngine)(nil)

// newShardEngine returns a shardEngine over inner; shards zero means
// GOMAXPROCS.
func newShardEngine(inner promql.QueryEngine, p parser.Parser, shards, maxSamples int, timeout time.Duration) *shardEngine {
	if shards <= 0 {
		shards = runtime.GOMAXPROCS(0)
	}
	return &shardEngine{inner: inner, parser: p, shards: shards, maxSamples: maxSamples, timeout: timeout}
}

func (s *shardEngine) NewInstantQuery(ctx context.Context, q storage.Queryable, opts promql.QueryOpts, qs string, ts time.Time) (promql.Query, error) {
	return s.newQuery(ctx, q, opts, qs, ts, ts, 0)
}

func (s *shardEngine) NewRangeQuery(ctx context.Context, q storage.Queryable, opts promql.QueryOpts, qs string, start, end time.Time, interval time.Duration) (promql.Query, error) {
	return s.newQuery(ctx, q, opts, qs, start, end, interval)
}

// plainQuery is the inner engine's query for qs as given.
func (s *shardEngine) plainQuery(ctx context.Context, q storage.Queryable, opts promql.QueryOpts, qs string, start, end time.Time, interval time.Duration) (promql.Query, error) {
	if interval == 0 {
		return s.inner.NewInstantQuery(ctx, q, opts, qs, start)
	}
	return s.inner.NewRangeQuery(ctx, q, opts, qs, start, end, interval)
}

func (s *shardEngine) newQuery(ctx context.Context, q storage.Queryable, opts promql.QueryOpts, qs string, start, end time.Time, interval time.Duration) (promql.Query, error) {
	calls := s.plan(qs, opts)
	if len(calls) == 0 {
		return s.plainQuery(ctx, q, opts, qs, start, end, interval)
	}
	pq := &preQueryable{inner: q, results: make([][]storage.Series, len(calls))}
	outer, err := s.plainQuery(ctx, pq, opts, rewrite(qs, calls), start, end, interval)
	if err != nil {
		// The rewritten query should parse whenever the original does;
		// if it does not, the plain engine answers.
		return s.plainQuery(ctx, q, opts, qs, start, end, interval)
	}
	return &shardQuery{Query: outer, s: s, q: q, pq: pq, calls: calls, opts: opts, qs: qs,
		start: start.UnixMilli(), end: end.UnixMilli(), interval: interval.Milliseconds(), pctx: ctx,
		startT: start, endT: end, intervalD: interval}, nil
}

// preCall is a call of the query evaluated directly.
type preCall struct {
	pos posrange.PositionRange
	fn  promql.FunctionCall
	// floats, where set, is fn of a non-empty window of floats, with no
	// annotations (shard_kahan.go).
	floats func([]promql.FPoint) float64
	name   string
	args   parser.Expressions
	ms     []*labels.Matcher
	rng    int64 // the range, milliseconds
	offset int64 // milliseconds
}

// plan returns the calls of qs to evaluate directly, in the order of their
// positions; none when the query must go to the plain engine whole.
func (s *shardEngine) plan(qs string, opts promql.QueryOpts) []preCall {
	if opts != nil && opts.EnablePerStepStats() {
		return nil
	}
	expr, err := s.parser.ParseExpr(qs)
	if err != nil {
		return nil
	}
	var calls []preCall
	var walk func(e parser.Expr)
	walk = func(e parser.Expr) {
		switch n := e.(type) {
		case *parser.ParenExpr:
			walk(n.Expr)
		case *parser.AggregateExpr:
			for _, g := range n.Grouping {
				if g == labels.MetricName {
					return
				}
			}
			walk(n.Expr)
		case *parser.Call:
			if c, ok := directCall(n); ok {
				calls = append(calls, c)
			}
		}
	}
	walk(expr)
	return calls
}

// directCall returns the preCall of n when n can be evaluated directly.
func directCall(n *parser.Call) (preCall, bool) {
	if n.Func == nil || !shardedFuncs[n.Func.Name] || len(n.Args) != 1 {
		return preCall{}, false
	}
	ms, ok := n.Args[0].(*parser.MatrixSelector)
	if !ok || ms.RangeExpr != nil {
		return preCall{}, false
	}
	vs, ok := ms.VectorSelector.(*parser.VectorSelector)
	if !ok || vs.Timestamp != nil || vs.StartOrEnd != 0 || vs.OriginalOffsetExpr != nil || vs.Anchored || vs.Smoothed {
		return preCall{}, false
	}
	fn := promql.FunctionCalls[n.Func.Name]
	if fn == nil {
		return preCall{}, false
	}
	// The engine sets Offset, which the counter functions read, from the
	// offset as written when it prepares a query (here, without @, they are
	// the same); this expression is the plan's own parse.
	vs.Offset = vs.OriginalOffset
	return preCall{pos: n.PositionRange(), fn: fn, floats: floatFuncs[n.Func.Name], name: n.Func.Name, args: n.Args, ms: vs.LabelMatchers,
		rng: ms.Range.Milliseconds(), offset: vs.OriginalOffset.Milliseconds()}, true
}

// rewrite replaces each call's text with a selector of its precomputed
// series, padded with spaces to the call's length (newlines kept), so that
// every other position in the query, which annotations report, stays where
// it was.
func rewrite(qs string, calls []preCall) string {
	var b strings.Builder
	at := 0
	for i, c := range calls {
		b.WriteString(qs[at:c.pos.Start])
		sel := preName + strconv.Itoa(i)
		b.WriteString(sel)
		for _, r := range qs[int(c.pos.Start)+min(len(sel), int(c.pos.End-c.pos.Start)) : c.pos.End] {
			if r == '\n' {
				b.WriteByte('\n')
			} else {
				b.WriteByte(' ')
			}
		}
		at = int(c.pos.End)
	}
	b.WriteString(qs[at:])
	return b.String()
}

// shardQuery is a query whose direct calls are evaluated when it is
// executed, before the engine evaluates the rest.
type shardQuery struct {
	promql.Query // the rewritten query
	s            *shardEngine
	q            storage.Queryable
	pq           *preQueryable
	calls        []preCall
	opts         promql.QueryOpts
	qs           string
	pctx         context.Context
	start, end   int64
	interval     int64
	startT, endT time.Time
	intervalD    time.Duration
	plain        promql.Query // set when the query fell back
	// queriers are those the direct calls read, closed with the query
	// (the labels of the series they returned may be theirs).
	queriers []storage.Querier
	// annos are the annotations of the direct calls, added to the
	// result's as the engine would have added them.
	annos annotations.Annotations
}

func (q *shardQuery) Exec(ctx context.Context) *promql.Result {
	err := q.evaluate(ctx)
	if errors.Is(err, errPlain) {
		q.Query.Close()
		plain, perr := q.s.plainQuery(q.pctx, q.q, q.opts, q.qs, q.startT, q.endT, q.intervalD)
		if perr != nil {
			return &promql.Result{Err: perr}
		}
		q.plain = plain
		return plain.Exec(ctx)
	}
	if err != nil {
		return &promql.Result{Err: err}
	}
	res := q.Query.Exec(ctx)
	if len(q.annos) > 0 {
		res.Warnings = res.Warnings.Merge(q.annos)
	}
	return res
}

func (q *shardQuery) Close() {
	for _, qr := range q.queriers {
		qr.Close()
	}
	q.queriers = nil
	if q.plain != nil {
		q.plain.Close()
		return
	}
	q.Query.Close()
}

func (q *shardQuery) Stats() *stats.Statistics {
	if q.plain != nil {
		return q.plain.Stats()
	}
	return q.Query.Stats()
}

func (q *shardQuery) String() string { return q.qs }

// evaluate computes every direct call's series into q.pq.
func (q *shardQuery) evaluate(ctx context.Context) error {
	if q.s.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, q.s.timeout)
		defer cancel()
	}
	steps := int64(1)
	if q.interval > 0 {
		steps = (q.end-q.start)/q.interval + 1
	}
	for i, c := range q.calls {
		res, err := q.evalCall(ctx, c, steps)
		if err != nil {
			return err
		}
		q.pq.results[i] = res
	}
	q.s.used.Add(int64(len(q.calls)))
	return nil
}

// evalCall evaluates one call at every step, its series split among
// shards.
func (q *shardQuery) evalCall(ctx context.Context, c preCall, steps int64) ([]storage.Series, error) {
	mint := q.start - c.offset - c.rng + 1
	maxt := q.end - c.offset
	querier, err := q.q.Querier(mint, maxt)
	if err != nil {
		return nil, err
	}
	q.queriers = append(q.queriers, querier)
	hints := &storage.SelectHints{Start: mint, End: maxt, Step: q.interval, Func: c.name, Range: c.rng}
	set := querier.Select(ctx, false, hints, c.ms...)
	bufs := callBufPool.Get().(*callBufs)
	defer bufs.put()
	in := bufs.in[:0]
	for set.Next() {
		in = append(in, set.At())
	}
	bufs.in = in
	if err := set.Err(); err != nil {
		return nil, err
	}
	if len(set.Warnings()) > 0 {
		return nil, errPlain // let the engine report them as it does
	}
	if int64(len(in))*steps > int64(q.s.maxSamples) {
		return nil, errPlain
	}
	out := slices.Grow(bufs.out[:0], len(in))[:len(in)] // zero: see put
	bufs.out = out
	// Each series' points are at most one a step: cut from one slab, where
	// it is not too large for what the series may leave of it unused.
	var slab []promql.FPoint
	if n := int64(len(in)) * steps; n <= maxFloatSlab {
		slab = make([]promql.FPoint, n)
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	var firstErr error
	var errOnce sync.Once
	var annosMu sync.Mutex
	workers := min(q.s.shards, len(in))
	work := func() {
		w := workerPool.Get().(*shardWorker)
		w.c, w.q = c, q
		defer func() {
			if len(w.annos) > 0 {
				annosMu.Lock()
				q.annos = q.annos.Merge(w.annos)
				annosMu.Unlock()
			}
			w.c, w.q, w.matrix[0].Metric, w.matrix[0].Floats, w.annos, w.dst = preCall{}, nil, labels.EmptyLabels(), nil, nil, nil
			if cap(w.pts) > 1<<16 {
				w.pts = nil // a long series: do not keep its buffer
			}
			workerPool.Put(w)
		}()
		for {
			i := int(next.Add(1) - 1)
			if i >= len(in) {
				return
			}
			w.dst = nil
			if slab != nil {
				w.dst = slab[int64(i)*steps : int64(i)*steps : int64(i+1)*steps]
			}
			if err := w.series(ctx, in[i], &out[i]); err != nil {
				errOnce.Do(func() { firstErr = err })
				next.Store(int64(len(in))) // stop the others
				return
			}
		}
	}
	for range workers - 1 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			work()
		}()
	}
	work() // this goroutine is one of the workers
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	if duplicateLabels(out) {
		return nil, errPlain // the engine reports the duplicate
	}
	res := make([]storage.Series, 0, len(out))
	for i := range out {
		if len(out[i].Floats) > 0 {
			res = append(res, promql.NewStorageSeries(out[i]))
		}
	}
	return res, nil
}

// duplicateLabels reports whether two series of out with points have the
// same labels: their hashes sorted, and the label sets of equal hashes
// compared (a map of them cost some 9 KB and a dozen allocations a
// query).
func duplicateLabels(out []promql.Series) bool {
	type hashed struct {
		h uint64
		i int
	}
	hs := make([]hashed, 0, len(out))
	for i := range out {
		if len(out[i].Floats) > 0 {
			hs = append(hs, hashed{out[i].Metric.Hash(), i})
		}
	}
	slices.SortFunc(hs, func(a, b hashed) int { return cmp.Compare(a.h, b.h) })
	for k := 1; k < len(hs); k++ {
		for j := k - 1; j >= 0 && hs[j].h == hs[k].h; j-- {
			if labels.Equal(out[hs[j].i].Metric, out[hs[k].i].Metric) {
				return true
			}
		}
	}
	return false
}

// callBufs are the slices of the series a call reads and of what it
// computes of each, kept between calls: neither outlives the call (the
// engine reads copies of the computed series, by value).
type callBufs struct {
	in  []storage.Series
	out []promql.Series
}

var callBufPool = sync.Pool{New: func() any { return new(callBufs) }}

// put gives the buffers back, cleared (every element of out up to its
// capacity is zero in the pool, as a series without points is not
// written) and dropped when large.
func (b *callBufs) put() {
	clear(b.in)
	clear(b.out)
	if cap(b.in) > 1<<16 || cap(b.out) > 1<<16 {
		b.in, b.out = nil, nil
	}
	b.in, b.out = b.in[:0], b.out[:0]
	callBufPool.Put(b)
}

// shardWorker evaluates series of one call, reusing its buffers.
type shardWorker struct {
	c      preCall
	q      *shardQuery
	pts    []promql.FPoint
	r      seriesReader
	enh    promql.EvalNodeHelper
	matrix promql.Matrix
	annos  annotations.Annotations
	sr     statsReader
	// dst is where the current series' points are appended: a part of
	// the call's slab that no other series has, or nil.
	dst []promql.FPoint
}

// maxFloatSlab is the most points (16 bytes each) of a call's slab: 2 MiB.
const maxFloatSlab = 1 << 17

// workerPool keeps the buffers of workers between queries.
var workerPool = sync.Pool{New: func() any {
	return &shardWorker{matrix: make(promql.Matrix, 1), enh: promql.EvalNodeHelper{Out: make(promql.Vector, 0, 1)}}
}}

// staleNaN marks a step without a value, so that the engine's selector of
// the precomputed series does not look back to an earlier step.
var staleNaN = math.Float64frombits(value.StaleNaN)

// series evaluates the call on one series into out: a point at every step
// with a value, and a stale marker at a step without one after a step with
// one. Out is left empty when no step has a value.
func (w *shardWorker) series(ctx context.Context, s storage.Series, out *promql.Series) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c, q := w.c, w.q
	if fn := statsFns[c.name]; fn != statsNone && !q.s.noStats {
		if ms, ok := s.(*mergedSeries); ok && ms.win.agg == "" {
			w.matrix[0].Metric = ms.lset
			floats, ok, err := w.seriesStats(ctx, ms, fn)
			if err != nil {
				return err
			}
			if ok {
				if len(floats) > 0 {
					*out = promql.Series{Metric: ms.lset.DropReserved(schema.IsMetadataLabel), Floats: floats}
				}
				return nil
			}
		}
	}
	mint, maxt := q.start-c.offset-c.rng+1, q.end-c.offset
	pts, err := w.r.read(w.pts[:0], s, mint, maxt)
	w.pts = pts
	if err != nil {
		return err
	}
	if len(pts) == 0 {
		return nil
	}
	lset := s.Labels()
	w.matrix[0].Metric = lset
	floats := w.dst
	lo, hi := 0, 0
	had := false
	for ts := q.start; ts <= q.end; ts += max(q.interval, 1) {
		top := ts - c.offset
		hi = after(pts, hi, top)
		lo = after(pts[:hi], lo, top-c.rng)
		if lo == hi {
			if had {
				floats = append(floats, promql.FPoint{T: ts, F: staleNaN})
				had = false
			}
			if q.interval == 0 {
				break
			}
			continue
		}
		if v, ok := w.call(ts, pts[lo:hi]); ok {
			floats = append(floats, promql.FPoint{T: ts, F: v})
			had = true
		} else if had {
			floats = append(floats, promql.FPoint{T: ts, F: staleNaN})
			had = false
		}
		if q.interval == 0 {
			break
		}
	}
	if c.name == "rate" || c.name == "increase" {
		w.counterInfo(lset, floats)
	}
	*out = promql.Series{Metric: lset.DropReserved(schema.IsMetadataLabel), Floats: floats}
	return nil
}

// counterInfo adds the engine's information that rate or increase was
// applied to a series whose name does not look like a counter's, when the
// call gave the series a value (the engine's check, without type and unit
// labels, which Strata's engine does not enable).
func (w *shardWorker) counterInfo(lset labels.Labels, floats []promql.FPoint) {
	name := lset.Get(labels.MetricName)
	if name == "" || len(floats) == 0 { // floats starts with a value, never a stale marker
		return
	}
	for _, suffix := range []string{"_total", "_sum", "_count", "_bucket"} {
		if strings.HasSuffix(name, suffix) {
			return
		}
	}
	w.annos = w.annos.Add(annotations.NewPossibleNonCounterInfo(name, w.c.args[0].PositionRange()))
}

// after returns the index of the first sample of pts from i on that is
// later than t (len(pts) if none is): a few steps on, then a binary search.
func after(pts []promql.FPoint, i int, t int64) int {
	for k := 0; k < 8; k++ {
		if i >= len(pts) || pts[i].T > t {
			return i
		}
		i++
	}
	lo, hi := i, len(pts)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if pts[m].T <= t {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// appendFloats appends the float samples of it in [mint, maxt] to dst,
// skipping stale markers as the engine does. A native histogram sample
// returns errPlain.
func appendFloats(dst []promql.FPoint, it chunkenc.Iterator, mint, maxt int64) ([]promql.FPoint, error) {
	vt := it.Seek(mint)
	for ; vt != chunkenc.ValNone; vt = it.Next() {
		if vt != chunkenc.ValFloat {
			return dst, errPlain
		}
		t, v := it.At()
		if t > maxt {
			break
		}
		if value.IsStaleNaN(v) {
			continue
		}
		dst = append(dst, promql.FPoint{T: t, F: v})
	}
	if err := it.Err(); err != nil {
		return dst, err
	}
	return dst, nil
}

// preQueryable serves the selectors of precomputed series and passes every
// other selection to inner.
type preQueryable struct {
	inner   storage.Queryable
	results [][]storage.Series // by call index
}

func (p *preQueryable) Querier(mint, maxt int64) (storage.Querier, error) {
	return &preQuerier{p: p, mint: mint, maxt: maxt}, nil
}

type preQuerier struct {
	p          *preQueryable
	mint, maxt int64
	inner      storage.Querier // opened by the first selection that needs it
}

func (q *preQuerier) innerQuerier() (storage.Querier, error) {
	if q.inner == nil {
		in, err := q.p.inner.Querier(q.mint, q.maxt)
		if err != nil {
			return nil, err
		}
		q.inner = in
	}
	return q.inner, nil
}

func (q *preQuerier) Select(ctx context.Context, sorted bool, hints *storage.SelectHints, ms ...*labels.Matcher) storage.SeriesSet {
	for _, m := range ms {
		if m.Name == labels.MetricName && m.Type == labels.MatchEqual && strings.HasPrefix(m.Value, preName) {
			i, err := strconv.Atoi(m.Value[len(preName):])
			if err != nil || i < 0 || i >= len(q.p.results) || len(ms) != 1 {
				return storage.ErrSeriesSet(fmt.Errorf("bad selector of precomputed series %s", m))
			}
			return &listSeriesSet{ss: q.p.results[i], i: -1}
		}
	}
	in, err := q.innerQuerier()
	if err != nil {
		return storage.ErrSeriesSet(err)
	}
	return in.Select(ctx, sorted, hints, ms...)
}

func (q *preQuerier) LabelValues(ctx context.Context, name string, hints *storage.LabelHints, ms ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	in, err := q.innerQuerier()
	if err != nil {
		return nil, nil, err
	}
	return in.LabelValues(ctx, name, hints, ms...)
}

func (q *preQuerier) LabelNames(ctx context.Context, hints *storage.LabelHints, ms ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	in, err := q.innerQuerier()
	if err != nil {
		return nil, nil, err
	}
	return in.LabelNames(ctx, hints, ms...)
}

func (q *preQuerier) Close() error {
	if q.inner != nil {
		return q.inner.Close()
	}
	return nil
}

// listSeriesSet is a storage.SeriesSet over a slice, in its order (the
// order of the series the call read, as the engine would have them).
type listSeriesSet struct {
	ss []storage.Series
	i  int
}

func (l *listSeriesSet) Next() bool                        { l.i++; return l.i < len(l.ss) }
func (l *listSeriesSet) At() storage.Series                { return l.ss[l.i] }
func (l *listSeriesSet) Err() error                        { return nil }
func (l *listSeriesSet) Warnings() annotations.Annotations { return nil }
