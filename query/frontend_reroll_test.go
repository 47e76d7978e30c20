package query

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"

	"github.com/strata-tsdb/strata/ingest"
)

// TestCachedRollupAfterRawRetentionPassesDay: a late write into a rolled-up
// day shows at 5m resolution at once (the day is rolled up again from raw
// data) until raw retention passes the day's start; from then on the day
// is read from its stored rollup, which the downsampler has not rebuilt
// yet, and the answer changes with the clock, with no write. An answer
// cached before that moment must not be served after it. It was (cache
// differential test, seed 7, op 27629 of 60,000: increase(m1[1h]) at 1h,
// a point the fresh answer no longer had): the keys of answers read from
// rollups now hold the oldest window that may still be rolled up again.
func TestCachedRollupAfterRawRetentionPassesDay(t *testing.T) {
	start := time.Date(2026, 1, 10, 0, 0, 0, 0, time.UTC)
	e := newDiffEnv(t, start) // raw retention 4 days
	ctx := context.Background()
	lset := labels.FromStrings("__name__", "rr", "host", "a")
	for ts := start.Add(-5 * 24 * time.Hour); ts.Before(start); ts = ts.Add(time.Hour) {
		s := ingest.Series{Labels: lset}
		for i := range 60 {
			s.Samples = append(s.Samples, ingest.Sample{T: ts.Add(time.Duration(i) * time.Minute).UnixMilli(), V: float64(i)})
		}
		e.write(t, &ingest.Batch{Series: []ingest.Series{s}})
	}
	if err := e.store.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	n, err := e.frontend.InvalidateNewRollups(slog.New(slog.DiscardHandler), e.set, func() (int, error) { return e.rollups.Run(ctx) })
	if err != nil || n == 0 {
		t.Fatalf("rollups written: %d, %v", n, err)
	}
	// The day (01-06 00:00, 01-07 00:00] is the oldest inside raw
	// retention: a late write there is rolled up again by queries.
	day := start.Add(-4 * 24 * time.Hour)
	late := day.Add(12*time.Hour + 30*time.Second)
	e.write(t, &ingest.Batch{Series: []ingest.Series{{Labels: lset, Samples: []ingest.Sample{{T: late.UnixMilli(), V: 1e6}}}}})
	r := RangeQuery{Query: `max_over_time(rr[5m])`, Start: day.Add(5 * time.Minute), End: day.Add(24 * time.Hour), Step: 5 * time.Minute}
	at := late.Truncate(5 * time.Minute).Add(5 * time.Minute).UnixMilli()
	valueAt := func(res *Result) float64 {
		t.Helper()
		for _, s := range res.Value.(promql.Matrix) {
			for _, p := range s.Floats {
				if p.T == at {
					return p.F
				}
			}
		}
		t.Fatal("no point at the late write's bucket")
		return 0
	}
	cached, err := e.frontend.Range(ctx, r, false)
	if err != nil {
		t.Fatal(err)
	}
	if cached.Resolution != Resolution5m || valueAt(cached) != 1e6 {
		t.Fatalf("before: %s answer, %g at the late write's bucket; want 5m rollups and the late write", cached.Resolution, valueAt(cached))
	}
	if again, err := e.frontend.Range(ctx, r, false); err != nil || again.Cache != CacheHit {
		t.Fatalf("asked again: %v, %v; want a hit", again.Cache, err)
	}
	// Raw retention passes the day's start: the day is read from its
	// stored rollup from now on.
	e.clock.Advance(time.Minute)
	cached, err = e.frontend.Range(ctx, r, false)
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := e.frontend.Range(ctx, r, true)
	if err != nil {
		t.Fatal(err)
	}
	if d := equalMatrix(cached.Value.(promql.Matrix), fresh.Value.(promql.Matrix)); d != "" {
		t.Fatalf("after raw retention passed the day, the answer through the cache (%s) differs from a fresh one: %s", cached.Cache, d)
	}
	if valueAt(fresh) == 1e6 {
		t.Fatal("the stored rollup answers with the late write: the test no longer shows what it is about")
	}
}
