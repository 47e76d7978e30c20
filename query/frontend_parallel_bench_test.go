package query

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/strata-tsdb/strata/buffer"
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
	dir := b.TempDir()
	logger := slog.New(slog.DiscardHandler)
	set, err := segments.OpenSet(logger, filepath.Join(dir, "segments"))
	if err != nil {
		b.Fatal(err)
	}
	defer set.Close()
	store, err := buffer.OpenStore(logger, dir, buffer.StoreOptions{}, set, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close(context.Background())
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
