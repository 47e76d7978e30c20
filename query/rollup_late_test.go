package query

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"

	"github.com/strata-tsdb/strata/downsample"
	"github.com/strata-tsdb/strata/ingest"
)

// lateCase is a query compared at one step, how close the rollup answer
// must be to the raw one (as in TestRollupEquivalence), and the resolution
// the step reads.
type lateCase struct {
	q    string
	step time.Duration
	res  Resolution
	tol  float64
}

var lateCases = func() []lateCase {
	var out []lateCase
	for _, c := range []struct {
		q   string
		tol float64
	}{
		{`max_over_time(gauge[1h])`, 0},
		{`min_over_time(gauge[1h])`, 0},
		{`sum_over_time(gauge[1h])`, 0},
		{`count_over_time(gauge[1h])`, 0},
		{`avg_over_time(gauge[1h])`, 1e-12},
		{`rate(requests_total[1h])`, 0.01},
		{`increase(requests_total[2h])`, 0.01},
	} {
		out = append(out, lateCase{c.q, 5 * time.Minute, Resolution5m, c.tol}, lateCase{c.q, time.Hour, Resolution1h, c.tol})
	}
	return out
}()

// answers evaluates every case over [start, end] at the resolution the
// engine chooses, checking it is the rollup the case names.
func (e *rollupEnv) answers(t *testing.T, start, end time.Time) []promql.Matrix {
	t.Helper()
	var out []promql.Matrix
	for _, c := range lateCases {
		out = append(out, e.answer(t, c, start, end))
	}
	return out
}

func (e *rollupEnv) answer(t *testing.T, c lateCase, start, end time.Time) promql.Matrix {
	t.Helper()
	res, err := e.eng.ChooseResolution(c.q, start, end, c.step, ResolutionAuto)
	if err != nil || res != c.res {
		t.Fatalf("%s at step %s: chose %s (%v), want %s", c.q, c.step, res, err, c.res)
	}
	r, err := e.eng.Range(context.Background(), RangeQuery{Query: c.q, Start: start, End: end, Step: c.step})
	if err != nil {
		t.Fatal(err)
	}
	return r.Value.(promql.Matrix)
}

// checkAgainstRaw compares each answer with the same query on raw data,
// within the case's tolerance (which holds for rates of smooth counters);
// without counters when resets or gaps make rates differ more (the window
// a rate reads from rollups is a bucket wider, and needs two buckets).
func (e *rollupEnv) checkAgainstRaw(t *testing.T, what string, got []promql.Matrix, start, end time.Time, counterHosts ...string) {
	t.Helper()
	for i, c := range lateCases {
		roll := got[i]
		if strings.Contains(c.q, "requests_total") {
			c.q = fmt.Sprintf(`%s{host=~"%s"}%s`, c.q[:strings.Index(c.q, "[")], strings.Join(append(counterHosts, "none"), "|"), c.q[strings.Index(c.q, "["):])
			roll = only(roll, counterHosts)
		}
		r, err := e.eng.Range(context.Background(), RangeQuery{Query: c.q, Start: start, End: end, Step: c.step, MaxSourceResolution: ResolutionRaw})
		if err != nil {
			t.Fatal(err)
		}
		raw := r.Value.(promql.Matrix)
		if len(raw) != len(roll) {
			t.Fatalf("%s: %s at step %s: %d raw series, %d from rollups", what, c.q, c.step, len(raw), len(roll))
		}
		for j := range raw {
			if !labels.Equal(raw[j].Metric, roll[j].Metric) || len(raw[j].Floats) != len(roll[j].Floats) {
				t.Fatalf("%s: %s at step %s: raw %s (%d points), rollup %s (%d points)", what, c.q, c.step, raw[j].Metric, len(raw[j].Floats), roll[j].Metric, len(roll[j].Floats))
			}
			for k, p := range raw[j].Floats {
				o := roll[j].Floats[k]
				d := math.Abs(p.F - o.F)
				if p.F != 0 {
					d /= math.Abs(p.F)
				}
				if p.T != o.T || d > c.tol {
					t.Fatalf("%s: %s at step %s, %s at %s: raw %v, rollup %v (off %.3g)", what, c.q, c.step, raw[j].Metric, time.UnixMilli(p.T).UTC(), p.F, o.F, d)
				}
			}
		}
	}
}

// sameAnswers requires two sets of answers to be identical.
func sameAnswers(t *testing.T, what string, a, b []promql.Matrix) {
	t.Helper()
	for i, c := range lateCases {
		if a[i].String() != b[i].String() {
			t.Fatalf("%s: %s at step %s changed:\n%.400s\nvs\n%.400s", what, c.q, c.step, a[i], b[i])
		}
	}
}

// only returns the series of m with one of hosts.
func only(m promql.Matrix, hosts []string) promql.Matrix {
	var out promql.Matrix
	for _, s := range m {
		if slices.Contains(hosts, s.Metric.Get("host")) {
			out = append(out, s)
		}
	}
	return out
}

// within returns the points of m in [start, end].
func within(m promql.Matrix, start, end time.Time) promql.Matrix {
	var out promql.Matrix
	for _, s := range m {
		var fs []promql.FPoint
		for _, p := range s.Floats {
			if p.T >= start.UnixMilli() && p.T <= end.UnixMilli() {
				fs = append(fs, p)
			}
		}
		if len(fs) > 0 {
			out = append(out, promql.Series{Metric: s.Metric, Floats: fs})
		}
	}
	return out
}

// pointAt returns the value of the series with the given host at t.
func pointAt(m promql.Matrix, host string, t time.Time) (float64, bool) {
	for _, s := range m {
		if s.Metric.Get("host") != host {
			continue
		}
		for _, p := range s.Floats {
			if p.T == t.UnixMilli() {
				return p.F, true
			}
		}
	}
	return 0, false
}

// TestRollupLateWrites writes late samples into windows that are rolled
// up (into the head, then flushed), and deletes data inside them, and
// checks that queries reading rollups see each change at once, agree with
// raw data as TestRollupEquivalence requires, and give the same answer
// once the downsampler has rebuilt the windows.
func TestRollupLateWrites(t *testing.T) {
	e := newRollupEnv(t, 4, 4)
	ctx := context.Background()
	start, end := e.end.Add(-3*24*time.Hour), e.end.Add(-time.Hour)
	ds, err := downsample.New(slog.New(slog.DiscardHandler), e.set, downsample.Options{Now: func() time.Time { return e.now }}, nil)
	if err != nil {
		t.Fatal(err)
	}
	rebuild := func(what string) {
		t.Helper()
		n, err := ds.Run(ctx)
		if err != nil || n == 0 {
			t.Fatalf("%s: the downsampler wrote %d rollups (%v), want the windows rebuilt", what, n, err)
		}
	}
	// A counter reset the day before, rolled up: from there on the
	// counter's rolled-up values are above its raw ones, so a day rolled
	// up again must continue the day before's last value, not restart.
	reset := &ingest.Batch{Series: []ingest.Series{{Labels: labels.FromStrings("__name__", "requests_total", "host", "h0"),
		Samples: []ingest.Sample{{T: e.end.Add(-3*24*time.Hour + 5*time.Hour + 31*time.Minute + 7*time.Second).UnixMilli(), V: 5}}}}}
	if err := e.store.Append(reset); err != nil {
		t.Fatal(err)
	}
	if err := e.store.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	rebuild("an earlier reset")
	before := e.answers(t, start, end)

	// A late gauge sample far above the others, a counter that resets,
	// and one that does not, in the middle of a rolled-up day, between
	// bucket ends.
	late := e.end.Add(-2*24*time.Hour + 3*time.Hour + 7*time.Second)
	var around [2]float64 // the samples of the counter of h1 around late
	for i, at := range []time.Time{late.Add(-time.Second), late.Add(3 * time.Second)} {
		r, err := e.eng.InstantAt(ctx, `requests_total{host="h1"}`, at, ResolutionRaw)
		if err != nil || len(r.Value.(promql.Vector)) != 1 {
			t.Fatalf("requests_total at %s: %v %v", at, r.Value, err)
		}
		around[i] = r.Value.(promql.Vector)[0].F
	}
	b := &ingest.Batch{Series: []ingest.Series{
		{Labels: labels.FromStrings("__name__", "gauge", "host", "h0"), Samples: []ingest.Sample{{T: late.UnixMilli(), V: 999999}}},
		{Labels: labels.FromStrings("__name__", "requests_total", "host", "h0"), Samples: []ingest.Sample{{T: late.UnixMilli(), V: 0}}},
		{Labels: labels.FromStrings("__name__", "requests_total", "host", "h1"), Samples: []ingest.Sample{{T: late.UnixMilli(), V: (around[0] + around[1]) / 2}}},
	}}
	if err := e.store.Append(b); err != nil {
		t.Fatal(err)
	}
	inHead := e.answers(t, start, end)
	for i, c := range lateCases {
		if c.q == `max_over_time(gauge[1h])` {
			at := late.Truncate(c.step).Add(c.step)
			if v, ok := pointAt(inHead[i], "h0", at); !ok || v != 999999 {
				t.Fatalf("%s at step %s, %s: %v (present %v), want the late 999999", c.q, c.step, at, v, ok)
			}
		}
	}
	// The counter resets are spikes, where rates from rollups and from raw
	// data differ by more than for a smooth counter (their windows differ
	// by a bucket): for counters the rebuilt rollups are the reference.
	e.checkAgainstRaw(t, "late samples in the head", inHead, start, end, "h1")
	// A range that ends inside the late samples' day reads all of it to
	// judge and roll it up again, and one that starts inside it continues
	// counters from the day before, which it does not read otherwise: both
	// answer the same at their steps.
	partEnd, partStart := late.Add(5*time.Hour).Truncate(time.Hour), late.Truncate(time.Hour).Add(-time.Hour)
	for i, c := range lateCases {
		if part, want := e.answer(t, c, start, partEnd).String(), within(inHead[i], start, partEnd).String(); part != want {
			t.Fatalf("%s at step %s up to %s:\n%.400s\nwant\n%.400s", c.q, c.step, partEnd, part, want)
		}
		if part, want := e.answer(t, c, partStart, end).String(), within(inHead[i], partStart, end).String(); part != want {
			t.Fatalf("%s at step %s from %s:\n%.400s\nwant\n%.400s", c.q, c.step, partStart, part, want)
		}
	}
	for i := range lateCases {
		if inHead[i].String() == before[i].String() && lateCases[i].q != `min_over_time(gauge[1h])` {
			t.Fatalf("%s at step %s: the late samples changed nothing", lateCases[i].q, lateCases[i].step)
		}
	}

	if err := e.store.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	sameAnswers(t, "late samples flushed", inHead, e.answers(t, start, end))
	// 5m rollups rebuilt, 1h rollups not yet: these are built from 5m
	// rollups that are gone.
	only5m, err := downsample.New(slog.New(slog.DiscardHandler), e.set, downsample.Options{Now: func() time.Time { return e.now }, FiveM1hAfter: 1000 * 24 * time.Hour}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := only5m.Run(ctx); n == 0 || err != nil {
		t.Fatalf("5m rollups rebuilt: %d (%v)", n, err)
	}
	sameAnswers(t, "5m rollups rebuilt, 1h not yet", inHead, e.answers(t, start, end))
	rebuild("late samples")
	sameAnswers(t, "windows rebuilt after late samples", inHead, e.answers(t, start, end))

	// Delete a range inside another rolled-up day whose ends are not
	// bucket ends.
	from := e.end.Add(-24*time.Hour - 5*time.Hour - 2*time.Minute - 30*time.Second)
	to := from.Add(97 * time.Minute)
	err = e.store.DeleteSeries(ctx, func() error {
		for _, name := range []string{"gauge", "requests_total"} {
			ms := []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "__name__", name), labels.MustNewMatcher(labels.MatchEqual, "host", "h1")}
			if _, err := e.set.AddTombstone(ms, from.UnixMilli(), to.UnixMilli()); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	deleted := e.answers(t, start, end)
	// The deleted range is a gap, where rates from rollups and from raw
	// data differ likewise.
	e.checkAgainstRaw(t, "deleted", deleted, start, end)
	for i := range lateCases {
		if deleted[i].String() == inHead[i].String() {
			t.Fatalf("%s at step %s: the delete changed nothing", lateCases[i].q, lateCases[i].step)
		}
	}
	rebuild("delete")
	sameAnswers(t, "windows rebuilt after the delete", deleted, e.answers(t, start, end))
	if n, err := ds.Run(ctx); n != 0 || err != nil {
		t.Fatalf("a second run wrote %d rollups (%v), want none", n, err)
	}
}
