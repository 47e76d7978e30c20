package query

import (
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/strata-tsdb/strata/ingest"
)

// TestOnlySettledStepsCached: of a range query's steps, only those whose
// data is all older than the freshness window are cached, for windows of
// 1 to 12 settled steps before one that is not: a write inside the window
// (which bumps no tag) shows in the next answers.
func TestOnlySettledStepsCached(t *testing.T) {
	now := time.Date(2026, 1, 10, 12, 0, 0, 0, time.UTC)
	e := newDiffEnv(t, now)
	e.write(t, gaugeBatch("st", now.Add(-time.Hour), now.Add(-time.Minute), 10*time.Second))
	last := now.Add(-30 * time.Second) // reads data after the cutoff (now-1m)
	var rs []RangeQuery
	for k := 1; k <= 12; k++ {
		rs = append(rs, RangeQuery{Query: "st", Start: last.Add(-time.Duration(k) * time.Minute), End: last, Step: time.Minute})
	}
	for _, r := range rs {
		for range 2 {
			cached, fresh := rangeBoth(t, e.frontend, r)
			sameAnswer(t, "before the write", cached, fresh)
		}
	}
	if e.frontend.FreshFrom() > now.Add(-35*time.Second).UnixMilli() {
		t.Fatal("the write below would be invalidated")
	}
	e.write(t, &ingest.Batch{Series: []ingest.Series{{Labels: labels.FromStrings("__name__", "st", "host", "a"), Samples: []ingest.Sample{{T: now.Add(-35 * time.Second).UnixMilli(), V: 1e6}}}}})
	for _, r := range rs {
		cached, fresh := rangeBoth(t, e.frontend, r)
		sameAnswer(t, "after a write inside the freshness window", cached, fresh)
		if cached.Cache != CachePartial {
			t.Fatalf("from %s: %s, want partial (cached steps, a fresh one)", r.Start, cached.Cache)
		}
	}
}

// TestStepAtCutoffCached: a step reading data up to exactly the freshness
// cutoff (FreshFrom-1, the newest data a write still invalidates) is
// cached, though the step after it is not.
func TestStepAtCutoffCached(t *testing.T) {
	now := time.Date(2026, 1, 10, 12, 0, 0, 0, time.UTC)
	e := newDiffEnv(t, now)
	e.write(t, gaugeBatch("sc", now.Add(-time.Hour), now.Add(-time.Minute), 10*time.Second))
	cutoff := time.UnixMilli(e.frontend.FreshFrom() - 1)
	r := RangeQuery{Query: "sc", Start: cutoff, End: cutoff.Add(time.Minute), Step: time.Minute}
	for i, want := range []CacheStatus{CacheMiss, CachePartial} {
		cached, fresh := rangeBoth(t, e.frontend, r)
		sameAnswer(t, "sc", cached, fresh)
		if cached.Cache != want {
			t.Fatalf("steps at the cutoff %s and a minute later: answer %d %s, want %s", cutoff, i+1, cached.Cache, want)
		}
	}
}
