package query

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/strata-tsdb/strata/cache"
	"github.com/strata-tsdb/strata/ingest"
)

// callView is what a range call decides before it reads the cache: the
// resolution and, per piece, its steps, key and tags.
func callView(t *testing.T, f *Frontend, r RangeQuery) (*rangeAnalysis, string) {
	t.Helper()
	ctx := context.Background()
	q, res, err := f.newRangeCall(ctx, r, false)
	if err != nil {
		t.Fatal(err)
	}
	if q == nil {
		return nil, fmt.Sprintf("whole, %s", res)
	}
	pieces, err := q.pieces(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s, body key %q:", res, q.bodyKey("f"))
	for _, p := range pieces {
		fmt.Fprintf(&b, "\n  %d [%d, %d] key %q tags %q", p.ws, p.a, p.b, p.key, p.tags)
	}
	return q.a, b.String()
}

// TestRangeAnalysisKeptEqualsNew: a range query's analysis, kept from an
// earlier request, gives every later request the resolution, pieces, keys
// and tags a new analysis gives, while what they depend on besides the
// query changes: the clock (the freshness window; raw retention, which
// makes queries read rollups and keeps extents near its bound out of the
// cache) and the data (a histogram series under the name read makes
// queries read raw data).
func TestRangeAnalysisKeptEqualsNew(t *testing.T) {
	e := newRollupEnv(t, 2, 3)
	now := e.now
	clock := func() time.Time { return now }
	rawRetention := 13 * 24 * time.Hour // raw data from e.end-2d is inside
	e.q.MinTime = func(res int64) int64 {
		if res == 0 {
			return now.Add(-rawRetention).UnixMilli()
		}
		return now.Add(-90 * 24 * time.Hour).UnixMilli()
	}
	copts := cache.DefaultOptions()
	copts.MaxBytes = 32 << 20
	copts.Now = clock
	c, err := cache.New(copts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	minTime := func(res Resolution) int64 { return e.q.MinTime(max(int64(res), 0)) }
	f, err := NewFrontend(e.eng, c, FrontendOptions{}, clock, minTime, copts.TTL+copts.Grace)
	if err != nil {
		t.Fatal(err)
	}
	rawFrom := now.Add(-rawRetention).Truncate(time.Hour)
	queries := []RangeQuery{
		// 1 h rollups, until a histogram series named gauge appears.
		{Query: `avg_over_time(gauge[1h])`, Start: e.end.Add(-40 * time.Hour), End: e.end.Add(-time.Hour), Step: time.Hour},
		// Raw, until its start falls out of raw retention: 5m rollups.
		{Query: `max_over_time(gauge[5m])`, Start: rawFrom.Add(2 * time.Hour), End: rawFrom.Add(5 * time.Hour), Step: time.Minute},
		// Raw only: its extents near the retention bound leave the cache
		// as the clock moves.
		{Query: `max(max_over_time(gauge[5m]))`, Start: rawFrom.Add(time.Hour), End: rawFrom.Add(30 * time.Hour), Step: 5 * time.Minute, MaxSourceResolution: ResolutionRaw},
		// Steps newer than the freshness window, until the clock moves.
		{Query: `gauge`, Start: now.Add(-6 * time.Hour), End: now.Add(-30 * time.Second), Step: 15 * time.Second},
		{Query: `gauge offset -2m`, Start: now.Add(-26 * time.Hour), End: now.Add(-2 * time.Minute), Step: time.Minute},
		// Time modifiers and subqueries.
		{Query: fmt.Sprintf(`gauge @ %d`, e.end.Add(-time.Hour).Unix()), Start: e.end.Add(-30 * time.Hour), End: e.end, Step: 10 * time.Minute},
		{Query: `max_over_time(gauge[1h:5m]) - gauge offset 1d`, Start: e.end.Add(-50 * time.Hour), End: e.end, Step: 30 * time.Minute},
		// Not split: its answer depends on its window.
		{Query: `gauge @ end()`, Start: e.end.Add(-3 * time.Hour), End: e.end, Step: time.Minute},
	}
	kept := make([]*rangeAnalysis, len(queries))
	seen := make([][]string, len(queries))
	phase := func(name string) {
		t.Helper()
		for i, r := range queries {
			a, got := callView(t, f, r)
			saved := f.memo
			f.memo = &rangeMemo{}
			_, want := callView(t, f, r)
			f.memo = saved
			if got != want {
				t.Fatalf("%s: %s: with the kept analysis:\n%s\nwith a new one:\n%s", name, r.Query, got, want)
			}
			if kept[i] == nil {
				kept[i] = a
			} else if a != kept[i] {
				t.Fatalf("%s: %s: the analysis was not kept", name, r.Query)
			}
			if !slices.Contains(seen[i], got) {
				seen[i] = append(seen[i], got)
			}
		}
	}
	phase("first")
	now = now.Add(2 * time.Minute)
	phase("2 minutes later")
	now = now.Add(26 * time.Hour)
	phase("a day later")
	h := ingest.Series{Labels: labels.FromStrings("__name__", "gauge", "host", "hist"),
		Histograms: []ingest.HistogramSample{{T: now.Add(-time.Minute).UnixMilli(), H: diffHistogram(1)}}}
	if err := e.store.Append(&ingest.Batch{Series: []ingest.Series{h}}); err != nil {
		t.Fatal(err)
	}
	phase("with a histogram series")
	// Each change above changed what some query decides.
	for i, want := range []int{2, 2, 2, 2, 2, 1, 1, 1} {
		if len(seen[i]) < want {
			t.Errorf("%s: %d different decisions over the phases, want %d or more:\n%s", queries[i].Query, len(seen[i]), want, seen[i])
		}
	}
}

// TestRangeAnalysisConcurrent: requests sharing kept analyses concurrently
// (run under -race) answer what the engine answers without the cache, while
// the clock moves and late writes bump tags between rounds.
func TestRangeAnalysisConcurrent(t *testing.T) {
	now := time.Date(2026, 1, 10, 12, 0, 0, 0, time.UTC)
	e := newDiffEnv(t, now)
	for _, m := range []string{"c0", "c1"} {
		e.write(t, gaugeBatch(m, now.Add(-30*time.Hour), now, 30*time.Second))
	}
	ctx := context.Background()
	for round := range 4 {
		now := e.clock.Now()
		var rs []RangeQuery
		for _, q := range []string{`c0`, `max_over_time(c1[5m])`, `sum(rate(c0[2m])) + sum(c1 offset -3m)`, `c0 @ 1768000000`} {
			for _, w := range []struct{ length, step, ago time.Duration }{{time.Hour, 15 * time.Second, 0}, {12 * time.Hour, time.Minute, 3 * time.Hour}, {26 * time.Hour, 5 * time.Minute, 0}} {
				end := now.Add(-w.ago).Truncate(w.step)
				rs = append(rs, RangeQuery{Query: q, Start: end.Add(-w.length), End: end, Step: w.step})
			}
		}
		fresh := make([]*Result, len(rs))
		for i, r := range rs {
			var err error
			if fresh[i], err = e.frontend.Range(ctx, r, true); err != nil {
				t.Fatal(err)
			}
		}
		// The analyses are made (and kept) first; then every goroutine
		// asks the same queries in the same order, from the same moment,
		// so the first requests of a query share an analysis no request
		// has used yet.
		for _, r := range rs {
			if _, err := e.frontend.rangeAnalysis(ctx, r); err != nil {
				t.Fatal(err)
			}
		}
		errs := make(chan error, 8)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				for k := range 3 * len(rs) {
					i := k % len(rs)
					var res *Result
					var err error
					if (k+g)%2 == 0 {
						res, err = e.frontend.Range(ctx, rs[i], false)
					} else {
						res, _, err = rangeBody(ctx, e.frontend, rs[i])
					}
					if err == nil {
						if d := equalMatrix(asMatrix(res.Value), asMatrix(fresh[i].Value)); d != "" {
							err = fmt.Errorf("%s: answered %s, differs from fresh: %s", rs[i].Query, res.Cache, d)
						}
					}
					if err != nil {
						errs <- fmt.Errorf("round %d: %w", round, err)
						return
					}
				}
			}()
		}
		close(start)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		// A late write to c0 (bumping its tags), and the clock moves.
		late := now.Add(-time.Duration(round+2) * time.Hour).Add(7 * time.Second)
		e.write(t, &ingest.Batch{Series: []ingest.Series{{Labels: labels.FromStrings("__name__", "c0", "host", "a"), Samples: []ingest.Sample{{T: late.UnixMilli(), V: float64(1000 + round)}}}}})
		e.clock.Advance(time.Duration(round*40+50) * time.Second)
	}
}

// TestRangeMemoWays: analyses whose keys share a set of the table are kept
// side by side up to its ways; one more replaces one of them; an analysis
// made again for a key replaces its own.
func TestRangeMemoWays(t *testing.T) {
	var m rangeMemo
	var keys []memoKey
	for i := 0; len(keys) < memoWays+1; i++ {
		k := memoKey{qs: fmt.Sprintf("q%d", i), startSec: 1, endSec: 2, step: 3}
		if len(keys) == 0 || k.set() == keys[0].set() {
			keys = append(keys, k)
		}
	}
	for _, k := range keys[:memoWays] {
		m.put(&rangeAnalysis{key: k})
	}
	again := &rangeAnalysis{key: keys[0]}
	m.put(again)
	for i, k := range keys[:memoWays] {
		if a := m.get(k); a == nil || a.key != k || i == 0 && a != again {
			t.Fatalf("key %d of a full set: %v", i, a)
		}
	}
	m.put(&rangeAnalysis{key: keys[memoWays]})
	kept := 0
	for _, k := range keys {
		if m.get(k) != nil {
			kept++
		}
	}
	if kept != memoWays || m.get(keys[memoWays]) == nil {
		t.Fatalf("%d of %d keys kept after one more than the ways, the last one %v", kept, len(keys), m.get(keys[memoWays]))
	}
}
