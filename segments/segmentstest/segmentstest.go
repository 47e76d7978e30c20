// Package segmentstest writes and publishes segments for the tests of
// the packages that manage a segments.Set (retention, object storage):
// a set in a temporary directory, a segment of given series published
// into it, chunks of a sample a minute. It must not be imported by
// anything but tests.
package segmentstest

import (
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/strata-tsdb/strata/segments"
)

// NewSet opens a set in a new temporary directory, closed when the test
// ends.
func NewSet(t testing.TB) *segments.Set {
	t.Helper()
	set, err := segments.OpenSet(slog.New(slog.DiscardHandler), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { set.Close() })
	return set
}

// Publish writes series (in any order) as one segment described by meta
// (its resolution, say; the rest computed as segments.WriteSeries does)
// into set and publishes it.
func Publish(t testing.TB, set *segments.Set, meta segments.Meta, series []segments.SeriesData) segments.Meta {
	t.Helper()
	series = slices.Clone(series)
	slices.SortFunc(series, func(a, b segments.SeriesData) int { return labels.Compare(a.Labels, b.Labels) })
	meta, err := segments.WriteSeries(set.Dir(), meta, series)
	if err != nil {
		t.Fatal(err)
	}
	if err := set.Publish([]segments.Meta{meta}); err != nil {
		t.Fatal(err)
	}
	return meta
}

// MinuteChunk returns an XOR chunk with a sample every minute in
// [from, to], valued value(ts).
func MinuteChunk(from, to time.Time, value func(ts time.Time) float64) chunkenc.Chunk {
	c := chunkenc.NewXORChunk()
	app, _ := c.Appender()
	for ts := from; !ts.After(to); ts = ts.Add(time.Minute) {
		app.Append(0, ts.UnixMilli(), value(ts))
	}
	return c
}

// IDs returns the sorted IDs of the set's segments.
func IDs(set *segments.Set) []string {
	var out []string
	for _, in := range set.Segments() {
		out = append(out, in.Meta.ID)
	}
	slices.Sort(out)
	return out
}
