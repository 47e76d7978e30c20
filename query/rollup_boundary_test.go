package query

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"

	"github.com/strata-tsdb/strata/downsample"
	"github.com/strata-tsdb/strata/ingest"
)

// newBoundaryEnv writes 4 days of 10 s counters, the last day left in the
// head, and rolls up only the first two days at the resolution res: a
// query over the whole period reads rollups up to the end of day 2 and raw
// data after it. The counters are
//   - h0: 1 per sample in even hours, 3 in odd ones, so that a rate over
//     2 h differs from one over 1 h by half;
//   - h1: the same the other way round, reset in day 3 (in raw segments) and in day 4 (in the head);
//   - h2: like h0, but it starts 10 minutes into day 3, so that no rollup
//     holds it (raw data only, converted to the counter aggregate).
func newBoundaryEnv(t *testing.T, res Resolution) (e *rollupEnv, covered time.Time) {
	t.Helper()
	store, set, _ := openTestStore(t)
	e = &rollupEnv{store: store, set: set}
	e.end = time.Date(2026, 1, 31, 0, 0, 0, 0, time.UTC)
	start := e.end.Add(-4 * 24 * time.Hour)
	covered = start.Add(2 * 24 * time.Hour)
	// Counters far from zero: rate's extrapolation stops at a counter's
	// zero, which the wider window a rollup rate reads reaches sooner.
	vals := []float64{1e5, 1e5, 1e5}
	for day := start; day.Before(e.end); day = day.Add(24 * time.Hour) {
		b := &ingest.Batch{}
		for i := range vals {
			s := ingest.Series{Labels: labels.FromStrings("__name__", "requests_total", "host", fmt.Sprintf("h%d", i))}
			for ts := day; ts.Before(day.Add(24 * time.Hour)); ts = ts.Add(10 * time.Second) {
				if i == 2 && ts.Before(covered.Add(24*time.Hour+10*time.Minute)) {
					continue
				}
				inc := 1.0
				if (ts.Hour()+i)%2 == 1 {
					inc = 3
				}
				vals[i] += inc
				if i == 1 && (ts.Equal(covered.Add(6*time.Hour+30*time.Minute)) || ts.Equal(covered.Add(30*time.Hour+30*time.Minute))) {
					vals[i] = inc // a reset, after the rolled-up days
				}
				s.Samples = append(s.Samples, ingest.Sample{T: ts.UnixMilli(), V: vals[i]})
			}
			if len(s.Samples) > 0 {
				b.Series = append(b.Series, s)
			}
		}
		if err := store.Append(b); err != nil {
			t.Fatal(err)
		}
		if day.Add(24 * time.Hour).Before(e.end) {
			if err := store.Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Windows are due once their end is older than the age: make exactly
	// the first two days due at res (5m rollups are due before 1h ones).
	opts := downsample.Options{Raw5mAfter: 40 * time.Hour, FiveM1hAfter: 240 * time.Hour}
	age := opts.Raw5mAfter
	if res == Resolution1h {
		age = opts.FiveM1hAfter
	}
	opts.Now = func() time.Time { return covered.Add(age + time.Hour) }
	compactAndRollUp(t, set, opts)
	e.q, e.eng = newTestEngine(t, store, set)
	from, to, ok := e.q.coverage(int64(res))
	if !ok || to != covered.UnixMilli() || from > start.Add(time.Hour).UnixMilli() {
		t.Fatalf("%s rollups cover %v..%v (%v), want %s..%s", res, time.UnixMilli(from).UTC(), time.UnixMilli(to).UTC(), ok, start, covered)
	}
	return e, covered
}

// TestRollupRateBeyondCoverage runs rate and increase over a range that
// goes on past the newest rollup window, where the engine reads raw data
// through the rewritten query's wider counter window: every step, on
// either side of the boundary, must agree with the same query on raw data
// (within 1%, as TestRollupEquivalence requires of rates). Raw data past
// the rollups must be read as the counter aggregate (bucket-end values),
// or the wider window averages the rate over a bucket more.
func TestRollupRateBeyondCoverage(t *testing.T) {
	for _, c := range []struct {
		res  Resolution
		step time.Duration
	}{
		{Resolution1h, time.Hour},
		{Resolution5m, 5 * time.Minute},
		{Resolution5m, 15 * time.Minute},
	} {
		t.Run(fmt.Sprintf("%s/step=%s", c.res, c.step), func(t *testing.T) {
			e, covered := newBoundaryEnv(t, c.res)
			start := e.end.Add(-4*24*time.Hour + 3*time.Hour)
			h2From := covered.Add(24*time.Hour + 10*time.Minute + 2*time.Hour) // it has a rate from rollups from here on
			for _, qs := range []string{`rate(requests_total[1h])`, `increase(requests_total[2h])`, `sum(rate(requests_total{host!="h2"}[3h]))`} {
				ctx := context.Background()
				r := RangeQuery{Query: qs, Start: start, End: e.end, Step: c.step}
				res, err := e.eng.ChooseResolution(qs, r.Start, r.End, r.Step, ResolutionAuto)
				if err != nil || res != c.res {
					t.Fatalf("%s: chose %s (%v), want %s", qs, res, err, c.res)
				}
				roll, err := e.eng.Range(ctx, r)
				if err != nil {
					t.Fatal(err)
				}
				r.MaxSourceResolution = ResolutionRaw
				raw, err := e.eng.Range(ctx, r)
				if err != nil {
					t.Fatal(err)
				}
				rm, om := raw.Value.(promql.Matrix), roll.Value.(promql.Matrix)
				if len(rm) == 0 || len(rm) != len(om) {
					t.Fatalf("%s: %d raw series, %d from rollups", qs, len(rm), len(om))
				}
				after, bad, first := 0, 0, ""
				for i := range rm {
					if !labels.Equal(rm[i].Metric, om[i].Metric) {
						t.Fatalf("%s: raw %s, rollup %s", qs, rm[i].Metric, om[i].Metric)
					}
					got := map[int64]float64{}
					for _, p := range om[i].Floats {
						got[p.T] = p.F
					}
					for _, p := range rm[i].Floats {
						if rm[i].Metric.Get("host") == "h2" && p.T < h2From.UnixMilli() {
							continue // a rate from rollups needs the bucket before the window
						}
						o, ok := got[p.T]
						d := math.Abs(p.F - o)
						if p.F != 0 {
							d /= math.Abs(p.F)
						}
						if p.T > covered.UnixMilli() {
							after++
						}
						if !ok || d > 0.01 {
							if bad++; first == "" {
								first = fmt.Sprintf("%s at %s: raw %v, rollup %v (present %v, off %.3g)", rm[i].Metric, time.UnixMilli(p.T).UTC(), p.F, o, ok, d)
							}
						}
					}
				}
				if bad > 0 {
					t.Errorf("%s: %d points differ from raw data by more than 1%% (rollups end at %s), the first %s", qs, bad, covered, first)
				}
				if after == 0 {
					t.Fatalf("%s: no point after the rollups compared", qs)
				}
			}
		})
	}
}
