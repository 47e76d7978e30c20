package query

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"math/rand"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/promql/promqltest"
	"github.com/prometheus/prometheus/storage"

	"github.com/strata-tsdb/strata/ingest"
)

func TestShardPlan(t *testing.T) {
	s := newShardEngine(nil, parser.NewParser(parser.Options{}), 2, 1000, 0)
	f := func(qs string, want int) {
		t.Helper()
		calls := s.plan(qs, nil)
		if len(calls) != want {
			t.Fatalf("%s: %d direct calls, want %d", qs, len(calls), want)
		}
		if want == 0 {
			return
		}
		rq := rewrite(qs, calls)
		if len(rq) != len(qs) {
			t.Fatalf("%s: rewritten to %q, a different length", qs, rq)
		}
		if _, err := parser.NewParser(parser.Options{}).ParseExpr(rq); err != nil {
			t.Fatalf("%s: rewritten to %q: %v", qs, rq, err)
		}
	}
	f(`avg by (host) (avg_over_time(x[1h]))`, 1)
	f(`max(max_over_time(x{host="a"}[1m]))`, 1)
	f(`sum_over_time(x[5m] offset 1h)`, 1)
	f(`topk(3, (count_over_time(x[5m])))`, 1)
	f(`max(avg by (host) (stddev_over_time(x[5m])))`, 1)
	f("sum(\n  min_over_time(\n x[5m]))", 1)
	f(`sum by (host) (rate(x_total[5m]))`, 1)
	f(`rate(x[1s])`, 1) // the shortest call
	f(`sum(idelta(x[5m]))`, 1)
	// Not evaluated directly: other functions, other parents, @, names
	// that stay, grouping by the name, subqueries, duration expressions,
	// anchored and smoothed selectors.
	f(`increase(x[5m]) + delta(x[5m])`, 0)
	f(`max(irate(x[5m])) + min(resets(x[5m]))`, 0)
	f(`count(changes(x[5m])) > 1`, 0)
	f(`last_over_time(x[5m])`, 0)
	f(`quantile_over_time(0.5, x[5m])`, 0)
	f(`avg_over_time(x[5m]) * 2`, 0)
	f(`absent(avg_over_time(x[5m]))`, 0)
	f(`timestamp(avg_over_time(x[5m]))`, 0)
	f(`avg_over_time(x[5m] @ 100)`, 0)
	f(`sum by (__name__) (avg_over_time(x[5m]))`, 0)
	f(`avg_over_time(avg_over_time(x[5m])[1h:1m])`, 0)
	f(`avg_over_time(x[5m:1m])`, 0)
	f(`rate(x[5m:1m])`, 0)
	f(`rate(x[5m] anchored)`, 0)
	f(`sum(rate(x[5m] smoothed))`, 0)
	f(`not a query (`, 0)
}

// TestShardCompliance runs Prometheus' promqltest scripts through the
// direct, sharded evaluation of range functions, in Strata's split mode
// (every series read through the merge of segments and head): its answers
// must be what the scripts expect of the PromQL engine.
func TestShardCompliance(t *testing.T) {
	inner := promqltest.NewTestEngine(t, false, 0, promqltest.DefaultMaxSamplesPerQuery)
	eng := newShardEngine(inner, parser.NewParser(promqltest.TestParserOpts), 3, promqltest.DefaultMaxSamplesPerQuery, 0)
	for _, s := range complianceScripts(t, promqltestDataDir(t)) {
		t.Run(s.name, func(t *testing.T) {
			promqltest.RunTestWithStorage(t, s.content, eng, func(tb testing.TB) storage.Storage {
				return newStrataStorage(tb, modeSplit)
			})
		})
	}
	// The scripts must have exercised the direct path, not only the
	// plain engine behind it.
	if n := eng.used.Load(); n < 50 {
		t.Fatalf("only %d calls of the scripts were evaluated directly", n)
	}
	t.Logf("%d calls evaluated directly", eng.used.Load())
}

// shardQueries returns the number of random queries a differential test
// runs: STRATA_SHARD_QUERIES when set, else def.
func shardQueries(t *testing.T, def int) int {
	t.Helper()
	s := os.Getenv("STRATA_SHARD_QUERIES")
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestShardEqualsPlain is the randomized differential test of the direct
// evaluation: over data spread across segments and the head (overlapping
// rewrites, out-of-order samples, NaN and stale markers, a delete, gauges
// and counters with resets), random queries answered directly with 1 to 3
// shards must equal, bit for bit, the plain engine's answers, annotations
// included. STRATA_SHARD_QUERIES sets the number of queries.
func TestShardEqualsPlain(t *testing.T) {
	n := shardQueries(t, 300)
	end := time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
	start := end.Add(-6 * time.Hour)
	e := newDiffEnv(t, end.Add(time.Hour))
	rng := rand.New(rand.NewSource(7))
	stale := math.Float64frombits(value.StaleNaN)
	write := func(from, to time.Time, every time.Duration) {
		b := &ingest.Batch{}
		for h := range 12 {
			for _, name := range []string{"x", "y", "c_total"} {
				s := ingest.Series{Labels: labels.FromStrings("__name__", name, "host", fmt.Sprintf("h%d", h), "dc", fmt.Sprintf("dc%d", h%3))}
				counter := float64(rng.Intn(1000))
				for ts := from; ts.Before(to); ts = ts.Add(every + time.Duration(rng.Intn(3))*time.Second) {
					if rng.Intn(10) == 0 {
						ts = ts.Add(time.Duration(rng.Intn(20)) * time.Minute) // a gap
					}
					v := float64(rng.Intn(200)) - 50 + rng.Float64()
					if name == "c_total" {
						// A counter: integer or fractional increments,
						// now and then a reset to a smaller value.
						counter += float64(rng.Intn(30))
						if rng.Intn(3) == 0 {
							counter += rng.Float64()
						}
						if rng.Intn(40) == 0 {
							counter = float64(rng.Intn(10))
						}
						v = counter
					}
					switch rng.Intn(60) {
					case 0:
						v = math.NaN()
					case 1:
						v = stale
					case 2:
						v = math.Inf(1)
					}
					s.Samples = append(s.Samples, ingest.Sample{T: ts.UnixMilli(), V: v})
				}
				if len(s.Samples) > 0 {
					b.Series = append(b.Series, s)
				}
			}
		}
		e.write(t, b)
	}
	ctx := context.Background()
	write(start, start.Add(3*time.Hour), 10*time.Second)
	if err := e.store.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	// Rewrites of part of the flushed range (newer values win) and the
	// rest of the data.
	write(start.Add(2*time.Hour), start.Add(4*time.Hour), 15*time.Second)
	if err := e.store.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := e.compactor.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	write(start.Add(3*time.Hour+30*time.Minute), end, 10*time.Second)
	write(start.Add(90*time.Minute), start.Add(100*time.Minute), 7*time.Second) // out of order, into the head
	ms := []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "host", "h3")}
	if err := e.deleter.DeleteSeries(ctx, [][]*labels.Matcher{ms}, start.Add(time.Hour).UnixMilli(), start.Add(80*time.Minute).UnixMilli()); err != nil {
		t.Fatal(err)
	}
	write(start.Add(5*time.Hour), end.Add(10*time.Minute), 10*time.Second) // rewrites in the head

	logger := slog.New(slog.DiscardHandler)
	q := NewQueryable(e.store.Head(), e.set)
	plain, err := NewEngine(logger, nil, q, Options{PlainRangeFunctions: true})
	if err != nil {
		t.Fatal(err)
	}
	direct := make([]*Engine, 3)
	for i := range direct {
		if direct[i], err = NewEngine(logger, nil, q, Options{Shards: i + 1}); err != nil {
			t.Fatal(err)
		}
	}
	fns := []string{"avg_over_time", "sum_over_time", "min_over_time", "max_over_time", "count_over_time", "stddev_over_time", "stdvar_over_time",
		"rate", "increase", "delta", "irate", "idelta", "resets", "changes"}
	sels := []string{`x`, `x{host="h3"}`, `{__name__=~"x|y", dc="dc1"}`, `y{host=~"h1.*"}`, `nothing`,
		`c_total`, `c_total{dc="dc2"}`, `{__name__=~"c_total|x", host=~"h[0-5]"}`}
	ranges := []string{"30s", "1m", "5m", "17m", "1h", "2h"}
	offsets := []string{"", " offset 3m", " offset -7m", " offset 1h"}
	outer := []string{"%s", "sum(%s)", "avg by (host) (%s)", "max by (dc) (%s)", "min without (host) (%s)", "count(%s)",
		"topk(2, %s)", "quantile(0.9, %s)", "max(avg by (dc) (%s))", "(%s)", "stddev by (dc) (%s)", "group(%s)"}
	for i := range n {
		inner := fmt.Sprintf("%s(%s[%s]%s)", fns[rng.Intn(len(fns))], sels[rng.Intn(len(sels))], ranges[rng.Intn(len(ranges))], offsets[rng.Intn(len(offsets))])
		qs := fmt.Sprintf(outer[rng.Intn(len(outer))], inner)
		from := start.Add(time.Duration(rng.Int63n(int64(7 * time.Hour))))
		if rng.Intn(4) != 0 {
			from = from.Truncate(10 * time.Second) // windows that end on samples
		}
		to := from.Add(time.Duration(rng.Int63n(int64(3 * time.Hour))))
		step := []time.Duration{15 * time.Second, time.Minute, 7 * time.Minute, time.Hour}[rng.Intn(4)]
		d := direct[i%len(direct)]
		if i%5 == 0 {
			want, werr := plain.InstantAt(ctx, qs, to, ResolutionRaw)
			got, gerr := d.InstantAt(ctx, qs, to, ResolutionRaw)
			compareResults(t, fmt.Sprintf("instant %s at %s", qs, to), want, got, werr, gerr)
			continue
		}
		r := RangeQuery{Query: qs, Start: from, End: to, Step: step}
		want, werr := plain.RangeAt(ctx, r, ResolutionRaw)
		got, gerr := d.RangeAt(ctx, r, ResolutionRaw)
		compareResults(t, fmt.Sprintf("%s from %s to %s step %s", qs, from, to, step), want, got, werr, gerr)
	}
	used := int64(0)
	for _, d := range direct {
		used += d.engine.(*shardEngine).used.Load()
	}
	if used < int64(n/2) {
		t.Fatalf("only %d of %d queries were evaluated directly", used, n)
	}
}

func compareResults(t *testing.T, what string, want, got *promql.Result, werr, gerr error) {
	t.Helper()
	if (werr == nil) != (gerr == nil) || werr != nil && werr.Error() != gerr.Error() {
		t.Fatalf("%s: error %v, plain engine's %v", what, gerr, werr)
	}
	if werr != nil {
		return
	}
	w, g := asMatrix(want.Value), asMatrix(got.Value)
	if diff := equalMatrix(w, g); diff != "" {
		t.Fatalf("%s: %s (plain engine first)", what, diff)
	}
	ww, wi := want.Warnings.AsStrings("", 0, 0)
	gw, gi := got.Warnings.AsStrings("", 0, 0)
	slices.Sort(ww)
	slices.Sort(wi)
	slices.Sort(gw)
	slices.Sort(gi)
	if !slices.Equal(ww, gw) || !slices.Equal(wi, gi) {
		t.Fatalf("%s: warnings %q and infos %q, plain engine's %q and %q", what, gw, gi, ww, wi)
	}
}

// TestShardStatsEqualsPlain is the differential test of range functions
// answered from chunk statistics: over series flushed, compacted into a
// compressed segment and in the head, of small integers, integers past the
// exact-sum bound (in a chunk, or only in windows of several chunks),
// fractions, NaN and stale markers, with gaps, random
// sum/avg/count/min/max_over_time queries (windows aligned with chunk
// starts and not) answered directly must equal, bit for bit, the plain
// engine's answers; and every way a window takes a chunk's statistics
// (whole, all but the first sample, the first sample alone) must have been
// used.
func TestShardStatsEqualsPlain(t *testing.T) {
	n := shardQueries(t, 400)
	end := time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
	start := end.Add(-6 * time.Hour)
	e := newDiffEnv(t, end.Add(time.Hour))
	rng := rand.New(rand.NewSource(17))
	frng := rand.New(rand.NewSource(18))
	stale := math.Float64frombits(value.StaleNaN)
	walk := []float64{50, 50, 50, 50}
	write := func(from, to time.Time) {
		b := &ingest.Batch{}
		// Fractional random walks (kind f), which hour runs serve: one
		// with NaN on some hours (a run then ends on a value it cannot
		// take), one with a -0 on some hours (a run starting with it is
		// not summable), one with gaps.
		for h := range walk {
			s := ingest.Series{Labels: labels.FromStrings("__name__", "n", "host", fmt.Sprintf("f%d", h), "kind", "f")}
			for ts := from; ts.Before(to); ts = ts.Add(10 * time.Second) {
				if h == 3 && frng.Intn(100) == 0 {
					ts = ts.Add(time.Duration(1+frng.Intn(40)) * 10 * time.Second)
				}
				walk[h] = min(100, max(0, walk[h]+frng.NormFloat64()))
				v := walk[h]
				if onHour := ts.Minute() == 0 && ts.Second() == 0; onHour && h == 1 && frng.Intn(2) == 0 {
					v = math.NaN()
				} else if onHour && h == 2 && frng.Intn(2) == 0 {
					v = math.Copysign(0, -1)
				}
				s.Samples = append(s.Samples, ingest.Sample{T: ts.UnixMilli(), V: v})
			}
			b.Series = append(b.Series, s)
		}
		for h := range 20 {
			s := ingest.Series{Labels: labels.FromStrings("__name__", "n", "host", fmt.Sprintf("h%02d", h), "kind", strconv.Itoa(h%5))}
			for ts := from; ts.Before(to); ts = ts.Add(10 * time.Second) {
				if h%7 == 3 && rng.Intn(200) == 0 {
					ts = ts.Add(time.Duration(1+rng.Intn(40)) * 10 * time.Second) // a gap
				}
				v := float64(rng.Intn(200) - 50)
				switch {
				case h%5 == 2 && rng.Intn(300) == 0:
					v = float64(1<<51 + rng.Intn(100)) // past the exact-sum bound
				case h%5 == 2 && h >= 10:
					// Chunks within the exact-sum bound, windows of three
					// or more of them past it.
					v = float64(1<<52/125 + rng.Intn(1000))
				case h%5 == 3 && !ts.Before(start.Add(5*time.Hour)) && rng.Intn(5) == 0:
					v += 0.1 // in the head only: integer chunks before it
				case h%5 == 4 && rng.Intn(300) == 0:
					v = []float64{math.NaN(), stale, math.Copysign(0, -1)}[rng.Intn(3)]
				}
				s.Samples = append(s.Samples, ingest.Sample{T: ts.UnixMilli(), V: v})
			}
			b.Series = append(b.Series, s)
		}
		e.write(t, b)
	}
	ctx := context.Background()
	write(start, start.Add(3*time.Hour))
	if err := e.store.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := e.compactor.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	write(start.Add(3*time.Hour), start.Add(5*time.Hour))
	if err := e.store.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	write(start.Add(5*time.Hour), end)

	logger := slog.New(slog.DiscardHandler)
	q := NewQueryable(e.store.Head(), e.set)
	plain, err := NewEngine(logger, nil, q, Options{PlainRangeFunctions: true})
	if err != nil {
		t.Fatal(err)
	}
	direct := make([]*Engine, 2)
	for i := range direct {
		if direct[i], err = NewEngine(logger, nil, q, Options{Shards: i + 1}); err != nil {
			t.Fatal(err)
		}
	}
	fns := []string{"avg_over_time", "sum_over_time", "min_over_time", "max_over_time", "count_over_time"}
	sels := []string{`n`, `n{kind="0"}`, `n{kind=~"1|2"}`, `n{kind=~"3|4"}`, `n{kind="f"}`, `n{kind="f"}`}
	ranges := []string{"10s", "5m", "20m", "30m", "40m", "1h", "2h", "3h"}
	offsets := []string{"", " offset 20m", " offset -10s", " offset 1h"}
	outer := []string{"%s", "sum(%s)", "max by (kind) (%s)", "count(%s)"}
	steps := []time.Duration{10 * time.Second, time.Minute, 10 * time.Minute, 20 * time.Minute, time.Hour}
	for i := range n {
		inner := fmt.Sprintf("%s(%s[%s]%s)", fns[rng.Intn(len(fns))], sels[rng.Intn(len(sels))], ranges[rng.Intn(len(ranges))], offsets[rng.Intn(len(offsets))])
		qs := fmt.Sprintf(outer[rng.Intn(len(outer))], inner)
		from := start.Add(time.Duration(rng.Intn(37)) * 10 * time.Minute) // on chunk starts or between
		if rng.Intn(4) == 0 {
			from = from.Add(time.Duration(rng.Intn(600)) * time.Second)
		}
		to := from.Add(time.Duration(rng.Int63n(int64(4 * time.Hour))))
		d := direct[i%len(direct)]
		if i%7 == 0 {
			want, werr := plain.InstantAt(ctx, qs, to, ResolutionRaw)
			got, gerr := d.InstantAt(ctx, qs, to, ResolutionRaw)
			compareResults(t, fmt.Sprintf("instant %s at %s", qs, to), want, got, werr, gerr)
			continue
		}
		r := RangeQuery{Query: qs, Start: from, End: to, Step: steps[rng.Intn(len(steps))]}
		want, werr := plain.RangeAt(ctx, r, ResolutionRaw)
		got, gerr := d.RangeAt(ctx, r, ResolutionRaw)
		compareResults(t, fmt.Sprintf("%s from %s to %s step %s", qs, from, to, r.Step), want, got, werr, gerr)
	}
	var covered [4]int64
	for _, d := range direct {
		for c := range covered {
			covered[c] += d.engine.(*shardEngine).covered[c].Load()
		}
	}
	var runs int64
	for _, d := range direct {
		runs += d.engine.(*shardEngine).runs.Load()
	}
	t.Logf("chunks taken from statistics: %d whole, %d all but the first sample, %d the first sample alone; %d windows from hour runs", covered[covWhole], covered[covMinusFirst], covered[covFirst], runs)
	if covered[covWhole] == 0 || covered[covMinusFirst] == 0 || covered[covFirst] == 0 || runs == 0 {
		t.Fatal("a way of taking a chunk's statistics was never used")
	}
}

// TestAfter: after finds the first sample later than t from any start, as
// a linear scan does.
func TestAfter(t *testing.T) {
	rng := rand.New(rand.NewSource(6))
	for range 2000 {
		pts := make([]promql.FPoint, rng.Intn(40))
		ts := int64(rng.Intn(5))
		for i := range pts {
			pts[i].T = ts
			ts += int64(rng.Intn(3)) // repeats too
		}
		i := rng.Intn(len(pts) + 1)
		at := int64(rng.Intn(int(ts)+3)) - 1
		want := i
		for want < len(pts) && pts[want].T <= at {
			want++
		}
		if got := after(pts, i, at); got != want {
			t.Fatalf("after(%v, %d, %d) = %d, want %d", pts, i, at, got, want)
		}
	}
}

func TestDuplicateLabels(t *testing.T) {
	f := func(want bool, lsets ...labels.Labels) {
		t.Helper()
		out := make([]promql.Series, len(lsets))
		for i, l := range lsets {
			out[i] = promql.Series{Metric: l, Floats: []promql.FPoint{{T: 1, F: 1}}}
		}
		if got := duplicateLabels(out); got != want {
			t.Errorf("duplicateLabels(%v) = %v, want %v", lsets, got, want)
		}
		// A series without points is left out, whatever its labels.
		if len(lsets) > 0 {
			out = append(out, promql.Series{Metric: out[0].Metric})
			if got := duplicateLabels(out); got != want {
				t.Errorf("duplicateLabels(%v and an empty series) = %v, want %v", lsets, got, want)
			}
		}
	}
	a, b, c := labels.FromStrings("host", "a"), labels.FromStrings("host", "b"), labels.FromStrings("host", "c")
	f(false)
	f(false, a)
	f(false, a, b, c)
	f(true, a, b, a)
	f(true, c, b, a, labels.FromStrings("host", "b"))
	f(true, labels.EmptyLabels(), a, labels.EmptyLabels())
}

// TestShardConcurrentQueries runs direct evaluations of different queries
// (different series counts, steps, series without a point) from 8
// goroutines at once and compares each answer with the plain engine's: the
// evaluator keeps per-call buffers in a pool, and one shared by two calls,
// or given back holding a series, would mix answers (run with -race).
func TestShardConcurrentQueries(t *testing.T) {
	store, set, _ := openTestStore(t)
	end := time.Date(2026, 1, 10, 6, 0, 0, 0, time.UTC)
	start := end.Add(-6 * time.Hour)
	bt := &ingest.Batch{}
	for h := range 60 {
		for _, name := range []string{"x", "y"} {
			if name == "y" && h%3 != 0 {
				continue
			}
			s := ingest.Series{Labels: labels.FromStrings("__name__", name, "host", fmt.Sprintf("h%02d", h), "dc", fmt.Sprintf("dc%d", h%4))}
			for ts := start; ts.Before(end); ts = ts.Add(10 * time.Second) {
				if h%7 == 5 && ts.Sub(start) > 2*time.Hour && ts.Sub(start) < 3*time.Hour {
					continue // a gap: steps without a value
				}
				s.Samples = append(s.Samples, ingest.Sample{T: ts.UnixMilli(), V: float64(h) + float64(ts.Unix()%97)/8})
			}
			bt.Series = append(bt.Series, s)
		}
		if h%2 == 0 {
			// Samples from hh:30 to hh:31 only: no one-minute window
			// ending on the hour holds one.
			s := ingest.Series{Labels: labels.FromStrings("__name__", "z", "host", fmt.Sprintf("h%02d", h), "kind", "z")}
			for ts := start.Add(30 * time.Minute); ts.Before(end); ts = ts.Add(10 * time.Second) {
				if ts.Minute() == 30 {
					s.Samples = append(s.Samples, ingest.Sample{T: ts.UnixMilli(), V: float64(h)})
				}
			}
			bt.Series = append(bt.Series, s)
		}
	}
	if err := store.Append(bt); err != nil {
		t.Fatal(err)
	}
	if err := store.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.DiscardHandler)
	eng, err := NewEngine(logger, nil, NewQueryable(store.Head(), set), Options{Shards: 2})
	if err != nil {
		t.Fatal(err)
	}
	plain, err := NewEngine(logger, nil, NewQueryable(store.Head(), set), Options{PlainRangeFunctions: true})
	if err != nil {
		t.Fatal(err)
	}
	var rs []RangeQuery
	for _, q := range []string{`avg by (host) (avg_over_time(x[1h]))`, `sum(rate(x[5m]))`, `max by (dc) (max_over_time(y[10m]))`,
		`count_over_time(x{host="h05"}[1m])`, `min(min_over_time(nothing[1h]))`, `sum by (dc) (sum_over_time({__name__=~"x|y", host=~"h0.*"}[30m]))`,
		`sum by (host, kind) (avg_over_time({__name__=~"x|z"}[1m]))`, `sum by (host, kind) (avg_over_time({__name__=~"x|z"}[1h]))`} {
		for _, step := range []time.Duration{time.Minute, 7 * time.Minute, time.Hour} {
			rs = append(rs, RangeQuery{Query: q, Start: start.Add(time.Hour), End: end, Step: step})
		}
	}
	ctx := context.Background()
	want := make([]*promql.Result, len(rs))
	werr := make([]error, len(rs))
	for i, r := range rs {
		want[i], werr[i] = plain.Range(ctx, r)
	}
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range 30 {
				i := (g*5 + k*7) % len(rs)
				got, gerr := eng.Range(ctx, rs[i])
				if (gerr == nil) != (werr[i] == nil) {
					errs <- fmt.Sprintf("%s: error %v, the plain engine's %v", rs[i].Query, gerr, werr[i])
					return
				}
				if gerr != nil {
					continue
				}
				if diff := equalMatrix(asMatrix(want[i].Value), asMatrix(got.Value)); diff != "" {
					errs <- fmt.Sprintf("%s step %s: %s (the plain engine first)", rs[i].Query, rs[i].Step, diff)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if eng.engine.(*shardEngine).used.Load() == 0 {
		t.Fatal("no query was evaluated directly")
	}
}
