package query

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/strata-tsdb/strata/buffer"
	"github.com/strata-tsdb/strata/cache"
	"github.com/strata-tsdb/strata/downsample"
	"github.com/strata-tsdb/strata/ingest"
	"github.com/strata-tsdb/strata/retention"
	"github.com/strata-tsdb/strata/segments"
)

// fakeClock is a settable clock safe for concurrent reads.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// diffEnv is the whole read and write path with one fake clock.
type diffEnv struct {
	clock     *fakeClock
	store     *buffer.Store
	set       *segments.Set
	compactor *segments.Compactor
	retention *retention.Enforcer
	rollups   *downsample.Downsampler
	frontend  *Frontend
	deleter   *Deleter
	cache     *cache.Cache
}

func newDiffEnv(t testing.TB, start time.Time) *diffEnv {
	t.Helper()
	dir := t.TempDir()
	logger := slog.New(slog.DiscardHandler)
	e := &diffEnv{clock: &fakeClock{now: start}}
	var err error
	if e.set, err = segments.OpenSet(logger, filepath.Join(dir, "segments")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.set.Close() })
	opts := buffer.StoreOptions{BlockDuration: time.Hour.Milliseconds(), Head: buffer.Options{ChunkRange: time.Hour.Milliseconds()}}
	if e.store, err = buffer.OpenStore(logger, dir, opts, e.set, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.store.Close(context.Background()) })
	if e.compactor, err = segments.NewCompactor(logger, e.set, segments.CompactOptions{Ranges: []int64{time.Hour.Milliseconds(), 6 * time.Hour.Milliseconds()}}, nil); err != nil {
		t.Fatal(err)
	}
	policy := retention.Policy{Raw: 4 * 24 * time.Hour}
	if e.retention, err = retention.New(logger, e.set, policy, e.clock.Now, nil); err != nil {
		t.Fatal(err)
	}
	q := NewQueryable(e.store.Head(), e.set)
	q.MinTime = func(res int64) int64 { return policy.MinTime(res, e.clock.Now()) }
	eng, err := NewEngine(logger, nil, q, Options{})
	if err != nil {
		t.Fatal(err)
	}
	copts := cache.DefaultOptions()
	copts.MaxBytes = 64 << 20
	copts.TTL = 30 * time.Minute
	copts.Grace = 10 * time.Minute
	copts.Now = e.clock.Now
	if e.cache, err = cache.New(copts); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.cache.Close() })
	minTime := func(res Resolution) int64 { return policy.MinTime(max(int64(res), 0), e.clock.Now()) }
	if e.frontend, err = NewFrontend(eng, e.cache, FrontendOptions{SplitInterval: 6 * time.Hour, Freshness: time.Minute}, e.clock.Now, minTime, copts.TTL+copts.Grace); err != nil {
		t.Fatal(err)
	}
	// Days are rolled up into 5m buckets 2 h after they end, into 1 h
	// buckets 12 h after: queries at 5m and 1h steps read rollups, and
	// late writes and deletes land in rolled-up days.
	if e.rollups, err = downsample.New(logger, e.set, downsample.Options{Raw5mAfter: 2 * time.Hour, FiveM1hAfter: 12 * time.Hour, Now: e.clock.Now}, nil); err != nil {
		t.Fatal(err)
	}
	e.retention.OnDrop = func(rep retention.Report) {
		for _, d := range rep.Dropped {
			e.frontend.Invalidate(d.MetricNames, d.MinTime, d.MaxTime)
		}
	}
	e.deleter = &Deleter{Store: e.store, Set: e.set, Queryable: q, Frontend: e.frontend}
	return e
}

// write appends a batch and invalidates as the API does.
func (e *diffEnv) write(t testing.TB, b *ingest.Batch) {
	t.Helper()
	if err := e.store.Append(b); err != nil {
		t.Fatal(err)
	}
	e.frontend.InvalidateBatch(touchedBy(b, e.frontend.FreshFrom()))
}

// touchedBy returns the names and days of the samples of b older than
// from, as the API passes them to InvalidateBatch.
func touchedBy(b *ingest.Batch, from int64) []Touched {
	var out []Touched
	for _, s := range b.Series {
		for _, x := range s.Samples {
			if x.T < from {
				out = append(out, Touched{Name: s.Labels.Get(labels.MetricName), Day: DayOf(x.T)})
			}
		}
		for _, x := range s.Histograms {
			if x.T < from {
				out = append(out, Touched{Name: s.Labels.Get(labels.MetricName), Day: DayOf(x.T)})
			}
		}
	}
	return out
}

var diffQueries = []string{
	`m0`,
	`m1{host="h1"}`,
	`sum by (host) (m1)`,
	`rate(m2[5m])`,
	`increase(m0[15m])`,
	`avg_over_time(m0[10m])`,
	`max_over_time({__name__=~"m[01]"}[30m])`, // an error: same labels after dropping the name
	`max by (__name__) ({__name__=~"m[01]"})`,
	`count(m1 > 500)`,
	`m0 offset 1h`,
	`sum(rate({host="h2"}[2m]))`,
	`timestamp(m2)`,
	`m0 + on(host) m1`,
	`topk(2, m2)`,
	`absent(m3)`,
	`sum_over_time(m1[1h:5m])`,
	`vector(1)`,
	`m0 @ 1768000000`,
	`hm`,
	`histogram_quantile(0.9, rate(hm[5m]))`,
	`histogram_count(hm) + histogram_sum(hm)`,
	`sum by (host) (rate(hm[10m]))`,
	`hm offset 1h`,
}

// diffHistogram returns a native histogram whose counts grow with v.
func diffHistogram(v int) *histogram.Histogram {
	n := uint64(v)
	return &histogram.Histogram{
		Schema: 1, Count: 3*n + 1, ZeroCount: 1, Sum: float64(v) * 0.25,
		PositiveSpans:   []histogram.Span{{Offset: 0, Length: 2}, {Offset: 2, Length: 1}},
		PositiveBuckets: []int64{int64(n), 0, int64(n)},
	}
}

// dashboards are the panels a refreshing dashboard asks for again and again.
var dashboards = []struct {
	query  string
	length time.Duration
	step   time.Duration
}{
	{`sum by (host) (rate(m0[5m]))`, 6 * time.Hour, time.Minute},
	{`avg_over_time(m1[10m])`, 24 * time.Hour, 5 * time.Minute},
	{`max by (host) (max_over_time(m2[1h]))`, 48 * time.Hour, time.Hour},
	{`rate(m2[5m])`, 48 * time.Hour, 5 * time.Minute}, // from rollups, then raw data past them
	{`increase(m1[1h])`, 72 * time.Hour, time.Hour},
	{`m0`, time.Hour, 15 * time.Second},
	{`count(m1 > 500)`, 12 * time.Hour, time.Minute},
	{`sum(rate({host="h2"}[2m]))`, 3 * time.Hour, time.Minute},
	{`m0 + on(host) m1`, 6 * time.Hour, 5 * time.Minute},
	{`histogram_quantile(0.9, sum by (le) (rate(hm[5m])))`, 6 * time.Hour, time.Minute},
	{`hm`, time.Hour, time.Minute},
}

func equalMatrix(a, b promql.Matrix) string {
	if len(a) != len(b) {
		return fmt.Sprintf("%d series vs %d", len(a), len(b))
	}
	for i := range a {
		if !labels.Equal(a[i].Metric, b[i].Metric) {
			return fmt.Sprintf("series %d: %s vs %s", i, a[i].Metric, b[i].Metric)
		}
		if len(a[i].Floats) != len(b[i].Floats) {
			return fmt.Sprintf("%s: %d points vs %d", a[i].Metric, len(a[i].Floats), len(b[i].Floats))
		}
		for j, p := range a[i].Floats {
			q := b[i].Floats[j]
			if p.T != q.T || math.Float64bits(p.F) != math.Float64bits(q.F) && !(math.IsNaN(p.F) && math.IsNaN(q.F)) {
				return fmt.Sprintf("%s point %d: %v vs %v", a[i].Metric, j, p, q)
			}
		}
		if len(a[i].Histograms) != len(b[i].Histograms) {
			return fmt.Sprintf("%s: %d histogram points vs %d", a[i].Metric, len(a[i].Histograms), len(b[i].Histograms))
		}
		for j, p := range a[i].Histograms {
			q := b[i].Histograms[j]
			// Bit for bit in what the API shows: the same buckets with
			// counts (a chunk recoded for new buckets holds empty ones, and
			// the counter-reset hint depends on where a chunk starts).
			if p.T != q.T || !p.H.Copy().Compact(0).Equals(q.H.Copy().Compact(0)) {
				return fmt.Sprintf("%s histogram point %d: %v vs %v", a[i].Metric, j, p, q)
			}
		}
	}
	return ""
}

func asMatrix(v parser.Value) promql.Matrix {
	switch v := v.(type) {
	case promql.Matrix:
		return v
	case promql.Vector:
		m := make(promql.Matrix, 0, len(v))
		for _, s := range v {
			if s.H != nil {
				m = append(m, promql.Series{Metric: s.Metric, Histograms: []promql.HPoint{{T: s.T, H: s.H}}})
				continue
			}
			m = append(m, promql.Series{Metric: s.Metric, Floats: []promql.FPoint{{T: s.T, F: s.F}}})
		}
		return m
	case promql.Scalar:
		return promql.Matrix{{Floats: []promql.FPoint{{T: v.T, F: v.V}}}}
	}
	return nil
}

// TestCachedEqualsFresh is the differential test of the cache: a seeded
// random interleaving of writes (current, late, out of order), deletes,
// retention runs, downsampler runs (queries at 5m and 1h steps read
// rollups), flushes, compactions, clock advances and queries, where
// every query is answered through the cache and without it, and the two
// answers must be identical. STRATA_DIFF_OPS sets the number of operations,
// STRATA_DIFF_SEED the seed (default 7).
func TestCachedEqualsFresh(t *testing.T) {
	envInt := func(name string, def int) int {
		v := os.Getenv(name)
		if v == "" {
			return def
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return n
	}
	ops, seed := envInt("STRATA_DIFF_OPS", 10_000), envInt("STRATA_DIFF_SEED", 7)
	start := time.Date(2026, 1, 10, 0, 0, 0, 0, time.UTC)
	e := newDiffEnv(t, start)
	rng := rand.New(rand.NewSource(int64(seed)))
	ctx := context.Background()
	series := func(m, h int) labels.Labels {
		return labels.FromStrings("__name__", fmt.Sprintf("m%d", m), "host", fmt.Sprintf("h%d", h))
	}
	// Some history first: two days of 1-minute data.
	for ts := start.Add(-48 * time.Hour); ts.Before(start); ts = ts.Add(time.Hour) {
		b := &ingest.Batch{}
		for m := range 3 {
			for h := range 3 {
				s := ingest.Series{Labels: series(m, h)}
				for i := range 60 {
					s.Samples = append(s.Samples, ingest.Sample{T: ts.Add(time.Duration(i) * time.Minute).UnixMilli(), V: float64(rng.Intn(1000))})
				}
				b.Series = append(b.Series, s)
			}
		}
		for h := range 2 {
			s := ingest.Series{Labels: labels.FromStrings("__name__", "hm", "host", fmt.Sprintf("h%d", h))}
			for i := range 60 {
				tm := ts.Add(time.Duration(i) * time.Minute)
				s.Histograms = append(s.Histograms, ingest.HistogramSample{T: tm.UnixMilli(), H: diffHistogram(int(tm.Sub(start)/time.Minute) + 3000)})
			}
			b.Series = append(b.Series, s)
		}
		e.write(t, b)
	}
	counts := map[CacheStatus]int{}
	var queries, writes, lates, deletes, retentions, rollupsWritten, histHits, storedHits int
	resolutions := map[Resolution]int{}
	// Windows in the past asked for again (a dashboard reloaded on an
	// old time range): their whole answers are stored (RangeBody).
	var past []RangeQuery
	for op := range ops {
		now := e.clock.Now()
		switch r := rng.Intn(100); {
		case r < 25: // write
			b := &ingest.Batch{}
			for range 1 + rng.Intn(3) {
				var ts time.Time
				switch rng.Intn(8) {
				case 0, 1, 2, 3, 4, 5: // current
					ts = now.Add(-time.Duration(rng.Intn(30)) * time.Second)
				case 6: // late: minutes to days old
					ts = now.Add(-time.Duration(1+rng.Intn(3*24*60)) * time.Minute)
					lates++
				default: // out of order, on the minute grid of old samples
					ts = now.Add(-time.Duration(rng.Intn(48*60)) * time.Minute).Truncate(time.Minute)
					lates++
				}
				if rng.Intn(4) == 0 {
					b.Series = append(b.Series, ingest.Series{
						Labels:     labels.FromStrings("__name__", "hm", "host", fmt.Sprintf("h%d", rng.Intn(2))),
						Histograms: []ingest.HistogramSample{{T: ts.UnixMilli(), H: diffHistogram(int(ts.Sub(start)/time.Minute) + 3000 + rng.Intn(3))}},
					})
					continue
				}
				b.Series = append(b.Series, ingest.Series{Labels: series(rng.Intn(3), rng.Intn(3)), Samples: []ingest.Sample{{T: ts.UnixMilli(), V: float64(rng.Intn(1000))}}})
			}
			e.write(t, b)
			writes++
		case r < 27:
			if err := e.store.Flush(ctx); err != nil {
				t.Fatal(err)
			}
		case r < 28:
			e.store.Exclusive(func() {
				if _, err := e.compactor.Compact(ctx); err != nil {
					t.Fatal(err)
				}
			})
		case r < 29: // delete
			ms := []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "__name__", fmt.Sprintf("m%d", rng.Intn(3)))}
			if rng.Intn(2) == 0 {
				ms = []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "host", fmt.Sprintf("h%d", rng.Intn(3)))}
			}
			to := now.Add(-time.Duration(rng.Intn(48*60)) * time.Minute)
			from := to.Add(-time.Duration(1+rng.Intn(6*60)) * time.Minute)
			if err := e.deleter.DeleteSeries(ctx, [][]*labels.Matcher{ms}, from.UnixMilli(), to.UnixMilli()); err != nil {
				t.Fatal(err)
			}
			deletes++
		case r < 30:
			e.store.Exclusive(func() {
				if _, err := e.retention.Run(ctx); err != nil {
					t.Fatal(err)
				}
			})
			retentions++
		case r < 31: // downsample, as the server does
			e.store.Exclusive(func() {
				n, err := e.frontend.InvalidateNewRollups(slog.New(slog.DiscardHandler), e.set, func() (int, error) { return e.rollups.Run(ctx) })
				if err != nil {
					t.Fatal(err)
				}
				rollupsWritten += n
			})
		case r < 38:
			// Mostly dashboard-refresh sized steps, sometimes hours.
			if rng.Intn(4) == 0 {
				e.clock.Advance(time.Duration(1+rng.Intn(2*3600)) * time.Second)
			} else {
				e.clock.Advance(time.Duration(1+rng.Intn(60)) * time.Second)
			}
		default: // query
			qs := diffQueries[rng.Intn(len(diffQueries))]
			var cached, fresh *Result
			var err1, err2 error
			if rng.Intn(4) == 0 {
				ts := now.Add(-time.Duration(rng.Intn(3*24*3600)) * time.Second)
				cached, err1 = e.frontend.Instant(ctx, qs, ts, ResolutionAuto, false)
				fresh, err2 = e.frontend.Instant(ctx, qs, ts, ResolutionAuto, true)
			} else {
				var r RangeQuery
				if rng.Intn(3) > 0 {
					// A dashboard panel: a fixed query, length and step,
					// up to now, aligned to the step as Grafana does.
					p := dashboards[rng.Intn(len(dashboards))]
					end := now.Truncate(p.step)
					r = RangeQuery{Query: p.query, Start: end.Add(-p.length), End: end, Step: p.step}
				} else if len(past) > 0 && rng.Intn(2) == 0 {
					r = past[rng.Intn(len(past))]
				} else {
					steps := []time.Duration{15 * time.Second, time.Minute, 5 * time.Minute, time.Hour}
					step := steps[rng.Intn(len(steps))]
					end := now.Add(-time.Duration(rng.Intn(2*24*3600)) * time.Second)
					if rng.Intn(2) == 0 {
						end = end.Truncate(step)
					}
					length := min(time.Duration(1+rng.Intn(12*60))*time.Minute, 2000*step)
					r = RangeQuery{Query: qs, Start: end.Add(-length), End: end, Step: step}
					if past = append(past, r); len(past) > 8 {
						past = past[1:]
					}
				}
				qs = r.Query
				if rng.Intn(2) == 0 {
					cached, err1 = e.frontend.Range(ctx, r, false)
				} else {
					var stored bool
					cached, stored, err1 = rangeBody(ctx, e.frontend, r)
					if stored {
						storedHits++
					}
				}
				fresh, err2 = e.frontend.Range(ctx, r, true)
			}
			if err1 != nil || err2 != nil {
				if err1 == nil || err2 == nil || err1.Error() != err2.Error() {
					t.Fatalf("op %d %q: errors differ: %v / %v", op, qs, err1, err2)
				}
				counts["same error"]++
				continue
			}
			if d := equalMatrix(asMatrix(cached.Value), asMatrix(fresh.Value)); d != "" {
				t.Fatalf("op %d: %q answered %s through the cache differs from fresh: %s", op, qs, cached.Cache, d)
			}
			counts[cached.Cache]++
			resolutions[cached.Resolution]++
			queries++
			if (cached.Cache == CacheHit || cached.Cache == CachePartial) && matrixHasHistograms(asMatrix(cached.Value)) {
				histHits++
			}
		}
	}
	t.Logf("%d ops: %d queries %v, from %v, %d writes (%d late or out of order samples), %d deletes, %d retention runs, %d rollups written",
		ops, queries, counts, resolutions, writes, lates, deletes, retentions, rollupsWritten)
	if resolutions[Resolution5m] == 0 || resolutions[Resolution1h] == 0 || rollupsWritten == 0 {
		t.Fatalf("rollups were not read at both resolutions: %v, %d rollups written", resolutions, rollupsWritten)
	}
	if histHits == 0 {
		t.Fatal("no answer holding histograms came from the cache")
	}
	t.Logf("%d answers holding histograms came (partly) from the cache, %d from stored answers", histHits, storedHits)
	if storedHits == 0 {
		t.Fatal("no answer came from a stored answer")
	}
	if counts[CacheHit]+counts[CachePartial] < queries/10 {
		t.Fatalf("the cache answered too little to be tested: %v", counts)
	}
}

// rangeBody answers r through RangeBody, encoded as an extent, and decodes
// the answer; stored says it came from a stored answer (not encoded).
func rangeBody(ctx context.Context, f *Frontend, r RangeQuery) (res *Result, stored bool, err error) {
	encoded := false
	b, err := f.RangeBody(ctx, r, false, Encoder{Format: "test-extent", Encode: func(res *Result) (Body, error) {
		encoded = true
		m := asMatrix(res.Value)
		return Body{Bytes: appendExtent(nil, &extent{Kind: 'm', Matrix: m, Warnings: res.Warnings, Infos: res.Infos}), Series: len(m)}, nil
	}})
	if err != nil {
		return nil, false, err
	}
	e, err := decodeExtent(b.Bytes)
	if err != nil {
		return nil, false, err
	}
	if !encoded && b.Cache != CacheHit {
		return nil, false, fmt.Errorf("a stored answer reported as %q", b.Cache)
	}
	return &Result{Value: e.Matrix, Warnings: e.Warnings, Infos: e.Infos, Cache: b.Cache, Resolution: b.Resolution}, !encoded, nil
}

func matrixHasHistograms(m promql.Matrix) bool {
	for _, s := range m {
		if len(s.Histograms) > 0 {
			return true
		}
	}
	return false
}
