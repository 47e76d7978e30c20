package query

import (
	"context"
	"slices"
	"testing"
	"time"
)

// BenchmarkFrontendRange runs a 24 h range query at a 60 s step over 1,000
// series sampled every 10 s: cold (cache bypassed), warm (every extent
// cached) and warm with a moving end (the clock advances 10 s per query, so
// the freshest minute is recomputed), reporting p50 and p99.
func BenchmarkFrontendRange(b *testing.B) {
	now := time.Date(2026, 1, 10, 12, 0, 0, 0, time.UTC)
	e := newDiffEnv(b, now)
	loadCounters(b, e.store.Head(), "x", 1000, now.Add(-25*time.Hour), now)
	query := func(bypass, advance bool) func(b *testing.B) {
		return func(b *testing.B) {
			var lat []time.Duration
			ctx := context.Background()
			for b.Loop() {
				if advance {
					e.clock.Advance(10 * time.Second)
				}
				end := e.clock.Now().Truncate(time.Minute)
				r := RangeQuery{Query: "sum by (host) (rate(x[5m]))", Start: end.Add(-24 * time.Hour), End: end, Step: time.Minute}
				t0 := time.Now()
				if _, err := e.frontend.Range(ctx, r, bypass); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(t0))
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
		}
	}
	b.Run("cold", query(true, false))
	if _, err := e.frontend.Range(context.Background(), RangeQuery{Query: "sum by (host) (rate(x[5m]))", Start: now.Add(-24 * time.Hour), End: now, Step: time.Minute}, false); err != nil {
		b.Fatal(err)
	}
	b.Run("warm", query(false, false))
	b.Run("warm-moving-tail", query(false, true))
}
