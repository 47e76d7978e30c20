package query

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/strata-tsdb/strata/downsample"
)

// TestChainedTagDaysBound: an extent that reads a counter from rollups is
// tagged with every day from where the counter's level starts to depend on
// data (the rollups' first window, less one window) to its own end, and is
// cached only if those are at most maxTagDays days, as plan.tags refuses
// more. The rollups here cover one day, D0; the chain starts on the day
// before, so the extent of day D0+798 depends on exactly maxTagDays days
// and is cached, and that of day D0+799 on one more, and is not. The
// extent cached must be tagged with the chain's first day: a write there
// recomputes it.
func TestChainedTagDaysBound(t *testing.T) {
	store, set, _ := openTestStore(t)
	ctx := context.Background()
	d0 := time.Date(2023, 1, 10, 0, 0, 0, 0, time.UTC)
	day := func(n int) time.Time { return d0.Add(time.Duration(n) * 24 * time.Hour) }
	// A counter through day D0 (none at its midnight, which belongs to the
	// window before), rolled up into 5m buckets.
	b := gaugeBatch("chain_total", d0.Add(10*time.Minute), day(1).Add(-10*time.Minute), 10*time.Minute)
	for i := range b.Series[0].Samples {
		b.Series[0].Samples[i].V = float64(i)
	}
	if err := store.Append(b); err != nil {
		t.Fatal(err)
	}
	if err := store.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if n := compactAndRollUp(t, set, downsample.Options{Now: func() time.Time { return day(3) }}); n == 0 {
		t.Fatal("no rollups written")
	}
	_, eng := newTestEngine(t, store, set)
	now := func() time.Time { return day(802) }
	for _, c := range []struct {
		last int           // the last extent's day, from D0
		want []CacheStatus // the answer asked twice, then after a write on the chain's first day
	}{
		{maxTagDays - 2, []CacheStatus{CacheMiss, CacheHit, CacheMiss}}, // maxTagDays days
		{maxTagDays - 1, []CacheStatus{CacheMiss, CachePartial, CacheMiss}},
	} {
		f := newCachedFrontend(t, eng, now, nil)
		r := RangeQuery{Query: `rate(chain_total[1h])`, Start: d0.Add(12 * time.Hour), End: day(c.last).Add(12 * time.Hour), Step: 12 * time.Hour}
		for i, want := range c.want {
			if i == 2 {
				// The server tells the frontend what a late write touched.
				if err := f.InvalidateBatch([]Touched{{Name: "chain_total", Day: DayOf(day(-1).UnixMilli())}}); err != nil {
					t.Fatal(err)
				}
			}
			cached, fresh := rangeBoth(t, f, r)
			what := fmt.Sprintf("%s to D0+%d, answer %d", r.Query, c.last, i+1)
			sameAnswer(t, what, cached, fresh)
			if cached.Resolution != Resolution5m {
				t.Fatalf("%s: from %s, want 5m rollups (the test's point)", what, cached.Resolution)
			}
			if cached.Cache != want {
				t.Fatalf("%s: %s, want %s", what, cached.Cache, want)
			}
		}
	}
}
