package query

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// TestTagDaysBound: an extent whose data spans maxTagDays UTC days is
// cached (tagged with each of them); one spanning a day more is not.
func TestTagDaysBound(t *testing.T) {
	now := time.Date(2026, 1, 10, 12, 0, 0, 0, time.UTC)
	e := newDiffEnv(t, now)
	e.write(t, gaugeBatch("td", now.Add(-30*time.Hour), now.Add(-time.Hour), time.Minute))
	// No retention: only the days decide.
	f, err := NewFrontend(e.frontend.engine, e.cache, e.frontend.opts, e.clock.Now, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	day := time.Date(2026, 1, 9, 0, 0, 0, 0, time.UTC)
	// The extent [06:00, 12:00) of day: a range of R reads from
	// 06:00-R+1ms, on day-R/24h.
	for _, c := range []struct {
		days int
		want []CacheStatus
	}{
		{maxTagDays - 1, []CacheStatus{CacheMiss, CacheHit}}, // maxTagDays days
		{maxTagDays, []CacheStatus{CacheMiss, CacheMiss}},    // one more
	} {
		r := RangeQuery{Query: fmt.Sprintf("count_over_time(td[%dd])", c.days), Start: day.Add(7 * time.Hour), End: day.Add(11 * time.Hour), Step: time.Hour}
		for i, want := range c.want {
			cached, err := f.Range(context.Background(), r, false)
			if err != nil {
				t.Fatal(err)
			}
			fresh, err := f.Range(context.Background(), r, true)
			if err != nil {
				t.Fatal(err)
			}
			sameAnswer(t, r.Query, cached, fresh)
			if cached.Cache != want {
				t.Fatalf("%s (data on %d days): answer %d %s, want %s", r.Query, c.days+1, i+1, cached.Cache, want)
			}
		}
	}
}
