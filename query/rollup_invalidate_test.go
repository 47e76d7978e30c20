package query

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/strata-tsdb/strata/downsample"
	"github.com/strata-tsdb/strata/ingest"
)

// TestInvalidateNewRollups: answers cached from rollups stay cached when a
// downsampler run writes nothing, and are computed again once it rewrites
// the rollups of their metric and days (here after a late raw write that
// nothing else invalidated), agreeing with a fresh answer. (Every metric
// in a rewritten rollup segment is invalidated on its days, not only the
// one written late; one they do not hold stays cached.)
func TestInvalidateNewRollups(t *testing.T) {
	e := newRollupEnv(t, 4, 3)
	f := newCachedFrontend(t, e.eng, func() time.Time { return e.now }, nil)
	gauge := RangeQuery{Query: `max_over_time(gauge[1h])`, Start: e.end.Add(-3 * 24 * time.Hour), End: e.end.Add(-time.Hour), Step: time.Hour}
	status := func(r RangeQuery) (CacheStatus, Resolution) {
		t.Helper()
		cached, fresh := rangeBoth(t, f, r)
		sameAnswer(t, r.Query, cached, fresh)
		return cached.Cache, cached.Resolution
	}
	// A metric no rollup holds (its empty answer is cached too).
	none := gauge
	none.Query = `max_over_time(nothing[1h])`
	for _, r := range []RangeQuery{gauge, none} {
		status(r)
		if s, res := status(r); s != CacheHit || res != Resolution1h {
			t.Fatalf("%s again: %s from %s, want a hit from 1h rollups", r.Query, s, res)
		}
	}
	logger := slog.New(slog.DiscardHandler)
	n, err := f.InvalidateNewRollups(logger, e.set, func() (int, error) { return 0, nil })
	if n != 0 || err != nil {
		t.Fatal(n, err)
	}
	if s, _ := status(gauge); s != CacheHit {
		t.Fatalf("after a downsampler run that wrote nothing: %s, want a hit", s)
	}

	// A late write into a rolled-up day, flushed; the downsampler rewrites
	// that day's rollups.
	day := e.end.Add(-36 * time.Hour)
	b := &ingest.Batch{Series: []ingest.Series{{Labels: labels.FromStrings("__name__", "gauge", "host", "h0"), Samples: []ingest.Sample{{T: day.Add(17 * time.Second).UnixMilli(), V: 1e6}}}}}
	if err := e.store.Append(b); err != nil {
		t.Fatal(err)
	}
	if err := e.store.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	ds, err := downsample.New(logger, e.set, downsample.Options{Now: func() time.Time { return e.now }}, nil)
	if err != nil {
		t.Fatal(err)
	}
	n, err = f.InvalidateNewRollups(logger, e.set, func() (int, error) { return ds.Run(context.Background()) })
	if n == 0 || err != nil {
		t.Fatalf("the downsampler rewrote %d rollups (%v) after a late write", n, err)
	}
	if s, _ := status(gauge); s == CacheHit {
		t.Fatal("the metric whose rollups were rewritten: a hit")
	}
	if s, _ := status(none); s != CacheHit {
		t.Fatalf("a metric the rewritten rollups do not hold: %s, want a hit", s)
	}
}
