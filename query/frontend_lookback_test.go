package query

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/strata-tsdb/strata/ingest"
)

// TestOneMillisecondOfDataIsTagged: with a lookback of 1 ms, an instant
// query reads exactly one millisecond of data (dmin = dmax); its cached
// answer is tagged with that day, so a late write there makes it a miss
// and the next answer holds the write.
func TestOneMillisecondOfDataIsTagged(t *testing.T) {
	now := time.Date(2026, 1, 10, 12, 0, 0, 0, time.UTC)
	e := newDiffEnv(t, now)
	e.write(t, gaugeBatch("lb", now.Add(-3*time.Hour), now.Add(-time.Hour), time.Minute))
	eng, err := NewEngine(slog.New(slog.DiscardHandler), nil, e.frontend.engine.queryable, Options{LookbackDelta: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	f, err := NewFrontend(eng, e.cache, e.frontend.opts, e.clock.Now, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	at := now.Add(-2 * time.Hour) // a sample's timestamp
	ask := func(want CacheStatus, what string) float64 {
		t.Helper()
		cached, err := f.Instant(ctx, "lb", at, ResolutionAuto, false)
		if err != nil {
			t.Fatal(err)
		}
		fresh, err := f.Instant(ctx, "lb", at, ResolutionAuto, true)
		if err != nil {
			t.Fatal(err)
		}
		sameAnswer(t, what, cached, fresh)
		if cached.Cache != want {
			t.Fatalf("%s: %s, want %s", what, cached.Cache, want)
		}
		m := asMatrix(fresh.Value)
		if len(m) != 1 || len(m[0].Floats) != 1 {
			t.Fatalf("%s: %v, want one sample", what, m)
		}
		return m[0].Floats[0].F
	}
	ask(CacheMiss, "first")
	ask(CacheHit, "second")
	e.write(t, &ingest.Batch{Series: []ingest.Series{{Labels: labels.FromStrings("__name__", "lb", "host", "a"), Samples: []ingest.Sample{{T: at.UnixMilli(), V: 1e6}}}}})
	if v := ask(CacheMiss, "after a late write at its instant"); v != 1e6 {
		t.Fatalf("after a late write of 1e6 at its instant: %v", v)
	}
}
