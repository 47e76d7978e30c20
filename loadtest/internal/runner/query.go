package runner

import (
	"cmp"
	"context"
	"errors"
	"maps"
	"math/rand/v2"
	"runtime/metrics"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/strata-tsdb/strata/loadtest/internal/gen"
	"github.com/strata-tsdb/strata/loadtest/internal/querymix"
	"github.com/strata-tsdb/strata/loadtest/internal/report"
	"github.com/strata-tsdb/strata/loadtest/internal/target"
)

// QueryOptions configures the query workers.
type QueryOptions struct {
	// Mix says which queries to draw. Its Hosts are filled from Hosts and
	// Seed when empty.
	Mix querymix.Options
	// Hosts and Seed name the fleet the data was generated for (the same
	// as the writers' gen.Options).
	Hosts int
	Seed  uint64
	// Concurrency is the number of queries in flight; it must be positive.
	Concurrency int
	// QPS is the target in queries per second; zero sends as fast as the
	// server answers.
	QPS float64
	// Queries, when positive, ends the query phase after this many.
	Queries int64
	// NoCache asks the server to bypass its result cache.
	NoCache bool
	// Distinct, when positive, draws this many queries once and repeats
	// them in random order, so that a cache can warm up; zero draws every
	// query afresh.
	Distinct int
	// Warmup runs each of the Distinct queries once before measuring.
	Warmup bool
	// End, when set, is the end of every query window; zero uses the time
	// each query is drawn.
	End time.Time
	// SlowOver, when positive, counts the queries slower than this.
	SlowOver time.Duration
	// Slowest, when positive, reports this many of the slowest queries
	// with the time each was sent.
	Slowest int
	// CollectBetween has the workers run the generator's garbage
	// collections between their queries in a query-only run, instead of
	// the runtime at any moment (see gcPacer).
	CollectBetween bool
}

// Validate reports the first option out of range.
func (o *QueryOptions) Validate() error {
	switch {
	case o.Concurrency <= 0:
		return errors.New("query concurrency must be positive")
	case o.QPS < 0 || o.Queries < 0 || o.Distinct < 0 || o.SlowOver < 0 || o.Slowest < 0:
		return errors.New("qps, queries, distinct, slow-over and slowest must not be negative")
	case o.Hosts <= 0 && len(o.Mix.Hosts) == 0:
		return errors.New("hosts must be positive")
	case o.Warmup && o.Distinct == 0:
		return errors.New("warm-up needs a set of distinct queries to repeat (--distinct)")
	}
	mo := o.Mix
	if len(mo.Hosts) == 0 {
		mo.Hosts = gen.Hosts(1, o.Seed) // enough to check the templates
	}
	_, err := querymix.New(mo)
	return err
}

// queries is a running set of query workers.
type queries struct {
	o        *QueryOptions
	t        *target.Target
	mix      *querymix.Mix
	distinct []querymix.Query
	pace     *pacer
	errors   report.ErrorLog

	issued, done, ok, empty, series, points atomic.Int64

	workers []*queryWorker
	window  report.Window // since the last progress line
	elapsed time.Duration
	// gc, when set, collects between queries; gcCycles counts the
	// generator's collections over the measured phase.
	gc       *gcPacer
	gcCycles int64
}

// queryWorker holds what one worker measured, merged at the end.
type queryWorker struct {
	rng        *rand.Rand
	all        *report.Histogram
	byTemplate map[string]*report.Histogram
	errsBy     map[string]int64
	cache      map[string]int64
	slowCount  int64
	slowest    slowest
	heap       []metrics.Sample // for gcPacer.between
}

// slowest keeps the n slowest queries seen (n = cap of q), in no order.
type slowest struct {
	q   []report.SlowQuery
	min int // index of the fastest kept, once full
}

// add considers one query; it allocates nothing once full.
func (s *slowest) add(x querymix.Query, out target.QueryOutcome) {
	if cap(s.q) == 0 {
		return
	}
	ms := float64(out.Latency) / float64(time.Millisecond)
	if len(s.q) == cap(s.q) && ms <= s.q[s.min].LatencyMs {
		return
	}
	e := report.SlowQuery{Start: out.Start, LatencyMs: ms, Template: x.Template, Query: x.Expr, Cache: out.Cache}
	if len(s.q) < cap(s.q) {
		s.q = append(s.q, e)
	} else {
		s.q[s.min] = e
	}
	if len(s.q) == cap(s.q) {
		s.min = 0
		for i := range s.q {
			if s.q[i].LatencyMs < s.q[s.min].LatencyMs {
				s.min = i
			}
		}
	}
}

func newQueries(o *QueryOptions, t *target.Target, now time.Time) (*queries, error) {
	mo := o.Mix
	if len(mo.Hosts) == 0 {
		mo.Hosts = gen.Hosts(o.Hosts, o.Seed)
	}
	mix, err := querymix.New(mo)
	if err != nil {
		return nil, err
	}
	q := &queries{o: o, t: t, mix: mix, pace: newPacer(o.QPS)}
	if o.Distinct > 0 {
		r := rand.New(rand.NewPCG(o.Seed, 0xd157))
		at := o.End
		if at.IsZero() {
			at = now
		}
		for range o.Distinct {
			q.distinct = append(q.distinct, mix.Next(r, at))
		}
	}
	return q, nil
}

func (q *queries) bounded() bool { return q.o.Queries > 0 }

func (q *queries) fraction() float64 {
	if q.o.Queries <= 0 {
		return -1
	}
	return float64(q.done.Load()) / float64(q.o.Queries)
}

// warmup runs every distinct query once, unrecorded.
func (q *queries) warmup(ctx context.Context) {
	next := atomic.Int64{}
	var wg sync.WaitGroup
	for range q.o.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < len(q.distinct) && ctx.Err() == nil; i = int(next.Add(1) - 1) {
				q.t.QueryRange(ctx, q.rangeQuery(q.distinct[i]), q.o.NoCache)
			}
		}()
	}
	wg.Wait()
}

func (q *queries) rangeQuery(x querymix.Query) target.RangeQuery {
	return target.RangeQuery{Expr: x.Expr, Start: x.Start, End: x.End, Step: x.Step}
}

// run runs the workers until phase ends. alone says that nothing else
// runs in the process meanwhile (no writers), so that the workers may
// collect its garbage between their queries.
func (q *queries) run(phase, reqCtx context.Context, alone bool) {
	cycles := gcCycles() // the pacer's first collection included
	defer func() { q.gcCycles = gcCycles() - cycles }()
	if alone && q.o.CollectBetween {
		q.gc = startGCPacer()
		defer q.gc.stop()
	}
	start := time.Now()
	var wg sync.WaitGroup
	for i := range q.o.Concurrency {
		w := &queryWorker{
			rng:        rand.New(rand.NewPCG(q.o.Seed, uint64(i)+1)),
			all:        report.NewHistogram(),
			byTemplate: map[string]*report.Histogram{},
			errsBy:     map[string]int64{},
			cache:      map[string]int64{},
			slowest:    slowest{q: make([]report.SlowQuery, 0, q.o.Slowest)},
			heap:       heapSample(),
		}
		q.workers = append(q.workers, w)
		wg.Add(1)
		go func() {
			defer wg.Done()
			q.worker(phase, reqCtx, w)
		}()
	}
	wg.Wait()
	q.elapsed = time.Since(start)
}

func (q *queries) worker(phase, reqCtx context.Context, w *queryWorker) {
	for phase.Err() == nil {
		if q.o.Queries > 0 && q.issued.Add(1) > q.o.Queries {
			return
		}
		q.gc.between(w.heap)
		if q.pace.wait(phase, 1) != nil {
			return
		}
		var x querymix.Query
		if len(q.distinct) > 0 {
			x = q.distinct[w.rng.IntN(len(q.distinct))]
		} else {
			at := q.o.End
			if at.IsZero() {
				at = time.Now()
			}
			x = q.mix.Next(w.rng, at)
		}
		out := q.t.QueryRange(reqCtx, q.rangeQuery(x), q.o.NoCache)
		w.all.Record(out.Latency)
		q.window.Record(out.Latency)
		h := w.byTemplate[x.Template]
		if h == nil {
			h = report.NewHistogram()
			w.byTemplate[x.Template] = h
		}
		h.Record(out.Latency)
		if q.o.SlowOver > 0 && out.Latency > q.o.SlowOver {
			w.slowCount++
		}
		w.slowest.add(x, out)
		if out.Cache != "" {
			w.cache[out.Cache]++
		}
		q.done.Add(1)
		if !out.OK() {
			q.errors.Add(out.Cause(), out.Message())
			w.errsBy[x.Template]++
			backOff(phase, out.Outcome)
			continue
		}
		q.ok.Add(1)
		q.series.Add(int64(out.Series))
		q.points.Add(int64(out.Points))
		if out.Series == 0 {
			q.empty.Add(1)
		}
	}
}

func (q *queries) report() *report.Query {
	all := report.NewHistogram()
	byTemplate := map[string]*report.Histogram{}
	errsBy := map[string]int64{}
	cache := map[string]int64{}
	var (
		slowCount int64
		slow      []report.SlowQuery
	)
	for _, w := range q.workers {
		slowCount += w.slowCount
		slow = append(slow, w.slowest.q...)
		all.Merge(w.all)
		for k, h := range w.byTemplate {
			if byTemplate[k] == nil {
				byTemplate[k] = report.NewHistogram()
			}
			byTemplate[k].Merge(h)
		}
		for k, v := range w.errsBy {
			errsBy[k] += v
		}
		for k, v := range w.cache {
			cache[k] += v
		}
	}
	errs, msgs := q.errors.Result()
	mix := q.o.Mix.Mix
	if mix == "" {
		mix = "dashboard"
	}
	r := &report.Query{
		Mix:            mix,
		Concurrency:    q.o.Concurrency,
		NoCache:        q.o.NoCache,
		Distinct:       q.o.Distinct,
		Requests:       q.done.Load(),
		RequestsOK:     q.ok.Load(),
		ElapsedSeconds: q.elapsed.Seconds(),
		Errors:         errs,
		ErrorMessages:  msgs,
		EmptyResults:   q.empty.Load(),
		SeriesReturned: q.series.Load(),
		PointsReturned: q.points.Load(),
		Latency:        all.Summary(),
	}
	r.LoadGCCycles, r.LoadGCBetween = q.gcCycles, q.gc != nil
	if q.o.SlowOver > 0 {
		r.SlowOverMs, r.SlowCount = float64(q.o.SlowOver)/float64(time.Millisecond), slowCount
	}
	if len(slow) > 0 {
		slices.SortFunc(slow, func(a, b report.SlowQuery) int { return cmp.Compare(b.LatencyMs, a.LatencyMs) })
		r.Slowest = slow[:min(len(slow), q.o.Slowest)]
	}
	if s := q.elapsed.Seconds(); s > 0 {
		r.RequestsPerSecond = float64(r.Requests) / s
	}
	if len(cache) > 0 {
		r.Cache = cache
		var n int64
		for _, v := range cache {
			n += v
		}
		r.CacheHitRatio = report.Float64(float64(cache["hit"]) / float64(n))
	}
	for _, name := range slices.Sorted(maps.Keys(byTemplate)) {
		h := byTemplate[name]
		r.ByTemplate = append(r.ByTemplate, report.Breakdown{Name: name, Count: h.Count(), Errors: errsBy[name], Latency: h.Summary()})
	}
	return r
}

// gcCycles returns the collections this process has finished.
func gcCycles() int64 {
	s := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}}
	metrics.Read(s)
	return int64(s[0].Value.Uint64())
}
