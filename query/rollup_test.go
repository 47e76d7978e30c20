package query

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"math/rand"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"

	"github.com/strata-tsdb/strata/buffer"
	"github.com/strata-tsdb/strata/downsample"
	"github.com/strata-tsdb/strata/ingest"
	"github.com/strata-tsdb/strata/retention"
	"github.com/strata-tsdb/strata/segments"
)

// rollupEnv holds 30 days of 10 s data for some gauges and counters (with
// resets and gaps) in raw segments, and their rollups.
type rollupEnv struct {
	store *buffer.Store
	set   *segments.Set
	q     *Queryable
	eng   *Engine
	now   time.Time
	end   time.Time // last sample
}

func newRollupEnv(t testing.TB, nSeries, days int) *rollupEnv {
	t.Helper()
	store, set, _ := openTestStore(t)
	e := &rollupEnv{store: store, set: set}
	e.end = time.Date(2026, 1, 31, 0, 0, 0, 0, time.UTC)
	e.now = e.end.Add(11 * 24 * time.Hour) // everything is old enough for 1h rollups
	start := e.end.Add(-time.Duration(days) * 24 * time.Hour)
	rng := rand.New(rand.NewSource(3))
	type state struct {
		lset labels.Labels
		v    float64
		ctr  bool
		base float64 // a counter's least increment per sample
	}
	sts := make([]*state, nSeries)
	for i := range sts {
		ctr := i%2 == 1
		name := "gauge"
		if ctr {
			name = "requests_total"
		}
		// Counters of different hosts grow at clearly different rates, so
		// that topk picks the same series from rollups as from raw data.
		sts[i] = &state{lset: labels.FromStrings("__name__", name, "host", fmt.Sprintf("h%d", i/2)), ctr: ctr, base: float64(50 * i)}
	}
	// A day at a time, so the head never holds much.
	for day := start; day.Before(e.end); day = day.Add(24 * time.Hour) {
		b := &ingest.Batch{}
		for _, st := range sts {
			s := ingest.Series{Labels: st.lset}
			for ts := day; ts.Before(day.Add(24 * time.Hour)); ts = ts.Add(10 * time.Second) {
				if !st.ctr && rng.Intn(500) == 0 { // a gauge misses up to 10 minutes
					ts = ts.Add(time.Duration(rng.Intn(60)) * 10 * time.Second)
				}
				if st.ctr {
					st.v += st.base + float64(rng.Intn(100))
					if rng.Intn(20000) == 0 {
						st.v = 0 // a counter reset
					}
				} else {
					st.v = float64(rng.Intn(100)) // integer percentages
				}
				s.Samples = append(s.Samples, ingest.Sample{T: ts.UnixMilli(), V: st.v})
			}
			b.Series = append(b.Series, s)
		}
		if err := store.Append(b); err != nil {
			t.Fatal(err)
		}
		if err := store.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if n := compactAndRollUp(t, set, downsample.Options{Now: func() time.Time { return e.now }}); n == 0 {
		t.Fatal("no rollups written")
	}
	e.q, e.eng = newTestEngine(t, store, set)
	return e
}

// compactAndRollUp compacts the set's segments, then runs one round of a
// downsampler with opts over it, and returns the number of rollups it
// wrote.
func compactAndRollUp(t testing.TB, set *segments.Set, opts downsample.Options) int {
	t.Helper()
	logger := slog.New(slog.DiscardHandler)
	comp, err := segments.NewCompactor(logger, set, segments.CompactOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := comp.Compact(context.Background()); err != nil {
		t.Fatal(err)
	}
	ds, err := downsample.New(logger, set, opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	n, err := ds.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// newTestEngine returns a Queryable over the store's head and the set,
// and an engine with the default options over it.
func newTestEngine(t testing.TB, store *buffer.Store, set *segments.Set) (*Queryable, *Engine) {
	t.Helper()
	q := NewQueryable(store.Head(), set)
	eng, err := NewEngine(slog.New(slog.DiscardHandler), nil, q, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return q, eng
}

// compare runs qs over the whole period at step on raw data and with
// max resolution res, and checks the answers agree within tol (relative).
func (e *rollupEnv) compare(t *testing.T, qs string, step time.Duration, start time.Time, wantRes Resolution, tol float64) {
	t.Helper()
	ctx := context.Background()
	r := RangeQuery{Query: qs, Start: start, End: e.end, Step: step}
	res, err := e.eng.ChooseResolution(qs, r.Start, r.End, r.Step, ResolutionAuto)
	if err != nil {
		t.Fatal(err)
	}
	if res != wantRes {
		t.Fatalf("%s at step %s: chose %s, want %s", qs, step, res, wantRes)
	}
	r.MaxSourceResolution = ResolutionRaw
	raw, err := e.eng.Range(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	r.MaxSourceResolution = ResolutionAuto
	roll, err := e.eng.Range(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	rm, om := raw.Value.(promql.Matrix), roll.Value.(promql.Matrix)
	if len(rm) == 0 || len(rm) != len(om) {
		t.Fatalf("%s: %d raw series, %d from rollups", qs, len(rm), len(om))
	}
	worst, points := 0.0, 0
	for i := range rm {
		if !labels.Equal(rm[i].Metric, om[i].Metric) || len(rm[i].Floats) != len(om[i].Floats) {
			t.Fatalf("%s: series %d: raw %s (%d points) vs rollup %s (%d points)", qs, i, rm[i].Metric, len(rm[i].Floats), om[i].Metric, len(om[i].Floats))
		}
		for j, p := range rm[i].Floats {
			o := om[i].Floats[j]
			d := math.Abs(p.F - o.F)
			if p.F != 0 {
				d /= math.Abs(p.F)
			}
			if p.T != o.T || d > tol {
				t.Fatalf("%s %s at %s: raw %v, rollup %v (off %.3g, tolerance %g)", qs, rm[i].Metric, time.UnixMilli(p.T).UTC(), p.F, o.F, d, tol)
			}
			worst = max(worst, d)
			points++
		}
	}
	t.Logf("%-45s step %-4s on %-3s: %d points, worst relative difference %.3g", qs, step, res, points, worst)
}

// TestRollupEquivalence compares answers from rollups with the same queries
// on raw data over 30 days: exact for min, max, sum and count, to float
// rounding for averages, within 1% for rate and increase.
// STRATA_ROLLUP_SERIES sets the number of series (default 20).
func TestRollupEquivalence(t *testing.T) {
	n := 20
	if v := os.Getenv("STRATA_ROLLUP_SERIES"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			t.Fatal(err)
		}
	}
	e := newRollupEnv(t, n, 30)
	start := e.end.Add(-29 * 24 * time.Hour)
	for _, c := range []struct {
		q    string
		tol  float64
		at1h Resolution // what a 1 h step reads
	}{
		{`min_over_time(gauge[1h])`, 0, Resolution1h},
		{`max_over_time(gauge[1h])`, 0, Resolution1h},
		{`sum_over_time(gauge[1h])`, 0, Resolution1h},
		{`count_over_time(gauge[1h])`, 0, Resolution1h},
		{`avg_over_time(gauge[1h])`, 1e-12, Resolution1h},
		{`sum by (host) (sum_over_time(gauge[2h]))`, 0, Resolution1h},
		{`rate(requests_total[1h])`, 0.01, Resolution1h},
		{`increase(requests_total[2h])`, 0.01, Resolution1h},
		{`sum by (host) (rate(requests_total[6h]))`, 0.01, Resolution1h},
		// Binary, unary and parameterised aggregations are rewritten
		// operand by operand.
		{`sum_over_time(gauge[1h]) / count_over_time(gauge[1h])`, 1e-12, Resolution1h},
		{`-max_over_time(gauge[1h])`, 0, Resolution1h},
		{`max_over_time(gauge[1h]) / avg_over_time(gauge[1h])`, 1e-12, Resolution1h},
		{`1000 / increase(requests_total[2h])`, 0.01, Resolution1h},
		{`topk(3, rate(requests_total[1h]))`, 0.01, Resolution1h},
		{`quantile(0.9, max_over_time(gauge[1h]))`, 0, Resolution1h},
	} {
		e.compare(t, c.q, time.Hour, start, c.at1h, c.tol)
		e.compare(t, c.q, 5*time.Minute, start.Add(20*24*time.Hour), Resolution5m, c.tol)
	}
	// Plain selectors read the bucket average: compare with avg_over_time
	// on raw data, which is what they stand for.
	ctx := context.Background()
	r := RangeQuery{Query: "gauge", Start: start, End: e.end, Step: time.Hour}
	roll, err := e.eng.Range(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	r.Query, r.MaxSourceResolution = "avg_over_time(gauge[1h])", ResolutionRaw
	raw, err := e.eng.Range(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	rm, om := raw.Value.(promql.Matrix), roll.Value.(promql.Matrix)
	for i := range rm {
		for j, p := range rm[i].Floats {
			if o := om[i].Floats[j]; o.T != p.T || math.Abs(o.F-p.F) > 1e-9*math.Abs(p.F) {
				t.Fatalf("plain selector at %d: %v, raw average %v", p.T, o, p)
			}
		}
	}
}

// TestRollupsOutliveRawData deletes raw data with retention and checks a
// long range still draws from rollups, with the answer it had on raw data.
func TestRollupsOutliveRawData(t *testing.T) {
	e := newRollupEnv(t, 4, 30)
	ctx := context.Background()
	r := RangeQuery{Query: "max_over_time(gauge[1h])", Start: e.end.Add(-29 * 24 * time.Hour), End: e.end, Step: time.Hour, MaxSourceResolution: ResolutionRaw}
	before, err := e.eng.Range(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	policy := retention.Policy{Raw: 15 * 24 * time.Hour}
	enf, err := retention.New(slog.New(slog.DiscardHandler), e.set, policy, func() time.Time { return e.now }, nil)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := enf.Run(ctx)
	if err != nil || len(rep.Dropped) == 0 {
		t.Fatalf("retention dropped %d segments, err %v", len(rep.Dropped), err)
	}
	e.q.MinTime = func(res int64) int64 { return policy.MinTime(res, e.now) }
	// A 1-minute step asks for raw data, which is gone: the rollups answer.
	r.Step, r.MaxSourceResolution = time.Minute, ResolutionAuto
	r.End = e.end.Add(-20 * 24 * time.Hour) // all of it past raw retention
	r.Start = r.End.Add(-5 * 24 * time.Hour)
	res, err := e.eng.ChooseResolution(r.Query, r.Start, r.End, r.Step, ResolutionAuto)
	if err != nil || res != Resolution5m {
		t.Fatalf("chose %s (%v), want the 5m fallback", res, err)
	}
	after, err := e.eng.Range(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	am, bm := after.Value.(promql.Matrix), before.Value.(promql.Matrix)
	if len(am) != len(bm) || len(am) == 0 {
		t.Fatalf("%d series after retention, %d before", len(am), len(bm))
	}
	// At every hour both have a point, and they agree.
	checked := 0
	for i := range bm {
		idx := map[int64]float64{}
		for _, p := range am[i].Floats {
			idx[p.T] = p.F
		}
		for _, p := range bm[i].Floats {
			if p.T < r.Start.UnixMilli() || p.T > r.End.UnixMilli() {
				continue
			}
			v, ok := idx[p.T]
			if !ok || v != p.F {
				t.Fatalf("%s at %s: %v after retention (present %v), %v before", bm[i].Metric, time.UnixMilli(p.T).UTC(), v, ok, p.F)
			}
			checked++
		}
	}
	if checked == 0 {
		t.Fatal("no hour compared")
	}
}
