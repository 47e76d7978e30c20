package query

import (
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"
)

// coverageSource is a rollupSource with set coverage, for the choice of
// resolution alone (ChooseResolution reads no data).
type coverageSource struct {
	storage.Queryable
	cov    map[Resolution][2]int64 // absent: no rollups of that resolution
	rawMin int64
}

func (c *coverageSource) coverage(res int64) (int64, int64, bool) {
	v, ok := c.cov[Resolution(res)]
	return v[0], v[1], ok
}
func (c *coverageSource) rawMinTime() int64                          { return c.rawMin }
func (c *coverageSource) mayReadHistograms([][]*labels.Matcher) bool { return false }

// TestChooseResolutionEdges: the choice of resolution at the edges of what
// rollups cover and of max_source_resolution, against rollup coverage set
// exactly around the data the query reads ([dmin, dmax], as the engine
// computes it).
func TestChooseResolutionEdges(t *testing.T) {
	const qs = `max_over_time(x[1h])`
	start := time.Date(2026, 1, 10, 0, 0, 0, 0, time.UTC)
	end := start.Add(24 * time.Hour)
	step := time.Hour
	expr, err := parser.NewParser(parser.Options{}).ParseExpr(qs)
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{}.withDefaults()
	dmin, dmax := promql.FindMinMaxTime(&parser.EvalStmt{Expr: expr, Start: start, End: end, Interval: step, LookbackDelta: opts.LookbackDelta})
	h, m5 := int64(Resolution1h), int64(Resolution5m)
	all := func(r int64) [2]int64 { return [2]int64{dmin - r + 1, dmax} }
	for _, c := range []struct {
		name   string
		cov    map[Resolution][2]int64
		rawMin int64
		max    Resolution
		want   Resolution
	}{
		{"both cover: the coarsest", map[Resolution][2]int64{Resolution1h: all(h), Resolution5m: all(m5)}, dmin, ResolutionAuto, Resolution1h},
		{"capped at 5m", map[Resolution][2]int64{Resolution1h: all(h), Resolution5m: all(m5)}, dmin, Resolution5m, Resolution5m},
		{"capped at 1h", map[Resolution][2]int64{Resolution1h: all(h), Resolution5m: all(m5)}, dmin, Resolution1h, Resolution1h},
		{"raw only", map[Resolution][2]int64{Resolution1h: all(h), Resolution5m: all(m5)}, dmin, ResolutionRaw, ResolutionRaw},
		// Coverage from exactly one bucket before the data, and from 1 ms
		// later (a counter window reads one bucket further back).
		{"1h from dmin-1h+1", map[Resolution][2]int64{Resolution1h: all(h)}, dmin, ResolutionAuto, Resolution1h},
		{"1h from dmin-1h+2", map[Resolution][2]int64{Resolution1h: {dmin - h + 2, dmax}}, dmin, ResolutionAuto, ResolutionRaw},
		// Coverage that ends exactly where the data starts still overlaps it.
		{"1h up to dmin", map[Resolution][2]int64{Resolution1h: {dmin - h + 1, dmin}}, dmin, ResolutionAuto, Resolution1h},
		// Raw data gone: the finest rollup overlapping the data answers, one
		// starting exactly at dmax included; one after it does not.
		{"fallback from dmax", map[Resolution][2]int64{Resolution5m: {dmax, dmax + m5}}, dmin + 1, ResolutionAuto, Resolution5m},
		{"fallback after dmax", map[Resolution][2]int64{Resolution5m: {dmax + 1, dmax + m5}}, dmin + 1, ResolutionAuto, ResolutionRaw},
		{"no fallback while raw data is there", map[Resolution][2]int64{Resolution5m: {dmax, dmax + m5}}, dmin, ResolutionAuto, ResolutionRaw},
	} {
		src := &coverageSource{cov: c.cov, rawMin: c.rawMin}
		eng, err := NewEngine(nil, nil, src, Options{})
		if err != nil {
			t.Fatal(err)
		}
		got, err := eng.ChooseResolution(qs, start, end, step, c.max)
		if err != nil || got != c.want {
			t.Errorf("%s: chose %s (%v), want %s", c.name, got, err, c.want)
		}
	}
}

// TestResolutionNames: max_source_resolution's values read and print back
// (an unnamed resolution prints as a duration), and others are refused.
func TestResolutionNames(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Resolution
		name string
	}{
		{"", ResolutionAuto, "auto"}, {"auto", ResolutionAuto, "auto"},
		{"raw", ResolutionRaw, "raw"}, {"0s", ResolutionRaw, "raw"}, {"0", ResolutionRaw, "raw"},
		{"5m", Resolution5m, "5m"}, {"1h", Resolution1h, "1h"},
	} {
		r, err := ParseResolution(c.in)
		if err != nil || r != c.want || r.String() != c.name {
			t.Errorf("ParseResolution(%q) = %d (%s), %v; want %d (%s)", c.in, r, r, err, c.want, c.name)
		}
	}
	if _, err := ParseResolution("2h"); err == nil {
		t.Error("ParseResolution(2h) accepted")
	}
	if s := Resolution(2 * time.Hour.Milliseconds()).String(); s != "2h0m0s" {
		t.Errorf("a 2h resolution prints as %q", s)
	}
}

// TestRollupOffsetsAndLookback: a selector is read from rollups only when
// its offset and @ time land on bucket ends, and a plain selector read from
// rollups looks back at least one bucket.
func TestRollupOffsetsAndLookback(t *testing.T) {
	for _, c := range []struct {
		q  string
		ok bool
	}{
		{`max_over_time(a[1h] offset 2h)`, true},
		{`max_over_time(a[1h] offset 30m)`, false},
		{`max_over_time(a[1h] @ 7200)`, true},
		{`max_over_time(a[1h] @ 1800)`, false},
	} {
		expr, err := copyParser.ParseExpr(c.q)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := rewriteForRollup(expr, int64(Resolution1h)); ok != c.ok {
			t.Errorf("%s from 1h rollups: %v, want %v", c.q, ok, c.ok)
		}
	}
	eng, err := NewEngine(nil, nil, &coverageSource{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, res := range []Resolution{Resolution5m, Resolution1h} {
		_, lookback, err := eng.rollupQuery(`x`, res)
		want := max(eng.Options().LookbackDelta, time.Duration(res)*time.Millisecond)
		if err != nil || lookback != want || lookback < time.Duration(res)*time.Millisecond {
			t.Errorf("plain selector from %s rollups: lookback %s (%v), want %s", res, lookback, err, want)
		}
	}
}
