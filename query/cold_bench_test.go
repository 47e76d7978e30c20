package query

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/strata-tsdb/strata/buffer"
	"github.com/strata-tsdb/strata/ingest"
	"github.com/strata-tsdb/strata/internal/cputime"
	"github.com/strata-tsdb/strata/segments"
)

// openBenchStore opens a store and its segment set in a temporary data dir,
// closed when the benchmark ends.
func openBenchStore(b *testing.B) (*buffer.Store, *segments.Set) {
	store, set, _ := openTestStore(b)
	return store, set
}

// BenchmarkColdTargetQuery is TARGETS.md's cold query: avg by (host)
// (avg_over_time(x[1h])) over 11 h of 10 s data for 200 hosts at a 1 h
// step, with the data flushed to segments as a running server holds it
// (the newest hour in the head). The data are integer percentages (which
// chunk statistics serve) or fractional random walks like the loadtest's
// TSBS data (which they cannot). The direct evaluation runs with one and
// two shards, with one shard per GOMAXPROCS (the server's default), and
// with one shard reading every chunk instead of the chunks' statistics.
// The "flushed" layouts leave the data in the 2 h segments the flush wrote
// (120-sample chunks, uncompressed), as the loadtest preset reads data
// hours old; the others compact the closed day into one day segment
// (360-sample chunks in zstd pages).
func BenchmarkColdTargetQuery(b *testing.B) {
	for _, data := range []string{"int", "frac", "int-flushed", "frac-flushed"} {
		b.Run(data, func(b *testing.B) {
			benchColdTarget(b, strings.HasPrefix(data, "frac"), strings.HasSuffix(data, "-flushed"))
		})
	}
}

func benchColdTarget(b *testing.B, frac, flushed bool) {
	store, set := openBenchStore(b)
	logger := slog.New(slog.DiscardHandler)
	end := time.Date(2026, 1, 10, 12, 0, 0, 0, time.UTC)
	start := end.Add(-12 * time.Hour)
	rng := rand.New(rand.NewSource(1))
	walk := make([]float64, 200)
	for h := range walk {
		walk[h] = rng.Float64() * 100
	}
	app := func(from, to time.Time) {
		bt := &ingest.Batch{}
		for h := range 200 {
			s := ingest.Series{Labels: labels.FromStrings("__name__", "x", "host", fmt.Sprintf("host-%d", h))}
			for ts := from; ts.Before(to); ts = ts.Add(10 * time.Second) {
				v := float64(rng.Intn(100))
				if frac {
					// A random walk within [0, 100], as TSBS' CPU gauges.
					walk[h] = min(100, max(0, walk[h]+rng.NormFloat64()))
					v = walk[h]
				}
				s.Samples = append(s.Samples, ingest.Sample{T: ts.UnixMilli(), V: v})
			}
			bt.Series = append(bt.Series, s)
		}
		if err := store.Append(bt); err != nil {
			b.Fatal(err)
		}
	}
	app(start, end.Add(-time.Hour))
	if err := store.Flush(context.Background()); err != nil {
		b.Fatal(err)
	}
	if !flushed {
		comp, _ := segments.NewCompactor(logger, set, segments.CompactOptions{}, nil)
		if _, err := comp.Compact(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
	app(end.Add(-time.Hour), end)
	for _, e := range []struct {
		name    string
		opts    Options
		noStats bool
	}{
		{"plain", Options{PlainRangeFunctions: true}, false},
		{"direct-1-nostats", Options{Shards: 1}, true},
		{"direct-1", Options{Shards: 1}, false},
		{"direct-2", Options{Shards: 2}, false},
		// The server's default: one shard per GOMAXPROCS, which follows
		// the CPUs the process may run on (taskset -c 0-3: 4 shards).
		{"direct-n", Options{}, false},
	} {
		eng, err := NewEngine(logger, nil, NewQueryable(store.Head(), set), e.opts)
		if err != nil {
			b.Fatal(err)
		}
		if e.noStats {
			eng.engine.(*shardEngine).noStats = true // read every chunk
		}
		for _, c := range []struct {
			name, q string
			from    time.Time
			step    time.Duration
		}{
			{"avg-by-host-11h", `avg by (host) (avg_over_time(x[1h]))`, end.Add(-11 * time.Hour), time.Hour},
			{"max-1h-one-host", `max(max_over_time(x{host="host-7"}[1m]))`, end.Add(-time.Hour), time.Minute},
			{"rate-by-host-11h", `sum by (host) (rate(x[5m]))`, end.Add(-11 * time.Hour), 5 * time.Minute},
		} {
			b.Run(c.name+"/"+e.name, func(b *testing.B) {
				b.ReportAllocs()
				cpu0, cpuOK := cputime.Process()
				for b.Loop() {
					if _, err := eng.Range(context.Background(), RangeQuery{Query: c.q, Start: c.from, End: end, Step: c.step}); err != nil {
						b.Fatal(err)
					}
				}
				// CPU time per query: on a loaded machine the wall time
				// mostly measures waiting for a core.
				if cpu1, ok := cputime.Process(); ok && cpuOK {
					b.ReportMetric(float64((cpu1-cpu0).Microseconds())/1000/float64(b.N), "cpu-ms/op")
				}
			})
		}
	}
}

// BenchmarkWarmTargetQuery is TARGETS.md's warm query through the
// frontend: the same avg by (host) (avg_over_time(x[1h])) over 11 h x 200
// hosts at 1 h, every extent cached (the query ends before the freshness
// window).
func BenchmarkWarmTargetQuery(b *testing.B) {
	now := time.Date(2026, 1, 10, 12, 30, 0, 0, time.UTC)
	e := newDiffEnv(b, now)
	rng := rand.New(rand.NewSource(1))
	bt := &ingest.Batch{}
	end := now.Truncate(time.Hour)
	for h := range 200 {
		s := ingest.Series{Labels: labels.FromStrings("__name__", "x", "host", fmt.Sprintf("host-%d", h))}
		for ts := end.Add(-12 * time.Hour); ts.Before(end); ts = ts.Add(10 * time.Second) {
			s.Samples = append(s.Samples, ingest.Sample{T: ts.UnixMilli(), V: float64(rng.Intn(100))})
		}
		bt.Series = append(bt.Series, s)
	}
	e.write(b, bt)
	r := RangeQuery{Query: `avg by (host) (avg_over_time(x[1h]))`, Start: end.Add(-11 * time.Hour), End: end, Step: time.Hour}
	if _, err := e.frontend.Range(context.Background(), r, false); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		res, err := e.frontend.Range(context.Background(), r, false)
		if err != nil || res.Cache != CacheHit {
			b.Fatalf("%v %v", err, res.Cache)
		}
	}
}
