package query

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"

	"github.com/strata-tsdb/strata/cache"
	"github.com/strata-tsdb/strata/downsample"
	"github.com/strata-tsdb/strata/ingest"
)

// TestRollupPiecesEqualWhole holds down what the frontend relies
// on when it answers a range query from pieces (extents) evaluated apart:
// the answer at a step is the same whatever range it is evaluated in. The
// data is the cache differential test's (cmd/strata): sparse series whose
// values jump up and down (a counter read from them resets often), a day
// rolled up into 5m buckets and raw data after it, late samples written
// into the rolled-up day since, some flushed and some in the head. Each
// query is evaluated over one long range and over pieces of it cut at
// random steps, at the resolution chosen for the long range, and the
// pieces must give exactly the long range's points.
//
// It failed (in the cache differential test, every evening from 16:00
// UTC, when the day two days back becomes old enough to roll up) with a
// rate that was lower in a piece: the piece rolled the late day up again
// from raw data without the day before's last counter value, so its
// counter restarted near zero, and PromQL's rate, which extrapolates a
// counter no further back than where it would reach zero, extrapolated
// less.
var seed = int64(7)

func TestRollupPiecesEqualWhole(t *testing.T) {
	store, set, _ := openTestStore(t)
	ctx := context.Background()
	day := time.Date(2026, 1, 31, 0, 0, 0, 0, time.UTC) // the last rolled-up day ends here
	now := day.Add(41 * time.Hour)                      // days ending more than 40 h ago are rolled up
	rng := rand.New(rand.NewSource(7))
	hosts := []string{"h0", "h1", "h2", "h3"}
	seq := 0.0
	batch := func(from, to time.Time, n int) *ingest.Batch {
		b := &ingest.Batch{}
		for _, h := range hosts {
			s := ingest.Series{Labels: labels.FromStrings("__name__", "cd_v", "host", h)}
			seen := map[int64]bool{}
			for range n {
				ts := from.Add(time.Duration(rng.Int63n(int64(to.Sub(from)/time.Second))) * time.Second).UnixMilli()
				if seen[ts] {
					continue
				}
				seen[ts] = true
				seq++
				s.Samples = append(s.Samples, ingest.Sample{T: ts, V: float64(1 + rng.Intn(1500))})
			}
			sortSamples(s.Samples)
			b.Series = append(b.Series, s)
		}
		return b
	}
	// Three days, the last of them raw: a sample every 10 minutes or so.
	for d := day.Add(-2 * 24 * time.Hour); d.Before(day.Add(24 * time.Hour)); d = d.Add(24 * time.Hour) {
		if err := store.Append(batch(d, d.Add(24*time.Hour), 150)); err != nil {
			t.Fatal(err)
		}
		if err := store.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// 5m and 1h rollups of the same days.
	opts := downsample.Options{Now: func() time.Time { return now }, FiveM1hAfter: 40 * time.Hour}
	if n := compactAndRollUp(t, set, opts); n == 0 {
		t.Fatal("no rollups written")
	}
	// Late samples into both rolled-up days and the raw one: flushed, then
	// more in the head.
	for _, flush := range []bool{true, false} {
		for d := day.Add(-2 * 24 * time.Hour); d.Before(day.Add(24 * time.Hour)); d = d.Add(24 * time.Hour) {
			if err := store.Append(batch(d, d.Add(24*time.Hour), 20)); err != nil {
				t.Fatal(err)
			}
		}
		if flush {
			if err := store.Flush(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Deletes over ranges in each day, whose ends are not bucket ends.
	err := store.DeleteSeries(ctx, func() error {
		for i, h := range hosts {
			from := day.Add(time.Duration(i-2)*24*time.Hour + 7*time.Hour + 2*time.Minute + 30*time.Second)
			ms := []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "__name__", "cd_v"), labels.MustNewMatcher(labels.MatchEqual, "host", h)}
			if _, err := set.AddTombstone(ms, from.UnixMilli(), from.Add(97*time.Minute).UnixMilli()); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	_, eng := newTestEngine(t, store, set)

	start, end := day.Add(-29*time.Hour-30*time.Minute), day.Add(16*time.Hour+50*time.Minute)
	cases := []struct {
		q    string
		step time.Duration
		res  Resolution // the rollups it must read (the test's point)
	}{
		{`rate(cd_v[5m])`, 5 * time.Minute, Resolution5m},
		{`increase(cd_v[10m])`, 5 * time.Minute, Resolution5m},
		{`irate(cd_v[5m])`, 5 * time.Minute, Resolution5m},
		{`max_over_time(cd_v[15m])`, 5 * time.Minute, Resolution5m},
		{`sum by (host) (cd_v)`, 5 * time.Minute, Resolution5m},
		{`rate(cd_v[1h])`, time.Hour, Resolution1h},
		{`increase(cd_v[2h])`, time.Hour, Resolution1h},
		{`rate(cd_v[30m])`, 10 * time.Minute, Resolution5m},
	}
	// check evaluates each case over the whole range and over pieces, and
	// returns the whole range's answers.
	check := func(what string) []string {
		t.Helper()
		var out []string
		for _, c := range cases {
			start := start.Truncate(c.step) // (rollups answer steps on their grid)
			res, err := eng.ChooseResolution(c.q, start, end, c.step, ResolutionAuto)
			if err != nil {
				t.Fatal(err)
			}
			if res != c.res {
				t.Fatalf("%s: %s at step %s: chose %s, want %s rollups", what, c.q, c.step, res, c.res)
			}
			eval := func(a, b time.Time) promql.Matrix {
				t.Helper()
				r, err := eng.RangeAt(ctx, RangeQuery{Query: c.q, Start: a, End: b, Step: c.step}, res)
				if err != nil {
					t.Fatal(err)
				}
				return r.Value.(promql.Matrix)
			}
			whole := eval(start, end)
			if len(whole) == 0 {
				t.Fatalf("%s: %s: no answer", what, c.q)
			}
			steps := int(end.Sub(start) / c.step)
			for i := range 40 {
				a := start.Add(time.Duration(rng.Intn(steps+1)) * c.step)
				b := a.Add(time.Duration(rng.Intn(max(1, steps/4))) * c.step)
				if i%4 == 0 {
					b = a.Add(time.Hour - c.step) // an extent of the frontend's split interval
				}
				b = minTime(b, end)
				if got, want := eval(a, b).String(), within(whole, a, b).String(); got != want {
					t.Fatalf("%s: %s at step %s over [%s, %s]:\n%.600s\nwant (from [%s, %s])\n%.600s", what, c.q, c.step,
						a.Format(time.DateTime), b.Format(time.DateTime), got, start.Format(time.DateTime), end.Format(time.DateTime), want)
				}
			}
			out = append(out, whole.String())
		}
		return out
	}
	same := func(what string, a, b []string) {
		t.Helper()
		for i, c := range cases {
			if a[i] != b[i] {
				t.Fatalf("%s: %s at step %s changed:\n%.600s\nwant\n%.600s", what, c.q, c.step, b[i], a[i])
			}
		}
	}
	late := check("late samples and deletes")
	if err := store.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	same("late samples flushed", late, check("late samples flushed"))
	ds, err := downsample.New(slog.New(slog.DiscardHandler), set, opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := ds.Run(ctx); n == 0 || err != nil {
		t.Fatalf("the downsampler rebuilt %d windows (%v), want the late days", n, err)
	}
	same("days rolled up again", late, check("days rolled up again"))
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func sortSamples(s []ingest.Sample) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j].T < s[j-1].T; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// TestRollupCounterContinuesLateDays holds down the other half of what
// the frontend relies on for counters read from rollups: a range that
// starts in a rolled-up day continues the counter of the day before as
// the downsampler will once it has rolled late samples in that day up
// again, not as the day before's stale rollup holds it; and an answer
// cached before the late samples, on a later day, is not served after
// them. A counter's level is small there (it started just before
// midnight), so rate's extrapolation, which stops where the counter would
// reach zero, depends on it; a late sample before midnight raises it. The
// range starting after midnight, the range starting before it, the
// frontend's answers, on the day after the late sample and past the
// rollups, and the rebuilt rollups must all agree.
func TestRollupCounterContinuesLateDays(t *testing.T) {
	store, set, _ := openTestStore(t)
	ctx := context.Background()
	day := time.Date(2026, 1, 31, 0, 0, 0, 0, time.UTC) // the second rolled-up day ends here
	now := day.Add(41 * time.Hour)
	mid := day.Add(-24 * time.Hour) // midnight between the two rolled-up days
	lset := labels.FromStrings("__name__", "late_total", "host", "a")
	write := func(samples ...ingest.Sample) {
		t.Helper()
		if err := store.Append(&ingest.Batch{Series: []ingest.Series{{Labels: lset, Samples: samples}}}); err != nil {
			t.Fatal(err)
		}
	}
	at := func(d time.Duration, v float64) ingest.Sample { return ingest.Sample{T: mid.Add(d).UnixMilli(), V: v} }
	// The series starts 2 minutes before midnight, grows by 1 a minute,
	// then by 2000 in the four minutes before 1:00; the next day, past the
	// rollups, it starts again from 11 (a reset) and jumps by 100000.
	ss := []ingest.Sample{at(-2*time.Minute, 10)}
	for i, d := range []time.Duration{0, 24 * time.Hour} {
		for m := range 71 {
			v := float64(11 + m)
			if m > 55 {
				v += []float64{2000, 100000}[i]
			}
			ss = append(ss, at(d+time.Duration(m)*time.Minute, v))
		}
	}
	write(ss...)
	if err := store.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if n := compactAndRollUp(t, set, downsample.Options{Now: func() time.Time { return now }}); n == 0 {
		t.Fatal("no rollups written")
	}
	_, eng := newTestEngine(t, store, set)
	// Hour-long extents, as the server's --cache.split-interval 1h: the
	// extent from 1:00 reads nothing of the day before.
	copts := cache.DefaultOptions()
	copts.Now = func() time.Time { return now }
	c, err := cache.New(copts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	f, err := NewFrontend(eng, c, FrontendOptions{SplitInterval: time.Hour}, copts.Now, nil, copts.TTL+copts.Grace)
	if err != nil {
		t.Fatal(err)
	}
	const qs = `rate(late_total[5m])`
	// The extent from 1:00 of these reads one day only: the day after the
	// late sample, and the day past the rollups (a range read from rollups
	// starts inside them).
	after := RangeQuery{Query: qs, Start: mid.Add(time.Hour), End: mid.Add(2 * time.Hour), Step: 5 * time.Minute}
	past := RangeQuery{Query: qs, Start: mid.Add(23 * time.Hour), End: mid.Add(26 * time.Hour), Step: 5 * time.Minute}
	var before []*Result
	for _, r := range []RangeQuery{after, past} {
		rangeBoth(t, f, r)
		cached, _ := rangeBoth(t, f, r)
		if cached.Cache != CacheHit || cached.Resolution != Resolution5m {
			t.Fatalf("%s from %s again: %s from %s, want a hit from 5m rollups", qs, r.Start, cached.Cache, cached.Resolution)
		}
		before = append(before, cached)
		// The whole answer stored too (as the API asks for it).
		for range 2 {
			if _, _, err := rangeBody(ctx, f, r); err != nil {
				t.Fatal(err)
			}
		}
		if _, stored, err := rangeBody(ctx, f, r); err != nil || !stored {
			t.Fatalf("%s from %s: not a stored answer (%v)", qs, r.Start, err)
		}
	}

	// A late sample before midnight: 10 becomes a reset, and the counter
	// at 0:55 566 instead of 66, against an increase of about 2000 in the
	// next 5 minutes. The server tells the frontend what it touched.
	late := at(-10*time.Minute, 500)
	write(late)
	if err := f.InvalidateBatch([]Touched{{Name: "late_total", Day: DayOf(late.T)}}); err != nil {
		t.Fatal(err)
	}
	eval := func(a, b time.Duration) promql.Matrix {
		t.Helper()
		r, err := eng.RangeAt(ctx, RangeQuery{Query: qs, Start: mid.Add(a), End: mid.Add(b), Step: 5 * time.Minute}, Resolution5m)
		if err != nil {
			t.Fatal(err)
		}
		return r.Value.(promql.Matrix)
	}
	whole := eval(-30*time.Minute, 27*time.Hour)
	if len(whole) != 1 {
		t.Fatalf("%s: %v", qs, whole)
	}
	for _, r := range [][2]time.Duration{{55 * time.Minute, 115 * time.Minute}, {25 * time.Hour, 26 * time.Hour}} {
		if got, want := eval(r[0], r[1]).String(), within(whole, mid.Add(r[0]), mid.Add(r[1])).String(); got != want {
			t.Fatalf("%s over a range starting %s after midnight:\n%s\nwant\n%s", qs, r[0], got, want)
		}
	}
	for i, r := range []RangeQuery{after, past} {
		stored, _, err := rangeBody(ctx, f, r)
		if err != nil {
			t.Fatal(err)
		}
		cached, fresh := rangeBoth(t, f, r)
		sameAnswer(t, fmt.Sprintf("%s from %s after the late sample", qs, r.Start), cached, fresh)
		sameAnswer(t, fmt.Sprintf("%s from %s after the late sample (the stored answer)", qs, r.Start), stored, fresh)
		if d := equalMatrix(asMatrix(before[i].Value), asMatrix(fresh.Value)); d == "" {
			t.Fatalf("%s from %s: the late sample changed nothing (the test's point)", qs, r.Start)
		}
	}

	ds, err := downsample.New(slog.New(slog.DiscardHandler), set, downsample.Options{Now: func() time.Time { return now }}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if n, err := ds.Run(ctx); n == 0 || err != nil {
		t.Fatalf("the downsampler rebuilt %d windows (%v), want the late day and the next", n, err)
	}
	if got := eval(-30*time.Minute, 27*time.Hour).String(); got != whole.String() {
		t.Fatalf("%s once the days are rolled up again:\n%s\nwant\n%s", qs, got, whole)
	}
}
