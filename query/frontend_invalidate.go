package query

import (
	"time"
)

// Touched is what a write touched that may change a cached answer: a
// metric name and the UTC day (days since the epoch) of one of its samples.
type Touched struct {
	Name string
	Day  int64
}

// DayOf returns the UTC day (days since the epoch) of timestamp t (ms).
func DayOf(t int64) int64 { return floorDiv(t, dayMillis) }

// FreshFrom returns the oldest timestamp (ms) of samples that need no
// invalidation now: no cached answer reads data that recent.
func (f *Frontend) FreshFrom() int64 { return f.cutoff() + 1 }

// Invalidate bumps the tags of metric name (or "*" for every name) on the
// UTC days from mint to maxt (ms). A range wider than maxTagDays resets the
// whole cache instead. An error (cache.ErrInvalidationNotDurable) means
// the tags are bumped on this instance but the bump may never reach the
// others: the caller must not report the change that caused it as
// complete (see cache.Invalidate).
func (f *Frontend) Invalidate(names []string, mint, maxt int64) error {
	if f.cache == nil || mint > maxt {
		return nil
	}
	first := time.UnixMilli(mint).UTC().Truncate(24 * time.Hour)
	last := time.UnixMilli(maxt).UTC().Truncate(24 * time.Hour)
	if last.Sub(first) > maxTagDays*24*time.Hour {
		err := f.cache.Reset()
		f.invalidated()
		return err
	}
	var tags []string
	for d := first; !d.After(last); d = d.Add(24 * time.Hour) {
		for _, n := range names {
			tags = append(tags, Tag(n, d))
		}
		tags = append(tags, Tag("*", d))
	}
	err := f.cache.InvalidateTags(tags...) // one round trip when the tags are shared in Redis
	f.invalidated()
	return err
}

// InvalidateBatch bumps the tags of what a write touched: the caller
// passes, for every sample older than FreshFrom, its metric name and day
// (duplicates are fine). Call it once the samples are visible to queries
// and before acknowledging them. Its error is Invalidate's.
func (f *Frontend) InvalidateBatch(touched []Touched) error {
	if f.cache == nil || len(touched) == 0 {
		return nil
	}
	tags := make([]string, 0, 2*len(touched))
	for _, t := range touched {
		day := time.UnixMilli(t.Day * dayMillis).UTC()
		tags = append(tags, Tag(t.Name, day), Tag("*", day))
	}
	err := f.cache.InvalidateTags(tags...) // duplicates are folded by the cache
	f.invalidated()
	return err
}

const dayMillis = 24 * 3600 * 1000
