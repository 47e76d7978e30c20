package query

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/strata-tsdb/strata/downsample"
	"github.com/strata-tsdb/strata/ingest"
)

// TestNewRollupNotServedBeforeInvalidated: a query at 5m that reads past
// the newest 5m rollup reads raw samples there; once the downsampler
// publishes the rollup of that day, the same query reads its bucket
// averages, another answer. A query answered through the cache after the
// publish, while the downsampler's run goes on (it builds day after day,
// and InvalidateNewRollups forgot the new rollups' days only once the
// run had ended), must not be served the extents computed before it: the
// cached answer equals the fresh one at every moment of the run.
// (TestL2ConcurrentDifferential found it under load, where the runs are
// long: a cached sum by (host) at 5m differed from the fresh one.)
func TestNewRollupNotServedBeforeInvalidated(t *testing.T) {
	store, set, _ := openTestStore(t)
	end := time.Date(2026, 1, 31, 0, 0, 0, 0, time.UTC)
	start := end.Add(-3 * 24 * time.Hour)
	now := end.Add(11 * 24 * time.Hour)
	// A gauge a minute, 5 samples a 5m bucket whose average is not its
	// last sample.
	for day := start; day.Before(end); day = day.Add(24 * time.Hour) {
		b := &ingest.Batch{}
		for h := range 2 {
			s := ingest.Series{Labels: labels.FromStrings("__name__", "g", "host", fmt.Sprintf("h%d", h))}
			for ts := day; ts.Before(day.Add(24 * time.Hour)); ts = ts.Add(time.Minute) {
				s.Samples = append(s.Samples, ingest.Sample{T: ts.UnixMilli(), V: float64(ts.Minute()%7 + 10*h)})
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
	// Day 0 rolled up only.
	day0 := start.UnixMilli()
	only := func(w int64) downsample.Options {
		return downsample.Options{Now: func() time.Time { return now }, FiveM1hAfter: 1000 * 24 * time.Hour, Only: func(s int64) bool { return s == w }}
	}
	if n := compactAndRollUp(t, set, only(day0)); n != 1 {
		t.Fatalf("%d rollups of day 0", n)
	}
	_, eng := newTestEngine(t, store, set)
	f := newCachedFrontend(t, eng, func() time.Time { return now }, nil)
	// From day 0 into day 1: 5m rollups cover its start.
	r := RangeQuery{Query: `sum by (host) (g)`, Start: start.Add(21 * time.Hour), End: start.Add(31 * time.Hour), Step: 5 * time.Minute}
	rangeBoth(t, f, r)
	if cached, _ := rangeBoth(t, f, r); cached.Cache != CacheHit || cached.Resolution != Resolution5m {
		t.Fatalf("again: %s from %s, want a hit from 5m rollups", cached.Cache, cached.Resolution)
	}
	ds, err := downsample.New(slog.New(slog.DiscardHandler), set, only(day0+downsample.Window), nil)
	if err != nil {
		t.Fatal(err)
	}
	checked := false
	n, err := f.InvalidateNewRollups(slog.New(slog.DiscardHandler), set, func() (int, error) {
		n, err := ds.Run(context.Background())
		// The run's rollup of day 1 is published; a run building more
		// windows would go on here.
		cached, fresh := rangeBoth(t, f, r)
		sameAnswer(t, r.Query+" after the rollup of day 1 was published", cached, fresh)
		checked = true
		return n, err
	})
	if n != 1 || err != nil || !checked {
		t.Fatalf("the downsampler wrote %d rollups (%v)", n, err)
	}
	cached, fresh := rangeBoth(t, f, r)
	sameAnswer(t, r.Query+" after the run", cached, fresh)
}
