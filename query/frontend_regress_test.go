package query

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/util/annotations"

	"github.com/strata-tsdb/strata/cache"
	"github.com/strata-tsdb/strata/ingest"
)

// sameAnswer fails the test if the answers differ in value or annotations.
func sameAnswer(t *testing.T, what string, cached, fresh *Result) {
	t.Helper()
	if d := equalMatrix(asMatrix(cached.Value), asMatrix(fresh.Value)); d != "" {
		t.Fatalf("%s: cached (%s) and fresh answers differ: %s", what, cached.Cache, d)
	}
	if !slices.Equal(cached.Warnings, fresh.Warnings) || !slices.Equal(cached.Infos, fresh.Infos) {
		t.Fatalf("%s: annotations differ: cached (%s) warnings %q infos %q, fresh warnings %q infos %q",
			what, cached.Cache, cached.Warnings, cached.Infos, fresh.Warnings, fresh.Infos)
	}
}

func rangeBoth(t *testing.T, f *Frontend, r RangeQuery) (cached, fresh *Result) {
	t.Helper()
	cached, err := f.Range(context.Background(), r, false)
	if err != nil {
		t.Fatal(err)
	}
	if fresh, err = f.Range(context.Background(), r, true); err != nil {
		t.Fatal(err)
	}
	return cached, fresh
}

// newCachedFrontend returns a frontend with the default options over eng,
// answering through a cache of 32 MiB, both on the clock now; minTime is
// NewFrontend's (nil: no retention).
func newCachedFrontend(t *testing.T, eng *Engine, now func() time.Time, minTime func(Resolution) int64) *Frontend {
	t.Helper()
	copts := cache.DefaultOptions()
	copts.MaxBytes = 32 << 20
	copts.Now = now
	c, err := cache.New(copts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	f, err := NewFrontend(eng, c, FrontendOptions{}, now, minTime, copts.TTL+copts.Grace)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func gaugeBatch(name string, from, to time.Time, every time.Duration) *ingest.Batch {
	s := ingest.Series{Labels: labels.FromStrings("__name__", name, "host", "a")}
	for ts := from; !ts.After(to); ts = ts.Add(every) {
		s.Samples = append(s.Samples, ingest.Sample{T: ts.UnixMilli(), V: float64(ts.Unix() % 1000)})
	}
	return &ingest.Batch{Series: []ingest.Series{s}}
}

// TestFreshnessByDataTime: a negative offset, an @ after the freshness
// cutoff and a range function with a negative offset read data newer than
// the step they answer. Cached, such steps would miss a sample written
// later at "now", which bumps no tag (it is inside the freshness window).
func TestFreshnessByDataTime(t *testing.T) {
	now := time.Date(2026, 1, 10, 12, 0, 0, 0, time.UTC)
	e := newDiffEnv(t, now)
	e.write(t, gaugeBatch("x", now.Add(-2*time.Hour), now.Add(-30*time.Minute), time.Minute))
	queries := []string{
		`x offset -10m`,
		fmt.Sprintf(`x @ %d`, now.Add(30*time.Second).Unix()),
		`max_over_time(x[20m] offset -15m)`,
	}
	r := func(q string) RangeQuery {
		return RangeQuery{Query: q, Start: now.Add(-time.Hour), End: now, Step: time.Minute}
	}
	for _, q := range queries {
		rangeBoth(t, e.frontend, r(q)) // cached as far as it may be
	}
	e.write(t, gaugeBatch("x", now, now, time.Minute)) // a sample at now: no bump
	for _, q := range queries {
		cached, fresh := rangeBoth(t, e.frontend, r(q))
		sameAnswer(t, q, cached, fresh)
	}
	// Instant queries likewise.
	ts := now.Add(-5 * time.Minute)
	for _, q := range queries[:1] {
		if _, err := e.frontend.Instant(context.Background(), q, ts, ResolutionAuto, false); err != nil {
			t.Fatal(err)
		}
	}
	e.write(t, gaugeBatch("x", now.Add(5*time.Second), now.Add(5*time.Second), time.Minute))
	cached, err := e.frontend.Instant(context.Background(), queries[0], ts, ResolutionAuto, false)
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := e.frontend.Instant(context.Background(), queries[0], ts, ResolutionAuto, true)
	if err != nil {
		t.Fatal(err)
	}
	sameAnswer(t, "instant "+queries[0], cached, fresh)
}

// TestAnnotationsCached: infos and warnings are part of the cached answer.
func TestAnnotationsCached(t *testing.T) {
	now := time.Date(2026, 1, 10, 12, 0, 0, 0, time.UTC)
	e := newDiffEnv(t, now)
	e.write(t, gaugeBatch("requests", now.Add(-26*time.Hour), now.Add(-time.Hour), time.Minute))
	r := RangeQuery{Query: `rate(requests[5m])`, Start: now.Add(-25 * time.Hour), End: now.Add(-2 * time.Hour), Step: time.Minute}
	for i := range 2 {
		cached, fresh := rangeBoth(t, e.frontend, r)
		if len(fresh.Infos) == 0 {
			t.Fatal("the query emits no info; the test needs one")
		}
		if i == 1 && cached.Cache != CacheHit {
			t.Fatalf("second run: %s, want a hit", cached.Cache)
		}
		sameAnswer(t, r.Query, cached, fresh)
	}
	ts := now.Add(-3 * time.Hour)
	for range 2 {
		cached, err := e.frontend.Instant(context.Background(), r.Query, ts, ResolutionAuto, false)
		if err != nil {
			t.Fatal(err)
		}
		fresh, err := e.frontend.Instant(context.Background(), r.Query, ts, ResolutionAuto, true)
		if err != nil {
			t.Fatal(err)
		}
		sameAnswer(t, "instant "+r.Query, cached, fresh)
	}
}

// TestKeyFingerprintsConfig: two configurations sharing one cache (a cache
// saved under one and loaded under another, or shared through Redis) never
// read each other's entries.
func TestKeyFingerprintsConfig(t *testing.T) {
	now := time.Date(2026, 1, 10, 12, 0, 0, 0, time.UTC)
	e := newDiffEnv(t, now)
	e.write(t, gaugeBatch("x", now.Add(-3*time.Hour), now.Add(-time.Hour), 3*time.Minute))
	eng, err := NewEngine(slog.New(slog.DiscardHandler), nil, e.frontend.engine.queryable, Options{LookbackDelta: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	other, err := NewFrontend(eng, e.cache, e.frontend.opts, e.clock.Now, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	r := RangeQuery{Query: `x`, Start: now.Add(-3 * time.Hour), End: now.Add(-time.Hour), Step: time.Minute}
	rangeBoth(t, e.frontend, r) // cached with a 5m lookback
	cached, fresh := rangeBoth(t, other, r)
	sameAnswer(t, "1m lookback after 5m", cached, fresh)
}

// TestDeleteCollectsNamesWithAppendsPaused: a metric name first written
// while a delete is under way, before appends pause, is tombstoned; its
// tags must be bumped too.
func TestDeleteCollectsNamesWithAppendsPaused(t *testing.T) {
	now := time.Date(2026, 1, 10, 12, 0, 0, 0, time.UTC)
	e := newDiffEnv(t, now)
	e.write(t, gaugeBatch("x", now.Add(-3*time.Hour), now.Add(-2*time.Hour), time.Minute))
	r := RangeQuery{Query: `y`, Start: now.Add(-4 * time.Hour), End: now.Add(-time.Hour), Step: time.Minute}
	// Once the names are collected, y is written and queried (and so
	// cached). Appends paused by then make the write wait for the delete:
	// after 2 s the delete goes on without it.
	done := make(chan struct{})
	var hooked bool
	q := &hookQueryable{Queryable: e.deleter.Queryable, after: func() {
		if hooked {
			return
		}
		hooked = true
		go func() {
			defer close(done)
			e.write(t, gaugeBatch("y", now.Add(-3*time.Hour), now.Add(-2*time.Hour), time.Minute))
			if _, err := e.frontend.Range(context.Background(), r, false); err != nil {
				t.Error(err)
			}
		}()
		select {
		case <-done:
		case <-time.After(2 * time.Second):
		}
	}}
	d := &Deleter{Store: e.store, Set: e.set, Queryable: q, Frontend: e.frontend}
	ms := []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "host", "a")}
	if err := d.DeleteSeries(context.Background(), [][]*labels.Matcher{ms}, math.MinInt64/2, math.MaxInt64/2); err != nil {
		t.Fatal(err)
	}
	<-done
	cached, fresh := rangeBoth(t, e.frontend, r)
	sameAnswer(t, "y after the delete", cached, fresh)
}

// hookQueryable calls after when a LabelValues call has returned.
type hookQueryable struct {
	storage.Queryable
	after func()
}

func (h *hookQueryable) Querier(mint, maxt int64) (storage.Querier, error) {
	q, err := h.Queryable.Querier(mint, maxt)
	if err != nil {
		return nil, err
	}
	return &hookQuerier{Querier: q, after: h.after}, nil
}

type hookQuerier struct {
	storage.Querier
	after func()
}

func (h *hookQuerier) LabelValues(ctx context.Context, name string, hints *storage.LabelHints, ms ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	v, a, err := h.Querier.LabelValues(ctx, name, hints, ms...)
	h.after()
	return v, a, err
}

// countingFrontend returns a frontend like e's over a queryable that counts
// Select calls (one per selector per engine call).
func countingFrontend(t *testing.T, e *diffEnv, opts FrontendOptions) (*Frontend, *countingQueryable) {
	t.Helper()
	cq := &countingQueryable{Queryable: e.frontend.engine.queryable}
	eng, err := NewEngine(nil, nil, cq, Options{})
	if err != nil {
		t.Fatal(err)
	}
	f, err := NewFrontend(eng, e.cache, opts, e.clock.Now, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return f, cq
}

// TestSplitAmplification: a step at least as long as an extent is not
// split, contiguous missing extents are evaluated in one engine call, and
// a query whose window starts near the minimum time neither loops over
// its extents nor evaluates them one by one.
func TestSplitAmplification(t *testing.T) {
	now := time.Date(2026, 1, 10, 12, 0, 0, 0, time.UTC)
	e := newDiffEnv(t, now)
	e.write(t, gaugeBatch("x", now.Add(-4*24*time.Hour), now.Add(-time.Hour), 10*time.Minute))
	f, cq := countingFrontend(t, e, FrontendOptions{SplitInterval: 6 * time.Hour, Freshness: time.Minute, MaxParallel: 1})
	evals := func(r RangeQuery) int64 {
		t.Helper()
		before := cq.selects.Load()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cached, err := f.Range(ctx, r, false)
		if err != nil {
			t.Fatal(err)
		}
		n := cq.selects.Load() - before
		fresh, err := f.Range(context.Background(), r, true)
		if err != nil {
			t.Fatal(err)
		}
		sameAnswer(t, r.Query, cached, fresh)
		return n
	}
	// 30 years at a 1-day step: 10,958 points, no splitting.
	long := RangeQuery{Query: `sum(x)`, Start: now.AddDate(-30, 0, 0).Truncate(24 * time.Hour), End: now.Truncate(24 * time.Hour), Step: 24 * time.Hour}
	if n := evals(long); n != 1 {
		t.Errorf("30 years at 1d step: %d engine calls, want 1", n)
	}
	// A cold range of 3 days (12 extents) older than the freshness window.
	cold := RangeQuery{Query: `max(x)`, Start: now.Add(-4 * 24 * time.Hour), End: now.Add(-24 * time.Hour), Step: time.Minute}
	if n := evals(cold); n != 1 {
		t.Errorf("cold 3-day range, serial: %d engine calls, want 1", n)
	}
	if n := evals(cold); n != 0 {
		t.Errorf("warm 3-day range: %d engine calls, want 0", n)
	}
	// The whole time range PromQL allows, at a step that keeps the points
	// under the limit.
	minTime := time.UnixMilli(math.MinInt64 / 1000)
	huge := RangeQuery{Query: `sum(x)`, Start: minTime, End: now, Step: 1_000_000 * time.Hour}
	if n := evals(huge); n > 1 {
		t.Errorf("range from the minimum time: %d engine calls, want 1", n)
	}
}

// TestRollupExtentsCached: extents read from 5m rollups past raw retention
// are cached for as long as the rollups last, not refused by the raw
// retention bound.
func TestRollupExtentsCached(t *testing.T) {
	e := newRollupEnv(t, 2, 3)
	rawRetention, rollupRetention := 5*24*time.Hour, 90*24*time.Hour
	e.q.MinTime = func(res int64) int64 {
		if res == 0 {
			return e.now.Add(-rawRetention).UnixMilli()
		}
		return e.now.Add(-rollupRetention).UnixMilli()
	}
	minTime := func(res Resolution) int64 { return e.q.MinTime(max(int64(res), 0)) }
	f := newCachedFrontend(t, e.eng, func() time.Time { return e.now }, minTime)
	r := RangeQuery{Query: `avg_over_time(gauge[5m])`, Start: e.end.Add(-3 * 24 * time.Hour), End: e.end.Add(-time.Hour), Step: 5 * time.Minute}
	first, err := f.Range(context.Background(), r, false)
	if err != nil {
		t.Fatal(err)
	}
	if first.Resolution != Resolution5m {
		t.Fatalf("read %s, want 5m rollups (raw data is past retention)", first.Resolution)
	}
	second, fresh := rangeBoth(t, f, r)
	if second.Cache != CacheHit {
		t.Fatalf("second run of a rollup-era range: %s, want hit", second.Cache)
	}
	sameAnswer(t, r.Query, second, fresh)
}
