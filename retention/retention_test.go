package retention

import (
	"context"
	"log/slog"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/strata-tsdb/strata/segments"
	"github.com/strata-tsdb/strata/segments/segmentstest"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// writeSegment writes a segment of one series with samples every minute
// in [from, to] at a resolution.
func writeSegment(t *testing.T, set *segments.Set, name string, from, to time.Time, res int64) segments.Meta {
	t.Helper()
	c := segmentstest.MinuteChunk(from, to, func(time.Time) float64 { return 1 })
	kinds := []segments.ChunkKind{segments.KindRaw}
	if res != 0 {
		kinds = []segments.ChunkKind{segments.KindCount, segments.KindSum}
	}
	var chunks []segments.ChunkMeta
	for _, k := range kinds {
		chunks = append(chunks, segments.ChunkMeta{Kind: k, Chunk: c})
	}
	return segmentstest.Publish(t, set, segments.Meta{Resolution: res},
		[]segments.SeriesData{{Labels: labels.FromStrings("__name__", name), Chunks: chunks}})
}

func newSet(t *testing.T) *segments.Set { return segmentstest.NewSet(t) }

func ids(set *segments.Set) []string { return segmentstest.IDs(set) }

func TestAgeLimitsPerResolution(t *testing.T) {
	set := newSet(t)
	day := 24 * time.Hour
	raw := writeSegment(t, set, "a", t0, t0.Add(2*time.Hour), 0)           // ends t0+2h
	fiveM := writeSegment(t, set, "b", t0, t0.Add(2*time.Hour), Res5m)     // same range, 5m
	hour := writeSegment(t, set, "c", t0, t0.Add(2*time.Hour), Res1h)      // same range, 1h
	recent := writeSegment(t, set, "d", t0.Add(25*day), t0.Add(25*day), 0) // young raw
	now := t0
	var reports []Report
	e, err := New(slog.New(slog.DiscardHandler), set, Policy{Raw: 10 * day, FiveMinute: 30 * day, OneHour: 0}, func() time.Time { return now }, nil)
	if err != nil {
		t.Fatal(err)
	}
	e.OnDrop = func(r Report) { reports = append(reports, r) }
	run := func(at time.Time) Report {
		t.Helper()
		now = at
		rep, err := e.Run(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	// One millisecond before the raw segment's newest sample is 10 d old:
	// kept. One millisecond after: gone, and reported with its names.
	end := time.UnixMilli(raw.MaxTime)
	if rep := run(end.Add(10*day - time.Millisecond)); len(rep.Dropped) != 0 {
		t.Fatalf("dropped too early: %+v", rep)
	}
	rep := run(end.Add(10*day + time.Millisecond))
	if len(rep.Dropped) != 1 || rep.Dropped[0].ID != raw.ID || !slices.Equal(rep.Dropped[0].MetricNames, []string{"a"}) || rep.Dropped[0].Reason != "age" {
		t.Fatalf("want raw segment dropped by age with name a, got %+v", rep)
	}
	if len(reports) != 1 {
		t.Fatalf("OnDrop called %d times, want 1", len(reports))
	}
	if rep := run(end.Add(30*day - time.Millisecond)); len(rep.Dropped) != 0 {
		t.Fatalf("5m dropped too early: %+v", rep)
	}
	if rep := run(end.Add(30*day + time.Millisecond)); len(rep.Dropped) != 1 || rep.Dropped[0].ID != fiveM.ID {
		t.Fatalf("want the 5m segment dropped, got %+v", rep)
	}
	if !slices.Contains(ids(set), recent.ID) {
		t.Fatal("the young raw segment went too early")
	}
	// 1h is kept forever; the young raw segment goes in its time.
	if rep := run(end.Add(10 * 365 * day)); len(rep.Dropped) != 1 || rep.Dropped[0].ID != recent.ID {
		t.Fatalf("want the young raw segment dropped, got %+v", rep)
	}
	if got := ids(set); !slices.Equal(got, []string{hour.ID}) {
		t.Fatalf("left %v, want only the 1h segment %s", got, hour.ID)
	}
}

func TestDiskLimitDropsOldestFirst(t *testing.T) {
	set := newSet(t)
	var metas []segments.Meta
	for i := range 5 {
		metas = append(metas, writeSegment(t, set, "m", t0.Add(time.Duration(i)*time.Hour), t0.Add(time.Duration(i)*time.Hour+50*time.Minute), 0))
	}
	var total int64
	for _, in := range set.Segments() {
		total += in.Size
	}
	per := total / 5
	e, err := New(slog.New(slog.DiscardHandler), set, Policy{MaxBytes: total - per - per/2}, func() time.Time { return t0 }, nil)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := e.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Dropped) != 2 || rep.Dropped[0].ID != metas[0].ID || rep.Dropped[1].ID != metas[1].ID || rep.Dropped[0].Reason != "disk" {
		t.Fatalf("want the two oldest dropped for disk, got %+v", rep.Dropped)
	}
	var left int64
	for _, in := range set.Segments() {
		left += in.Size
	}
	if left > e.Policy().MaxBytes {
		t.Fatalf("%d bytes left, limit %d", left, e.Policy().MaxBytes)
	}
}

func TestPolicyValidate(t *testing.T) {
	day := 24 * time.Hour
	for _, c := range []struct {
		p    Policy
		want string // substring of the error, "" for none
	}{
		{DefaultPolicy(), ""},
		{Policy{}, ""},
		// "At least as long": equal ages are fine.
		{Policy{Raw: 15 * day, FiveMinute: 15 * day, OneHour: 15 * day}, ""},
		{Policy{Raw: 10 * day, FiveMinute: 5 * day, OneHour: 100 * day}, "5m rollups kept"},
		{Policy{Raw: 10 * day, FiveMinute: 20 * day, OneHour: 15 * day}, "1h rollups kept"},
		{Policy{Raw: 0, FiveMinute: 20 * day}, "less than raw data (forever)"},
		{Policy{Raw: -1}, "negative"},
	} {
		err := c.p.Validate()
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%+v: got %v, want %q", c.p, err, c.want)
		}
	}
	if DefaultPolicy().MinTime(0, t0) != t0.Add(-15*day).UnixMilli() || (Policy{}).MinTime(Res1h, t0) != math.MinInt64 {
		t.Error("MinTime")
	}
	// What DefaultPolicy's comment and docs/operations.md promise.
	if got, want := DefaultPolicy(), (Policy{Raw: 15 * day, FiveMinute: 90 * day, OneHour: 2 * 365 * day}); got != want {
		t.Errorf("DefaultPolicy() = %+v, want %+v", got, want)
	}
}

// TestDiskLimitOrdersByNewestSample checks that the disk limit drops by
// the newest sample a segment holds, not by the set's order (oldest first
// sample): a long segment that started first but still holds recent data
// outlives short ones inside its span. Nothing of a clean run is logged as
// a warning, and each dropped segment carries its metric names for the
// cache's invalidation.
func TestDiskLimitOrdersByNewestSample(t *testing.T) {
	set := newSet(t)
	long := writeSegment(t, set, "a", t0, t0.Add(5*time.Hour), 0)
	b := writeSegment(t, set, "b", t0.Add(1*time.Hour), t0.Add(2*time.Hour), 0)
	c := writeSegment(t, set, "c", t0.Add(2*time.Hour), t0.Add(3*time.Hour), 0)
	late := writeSegment(t, set, "d", t0.Add(4*time.Hour), t0.Add(6*time.Hour), 0)
	size := map[string]int64{}
	for _, in := range set.Segments() {
		size[in.Meta.ID] = in.Size
	}
	var logged strings.Builder
	logger := slog.New(slog.NewTextHandler(&logged, &slog.HandlerOptions{Level: slog.LevelWarn}))
	e, err := New(logger, set, Policy{MaxBytes: size[long.ID] + size[late.ID]}, func() time.Time { return t0 }, nil)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := e.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range rep.Dropped {
		got = append(got, d.ID)
		if want := map[string]string{b.ID: "b", c.ID: "c"}[d.ID]; !slices.Equal(d.MetricNames, []string{want}) {
			t.Errorf("segment %s dropped with names %q, want [%s]", d.ID, d.MetricNames, want)
		}
	}
	if want := []string{b.ID, c.ID}; !slices.Equal(got, want) {
		t.Fatalf("dropped %v, want those with the oldest newest samples, in that order: %v", got, want)
	}
	if want := []string{long.ID, late.ID}; !slices.Equal(ids(set), slices.Sorted(slices.Values(want))) {
		t.Fatalf("left %v, want %v", ids(set), want)
	}
	if logged.Len() != 0 {
		t.Fatalf("a clean run logged warnings:\n%s", logged.String())
	}
}

// TestExactBoundaryIsRetained checks, for every resolution, that a segment
// whose newest sample is exactly now − limit is kept, as Policy.MinTime
// promises (that timestamp is still inside retention), and that it goes one
// millisecond later.
func TestExactBoundaryIsRetained(t *testing.T) {
	day := 24 * time.Hour
	policy := Policy{Raw: 2 * day, FiveMinute: 7 * day, OneHour: 30 * day}
	for _, res := range []int64{0, Res5m, Res1h} {
		t.Run(resolutionLabel(res), func(t *testing.T) {
			set := newSet(t)
			meta := writeSegment(t, set, "a", t0, t0.Add(time.Hour), res)
			now := time.UnixMilli(meta.MaxTime).Add(policy.Limit(res))
			e, err := New(slog.New(slog.DiscardHandler), set, policy, func() time.Time { return now }, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := policy.MinTime(res, now); got != meta.MaxTime {
				t.Fatalf("MinTime at the boundary = %d, want the segment's max time %d", got, meta.MaxTime)
			}
			rep, err := e.Run(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Dropped) != 0 || !slices.Equal(ids(set), []string{meta.ID}) {
				t.Fatalf("segment ending exactly at MinTime dropped: %+v", rep.Dropped)
			}
			now = now.Add(time.Millisecond)
			rep, err = e.Run(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Dropped) != 1 || rep.Dropped[0].ID != meta.ID || len(ids(set)) != 0 {
				t.Fatalf("segment 1 ms past the boundary not dropped: %+v", rep.Dropped)
			}
		})
	}
}

// TestDiskLimitTieBreak checks that of segments ending at the same time
// the finer resolution goes first under the disk limit: raw before 5m
// before 1h, since the coarser outlives it anyway.
func TestDiskLimitTieBreak(t *testing.T) {
	set := newSet(t)
	hour := writeSegment(t, set, "c", t0, t0.Add(time.Hour), Res1h)
	raw := writeSegment(t, set, "a", t0, t0.Add(time.Hour), 0)
	fiveM := writeSegment(t, set, "b", t0, t0.Add(time.Hour), Res5m)
	size := map[string]int64{}
	for _, in := range set.Segments() {
		size[in.Meta.ID] = in.Size
	}
	// Room for the 1h segment only.
	e, err := New(slog.New(slog.DiscardHandler), set, Policy{MaxBytes: size[hour.ID]}, func() time.Time { return t0 }, nil)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := e.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range rep.Dropped {
		got = append(got, d.ID)
	}
	if want := []string{raw.ID, fiveM.ID}; !slices.Equal(got, want) {
		t.Fatalf("dropped %v, want raw then 5m %v", got, want)
	}
	if !slices.Equal(ids(set), []string{hour.ID}) {
		t.Fatalf("left %v, want the 1h segment", ids(set))
	}
}

func TestResolutionLabel(t *testing.T) {
	f := func(res int64, want string) {
		t.Helper()
		if got := resolutionLabel(res); got != want {
			t.Errorf("resolutionLabel(%d) = %q, want %q", res, got, want)
		}
	}
	f(0, "raw")
	f(Res5m, "5m")
	f(Res1h, "1h")
	f(60_000, "60000ms")
	if Res5m != 300_000 || Res1h != 3_600_000 {
		t.Errorf("resolutions %d, %d ms", Res5m, Res1h)
	}
}
