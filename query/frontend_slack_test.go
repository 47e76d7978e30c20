package query

import (
	"testing"
	"time"
)

// TestRetentionSlackNotCached: an extent whose data starts less than the
// cache's TTL and grace (slack) after the retention bound would outlive
// its data while served: it is not cached; one starting slack or more
// after the bound is.
func TestRetentionSlackNotCached(t *testing.T) {
	now := time.Date(2026, 1, 10, 12, 0, 0, 0, time.UTC)
	e := newDiffEnv(t, now)
	e.write(t, gaugeBatch("rs", now.Add(-20*time.Hour), now.Add(-time.Hour), time.Minute))
	// Extents of 6 h from midnight; `rs` reads from 5 m before each
	// step, less 1 ms: the extent from 06:00 reads from exactly the
	// bound plus the slack, the one from 00:00 from the bound less it.
	day := time.Date(2026, 1, 10, 0, 0, 0, 0, time.UTC)
	bound := day.Add(2*time.Hour + 55*time.Minute + time.Millisecond) // retention's, for every resolution
	f, err := NewFrontend(e.frontend.engine, e.cache, e.frontend.opts, e.clock.Now, func(Resolution) int64 { return bound.UnixMilli() }, 3*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		start time.Time
		want  []CacheStatus
	}{
		{day.Add(time.Hour), []CacheStatus{CacheMiss, CacheMiss}},
		{day.Add(7 * time.Hour), []CacheStatus{CacheMiss, CacheHit}},
	} {
		r := RangeQuery{Query: "rs", Start: c.start, End: c.start.Add(30 * time.Minute), Step: time.Minute}
		for i, want := range c.want {
			cached, fresh := rangeBoth(t, f, r)
			sameAnswer(t, "rs", cached, fresh)
			if cached.Cache != want {
				t.Fatalf("from %s (bound %s, slack 3h): answer %d %s, want %s", c.start, bound, i+1, cached.Cache, want)
			}
		}
	}
}
