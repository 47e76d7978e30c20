package query

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/strata-tsdb/strata/ingest"
)

// TestStoredAnswer: a range query answered wholly from cached extents is
// stored encoded and answered from the stored bytes; a late write to its
// metric and day makes it a miss (the next answer holds the write), one
// to another metric does not; a query whose last steps are fresh is never
// stored.
func TestStoredAnswer(t *testing.T) {
	now := time.Date(2026, 1, 10, 12, 0, 0, 0, time.UTC)
	e := newDiffEnv(t, now)
	e.write(t, gaugeBatch("sa", now.Add(-10*time.Hour), now, 10*time.Second))
	e.write(t, gaugeBatch("other", now.Add(-10*time.Hour), now, 10*time.Second))
	ctx := context.Background()
	old := RangeQuery{Query: `max_over_time(sa[5m])`, Start: now.Add(-8 * time.Hour), End: now.Add(-time.Hour), Step: time.Minute}
	ask := func(r RangeQuery) (*Result, bool) {
		t.Helper()
		res, stored, err := rangeBody(ctx, e.frontend, r)
		if err != nil {
			t.Fatal(err)
		}
		fresh, err := e.frontend.Range(ctx, r, true)
		if err != nil {
			t.Fatal(err)
		}
		if d := equalMatrix(asMatrix(res.Value), asMatrix(fresh.Value)); d != "" {
			t.Fatalf("answer (%s, stored %t) differs from fresh: %s", res.Cache, stored, d)
		}
		return res, stored
	}
	for i, want := range []bool{false, false, true, true} { // miss, hit from extents (stored now), stored, stored
		if _, stored := ask(old); stored != want {
			t.Fatalf("query %d: stored answer %t, want %t", i, stored, want)
		}
	}
	late := now.Add(-3 * time.Hour).Add(5 * time.Second)
	e.write(t, &ingest.Batch{Series: []ingest.Series{{Labels: labels.FromStrings("__name__", "other", "host", "a"), Samples: []ingest.Sample{{T: late.UnixMilli(), V: 1e6}}}}})
	if _, stored := ask(old); !stored {
		t.Fatal("a write to another metric dropped the stored answer")
	}
	e.write(t, &ingest.Batch{Series: []ingest.Series{{Labels: labels.FromStrings("__name__", "sa", "host", "a"), Samples: []ingest.Sample{{T: late.UnixMilli(), V: 1e6}}}}})
	res, stored := ask(old)
	if stored {
		t.Fatal("the stored answer survived a late write to its metric and day")
	}
	found := false
	for _, p := range asMatrix(res.Value)[0].Floats {
		found = found || p.F == 1e6
	}
	if !found {
		t.Fatal("the answer after the late write lacks it")
	}
	if _, stored := ask(old); stored {
		t.Fatal("stored from recomputed extents: only answers wholly from fresh hits are stored")
	}
	if _, stored := ask(old); !stored {
		t.Fatal("not stored again once its extents were cached")
	}
	recent := RangeQuery{Query: `max_over_time(sa[5m])`, Start: now.Add(-time.Hour), End: now, Step: time.Minute}
	for i := range 3 {
		if res, stored := ask(recent); stored || res.Cache == CacheHit {
			t.Fatalf("query %d with a fresh tail: %s, stored %t", i, res.Cache, stored)
		}
	}
}
