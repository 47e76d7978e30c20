package downsample

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/strata-tsdb/strata/segments"
)

func TestAggregate(t *testing.T) {
	const res = 5 * minute
	s := func(sec_ int64, v float64) sample { return sample{T: sec_ * sec, V: v} }
	r := func(endSec int64, count, sum, lo, hi, ctr float64) row {
		return row{T: endSec * sec, Count: count, Sum: sum, Min: lo, Max: hi, Counter: ctr}
	}
	nan, inf := math.NaN(), math.Inf(1)
	for _, tc := range []struct {
		name string
		in   []sample
		want []row
	}{
		{"empty", nil, nil},
		{"single sample", []sample{s(10, 3)}, []row{r(300, 1, 3, 3, 3, 3)}},
		{
			"buckets are closed on the right",
			[]sample{s(300, 1), s(301, 2), s(600, 4), s(601, 8)},
			[]row{r(300, 1, 1, 1, 1, 1), r(600, 2, 6, 2, 4, 4), r(900, 1, 8, 8, 8, 8)},
		},
		{
			"gap leaves no bucket",
			[]sample{s(10, 1), s(20, 2), s(1000, 5)},
			[]row{r(300, 2, 3, 1, 2, 2), r(1200, 1, 5, 5, 5, 5)},
		},
		{
			"counter reset inside a bucket",
			[]sample{s(10, 5), s(20, 7), s(30, 2), s(40, 3)},
			[]row{r(300, 4, 17, 2, 7, 10)},
		},
		{
			"counter reset at a bucket boundary",
			[]sample{s(290, 10), s(300, 12), s(310, 1), s(320, 4)},
			[]row{r(300, 2, 22, 10, 12, 12), r(600, 2, 5, 1, 4, 16)},
		},
		{
			"counter reset to the previous bucket's value is no reset",
			[]sample{s(290, 4), s(310, 4), s(320, 5)},
			[]row{r(300, 1, 4, 4, 4, 4), r(600, 2, 9, 4, 5, 5)},
		},
		{
			"NaN counts, poisons the sum, not min, max or counter",
			[]sample{s(10, 1), s(20, nan), s(30, 3)},
			[]row{r(300, 3, nan, 1, 3, 3)},
		},
		{
			"bucket of NaN repeats the counter",
			[]sample{s(10, 5), s(310, nan)},
			[]row{r(300, 1, 5, 5, 5, 5), r(600, 1, nan, nan, nan, 5)},
		},
		{
			"NaN first has no counter yet",
			[]sample{s(10, nan), s(20, 2)},
			[]row{r(300, 2, nan, 2, 2, 2)},
		},
		{
			"NaN alone",
			[]sample{s(10, nan)},
			[]row{r(300, 1, nan, nan, nan, nan)},
		},
		{
			"stale markers are skipped",
			[]sample{s(10, 1), s(20, staleNaN), s(310, staleNaN), s(620, 2)},
			[]row{r(300, 1, 1, 1, 1, 1), r(900, 1, 2, 2, 2, 2)},
		},
		{
			"negative timestamps",
			[]sample{s(-301, 3), s(-300, 2), s(-10, 1)},
			[]row{r(-300, 2, 5, 2, 3, 5), r(0, 1, 1, 1, 1, 6)},
		},
		{
			"infinities",
			[]sample{s(10, inf), s(20, -inf), s(30, 1)},
			[]row{r(300, 3, nan, -inf, inf, inf)},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkRows(t, aggregate(t, tc.in, res), tc.want, 0)
			checkRows(t, bruteForce(tc.in, res), tc.want, 0)
		})
	}
}

func TestAggregateErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []sample
		res  int64
		want error
	}{
		{"unsorted", []sample{{T: 20, V: 1}, {T: 10, V: 1}}, Res5m, ErrUnsorted},
		{"duplicate", []sample{{T: 20, V: 1}, {T: 20, V: 2}}, Res5m, ErrUnsorted},
		{"duplicate stale", []sample{{T: 20, V: 1}, {T: 20, V: staleNaN}}, Res5m, ErrUnsorted},
		{"bucket end overflows", []sample{{T: math.MaxInt64 - 5, V: 1}}, Res5m, ErrTimeRange},
		{"zero resolution", []sample{{T: 1, V: 1}}, 0, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Aggregate(segments.NewSliceIterator(tc.in), tc.res)
			if err == nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

// genSeries returns n samples about step apart from t0: a counter (with
// resets, some on the first sample of a 5m bucket) when counter is set, else
// a random walk with NaNs; both with stale markers and gaps.
func genSeries(rng *rand.Rand, t0, step int64, n int, counter bool) []sample {
	out := make([]sample, 0, n)
	t, v := t0, float64(rng.IntN(1000))
	for range n {
		t += step + rng.Int64N(step/10+1) - step/20
		if rng.IntN(200) == 0 {
			t += rng.Int64N(30 * minute) // a gap
		}
		switch {
		case counter && (rng.IntN(300) == 0 || rng.IntN(20) == 0 && t%Res5m < step):
			v = float64(rng.IntN(5)) // a reset, some at a bucket's start
		case counter:
			v += float64(rng.IntN(100)) / 4
		default:
			v += rng.NormFloat64()
		}
		x := v
		switch p := rng.IntN(200); {
		case p == 0:
			x = staleNaN
		case p == 1 && !counter:
			x = math.NaN()
		}
		out = append(out, sample{T: t, V: x})
	}
	return out
}

// TestAggregateBruteForce compares every aggregate with a brute-force
// computation on random series, and the 1h rollup of the 5m rollup with the
// 1h rollup of the raw data.
func TestAggregateBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 40 {
		ss := genSeries(rng, day0-rng.Int64N(Window), 10*sec, 2000+rng.IntN(8000), i%2 == 0)
		for _, res := range []int64{Res5m, Res1h, 7 * sec} {
			checkRows(t, aggregate(t, ss, res), bruteForce(ss, res), 1e-9)
		}
		fine, err := Aggregate(segments.NewSliceIterator(ss), Res5m)
		if err != nil {
			t.Fatal(err)
		}
		coarse, err := AggregateRollup(fine, Res1h)
		if err != nil {
			t.Fatal(err)
		}
		checkRows(t, rowsOf(t, coarse), aggregate(t, ss, Res1h), 1e-9)
	}
}

// TestCounterIncrease checks that increase over any bucket-aligned range
// computed from the counter aggregate equals the raw one, and that PromQL's
// rate over the counter of a steady counter stays within 1% of the raw
// rate.
func TestCounterIncrease(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	t.Run("exact increase", func(t *testing.T) {
		for range 20 {
			ss := genSeries(rng, day0, 10*sec, 20000, true)
			for _, res := range []int64{Res5m, Res1h} {
				rows := aggregate(t, ss, res)
				ctr := counterSamples(rows)
				for range 200 {
					a := rows[rng.IntN(len(rows))].T
					b := a + res*(1+rng.Int64N(48))
					got, want := increase(ctr, a, b), increase(ss, a, b)
					if !sameFloat(got, want, 1e-9) {
						t.Fatalf("res %d: increase (%d, %d]: rollup %g, raw %g", res, a, b, got, want)
					}
				}
			}
		}
	})
	t.Run("rate of a steady counter", func(t *testing.T) {
		// 1000/s with 10% noise per scrape, reset every ~5h, 10s scrapes.
		var ss []sample
		v := 5e6
		for ts := day0 + 7*sec; ts < day0+3*Window; ts += 10 * sec {
			if rng.IntN(1800) == 0 {
				v = 0
			}
			v += 10000 * (0.9 + 0.2*rng.Float64())
			ss = append(ss, sample{T: ts, V: v})
		}
		for _, tc := range []struct{ res, rng int64 }{{Res5m, 1 * Res1h}, {Res5m, 6 * Res1h}, {Res1h, 6 * Res1h}, {Res1h, 24 * Res1h}} {
			ctr := counterSamples(aggregate(t, ss, tc.res))
			worst := 0.0
			for end := day0 + tc.rng; end <= day0+3*Window; end += tc.res {
				got, ok1 := promRate(ctr, end, tc.rng)
				want, ok2 := promRate(ss, end, tc.rng)
				if !ok1 || !ok2 {
					t.Fatalf("no rate at %d", end)
				}
				worst = math.Max(worst, math.Abs(got-want)/want)
			}
			if worst > 0.01 {
				t.Errorf("res %d, range %d: rate off by up to %.2f%%", tc.res, tc.rng, 100*worst)
			}
			t.Logf("res %d, range %d: rate off by up to %.3f%%", tc.res, tc.rng, 100*worst)
		}
	})
}

// TestAggregateCarry checks that aggregating a series in two windows, the
// second continuing from the first's last counter value, gives the counters
// of one pass over the whole series.
func TestAggregateCarry(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for i := range 30 {
		ss := genSeries(rng, day0, 10*sec, 3000, true)
		if i%3 == 0 { // a reset right at the window boundary
			split := day0 + 4*Res1h
			for j := range len(ss) - 1 {
				if ss[j].T > split {
					ss[j].V, ss[j+1].V = 0.5, 0.75
					break
				}
			}
		}
		w := day0 + 4*Res1h
		whole := aggregate(t, ss, Res5m)
		first := aggregate(t, inRange(ss, math.MinInt64, w), Res5m)
		if len(first) == 0 {
			continue
		}
		last := first[len(first)-1]
		for _, lookback := range []bool{true, false} {
			lo := w + 1
			if lookback {
				lo = last.T - Res5m + 1
			}
			chunks, err := newRawAggregator(Res5m).run(segments.NewSliceIterator(inRange(ss, lo, math.MaxInt64)), &carry{from: w, t: last.T, adj: last.Counter})
			if err != nil {
				t.Fatal(err)
			}
			second := rowsOf(t, chunks)
			got := append(append([]row(nil), first...), second...)
			if lookback {
				checkRows(t, got, whole, 1e-9)
				continue
			}
			// Without the raw value before the window, the counter
			// continues with no increase across the boundary: it is the
			// one-pass counter less the increase between the last sample
			// at or before w and the first after it.
			rest := whole[len(first):]
			if len(rest) != len(second) {
				t.Fatalf("%d buckets after the boundary, want %d", len(second), len(rest))
			}
			after := inRange(ss, w+1, math.MaxInt64)
			for len(after) > 0 && math.IsNaN(after[0].V) {
				after = after[1:]
			}
			if len(after) == 0 {
				continue
			}
			b := increase(ss, w, after[0].T)
			for j := range second {
				if !sameFloat(second[j].Counter, rest[j].Counter-b, 1e-9) {
					t.Fatalf("bucket %d: counter %g, want %g", second[j].T, second[j].Counter, rest[j].Counter-b)
				}
			}
		}
	}
}

func TestAggregateRollupErrors(t *testing.T) {
	ss := []sample{{T: 10 * sec, V: 1}, {T: 400 * sec, V: 2}, {T: 700 * sec, V: 3}}
	chunks, err := Aggregate(segments.NewSliceIterator(ss), Res5m)
	if err != nil {
		t.Fatal(err)
	}
	short := chunkenc.NewXORChunk()
	app, _ := short.Appender()
	app.Append(0, 300*sec, 1)
	for _, tc := range []struct {
		name   string
		mutate func([]segments.ChunkMeta) []segments.ChunkMeta
		want   error
	}{
		{"missing kind", func(c []segments.ChunkMeta) []segments.ChunkMeta { return c[1:] }, ErrMisaligned},
		{"raw chunk", func(c []segments.ChunkMeta) []segments.ChunkMeta {
			c[0].Kind = segments.KindRaw
			return c
		}, ErrMisaligned},
		{"short kind", func(c []segments.ChunkMeta) []segments.ChunkMeta {
			c[2].Chunk = short
			return c
		}, ErrMisaligned},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := append([]segments.ChunkMeta(nil), chunks...)
			if _, err := AggregateRollup(tc.mutate(in), Res1h); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestBucketEnd(t *testing.T) {
	for _, tc := range []struct{ t, res, want int64 }{
		{0, 10, 0}, {1, 10, 10}, {10, 10, 10}, {11, 10, 20}, {-1, 10, 0}, {-10, 10, -10}, {-11, 10, -10},
		{math.MinInt64, 10, math.MinInt64 + 8}, {math.MaxInt64 - 7, 10, math.MaxInt64 - 7},
	} {
		if got, ok := BucketEnd(tc.t, tc.res); !ok || got != tc.want {
			t.Errorf("BucketEnd(%d, %d) = %d, %v; want %d", tc.t, tc.res, got, ok, tc.want)
		}
	}
	if _, ok := BucketEnd(math.MaxInt64-6, 10); ok {
		t.Error("overflow not reported")
	}
}
