package query

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"

	"github.com/strata-tsdb/strata/ingest"
)

// countingQueryable counts the Select calls the engine makes.
type countingQueryable struct {
	storage.Queryable
	selects atomic.Int64
}

func (c *countingQueryable) Querier(mint, maxt int64) (storage.Querier, error) {
	q, err := c.Queryable.Querier(mint, maxt)
	if err != nil {
		return nil, err
	}
	return &countingQuerier{Querier: q, n: &c.selects}, nil
}

type countingQuerier struct {
	storage.Querier
	n *atomic.Int64
}

func (c *countingQuerier) Select(ctx context.Context, sort bool, h *storage.SelectHints, ms ...*labels.Matcher) storage.SeriesSet {
	c.n.Add(1)
	return c.Querier.Select(ctx, sort, h, ms...)
}

// TestStampedeOneEvaluation sends 1,000 identical range queries at once on
// a cold cache: the extent is evaluated once and shared.
func TestStampedeOneEvaluation(t *testing.T) {
	start := time.Date(2026, 1, 10, 0, 0, 0, 0, time.UTC)
	e := newDiffEnv(t, start)
	e.write(t, &ingest.Batch{Series: []ingest.Series{{Labels: labels.FromStrings("__name__", "x"), Samples: []ingest.Sample{{T: start.Add(-2 * time.Hour).UnixMilli(), V: 1}}}}})
	cq := &countingQueryable{Queryable: e.frontend.engine.queryable}
	eng, err := NewEngine(nil, nil, cq, Options{})
	if err != nil {
		t.Fatal(err)
	}
	f, err := NewFrontend(eng, e.cache, e.frontend.opts, e.clock.Now, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	// Inside one extent, entirely older than the freshness window.
	r := RangeQuery{Query: "sum(x)", Start: start.Add(-3 * time.Hour), End: start.Add(-time.Hour), Step: time.Minute}
	var wg sync.WaitGroup
	statuses := make([]CacheStatus, 1000)
	for i := range statuses {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := f.Range(context.Background(), r, false)
			if err != nil {
				t.Error(err)
				return
			}
			statuses[i] = res.Cache
		}()
	}
	wg.Wait()
	if n := cq.selects.Load(); n != 1 {
		t.Fatalf("1,000 concurrent misses ran %d evaluations, want 1", n)
	}
	misses := 0
	for _, s := range statuses {
		if s == CacheMiss {
			misses++
		} else if s != CacheHit {
			t.Fatalf("unexpected status %q", s)
		}
	}
	if misses == 0 {
		t.Fatal("no call reported the miss")
	}
}

// TestLateWriteInvalidatesOnlyItsMetricAndDay caches two metrics over two
// days, writes one late sample of metric a on day 1, and checks that only
// a's day-1 extent is recomputed.
func TestLateWriteInvalidatesOnlyItsMetricAndDay(t *testing.T) {
	start := time.Date(2026, 1, 10, 0, 0, 0, 0, time.UTC)
	e := newDiffEnv(t, start)
	day1 := start.Add(-48 * time.Hour)
	b := &ingest.Batch{}
	for _, name := range []string{"a", "b"} {
		s := ingest.Series{Labels: labels.FromStrings("__name__", name)}
		for ts := day1; ts.Before(start); ts = ts.Add(10 * time.Minute) {
			s.Samples = append(s.Samples, ingest.Sample{T: ts.UnixMilli(), V: 1})
		}
		b.Series = append(b.Series, s)
	}
	e.write(t, b)
	ctx := context.Background()
	// One extent per query (the split interval is 6 h); 1 h steps.
	query := func(name string, day time.Time) CacheStatus {
		t.Helper()
		res, err := e.frontend.Range(ctx, RangeQuery{Query: "sum_over_time(" + name + "[1h])", Start: day.Add(7 * time.Hour), End: day.Add(11 * time.Hour), Step: time.Hour}, false)
		if err != nil {
			t.Fatal(err)
		}
		return res.Cache
	}
	day2 := day1.Add(24 * time.Hour)
	for _, name := range []string{"a", "b"} {
		for _, d := range []time.Time{day1, day2} {
			if st := query(name, d); st != CacheMiss {
				t.Fatalf("%s %s: first query %s, want miss", name, d, st)
			}
			if st := query(name, d); st != CacheHit {
				t.Fatalf("%s %s: second query %s, want hit", name, d, st)
			}
		}
	}
	e.write(t, &ingest.Batch{Series: []ingest.Series{{Labels: labels.FromStrings("__name__", "a"), Samples: []ingest.Sample{{T: day1.Add(9*time.Hour + 5*time.Minute).UnixMilli(), V: 100}}}}})
	for _, c := range []struct {
		name string
		day  time.Time
		want CacheStatus
	}{{"a", day1, CacheMiss}, {"a", day2, CacheHit}, {"b", day1, CacheHit}, {"b", day2, CacheHit}} {
		if st := query(c.name, c.day); st != c.want {
			t.Errorf("after a late write to a on day 1: %s on %s was %s, want %s", c.name, c.day.Format(time.DateOnly), st, c.want)
		}
	}
}

// TestFreshTailIsRecomputedOnly checks that a dashboard query up to now is
// answered from the cache except the part newer than the freshness window.
func TestFreshTailIsRecomputedOnly(t *testing.T) {
	start := time.Date(2026, 1, 10, 12, 0, 0, 0, time.UTC)
	e := newDiffEnv(t, start)
	s := ingest.Series{Labels: labels.FromStrings("__name__", "x")}
	for ts := start.Add(-5 * time.Hour); !ts.After(start); ts = ts.Add(15 * time.Second) {
		s.Samples = append(s.Samples, ingest.Sample{T: ts.UnixMilli(), V: 1})
	}
	e.write(t, &ingest.Batch{Series: []ingest.Series{s}})
	cq := &countingQueryable{Queryable: e.frontend.engine.queryable}
	eng, _ := NewEngine(nil, nil, cq, Options{})
	f, _ := NewFrontend(eng, e.cache, e.frontend.opts, e.clock.Now, nil, time.Hour)
	ask := func() (*Result, RangeQuery) {
		now := e.clock.Now().Truncate(15 * time.Second)
		r := RangeQuery{Query: "x", Start: now.Add(-4 * time.Hour), End: now, Step: 15 * time.Second}
		res, err := f.Range(context.Background(), r, false)
		if err != nil {
			t.Fatal(err)
		}
		return res, r
	}
	if res, _ := ask(); res.Cache != CacheMiss && res.Cache != CachePartial {
		t.Fatalf("first: %s", res.Cache)
	}
	e.clock.Advance(10 * time.Second)
	before := cq.selects.Load()
	res, r := ask()
	if res.Cache != CachePartial {
		t.Fatalf("refresh: %s, want partial", res.Cache)
	}
	// The answer is still complete, and the engine only read the tail: one
	// evaluation for the minute that is too fresh to cache, plus at most
	// one to extend the cached extent.
	if n := cq.selects.Load() - before; n > 2 {
		t.Fatalf("refresh ran %d evaluations, want at most 2", n)
	}
	fresh, err := f.Range(context.Background(), r, true)
	if err != nil {
		t.Fatal(err)
	}
	if d := equalMatrix(asMatrix(res.Value), asMatrix(fresh.Value)); d != "" {
		t.Fatalf("refreshed answer differs: %s", d)
	}
}
