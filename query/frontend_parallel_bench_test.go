package query

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand"
	"runtime"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/strata-tsdb/strata/cache"
	"github.com/strata-tsdb/strata/ingest"
	"github.com/strata-tsdb/strata/segments"
)

// BenchmarkColdRangeParallelMisses is issue 15's cold dashboard: sum by
// (host) (rate(x[5m])) over 7 days of 1,000 counters (150 s scrapes, in
// compacted segments) at a 5 m step, through a frontend with an empty
// cache every time: serial (each run of missing extents in one engine
// call) against parallel (the run cut in GOMAXPROCS pieces).
func BenchmarkColdRangeParallelMisses(b *testing.B) {
	store, set := openBenchStore(b)
	logger := slog.New(slog.DiscardHandler)
	now := time.Date(2026, 1, 10, 0, 0, 0, 0, time.UTC)
	start := now.Add(-7 * 24 * time.Hour)
	rng := rand.New(rand.NewSource(1))
	vals := make([]float64, 1000)
	for day := start; day.Before(now); day = day.Add(24 * time.Hour) {
		bt := &ingest.Batch{}
		for h := range vals {
			s := ingest.Series{Labels: labels.FromStrings("__name__", "x", "host", fmt.Sprintf("host-%d", h%100), "instance", fmt.Sprintf("i%d", h))}
			for ts := day; ts.Before(day.Add(24 * time.Hour)); ts = ts.Add(150 * time.Second) {
				vals[h] += float64(rng.Intn(100))
				s.Samples = append(s.Samples, ingest.Sample{T: ts.UnixMilli(), V: vals[h]})
			}
			bt.Series = append(bt.Series, s)
		}
		if err := store.Append(bt); err != nil {
			b.Fatal(err)
		}
		if err := store.Flush(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
	comp, _ := segments.NewCompactor(logger, set, segments.CompactOptions{}, nil)
	if _, err := comp.Compact(context.Background()); err != nil {
		b.Fatal(err)
	}
	eng, err := NewEngine(logger, nil, NewQueryable(store.Head(), set), Options{MaxSamples: 1 << 30})
	if err != nil {
		b.Fatal(err)
	}
	r := RangeQuery{Query: `sum by (host) (rate(x[5m]))`, Start: start, End: now.Add(-time.Hour), Step: 5 * time.Minute}
	for _, c := range []struct {
		name string
		par  int
	}{{"serial", 1}, {"parallel", runtime.GOMAXPROCS(0)}} {
		b.Run(c.name, func(b *testing.B) {
			copts := cache.DefaultOptions()
			copts.MaxBytes = 32 << 20
			for b.Loop() {
				b.StopTimer()
				c0, err := cache.New(copts)
				if err != nil {
					b.Fatal(err)
				}
				f, err := NewFrontend(eng, c0, FrontendOptions{MaxParallel: c.par, MaxParallelTotal: c.par}, func() time.Time { return now }, nil, time.Hour)
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				res, err := f.Range(context.Background(), r, false)
				if err != nil || res.Cache != CacheMiss {
					b.Fatalf("%v %v", err, res)
				}
				b.StopTimer()
				c0.Close()
				b.StartTimer()
			}
		})
	}
}

// BenchmarkLongRangeDayStep is issue 15's amplification case: 30 years at
// a 1-day step through the frontend (not split: one engine call) and with
// the cache bypassed (nocache=1), on a store holding a few days of data.
func BenchmarkLongRangeDayStep(b *testing.B) {
	now := time.Date(2026, 1, 10, 12, 0, 0, 0, time.UTC)
	e := newDiffEnv(b, now)
	e.write(b, gaugeBatch("x", now.Add(-3*24*time.Hour), now.Add(-time.Hour), 10*time.Minute))
	r := RangeQuery{Query: `sum(x)`, Start: now.AddDate(-30, 0, 0).Truncate(24 * time.Hour), End: now.Truncate(24 * time.Hour), Step: 24 * time.Hour}
	for _, bypass := range []bool{false, true} {
		name := "frontend"
		if bypass {
			name = "nocache"
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if _, err := e.frontend.Range(context.Background(), r, bypass); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRollupDashboard30d is a 30-day dashboard panel read from 1 h
// rollups (4 series of 10 s data): cold (an empty cache every time) and
// warm (every extent cached).
func BenchmarkRollupDashboard30d(b *testing.B) {
	e := newRollupEnv(b, 4, 30)
	r := RangeQuery{Query: `avg by (host) (avg_over_time(gauge[1h]))`, Start: e.end.Add(-30 * 24 * time.Hour), End: e.end.Add(-time.Hour), Step: time.Hour}
	copts := cache.DefaultOptions()
	copts.MaxBytes = 32 << 20
	copts.Now = func() time.Time { return e.now }
	newFrontend := func(b *testing.B) (*Frontend, *cache.Cache) {
		c, err := cache.New(copts)
		if err != nil {
			b.Fatal(err)
		}
		f, err := NewFrontend(e.eng, c, FrontendOptions{}, func() time.Time { return e.now }, nil, time.Hour)
		if err != nil {
			b.Fatal(err)
		}
		return f, c
	}
	b.Run("cold", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			f, c := newFrontend(b)
			b.StartTimer()
			res, err := f.Range(context.Background(), r, false)
			if err != nil || res.Cache != CacheMiss || res.Resolution != Resolution1h {
				b.Fatalf("%v %+v", err, res)
			}
			b.StopTimer()
			c.Close()
			b.StartTimer()
		}
	})
	b.Run("warm", func(b *testing.B) {
		f, c := newFrontend(b)
		defer c.Close()
		if _, err := f.Range(context.Background(), r, false); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			res, err := f.Range(context.Background(), r, false)
			if err != nil || res.Cache != CacheHit {
				b.Fatalf("%v %+v", err, res)
			}
		}
	})
}
