package query

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"

	"github.com/strata-tsdb/strata/downsample"
	"github.com/strata-tsdb/strata/ingest"
	"github.com/strata-tsdb/strata/segments"
)

// TestRollupLateAfterDeleteNarrowsSegment: a rolled-up day's last sample
// (at midnight, the end of its window) lies in a segment of the next day.
// A delete of that sample narrows the segment's time range out of the
// day once compaction applies it, but the day's raw data is not gone: a
// late write into the day shows at 5m resolution in a range that ends in
// the day, as in one that ends the next day. It failed for the range
// ending in the day: the Select acquired the segments of its span only,
// did not find the narrowed segment's sources, judged the day's raw data
// partly gone and read the stored rollup without the late write (the
// cache differential test, seed 9, op 2581: a cached answer changed by a
// compaction, with no invalidation).
func TestRollupLateAfterDeleteNarrowsSegment(t *testing.T) {
	store, set, _ := openTestStore(t)
	ctx := context.Background()
	day := time.Date(2026, 1, 30, 0, 0, 0, 0, time.UTC)
	mid := day.Add(24 * time.Hour) // the end of the rolled-up day's window
	lset := labels.FromStrings("__name__", "nm", "host", "a")
	s := ingest.Series{Labels: lset}
	for ts := day.Add(time.Minute); !ts.After(mid.Add(time.Hour)); ts = ts.Add(time.Minute) {
		s.Samples = append(s.Samples, ingest.Sample{T: ts.UnixMilli(), V: float64(ts.Minute())})
	}
	if err := store.Append(&ingest.Batch{Series: []ingest.Series{s}}); err != nil {
		t.Fatal(err)
	}
	if err := store.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	opts := downsample.Options{Now: func() time.Time { return mid.Add(41 * time.Hour) }, FiveM1hAfter: 1000 * time.Hour}
	if n := compactAndRollUp(t, set, opts); n == 0 {
		t.Fatal("no rollups written")
	}
	err := store.DeleteSeries(ctx, func() error {
		_, err := set.AddTombstone([]*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "__name__", "nm")}, mid.UnixMilli(), mid.UnixMilli())
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	comp, err := segments.NewCompactor(nil, set, segments.CompactOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := comp.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	for _, m := range set.Metas() {
		if m.Resolution == 0 && m.MinTime <= mid.UnixMilli() && m.MaxTime > mid.UnixMilli() {
			t.Fatalf("segment %s still holds the deleted midnight", m.ID)
		}
	}
	// The late write: a value no other sample has, in the head.
	late := day.Add(22*time.Hour + 2*time.Minute + 30*time.Second)
	if err := store.Append(&ingest.Batch{Series: []ingest.Series{{Labels: lset, Samples: []ingest.Sample{{T: late.UnixMilli(), V: 1e6}}}}}); err != nil {
		t.Fatal(err)
	}
	_, eng := newTestEngine(t, store, set)
	for _, end := range []time.Time{day.Add(23 * time.Hour), mid.Add(time.Hour)} {
		r := RangeQuery{Query: `max_over_time(nm[5m])`, Start: day.Add(21 * time.Hour), End: end, Step: 5 * time.Minute}
		res, err := eng.RangeAt(ctx, r, Resolution5m)
		if err != nil {
			t.Fatal(err)
		}
		m := res.Value.(promql.Matrix)
		if len(m) != 1 {
			t.Fatalf("range ending %s: %d series, want 1", end.Format(time.DateTime), len(m))
		}
		at := late.Truncate(5 * time.Minute).Add(5 * time.Minute).UnixMilli()
		found := false
		for _, p := range m[0].Floats {
			if p.T == at {
				found = true
				if p.F != 1e6 {
					t.Fatalf("range ending %s: max_over_time at the late write's bucket %g, want 1e6 (the late write)", end.Format(time.DateTime), p.F)
				}
			}
		}
		if !found {
			t.Fatalf("range ending %s: no point at the late write's bucket", end.Format(time.DateTime))
		}
	}
}
