package query

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"

	"github.com/strata-tsdb/strata/downsample"
	"github.com/strata-tsdb/strata/ingest"
)

// newEdgeEnv writes 3 days of 10 s samples and rolls the first two up at
// 5m, the last day left in the head: the 5m rollups end at covered, raw
// data goes on after it. The series are
//   - gauge{host="a"} on the 10 s grid, integer values;
//   - gauge{host="b"} the same 1 ms after the grid: a selector's first
//     millisecond (a bucket end + 1 ms) holds one of its samples;
//   - requests_total{host="a"}, a counter 3 s after the grid: no sample on
//     a bucket end, so a counter continued from a bucket end needs the
//     samples before it.
//
// 5m rollup chunks are cut every 12 h (downsample's chunkBuckets), so a
// chunk starts at start+12h+5m and the one before it ends at start+12h.
func newEdgeEnv(t *testing.T) (e *rollupEnv, start, covered time.Time) {
	t.Helper()
	store, set, _ := openTestStore(t)
	e = &rollupEnv{store: store, set: set}
	e.end = time.Date(2026, 1, 31, 0, 0, 0, 0, time.UTC)
	start = e.end.Add(-3 * 24 * time.Hour)
	covered = start.Add(2 * 24 * time.Hour)
	ctr, n := 1e4, 0
	for day := start; day.Before(e.end); day = day.Add(24 * time.Hour) {
		a := ingest.Series{Labels: labels.FromStrings("__name__", "gauge", "host", "a")}
		b := ingest.Series{Labels: labels.FromStrings("__name__", "gauge", "host", "b")}
		c := ingest.Series{Labels: labels.FromStrings("__name__", "requests_total", "host", "a")}
		for ts := day; ts.Before(day.Add(24 * time.Hour)); ts = ts.Add(10 * time.Second) {
			n++
			ctr += float64(1 + n%3)
			a.Samples = append(a.Samples, ingest.Sample{T: ts.UnixMilli(), V: float64(n * 7 % 100)})
			b.Samples = append(b.Samples, ingest.Sample{T: ts.UnixMilli() + 1, V: float64(n * 13 % 100)})
			c.Samples = append(c.Samples, ingest.Sample{T: ts.UnixMilli() + 3000, V: ctr})
		}
		if err := store.Append(&ingest.Batch{Series: []ingest.Series{a, b, c}}); err != nil {
			t.Fatal(err)
		}
		if day.Add(24 * time.Hour).Before(e.end) {
			if err := store.Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
	}
	logger := slog.New(slog.DiscardHandler)
	ds, err := downsample.New(logger, set, edgeOptions(covered), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ds.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.q = NewQueryable(store.Head(), set)
	if e.eng, err = NewEngine(logger, nil, e.q, Options{}); err != nil {
		t.Fatal(err)
	}
	if from, to, ok := e.q.coverage(int64(Resolution5m)); !ok || to != covered.UnixMilli() || from > start.Add(time.Hour).UnixMilli() {
		t.Fatalf("5m rollups cover %v..%v (%v), want %s..%s", time.UnixMilli(from).UTC(), time.UnixMilli(to).UTC(), ok, start, covered)
	}
	return e, start, covered
}

// edgeOptions are the downsampler's options of newEdgeEnv: windows are due
// once their end is older than Raw5mAfter, exactly the first two days.
func edgeOptions(covered time.Time) downsample.Options {
	opts := downsample.Options{Raw5mAfter: 40 * time.Hour, FiveM1hAfter: 240 * time.Hour}
	opts.Now = func() time.Time { return covered.Add(opts.Raw5mAfter + time.Hour) }
	return opts
}

// points evaluates qs over [start, end] at step and returns each series'
// points by time, checking the engine read resolution want.
func (e *rollupEnv) points(t *testing.T, qs string, start, end time.Time, step time.Duration, want Resolution) map[string]map[int64]float64 {
	t.Helper()
	r := RangeQuery{Query: qs, Start: start, End: end, Step: step}
	if want == ResolutionRaw {
		r.MaxSourceResolution = ResolutionRaw
	}
	if res, err := e.eng.ChooseResolution(qs, start, end, step, r.MaxSourceResolution); err != nil || res != want {
		t.Fatalf("%s over %s..%s: chose %s (%v), want %s", qs, start, end, res, err, want)
	}
	v, err := e.eng.Range(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[int64]float64{}
	for _, s := range v.Value.(promql.Matrix) {
		m := map[int64]float64{}
		for _, p := range s.Floats {
			m[p.T] = p.F
		}
		out[s.Metric.String()] = m
	}
	return out
}

// samePoints checks that every point of got is in want with the same
// value (within tol, relative), and that got has at least one point.
func samePoints(t *testing.T, what string, got, want map[string]map[int64]float64, tol float64) {
	t.Helper()
	n := 0
	for s, ps := range got {
		for ts, v := range ps {
			w, ok := want[s][ts]
			d := math.Abs(v - w)
			if w != 0 {
				d /= math.Abs(w)
			}
			if !ok || d > tol {
				t.Errorf("%s: %s at %s: %v, want %v (present %v)", what, s, time.UnixMilli(ts).UTC(), v, w, ok)
				return
			}
			n++
		}
	}
	if n == 0 {
		t.Fatalf("%s: no point", what)
	}
}

// TestRollupEdgesEqualRaw reads ranges whose selectors begin or end on the
// edges of what rollups hold (a rollup chunk's first bucket, the last
// rolled-up bucket, raw data after it) at step 5m: min, max, sum and count
// over windows of whole buckets must equal the raw answer exactly, and avg
// to float rounding. At these edges a rollup read could drop the bucket
// that starts a chunk, count a raw sample that a bucket already counts, or
// read raw samples past the rollups as values where count wants ones.
func TestRollupEdgesEqualRaw(t *testing.T) {
	e, start, covered := newEdgeEnv(t)
	step := 5 * time.Minute
	for _, c := range []struct {
		what     string
		from, to time.Time
	}{
		// The last step's window ends on the first bucket of a chunk.
		{"ends on a chunk's first bucket", start.Add(10 * time.Hour), start.Add(12*time.Hour + 5*time.Minute)},
		{"ends on the next chunk's first bucket", start.Add(34 * time.Hour), start.Add(36*time.Hour + 5*time.Minute)},
		// Selectors begin inside the last rolled-up bucket, 1 ms after its
		// start, where gauge{host="b"} has a sample the bucket holds.
		{"begins in the last bucket", covered.Add(55 * time.Minute), covered.Add(3 * time.Hour)},
		{"across the end of the rollups", covered.Add(-2 * time.Hour), covered.Add(2 * time.Hour)},
	} {
		for _, q := range []struct {
			qs  string
			tol float64
		}{
			{`count_over_time(gauge[1h])`, 0},
			{`sum_over_time(gauge[1h])`, 0},
			{`min_over_time(gauge[1h])`, 0},
			{`max_over_time(gauge[1h])`, 0},
			{`avg_over_time(gauge[1h])`, 1e-12},
		} {
			roll := e.points(t, q.qs, c.from, c.to, step, Resolution5m)
			raw := e.points(t, q.qs, c.from, c.to, step, ResolutionRaw)
			samePoints(t, fmt.Sprintf("%s, %s", c.what, q.qs), roll, raw, q.tol)
			samePoints(t, fmt.Sprintf("%s, %s (raw points)", c.what, q.qs), raw, roll, q.tol)
		}
	}
}

// TestRollupAnswerIndependentOfRange checks that a point answered from
// rollups does not depend on the range of the query that asked for it:
// each query, evaluated over a range that starts or ends on an edge of
// the rollups, must give at every step the value a query about 6 h wider on
// both sides gives there. The frontend relies on it: it splits a range query by
// day and caches the parts, so one point is answered by queries of many
// ranges. Both with raw data beside the rollups (aligned steps) and once
// raw data before the end of the rollups is past retention, where the
// engine reads rollups whatever the step's alignment.
func TestRollupAnswerIndependentOfRange(t *testing.T) {
	e, start, covered := newEdgeEnv(t)
	ranged := []string{
		`count_over_time(gauge[1h])`, `sum_over_time(gauge[1h])`, `max_over_time(gauge[1h])`,
		`avg_over_time(gauge[1h])`, `rate(requests_total[1h])`, `increase(requests_total[2h])`,
	}
	all := append([]string{`gauge`}, ranged...)
	check := func(t *testing.T, from, to time.Time, step time.Duration, qss []string) {
		t.Helper()
		for _, qs := range qss {
			got := e.points(t, qs, from, to, step, Resolution5m)
			wider := step * (6 * time.Hour / step) // about 6 h, on the same steps
			want := e.points(t, qs, from.Add(-wider), to.Add(wider), step, Resolution5m)
			samePoints(t, fmt.Sprintf("%s over %s..%s", qs, from.UTC(), to.UTC()), got, want, 0)
		}
	}
	t.Run("aligned", func(t *testing.T) {
		check(t, start.Add(10*time.Hour), start.Add(12*time.Hour+5*time.Minute), 5*time.Minute, all)
		// A plain selector there reads only raw data (its lookback starts
		// after the rollups).
		check(t, covered.Add(55*time.Minute), covered.Add(3*time.Hour), 5*time.Minute, ranged)
		check(t, covered.Add(-time.Hour), covered.Add(time.Hour), 15*time.Minute, all)
	})
	t.Run("raw past retention", func(t *testing.T) {
		// Raw data up to and including covered is gone: queries whose data
		// starts before it read rollups at any step.
		e.q.MinTime = func(res int64) int64 {
			if res == 0 {
				return covered.UnixMilli() + 1
			}
			return math.MinInt64
		}
		t.Cleanup(func() { e.q.MinTime = nil })
		odd := time.Hour - time.Millisecond
		// Selectors [1h] begin on the last bucket of a chunk (start+12h),
		// and on the last rolled-up bucket (covered): of the rollups, that
		// one bucket is read, the rest is raw data.
		check(t, start.Add(12*time.Hour+odd), start.Add(14*time.Hour+odd), 7*time.Minute, ranged)
		check(t, covered.Add(odd), covered.Add(2*time.Hour+odd), 7*time.Minute, ranged)
	})
}

// TestRollupLateAtWindowEdges writes late samples into rolled-up days at
// the edges of their windows (start, start+24h]: one exactly at a window's
// end (midnight, which the head flushes into the next day's segment), one
// 1 ms after a window's start, and a counter reset inside a day. Each must
// be seen at rollup resolution at once, while in the head and once
// flushed, also when raw retention ends exactly at the first window's
// start: min, max, sum and count over whole buckets equal the raw answer
// exactly; rates over the second day equal those the rollups give once
// the downsampler has rebuilt the windows, also when a late counter reset
// is the only change (the day's counter then continues the first day's
// rollup from raw samples the range does not read otherwise); and deletes
// whose ranges start exactly at a window's end or end 1 ms after its start.
func TestRollupLateAtWindowEdges(t *testing.T) {
	e, start, covered := newEdgeEnv(t)
	ctx := context.Background()
	day := start.Add(24 * time.Hour) // the end of the first rolled-up window
	late := func(host string, ts ...time.Time) ingest.Series {
		s := ingest.Series{Labels: labels.FromStrings("__name__", "gauge", "host", host)}
		for i, t := range ts {
			s.Samples = append(s.Samples, ingest.Sample{T: t.UnixMilli(), V: float64(1000 + i)})
		}
		return s
	}
	b := &ingest.Batch{Series: []ingest.Series{
		// A chunk of the next day's segment that starts at the window's end.
		late("end", day, day.Add(10*time.Minute)),
		// A chunk of the next day's segment that ends 1 ms after its window's start.
		late("start", day.Add(-10*time.Minute+time.Millisecond), day.Add(time.Millisecond)),
		// An existing series: the sample at midnight written again.
		{Labels: labels.FromStrings("__name__", "gauge", "host", "a"), Samples: []ingest.Sample{{T: day.UnixMilli(), V: 5000}}},
		// A counter reset in the middle of the second day.
		{Labels: labels.FromStrings("__name__", "requests_total", "host", "a"), Samples: []ingest.Sample{{T: day.Add(5*time.Hour + 7*time.Second).UnixMilli(), V: 3}}},
	}}
	if err := e.store.Append(b); err != nil {
		t.Fatal(err)
	}
	// Rates over a range inside the second day: its counter continues the
	// first day's rollup, whose raw data the range does not read otherwise.
	rates := []string{`rate(requests_total[1h])`, `increase(requests_total[2h])`}
	rateAnswers := func() []map[string]map[int64]float64 {
		var out []map[string]map[int64]float64
		for _, qs := range rates {
			out = append(out, e.points(t, qs, day.Add(5*time.Minute), day.Add(9*time.Hour), 5*time.Minute, Resolution5m))
		}
		return out
	}
	check := func(what string) {
		t.Helper()
		for _, qs := range []string{`count_over_time(gauge[1h])`, `sum_over_time(gauge[1h])`, `max_over_time(gauge[1h])`, `min_over_time(gauge[1h])`} {
			from, to := day.Add(-2*time.Hour), day.Add(2*time.Hour)
			roll := e.points(t, qs, from, to, 5*time.Minute, Resolution5m)
			raw := e.points(t, qs, from, to, 5*time.Minute, ResolutionRaw)
			samePoints(t, what+", "+qs, roll, raw, 0)
			samePoints(t, what+", "+qs+" (raw points)", raw, roll, 0)
		}
	}
	check("late samples in the head")
	inHead := rateAnswers()
	if err := e.store.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	check("late samples flushed")
	e.q.MinTime = func(res int64) int64 {
		if res == 0 {
			return start.UnixMilli() + 1
		}
		return math.MinInt64
	}
	check("raw data retained from the first window's start on")
	flushed := rateAnswers()
	ds, err := downsample.New(slog.New(slog.DiscardHandler), e.set, edgeOptions(covered), nil)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := ds.Run(ctx); n == 0 || err != nil {
		t.Fatalf("the downsampler rebuilt %d windows (%v), want the late ones", n, err)
	}
	compare := func(what string) {
		t.Helper()
		rebuilt := rateAnswers()
		for i, qs := range rates {
			samePoints(t, what+" in the head, "+qs, inHead[i], rebuilt[i], 0)
			samePoints(t, what+" flushed, "+qs, flushed[i], rebuilt[i], 0)
		}
	}
	compare("late samples")
	check("windows rebuilt")

	// Another reset, the only late sample: the second day is the first
	// window out of date, whose counter continues the first day's rollup
	// from the raw samples of that rollup's last bucket.
	b = &ingest.Batch{Series: []ingest.Series{{Labels: labels.FromStrings("__name__", "requests_total", "host", "a"),
		Samples: []ingest.Sample{{T: day.Add(7*time.Hour + 3*time.Second).UnixMilli(), V: 1}}}}}
	if err := e.store.Append(b); err != nil {
		t.Fatal(err)
	}
	inHead = rateAnswers()
	if err := e.store.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	flushed = rateAnswers()
	if n, err := ds.Run(ctx); n == 0 || err != nil {
		t.Fatalf("the downsampler rebuilt %d windows (%v), want the late one", n, err)
	}
	compare("a late reset alone")

	// Deletes whose ranges touch a window at one end only: one from
	// exactly the first window's end (midnight) on, one up to exactly 1 ms
	// after the second window's start.
	err = e.store.DeleteSeries(ctx, func() error {
		for _, d := range []struct {
			host     string
			from, to time.Time
		}{{"a", day, day.Add(30 * time.Minute)}, {"b", day.Add(-20 * time.Minute), day.Add(time.Millisecond)}} {
			ms := []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "__name__", "gauge"), labels.MustNewMatcher(labels.MatchEqual, "host", d.host)}
			if _, err := e.set.AddTombstone(ms, d.from.UnixMilli(), d.to.UnixMilli()); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	check("deletes at a window's ends")
}
