package downsample

import (
	"context"
	"io/fs"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/strata-tsdb/strata/segments"
)

const block = 2 * Res1h

type rawSeries struct {
	lset    labels.Labels
	samples []sample
}

func newTestSet(t testing.TB, dir string) *segments.Set {
	t.Helper()
	set, err := segments.OpenSet(nil, dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = set.Close() })
	return set
}

func newTestDownsampler(t testing.TB, set *segments.Set, clock *fakeClock) (*Downsampler, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	d, err := New(nil, set, clock.opts(), reg)
	if err != nil {
		t.Fatal(err)
	}
	return d, reg
}

func run(t testing.TB, d *Downsampler, want int) {
	t.Helper()
	n, err := d.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if n != want {
		t.Fatalf("Run wrote %d rollups, want %d", n, want)
	}
}

// rawChunks cuts samples into raw XOR chunks of 120 samples.
func rawChunks(ss []sample) []segments.ChunkMeta {
	var out []segments.ChunkMeta
	for len(ss) > 0 {
		n := min(120, len(ss))
		c := chunkenc.NewXORChunk()
		app, _ := c.Appender()
		for _, s := range ss[:n] {
			app.Append(0, s.T, s.V)
		}
		out = append(out, segments.ChunkMeta{Kind: segments.KindRaw, Chunk: c})
		ss = ss[n:]
	}
	return out
}

// writeRaw writes the samples of series in [mint, maxt] as one raw segment
// and publishes it; it returns false when there were none.
func writeRaw(t testing.TB, set *segments.Set, series []rawSeries, mint, maxt int64) (segments.Meta, bool) {
	t.Helper()
	var data []segments.SeriesData
	for _, s := range series {
		if ss := inRange(s.samples, mint, maxt); len(ss) > 0 {
			data = append(data, segments.SeriesData{Labels: s.lset, Chunks: rawChunks(ss)})
		}
	}
	if len(data) == 0 {
		return segments.Meta{}, false
	}
	m, err := segments.WriteSeries(set.Dir(), segments.Meta{}, data)
	if err != nil {
		t.Fatal(err)
	}
	if err := set.Publish([]segments.Meta{m}); err != nil {
		t.Fatal(err)
	}
	return m, true
}

// writeBlocks writes the samples in [mint, maxt] as one raw segment per
// aligned 2h block, as flushes do.
func writeBlocks(t testing.TB, set *segments.Set, series []rawSeries, mint, maxt int64) []segments.Meta {
	t.Helper()
	var out []segments.Meta
	first := int64(math.MaxInt64)
	for _, s := range series {
		if ss := inRange(s.samples, mint, maxt); len(ss) > 0 {
			first = min(first, ss[0].T)
		}
	}
	for b := first - first%block; b <= maxt && first != math.MaxInt64; b += block {
		if m, ok := writeRaw(t, set, series, max(b, mint), min(b+block-1, maxt)); ok {
			out = append(out, m)
		}
	}
	return out
}

// testData returns two days of data from day0 (exclusive) to day0+2d
// (inclusive, so the midnights have samples): a counter with resets, one
// of them on the first sample of a bucket and one at midnight; a gauge
// with NaNs, stale markers and a gap; a series only on the second day.
func testData() []rawSeries {
	rng := rand.New(rand.NewPCG(7, 8))
	var ctr, gauge, late []sample
	v, g := 1000.0, 0.0
	for ts := day0 + 10*sec; ts <= day0+2*Window; ts += 10 * sec {
		switch ts - day0 {
		case 3*Res1h + 70*sec, 5*Res1h + 5*minute + 10*sec, Window, Window + 7*Res1h:
			v = 3
		default:
			v += float64(rng.IntN(50))
		}
		ctr = append(ctr, sample{T: ts, V: v})
		g += rng.NormFloat64()
		switch {
		case ts > day0+Window+2*Res1h && ts < day0+Window+5*Res1h:
			// a gap
		case rng.IntN(100) == 0:
			gauge = append(gauge, sample{T: ts, V: math.NaN()})
		case rng.IntN(100) == 0:
			gauge = append(gauge, sample{T: ts, V: staleNaN})
		default:
			gauge = append(gauge, sample{T: ts, V: g})
		}
		if ts > day0+Window+Res1h {
			late = append(late, sample{T: ts, V: float64(ts-day0) / 1000})
		}
	}
	return []rawSeries{
		{lbls("__name__", "requests_total", "job", "a"), ctr},
		{lbls("__name__", "temperature", "job", "a"), gauge},
		{lbls("__name__", "uptime_seconds", "job", "b"), late},
	}
}

// rollupOf returns the rollup of a resolution and window, failing if there
// is not exactly one.
func rollupOf(t testing.TB, set *segments.Set, res, w int64) rollupInfo {
	t.Helper()
	var found []rollupInfo
	for _, in := range set.Segments() {
		if r, ok := asRollup(in.Meta); ok && r.meta.Resolution == res && r.start == w {
			found = append(found, r)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d rollups of resolution %d for window %s, want 1", len(found), res, fmtWindow(w))
	}
	return found[0]
}

func numRollups(set *segments.Set) int {
	n := 0
	for _, in := range set.Segments() {
		if in.Meta.Resolution != 0 {
			n++
		}
	}
	return n
}

func rawIDs(set *segments.Set) []string {
	var out []string
	for _, in := range set.Segments() {
		if in.Meta.Resolution == 0 {
			out = append(out, in.Meta.ID)
		}
	}
	slices.Sort(out)
	return out
}

// readRollup returns the rows of every series of a segment, by label set.
func readRollup(t testing.TB, set *segments.Set, id string) map[string][]row {
	t.Helper()
	segs, release := set.Acquire(math.MinInt64, math.MaxInt64)
	defer release()
	i := slices.IndexFunc(segs, func(s *segments.Segment) bool { return s.Meta().ID == id })
	if i < 0 {
		t.Fatalf("segment %s not in the set", id)
	}
	seg := segs[i]
	if err := seg.Verify(context.Background()); err != nil {
		t.Fatal(err)
	}
	it, err := seg.Select()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]row{}
	for it.Next() {
		chunks := it.Chunks()
		for j := range chunks {
			if chunks[j].Chunk, err = seg.ReadChunk(chunks[j].Ref); err != nil {
				t.Fatal(err)
			}
		}
		out[it.Labels().String()] = rowsOf(t, chunks)
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// checkWindow checks the count, sum, min and max of every series of a
// rollup against Aggregate over the window's raw samples, and its counters
// against Aggregate over all the samples up to the window's end when
// chained is set (the counters continue the previous windows'), or over
// the window's samples alone.
func checkWindow(t testing.TB, got map[string][]row, series []rawSeries, res, w int64, chained bool) {
	t.Helper()
	n := 0
	for _, s := range series {
		want := aggregate(t, inRange(s.samples, w+1, w+Window), res)
		if len(want) == 0 {
			continue
		}
		n++
		rows, ok := got[s.lset.String()]
		if !ok {
			t.Fatalf("%s: missing from rollup of %s", s.lset, fmtWindow(w))
		}
		if chained {
			whole := aggregate(t, inRange(s.samples, math.MinInt64, w+Window), res)
			whole = whole[len(whole)-len(want):]
			for i := range want {
				want[i].Counter = whole[i].Counter
			}
		}
		checkRows(t, rows, want, 1e-9)
	}
	if n != len(got) {
		t.Fatalf("rollup of %s has %d series, want %d", fmtWindow(w), len(got), n)
	}
}

func TestRun(t *testing.T) {
	dir := t.TempDir()
	set := newTestSet(t, dir)
	series := testData()
	writeBlocks(t, set, series, math.MinInt64, day0+2*Window)
	raws := rawIDs(set)
	clock := newClock(day0 + Window + 40*Res1h)
	d, reg := newTestDownsampler(t, set, clock)
	w0, w1 := day0, day0+Window

	// The first day is due 40h after it ends, not before.
	run(t, d, 0)
	clock.set(day0 + Window + 40*Res1h + 1)
	run(t, d, 1)
	run(t, d, 0)
	r0 := rollupOf(t, set, Res5m, w0)
	if m := r0.meta; m.MinTime != w0+1 || m.MaxTime != w0+Window || m.Compaction.Level != 1 || r0.lin.link != "" {
		t.Fatalf("rollup meta %+v", m)
	}
	if v := r0.meta.Version; v != segments.FormatVersionCompressed {
		t.Fatalf("rollup segment format version %d, want %d (compressed, as day segments)", v, segments.FormatVersionCompressed)
	}
	// Its raw sources: the day's twelve blocks and the next day's first,
	// which holds the sample at midnight.
	var wantSrcs []string
	for _, in := range set.Segments() {
		if in.Meta.Resolution == 0 && in.Meta.MinTime <= w0+Window {
			wantSrcs = append(wantSrcs, in.Meta.ID)
		}
	}
	slices.Sort(wantSrcs)
	if len(wantSrcs) != 13 || !slices.Equal(r0.lin.raw, wantSrcs) {
		t.Fatalf("raw sources %v, want %v", r0.lin.raw, wantSrcs)
	}
	checkWindow(t, readRollup(t, set, r0.meta.ID), series, Res5m, w0, false)

	// The second day continues the first day's counters.
	clock.set(day0 + 2*Window + 40*Res1h + 1)
	run(t, d, 1)
	r1 := rollupOf(t, set, Res5m, w1)
	if r1.lin.link != r0.meta.ID {
		t.Fatalf("second day links %q, want %q", r1.lin.link, r0.meta.ID)
	}
	checkWindow(t, readRollup(t, set, r1.meta.ID), series, Res5m, w1, true)

	// 1h rollups are built from the 5m ones, 240h after the window ends.
	clock.set(day0 + Window + 240*Res1h)
	run(t, d, 0)
	clock.set(day0 + Window + 240*Res1h + 1)
	run(t, d, 1)
	h0 := rollupOf(t, set, Res1h, w0)
	if h0.lin.link != r0.meta.ID || len(h0.lin.raw) != 0 {
		t.Fatalf("1h lineage %+v", h0.lin)
	}
	checkWindow(t, readRollup(t, set, h0.meta.ID), series, Res1h, w0, false)
	clock.set(day0 + 2*Window + 240*Res1h + 1)
	run(t, d, 1)
	run(t, d, 0)
	checkWindow(t, readRollup(t, set, rollupOf(t, set, Res1h, w1).meta.ID), series, Res1h, w1, true)

	if got := testutil.ToFloat64(d.written.WithLabelValues("5m")); got != 2 {
		t.Errorf("5m rollups written: metric says %g", got)
	}
	if n, err := testutil.GatherAndCount(reg); err != nil || n == 0 {
		t.Errorf("metrics: %d, %v", n, err)
	}

	// A restart finds everything done, and every raw segment still there.
	if err := set.Close(); err != nil {
		t.Fatal(err)
	}
	set = newTestSet(t, dir)
	if got := rawIDs(set); !slices.Equal(got, raws) {
		t.Fatalf("raw segments after restart:\n%v\nwant\n%v", got, raws)
	}
	if n := numRollups(set); n != 4 {
		t.Fatalf("%d rollups after restart, want 4", n)
	}
	d, _ = newTestDownsampler(t, set, clock)
	run(t, d, 0)
}

// TestRunCompactionAndLateData checks that raw compaction does not make
// rollups look out of date, that late data does (the window and the ones
// after it are rebuilt), and that the rebuilt rollups are right.
func TestRunCompactionAndLateData(t *testing.T) {
	set := newTestSet(t, t.TempDir())
	series := testData()
	writeBlocks(t, set, series, math.MinInt64, day0+2*Window)
	clock := newClock(day0 + 2*Window + 40*Res1h + 1)
	d, _ := newTestDownsampler(t, set, clock)
	run(t, d, 2)
	old0 := rollupOf(t, set, Res5m, day0).meta.ID

	c, err := segments.NewCompactor(slog.New(slog.DiscardHandler), set, segments.CompactOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	before := len(rawIDs(set))
	if _, err := c.Compact(context.Background()); err != nil {
		t.Fatal(err)
	}
	if after := len(rawIDs(set)); after >= before {
		t.Fatalf("compaction left %d raw segments of %d", after, before)
	}
	run(t, d, 0)

	// Late data for the first day: a new sample, and a new value for an
	// existing timestamp (the later segment wins).
	ctr := &series[0]
	i, _ := slices.BinarySearchFunc(ctr.samples, day0+6*Res1h, func(s sample, t int64) int { return int(s.T - t) })
	late := []sample{{T: ctr.samples[i].T - 5*sec, V: ctr.samples[i-1].V + 1}, {T: ctr.samples[i].T, V: ctr.samples[i].V + 2}}
	writeRaw(t, set, []rawSeries{{ctr.lset, late}}, math.MinInt64, math.MaxInt64)
	ctr.samples = append(ctr.samples[:i:i], append(late, ctr.samples[i+1:]...)...)
	run(t, d, 2) // the first day, then the second, which continues it
	r0 := rollupOf(t, set, Res5m, day0)
	if r0.meta.ID == old0 {
		t.Fatal("first day not rebuilt")
	}
	checkWindow(t, readRollup(t, set, r0.meta.ID), series, Res5m, day0, false)
	r1 := rollupOf(t, set, Res5m, day0+Window)
	if r1.lin.link != r0.meta.ID {
		t.Fatalf("second day links %q, want %q", r1.lin.link, r0.meta.ID)
	}
	checkWindow(t, readRollup(t, set, r1.meta.ID), series, Res5m, day0+Window, true)

	if _, err := c.Compact(context.Background()); err != nil {
		t.Fatal(err)
	}
	run(t, d, 0)
}

// TestRunBackfill checks that a window rolled up before the window before
// it had data is rebuilt to continue that window's counters.
func TestRunBackfill(t *testing.T) {
	set := newTestSet(t, t.TempDir())
	series := testData()
	writeBlocks(t, set, series, day0+Window+1, day0+2*Window)
	clock := newClock(day0 + 2*Window + 40*Res1h + 1)
	d, _ := newTestDownsampler(t, set, clock)
	run(t, d, 1)
	if r := rollupOf(t, set, Res5m, day0+Window); r.lin.link != "" {
		t.Fatalf("link %q without a previous rollup", r.lin.link)
	}
	writeBlocks(t, set, series, math.MinInt64, day0+Window)
	run(t, d, 2)
	checkWindow(t, readRollup(t, set, rollupOf(t, set, Res5m, day0+Window).meta.ID), series, Res5m, day0+Window, true)
	run(t, d, 0)
}

// TestRunPartialRawGone checks that a rollup is kept, not rebuilt from what
// is left, when late data arrives after part of its raw data was deleted.
func TestRunPartialRawGone(t *testing.T) {
	set := newTestSet(t, t.TempDir())
	series := testData()
	metas := writeBlocks(t, set, series, math.MinInt64, day0+Window)
	clock := newClock(day0 + Window + 40*Res1h + 1)
	d, _ := newTestDownsampler(t, set, clock)
	run(t, d, 1)
	id := rollupOf(t, set, Res5m, day0).meta.ID
	if err := set.Replace([]string{metas[0].ID}, nil); err != nil {
		t.Fatal(err)
	}
	run(t, d, 0) // retention alone changes nothing
	writeRaw(t, set, []rawSeries{{series[0].lset, []sample{{T: day0 + 5*Res1h + 1, V: 1}}}}, math.MinInt64, math.MaxInt64)
	run(t, d, 0)
	if got := rollupOf(t, set, Res5m, day0).meta.ID; got != id {
		t.Fatalf("rollup replaced by %s", got)
	}
	if got := testutil.ToFloat64(d.staleCount); got != 1 {
		t.Fatalf("stale windows gauge %g, want 1", got)
	}
}

// TestRunLateDataAfterAllDeleted: a raw segment whose data is all deleted
// leaves no hole in the lineage of its day's rollup once compaction has
// applied the delete (it leaves an empty segment that keeps the sources),
// so late data that comes after is rolled up again. It failed when
// compaction removed such a segment with nothing in its place: the day's
// raw data looked partly gone (as after retention) and its rollup was
// kept stale for good.
func TestRunLateDataAfterAllDeleted(t *testing.T) {
	set := newTestSet(t, t.TempDir())
	series := testData()
	metas := writeBlocks(t, set, series, math.MinInt64, day0+Window)
	d, _ := newTestDownsampler(t, set, newClock(day0+Window+40*Res1h+1))
	run(t, d, 1)
	gone := metas[2]
	ms := []*labels.Matcher{labels.MustNewMatcher(labels.MatchRegexp, "__name__", ".+")}
	if _, err := set.AddTombstone(ms, gone.MinTime, gone.MaxTime); err != nil {
		t.Fatal(err)
	}
	for i := range series {
		series[i].samples = slices.DeleteFunc(slices.Clone(series[i].samples), func(s sample) bool { return s.T >= gone.MinTime && s.T <= gone.MaxTime })
	}
	c, err := segments.NewCompactor(slog.New(slog.DiscardHandler), set, segments.CompactOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Compact(context.Background()); err != nil {
		t.Fatal(err)
	}
	if slices.Contains(rawIDs(set), gone.ID) {
		t.Fatal("compaction left the segment whose data was all deleted")
	}
	if _, err := d.Run(context.Background()); err != nil { // (the rollup's tombstone may rebuild it)
		t.Fatal(err)
	}
	id := rollupOf(t, set, Res5m, day0).meta.ID

	ctr := &series[0]
	i, _ := slices.BinarySearchFunc(ctr.samples, day0+8*Res1h, func(s sample, t int64) int { return int(s.T - t) })
	late := sample{T: ctr.samples[i].T - 5*sec, V: ctr.samples[i-1].V + 1}
	writeRaw(t, set, []rawSeries{{ctr.lset, []sample{late}}}, math.MinInt64, math.MaxInt64)
	ctr.samples = slices.Insert(ctr.samples, i, late)
	run(t, d, 1)
	r := rollupOf(t, set, Res5m, day0)
	if r.meta.ID == id {
		t.Fatal("the day was not rolled up again with its late data")
	}
	checkWindow(t, readRollup(t, set, r.meta.ID), series, Res5m, day0, false)
}

// TestRunDeleteNarrowsSegment: a day's last sample (at midnight, the end
// of its window) lies in a segment of the next day; a delete of it
// narrows that segment's time range out of the day, but the day's raw
// data is not gone: the day's rollup, whose tombstone hides data, is
// rebuilt without the sample, and readers may still roll it up again
// (CheckFreshness RawComplete). It failed when only segments overlapping
// the window counted: the rollup was kept, judged partly gone, for good.
func TestRunDeleteNarrowsSegment(t *testing.T) {
	set := newTestSet(t, t.TempDir())
	series := testData()
	writeBlocks(t, set, series, math.MinInt64, day0+Window+Res1h)
	d, _ := newTestDownsampler(t, set, newClock(day0+Window+40*Res1h+1))
	run(t, d, 1)
	ms := []*labels.Matcher{labels.MustNewMatcher(labels.MatchRegexp, "__name__", ".+")}
	if _, err := set.AddTombstone(ms, day0+Window, day0+Window); err != nil {
		t.Fatal(err)
	}
	for i := range series {
		series[i].samples = slices.DeleteFunc(slices.Clone(series[i].samples), func(s sample) bool { return s.T == day0+Window })
	}
	c, err := segments.NewCompactor(slog.New(slog.DiscardHandler), set, segments.CompactOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Compact(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, m := range set.Metas() {
		if m.Resolution == 0 && m.MinTime == day0+Window {
			t.Fatalf("segment %s still starts at the deleted midnight", m.ID)
		}
	}
	r := rollupOf(t, set, Res5m, day0)
	if f, ok := CheckFreshness(r.meta, set.Metas()); !ok || !f.RawComplete {
		t.Fatalf("CheckFreshness %+v, %v: the day's raw data judged partly gone", f, ok)
	}
	run(t, d, 1)
	r = rollupOf(t, set, Res5m, day0)
	checkWindow(t, readRollup(t, set, r.meta.ID), series, Res5m, day0, false)
}

// TestRunSegmentBoundaries checks buckets whose samples lie in several raw
// segments: overlapping segments of one bucket (the later one wins for a
// shared timestamp), and a raw segment that overlaps a window only at its
// last millisecond.
func TestRunSegmentBoundaries(t *testing.T) {
	set := newTestSet(t, t.TempDir())
	lset := lbls("__name__", "x")
	b := day0 + 10*Res5m // a bucket end
	a := []sample{{T: b - 290*sec, V: 5}, {T: b - 200*sec, V: 7}, {T: b - 100*sec, V: 9}, {T: b, V: 2}}
	c := []sample{{T: b - 250*sec, V: 6}, {T: b - 100*sec, V: 1}, {T: b + 10*sec, V: 3}}
	writeRaw(t, set, []rawSeries{{lset, a}}, math.MinInt64, math.MaxInt64)
	writeRaw(t, set, []rawSeries{{lset, c}}, math.MinInt64, math.MaxInt64)
	// Midnight: a sample at exactly the window's end, alone in a segment,
	// belongs to the window that ends there.
	mid := []sample{{T: day0 + Window, V: 4}}
	writeRaw(t, set, []rawSeries{{lset, mid}}, math.MinInt64, math.MaxInt64)
	// A segment whose range (but no sample) touches the window before.
	m, err := segments.WriteSeries(set.Dir(), segments.Meta{MinTime: day0, MaxTime: day0 + block - 1},
		[]segments.SeriesData{{Labels: lset, Chunks: rawChunks([]sample{{T: day0 + 1, V: 1}})}})
	if err != nil {
		t.Fatal(err)
	}
	if err := set.Publish([]segments.Meta{m}); err != nil {
		t.Fatal(err)
	}

	clock := newClock(day0 + Window + 40*Res1h + 1)
	d, _ := newTestDownsampler(t, set, clock)
	run(t, d, 2) // the window before day0 (empty) and day0
	merged := []sample{{T: day0 + 1, V: 1}, a[0], c[0], a[1], c[1], a[3], c[2], mid[0]}
	got := readRollup(t, set, rollupOf(t, set, Res5m, day0).meta.ID)
	checkRows(t, got[lset.String()], aggregate(t, merged, Res5m), 0)
	if len(readRollup(t, set, rollupOf(t, set, Res5m, day0-Window).meta.ID)) != 0 {
		t.Fatal("window before day0 not empty")
	}
	run(t, d, 0)
}

// TestRunTombstones checks that deleted raw samples stay out of rollups.
func TestRunTombstones(t *testing.T) {
	set := newTestSet(t, t.TempDir())
	series := testData()[:1]
	writeBlocks(t, set, series, math.MinInt64, day0+Window)
	ms := []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "__name__", "requests_total")}
	if _, err := set.AddTombstone(ms, day0+Res1h, day0+3*Res1h); err != nil {
		t.Fatal(err)
	}
	var kept []sample
	for _, s := range series[0].samples {
		if s.T < day0+Res1h || s.T > day0+3*Res1h {
			kept = append(kept, s)
		}
	}
	series[0].samples = kept
	d, _ := newTestDownsampler(t, set, newClock(day0+Window+40*Res1h+1))
	run(t, d, 1)
	checkWindow(t, readRollup(t, set, rollupOf(t, set, Res5m, day0).meta.ID), series, Res5m, day0, false)
}

// TestRunIdempotent checks that two runs on copies of a set at the same
// time write the same bytes, and that a rerun changes nothing on disk.
func TestRunIdempotent(t *testing.T) {
	dirA := t.TempDir()
	setA := newTestSet(t, dirA)
	writeBlocks(t, setA, testData(), math.MinInt64, day0+2*Window)
	dirB := t.TempDir()
	if err := os.CopyFS(dirB, os.DirFS(dirA)); err != nil {
		t.Fatal(err)
	}
	setB := newTestSet(t, dirB)
	clock := newClock(day0 + 2*Window + 240*Res1h + 1)
	dA, _ := newTestDownsampler(t, setA, clock)
	dB, _ := newTestDownsampler(t, setB, clock)
	run(t, dA, 4)
	run(t, dB, 4)
	a, b := snapshot(t, dirA), snapshot(t, dirB)
	if !equalMaps(a, b) {
		t.Fatal("the two sets differ after downsampling")
	}
	clock.set(clock.t.UnixMilli() + Window)
	run(t, dA, 0)
	if !equalMaps(a, snapshot(t, dirA)) {
		t.Fatal("a rerun changed files")
	}
}

func snapshot(t testing.TB, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		out[strings.TrimPrefix(p, dir)] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestRunRemovesDuplicates checks that of two rollups of one window (a
// crash between writing a rebuilt rollup and removing the old one) the
// newer is kept.
func TestRunRemovesDuplicates(t *testing.T) {
	set := newTestSet(t, t.TempDir())
	writeBlocks(t, set, testData(), math.MinInt64, day0+Window)
	clock := newClock(day0 + Window + 40*Res1h + 1)
	d, _ := newTestDownsampler(t, set, clock)
	run(t, d, 1)
	old := rollupOf(t, set, Res5m, day0)
	m := old.meta
	m.ID = rollupID(clock.t.Add(time.Millisecond), Res5m, day0, m.Compaction.Sources)
	m, err := segments.WriteSeries(set.Dir(), segments.Meta{ID: m.ID, MinTime: m.MinTime, MaxTime: m.MaxTime,
		Resolution: m.Resolution, Compaction: m.Compaction}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := set.Publish([]segments.Meta{m}); err != nil {
		t.Fatal(err)
	}
	run(t, d, 0)
	if got := rollupOf(t, set, Res5m, day0); got.meta.ID != m.ID {
		t.Fatalf("kept %s, want the newer %s", got.meta.ID, m.ID)
	}
}

func TestOptions(t *testing.T) {
	for _, tc := range []struct {
		o  Options
		ok bool
	}{
		{Options{}, true},
		{DefaultOptions(), true},
		{Options{Raw5mAfter: -1}, false},
		{Options{Raw5mAfter: 300 * 3600e9}, false}, // after the 1h default
		{Options{Raw5mAfter: 3600e9, FiveM1hAfter: 3600e9}, true},
	} {
		if err := tc.o.Validate(); (err == nil) != tc.ok {
			t.Errorf("%+v: %v", tc.o, err)
		}
	}
}

func TestLineage(t *testing.T) {
	l := lineage{raw: []string{"01A", "01B"}, link: "01C"}
	got, ok := parseLineage(l.sources())
	if !ok || !slices.Equal(got.raw, l.raw) || got.link != l.link {
		t.Fatalf("round trip: %+v, %v", got, ok)
	}
	for _, bad := range [][]string{{"01A"}, {"7:01A"}, {"0:"}, {"300000:a", "300000:b"}} {
		if _, ok := parseLineage(bad); ok {
			t.Errorf("%q parsed", bad)
		}
	}
	id := rollupID(newClock(day0).t, Res5m, day0, l.sources())
	if len(id) != 26 || id[0] > '7' || strings.ContainsAny(id, "ILOU") {
		t.Fatalf("id %q is not a ULID", id)
	}
	if id2 := rollupID(newClock(day0).t, Res1h, day0, l.sources()); id2 == id {
		t.Fatal("same id for another resolution")
	}
}
