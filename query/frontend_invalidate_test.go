package query

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
)

// TestInvalidateEdges: a delete of one instant (mint == maxt) makes the
// answers that read it misses, and the next answer lacks the deleted
// sample; an invalidation spanning up to maxTagDays days (to the last
// millisecond of the last) bumps tags and leaves every other answer
// cached, one a day wider resets the cache.
func TestInvalidateEdges(t *testing.T) {
	now := time.Date(2026, 1, 10, 12, 0, 0, 0, time.UTC)
	e := newDiffEnv(t, now)
	e.write(t, gaugeBatch("ia", now.Add(-10*time.Hour), now.Add(-time.Hour), time.Minute))
	e.write(t, gaugeBatch("ib", now.Add(-10*time.Hour), now.Add(-time.Hour), time.Minute))
	ctx := context.Background()
	// One extent (the split interval is 6 h), a step on every sample.
	window := func(name string) RangeQuery {
		return RangeQuery{Query: name, Start: now.Add(-5 * time.Hour), End: now.Add(-2 * time.Hour), Step: time.Minute}
	}
	ask := func(name string, want CacheStatus, what string) {
		t.Helper()
		cached, fresh := rangeBoth(t, e.frontend, window(name))
		sameAnswer(t, what+": "+name, cached, fresh)
		if cached.Cache != want {
			t.Fatalf("%s: %s answered %s, want %s", what, name, cached.Cache, want)
		}
	}
	for _, n := range []string{"ia", "ib"} {
		ask(n, CacheMiss, "first query")
		ask(n, CacheHit, "second query")
	}

	// Delete one sample of ia, at one instant.
	at := now.Add(-3 * time.Hour).UnixMilli()
	ms := []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, labels.MetricName, "ia")}
	if err := e.deleter.DeleteSeries(ctx, [][]*labels.Matcher{ms}, at, at); err != nil {
		t.Fatal(err)
	}
	ask("ia", CacheMiss, "after deleting one instant of ia")
	ask("ib", CacheHit, "after deleting one instant of ia")
	res, err := e.frontend.Range(ctx, RangeQuery{Query: "ia", Start: time.UnixMilli(at), End: time.UnixMilli(at), Step: time.Minute}, true)
	if err != nil {
		t.Fatal(err)
	}
	if m := asMatrix(res.Value); len(m) != 1 || len(m[0].Floats) != 1 || m[0].Floats[0].F == float64(at/1000%1000) {
		t.Fatalf("the deleted sample is still read: %v", m)
	}

	// maxTagDays days after the first day, to its last millisecond: tags.
	day := time.Date(2026, 1, 9, 0, 0, 0, 0, time.UTC)
	last := day.Add(maxTagDays*24*time.Hour + 24*time.Hour - time.Millisecond)
	if err := e.frontend.Invalidate([]string{"other"}, day.UnixMilli(), last.UnixMilli()); err != nil {
		t.Fatal(err)
	}
	ask("ia", CacheHit, "after invalidating another name over maxTagDays days")
	ask("ib", CacheHit, "after invalidating another name over maxTagDays days")
	// One millisecond more reaches the next day: the whole cache goes.
	if err := e.frontend.Invalidate([]string{"other"}, day.UnixMilli(), last.UnixMilli()+1); err != nil {
		t.Fatal(err)
	}
	ask("ia", CacheMiss, "after invalidating another name over maxTagDays+1 days")
	ask("ib", CacheMiss, "after invalidating another name over maxTagDays+1 days")
}
