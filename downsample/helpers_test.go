package downsample

import (
	"math"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/strata-tsdb/strata/segments"
)

type sample = segments.Sample

var staleNaN = math.Float64frombits(value.StaleNaN)

// row is one bucket of a rollup series: its end and the five aggregates.
type row struct {
	T                             int64
	Count, Sum, Min, Max, Counter float64
}

// rowsOf decodes aggregate chunks into rows, checking that the five kinds
// are present with the same timestamps and that the chunk metas are right.
func rowsOf(t testing.TB, chunks []segments.ChunkMeta) []row {
	t.Helper()
	var cols [numAggs][]sample
	prevKind := segments.ChunkKind(0)
	for i, c := range chunks {
		if c.Kind < segments.KindCount || c.Kind > segments.KindCounter {
			t.Fatalf("chunk %d: kind %s", i, c.Kind)
		}
		if c.Kind < prevKind {
			t.Fatalf("chunk %d: kind %s after %s", i, c.Kind, prevKind)
		}
		prevKind = c.Kind
		ss := chunkSamples(t, c.Chunk)
		if len(ss) == 0 || ss[0].T != c.MinTime || ss[len(ss)-1].T != c.MaxTime {
			t.Fatalf("chunk %d (%s): meta %d..%d, samples %v", i, c.Kind, c.MinTime, c.MaxTime, ss)
		}
		k := kindIndex(c.Kind)
		if n := len(cols[k]); n > 0 && cols[k][n-1].T >= ss[0].T {
			t.Fatalf("chunk %d (%s) overlaps the one before", i, c.Kind)
		}
		cols[k] = append(cols[k], ss...)
	}
	out := make([]row, len(cols[0]))
	for k := range cols {
		if len(cols[k]) != len(out) {
			t.Fatalf("%s has %d samples, count has %d", aggKinds[k], len(cols[k]), len(out))
		}
	}
	for i := range out {
		r := row{T: cols[0][i].T, Count: cols[0][i].V, Sum: cols[1][i].V, Min: cols[2][i].V, Max: cols[3][i].V, Counter: cols[4][i].V}
		for k := range cols {
			if cols[k][i].T != r.T {
				t.Fatalf("bucket %d: %s at %d, count at %d", i, aggKinds[k], cols[k][i].T, r.T)
			}
		}
		out[i] = r
	}
	return out
}

func chunkSamples(t testing.TB, c chunkenc.Chunk) []sample {
	t.Helper()
	var out []sample
	it := c.Iterator(nil)
	for it.Next() == chunkenc.ValFloat {
		ts, v := it.At()
		out = append(out, sample{T: ts, V: v})
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func aggregate(t testing.TB, ss []sample, res int64) []row {
	t.Helper()
	chunks, err := Aggregate(segments.NewSliceIterator(ss), res)
	if err != nil {
		t.Fatal(err)
	}
	return rowsOf(t, chunks)
}

// bruteForce computes the rows of ss the slow, obvious way.
func bruteForce(ss []sample, res int64) []row {
	var out []row
	var (
		adj, off, last float64
		have           bool
	)
	for _, s := range ss {
		if value.IsStaleNaN(s.V) {
			continue
		}
		end, _ := BucketEnd(s.T, res)
		if len(out) == 0 || out[len(out)-1].T != end {
			ctr := math.NaN()
			if have {
				ctr = adj
			}
			out = append(out, row{T: end, Min: math.NaN(), Max: math.NaN(), Counter: ctr})
		}
		r := &out[len(out)-1]
		r.Count++
		r.Sum += s.V
		if !math.IsNaN(s.V) {
			if math.IsNaN(r.Min) || s.V < r.Min {
				r.Min = s.V
			}
			if math.IsNaN(r.Max) || s.V > r.Max {
				r.Max = s.V
			}
			switch {
			case !have:
				have, adj = true, s.V
			case s.V < last:
				off += last
				adj = s.V + off
			default:
				adj = s.V + off
			}
			last = s.V
			r.Counter = adj
		}
	}
	return out
}

// sameFloat compares with a relative tolerance; NaN equals NaN.
func sameFloat(a, b, tol float64) bool {
	switch {
	case math.IsNaN(a) || math.IsNaN(b):
		return math.IsNaN(a) && math.IsNaN(b)
	case math.IsInf(a, 0) || math.IsInf(b, 0) || tol == 0:
		return a == b
	}
	return math.Abs(a-b) <= tol*math.Max(1, math.Max(math.Abs(a), math.Abs(b)))
}

// checkRows compares rows; counts, mins and maxes exactly, sums and
// counters within tol.
func checkRows(t testing.TB, got, want []row, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d buckets, want %d:\ngot  %v\nwant %v", len(got), len(want), got, want)
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.T != w.T || !sameFloat(g.Count, w.Count, 0) || !sameFloat(g.Min, w.Min, 0) || !sameFloat(g.Max, w.Max, 0) ||
			!sameFloat(g.Sum, w.Sum, tol) || !sameFloat(g.Counter, w.Counter, tol) {
			t.Fatalf("bucket %d:\ngot  %+v\nwant %+v", i, g, w)
		}
	}
}

// increase is PromQL's increase without extrapolation between two times:
// the reset-aware sum of the deltas between consecutive (non-NaN) samples
// whose later sample is in (from, to].
func increase(ss []sample, from, to int64) float64 {
	var (
		inc, prev float64
		have      bool
	)
	for _, s := range ss {
		if math.IsNaN(s.V) || s.T > to {
			continue
		}
		if have && s.T > from {
			if s.V >= prev {
				inc += s.V - prev
			} else {
				inc += s.V
			}
		}
		prev, have = s.V, true
	}
	return inc
}

// promRate is PromQL's rate (extrapolatedRate for a float counter) over
// the samples in (end-rng, end].
func promRate(ss []sample, end, rng int64) (float64, bool) {
	start := end - rng
	var in []sample
	for _, s := range ss {
		if s.T > start && s.T <= end && !math.IsNaN(s.V) {
			in = append(in, s)
		}
	}
	if len(in) < 2 {
		return 0, false
	}
	first, last := in[0], in[len(in)-1]
	result := last.V - first.V
	for i := 1; i < len(in); i++ {
		if in[i].V < in[i-1].V {
			result += in[i-1].V
		}
	}
	toStart := float64(first.T-start) / 1000
	toEnd := float64(end-last.T) / 1000
	sampled := float64(last.T-first.T) / 1000
	avg := sampled / float64(len(in)-1)
	if toStart >= avg*1.1 {
		toStart = avg / 2
	}
	if result > 0 && first.V >= 0 {
		if toZero := sampled * (first.V / result); toZero < toStart {
			toStart = toZero
		}
	}
	if toEnd >= avg*1.1 {
		toEnd = avg / 2
	}
	return result * (sampled + toStart + toEnd) / sampled / (float64(rng) / 1000), true
}

// counterSamples returns the counter column of rows as samples.
func counterSamples(rows []row) []sample {
	out := make([]sample, len(rows))
	for i, r := range rows {
		out[i] = sample{T: r.T, V: r.Counter}
	}
	return out
}

// Test data lives on 2024-01-01 UTC and the days after it.
var day0 = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()

const (
	sec    = int64(1000)
	minute = 60 * sec
)

// fakeClock is a settable clock.
type fakeClock struct{ t time.Time }

func (c *fakeClock) Now() time.Time   { return c.t }
func (c *fakeClock) set(ms int64)     { c.t = time.UnixMilli(ms) }
func newClock(ms int64) *fakeClock    { return &fakeClock{t: time.UnixMilli(ms)} }
func (c *fakeClock) opts() Options    { return Options{Now: c.Now} }
func (c *fakeClock) String() string   { return c.t.UTC().Format(time.RFC3339Nano) }
func lbls(kv ...string) labels.Labels { return labels.FromStrings(kv...) }
func inRange(ss []sample, mint, maxt int64) []sample {
	i := slices.IndexFunc(ss, func(s sample) bool { return s.T >= mint })
	if i < 0 {
		return nil
	}
	j := slices.IndexFunc(ss, func(s sample) bool { return s.T > maxt })
	if j < 0 {
		j = len(ss)
	}
	return ss[i:j]
}
