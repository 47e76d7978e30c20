package query

import (
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/strata-tsdb/strata/ingest"
)

// TestLateWriteNextDayKeepsLastExtent: the last extent of a day (its
// steps up to the day's last minute) reads nothing of the next day, so a
// late write at the next day's first millisecond leaves it cached, and
// makes the extent that starts there a miss.
func TestLateWriteNextDayKeepsLastExtent(t *testing.T) {
	now := time.Date(2026, 1, 10, 12, 0, 0, 0, time.UTC)
	e := newDiffEnv(t, now)
	midnight := time.Date(2026, 1, 9, 0, 0, 0, 0, time.UTC)
	e.write(t, gaugeBatch("nd", midnight.Add(-12*time.Hour), midnight.Add(10*time.Hour), time.Minute))
	// One extent each (the split interval is 6 h), 1 m steps.
	last := RangeQuery{Query: "nd", Start: midnight.Add(-6 * time.Hour), End: midnight.Add(-time.Minute), Step: time.Minute}
	first := RangeQuery{Query: "nd", Start: midnight, End: midnight.Add(5 * time.Hour), Step: time.Minute}
	for _, r := range []RangeQuery{last, first} {
		for i, want := range []CacheStatus{CacheMiss, CacheHit} {
			cached, fresh := rangeBoth(t, e.frontend, r)
			sameAnswer(t, "before the write", cached, fresh)
			if cached.Cache != want {
				t.Fatalf("%s from %s: answer %d %s, want %s", r.Query, r.Start, i+1, cached.Cache, want)
			}
		}
	}
	e.write(t, &ingest.Batch{Series: []ingest.Series{{Labels: labels.FromStrings("__name__", "nd", "host", "a"), Samples: []ingest.Sample{{T: midnight.UnixMilli() + 1, V: 1e6}}}}})
	for _, c := range []struct {
		r    RangeQuery
		want CacheStatus
	}{{last, CacheHit}, {first, CacheMiss}} {
		cached, fresh := rangeBoth(t, e.frontend, c.r)
		sameAnswer(t, "after the write", cached, fresh)
		if cached.Cache != c.want {
			t.Errorf("after a late write at %s: the extent from %s %s, want %s", midnight, c.r.Start, cached.Cache, c.want)
		}
	}
}
