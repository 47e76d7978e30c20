package query

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/prometheus/promql"
)

// TestColdRunSpreadOverMaxParallel: a run of missing extents is cut into
// MaxParallel engine calls of contiguous extents (not fewer: the calls run
// at once), whose answer is a miss (computed, though each call stores
// extents the next finds), and a step as long as an extent is never split nor cached: one
// engine call each time it is asked.
func TestColdRunSpreadOverMaxParallel(t *testing.T) {
	now := time.Date(2026, 1, 10, 12, 0, 0, 0, time.UTC)
	e := newDiffEnv(t, now)
	e.write(t, gaugeBatch("x", now.Add(-4*24*time.Hour), now.Add(-time.Hour), 10*time.Minute))
	f, cq := countingFrontend(t, e, FrontendOptions{SplitInterval: 6 * time.Hour, Freshness: time.Minute, MaxParallel: 4})
	ask := func(r RangeQuery) (*Result, int64) {
		t.Helper()
		before := cq.selects.Load()
		cached, err := f.Range(context.Background(), r, false)
		if err != nil {
			t.Fatal(err)
		}
		n := cq.selects.Load() - before
		fresh, err := f.Range(context.Background(), r, true)
		if err != nil {
			t.Fatal(err)
		}
		sameAnswer(t, r.Query, cached, fresh)
		return cached, n
	}
	// 3 days from midnight: 12 extents, all older than the freshness window.
	day := now.Add(-4 * 24 * time.Hour).Truncate(24 * time.Hour)
	cold := RangeQuery{Query: `max(x)`, Start: day, End: day.Add(3*24*time.Hour - time.Minute), Step: time.Minute}
	if res, n := ask(cold); n != 4 || res.Cache != CacheMiss {
		t.Errorf("cold run of 12 extents, MaxParallel 4: %d engine calls, %s; want 4, %s", n, res.Cache, CacheMiss)
	}
	if res, n := ask(cold); n != 0 || res.Cache != CacheHit {
		t.Errorf("warm: %d engine calls, %s; want 0, a hit", n, res.Cache)
	}
	// Of 5 extents: 3 calls (of 2, 2 and 1), not 2 of 3 and 2.
	five := RangeQuery{Query: `min(x)`, Start: day, End: day.Add(30*time.Hour - time.Minute), Step: time.Minute}
	if res, n := ask(five); n != 3 || res.Cache != CacheMiss {
		t.Errorf("cold run of 5 extents, MaxParallel 4: %d engine calls, %s; want 3, %s", n, res.Cache, CacheMiss)
	}
	// A step of exactly the split interval.
	long := RangeQuery{Query: `sum(x)`, Start: day, End: day.Add(3 * 24 * time.Hour), Step: 6 * time.Hour}
	for i := range 2 {
		res, n := ask(long)
		if n != 1 || res.Cache != CacheBypass {
			t.Errorf("step of one extent, asked %d times: %d engine calls, %s; want 1, %s", i+1, n, res.Cache, CacheBypass)
		}
	}
}

// TestRangeFailsWhenAnyPieceFails: when the evaluation of one of a
// query's pieces fails (here every one: the engine may hold 10 samples),
// the query fails with its error; no answer is made of the other pieces.
func TestRangeFailsWhenAnyPieceFails(t *testing.T) {
	now := time.Date(2026, 1, 10, 12, 0, 0, 0, time.UTC)
	e := newDiffEnv(t, now)
	e.write(t, gaugeBatch("x", now.Add(-4*24*time.Hour), now, 10*time.Minute))
	eng, err := NewEngine(nil, nil, e.frontend.engine.queryable, Options{MaxSamples: 10})
	if err != nil {
		t.Fatal(err)
	}
	f, err := NewFrontend(eng, e.cache, FrontendOptions{SplitInterval: 6 * time.Hour, Freshness: time.Minute, MaxParallel: 4}, e.clock.Now, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	// 12 cold extents and a fresh tail: several engine calls at once.
	r := RangeQuery{Query: `x`, Start: now.Add(-3 * 24 * time.Hour), End: now, Step: time.Minute}
	res, err := f.Range(context.Background(), r, false)
	var tooMany promql.ErrTooManySamples
	if !errors.As(err, &tooMany) {
		t.Fatalf("answer %v, error %v; want the engine's error, too many samples", res, err)
	}
}

// TestStaleExtentsServedStale: extents past the cache's TTL, inside its
// grace, are served as they are and said stale (refreshed in the
// background), not passed off as hits.
func TestStaleExtentsServedStale(t *testing.T) {
	now := time.Date(2026, 1, 10, 12, 0, 0, 0, time.UTC)
	e := newDiffEnv(t, now) // TTL 30m, grace 10m
	e.write(t, gaugeBatch("x", now.Add(-2*24*time.Hour), now.Add(-time.Hour), 10*time.Minute))
	day := now.Add(-2 * 24 * time.Hour).Truncate(24 * time.Hour)
	r := RangeQuery{Query: `max(x)`, Start: day, End: day.Add(24*time.Hour - time.Minute), Step: time.Minute}
	for i, want := range []CacheStatus{CacheMiss, CacheHit} {
		cached, fresh := rangeBoth(t, e.frontend, r)
		sameAnswer(t, r.Query, cached, fresh)
		if cached.Cache != want {
			t.Fatalf("answer %d: %s, want %s", i+1, cached.Cache, want)
		}
	}
	e.clock.Advance(35 * time.Minute)
	cached, fresh := rangeBoth(t, e.frontend, r)
	sameAnswer(t, r.Query+" past the TTL", cached, fresh)
	if cached.Cache != CacheStale {
		t.Fatalf("past the TTL, inside the grace: %s, want %s", cached.Cache, CacheStale)
	}
}

// TestAnnotatedRunEvaluatedOnceMore: a run of missing extents whose engine
// call has annotations (rate of a gauge: "might not be a counter") stores
// its first extent evaluated again alone and computes the others one by
// one: k+1 engine calls for k extents, the annotations of each, and none
// the second time.
func TestAnnotatedRunEvaluatedOnceMore(t *testing.T) {
	now := time.Date(2026, 1, 10, 12, 0, 0, 0, time.UTC)
	e := newDiffEnv(t, now)
	e.write(t, gaugeBatch("x", now.Add(-2*24*time.Hour), now.Add(-time.Hour), 10*time.Minute))
	f, cq := countingFrontend(t, e, FrontendOptions{SplitInterval: 6 * time.Hour, Freshness: time.Minute, MaxParallel: 1})
	day := now.Add(-2 * 24 * time.Hour).Truncate(24 * time.Hour)
	r := RangeQuery{Query: `rate(x[30m])`, Start: day.Add(time.Hour), End: day.Add(24*time.Hour - time.Minute), Step: time.Minute}
	for i, want := range []struct {
		calls int64
		st    CacheStatus
	}{{5, CacheMiss}, {0, CacheHit}} {
		before := cq.selects.Load()
		cached, err := f.Range(context.Background(), r, false)
		if err != nil {
			t.Fatal(err)
		}
		n := cq.selects.Load() - before
		fresh, err := f.Range(context.Background(), r, true)
		if err != nil {
			t.Fatal(err)
		}
		sameAnswer(t, r.Query, cached, fresh)
		if len(fresh.Infos) == 0 {
			t.Fatalf("%s: no annotation (the test's point)", r.Query)
		}
		if n != want.calls || cached.Cache != want.st {
			t.Errorf("%s over 4 extents, answer %d: %d engine calls, %s; want %d, %s", r.Query, i+1, n, cached.Cache, want.calls, want.st)
		}
	}
}

// TestExtendedExtentAnnotations: an extent stored for part of its steps,
// without annotations, is extended by the steps a later query needs,
// after it or before it; the answer, said partial, has the annotations of
// the steps computed for it (here rate of a gauge, "might not be a
// counter", where the steps computed read data and the stored ones none),
// as a fresh answer has.
func TestExtendedExtentAnnotations(t *testing.T) {
	now := time.Date(2026, 1, 10, 12, 0, 0, 0, time.UTC)
	e := newDiffEnv(t, now) // extents of 6 h
	ws := now.Add(-2 * 24 * time.Hour).Truncate(24 * time.Hour)
	// Data of x in the extent's fourth hour only.
	e.write(t, gaugeBatch("x", ws.Add(3*time.Hour), ws.Add(4*time.Hour), time.Minute))
	for _, c := range []struct {
		name         string
		first, later [2]time.Duration // steps from ws
	}{
		{"after", [2]time.Duration{0, 2 * time.Hour}, [2]time.Duration{0, 5 * time.Hour}},
		{"before", [2]time.Duration{5 * time.Hour, 5*time.Hour + 30*time.Minute}, [2]time.Duration{time.Hour, 5*time.Hour + 30*time.Minute}},
	} {
		q := `rate(x[5m])`
		if c.name == "before" {
			q = `rate(x[6m])` // another key
		}
		for i, span := range [][2]time.Duration{c.first, c.later} {
			r := RangeQuery{Query: q, Start: ws.Add(span[0]), End: ws.Add(span[1]), Step: time.Minute}
			cached, fresh := rangeBoth(t, e.frontend, r)
			what := c.name + ": " + q + " from " + span[0].String() + " to " + span[1].String()
			sameAnswer(t, what, cached, fresh)
			if want := []CacheStatus{CacheMiss, CachePartial}[i]; cached.Cache != want {
				t.Fatalf("%s: %s, want %s", what, cached.Cache, want)
			}
			if (len(fresh.Infos) > 0) != (i == 1) {
				t.Fatalf("%s: infos %q (the test's point: none on the stored steps, some on the others)", what, fresh.Infos)
			}
		}
	}
}
