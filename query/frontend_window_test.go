package query

import (
	"testing"
	"time"
)

// TestWindowDependentQueriesUncached: a query whose answer at a step
// depends on its window (@ start(), @ end()) is never split nor cached:
// two windows sharing their extents answer as fresh ones do.
func TestWindowDependentQueriesUncached(t *testing.T) {
	now := time.Date(2026, 1, 10, 12, 0, 0, 0, time.UTC)
	e := newDiffEnv(t, now)
	e.write(t, gaugeBatch("wd", now.Add(-10*time.Hour), now.Add(-time.Hour), time.Minute))
	start := now.Add(-9 * time.Hour)
	for _, qs := range []string{`wd @ end()`, `wd @ start()`} {
		for _, r := range []RangeQuery{
			{Query: qs, Start: start, End: now.Add(-2 * time.Hour), Step: time.Minute},
			{Query: qs, Start: start, End: now.Add(-3 * time.Hour), Step: time.Minute},
			{Query: qs, Start: start.Add(time.Hour), End: now.Add(-3 * time.Hour), Step: time.Minute},
		} {
			cached, fresh := rangeBoth(t, e.frontend, r)
			sameAnswer(t, qs, cached, fresh)
			if cached.Cache != CacheBypass {
				t.Fatalf("%s from %s to %s: %s, want bypass", qs, r.Start, r.End, cached.Cache)
			}
		}
	}
}
