package segments

import (
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/util/kahansum"
)

// statsSamples returns n samples of one kind of values, for the statistics
// tests: small integers, integers near the exact-sum bound, floats, or
// integers with a NaN, a -0, an infinity or a stale marker among them.
func statsSamples(rng *rand.Rand, t0 int64, n, kind int) []sample {
	smp := make([]sample, n)
	for i := range smp {
		v := float64(rng.IntN(200) - 50)
		switch kind {
		case 1:
			v = float64(MaxExactSum/int64(max(n-1+rng.IntN(2), 1))) * float64(1-2*rng.IntN(2)) // past the bound when divided by n-1
		case 2:
			v += rng.Float64()
		}
		smp[i] = sample{T: t0 + int64(i)*10_000, V: v}
	}
	if kind >= 3 {
		at := rng.IntN(n) * rng.IntN(2) // the first sample half the time
		smp[at].V = []float64{math.NaN(), math.Copysign(0, -1), math.Inf(-1), math.Float64frombits(value.StaleNaN)}[kind-3]
	}
	return smp
}

// wantStats computes a chunk's statistics from its samples, independently
// of computeStats.
func wantStats(smp []sample) ChunkStats {
	s := ChunkStats{Kind: StatsInteger, Count: len(smp), Min: smp[0].V, Max: smp[0].V, First: smp[0].V, Last: smp[len(smp)-1].V, HasFirst: true}
	bound := 0.0
	for _, p := range smp {
		v := p.V
		if value.IsStaleNaN(v) {
			return ChunkStats{}
		}
		if v < s.Min || math.IsNaN(s.Min) {
			s.Min = v
		}
		if v > s.Max || math.IsNaN(s.Max) {
			s.Max = v
		}
		if math.IsNaN(v) || math.IsInf(v, 0) || v != math.Floor(v) || v == 0 && math.Signbit(v) {
			s.Kind = StatsFloat
		}
		bound += math.Abs(v)
		s.Sum += v
	}
	if s.Kind == StatsInteger && max(math.Abs(s.Min), math.Abs(s.Max))*float64(len(smp)) > MaxExactSum {
		s.Kind = StatsFloat
	}
	if s.Kind == StatsFloat {
		s.First, s.Last, s.Sum, s.HasFirst = 0, 0, 0, false
	}
	return s
}

// wantRuns sets the first value and the hour run of each chunk with float
// statistics in ws (format versions 6 and 7), the run computed from the
// samples of the series in
// (RunStart(end), end] for each chunk's end, independently of the
// writer's carried state: none where a sample of the run is not finite,
// the first is -0, the absolute values add up past MaxRunAbs, or a chunk
// without statistics holds part of the run.
func wantRuns(chunks [][]sample, ws []ChunkStats) {
	for k, c := range chunks {
		if ws[k].Kind != StatsFloat {
			continue // an integer chunk's sums are exact without a run
		}
		ws[k].First, ws[k].HasFirst = c[0].V, true
		end := c[len(c)-1].T
		g := RunStart(end)
		var run []float64
		ok := true
		for j, cj := range chunks[:k+1] {
			for _, p := range cj {
				if p.T > g && p.T <= end {
					run = append(run, p.V)
					if ws[j].Kind == StatsNone {
						ok = false
					}
				}
			}
		}
		abs := 0.0
		for _, v := range run {
			abs += math.Abs(v)
			ok = ok && !math.IsNaN(v) && !math.IsInf(v, 0)
		}
		if !ok || abs > MaxRunAbs || run[0] == 0 && math.Signbit(run[0]) {
			continue
		}
		sum, c := run[0], 0.0
		for _, v := range run[1:] {
			sum, c = kahansum.Inc(v, sum, c)
		}
		ws[k].Run, ws[k].RunCount, ws[k].RunSum, ws[k].RunC = true, len(run), sum, c
	}
}

// TestChunkStats writes raw chunks of every kind of values in each format
// and requires the statistics read back to be those of the chunk's
// samples: none in versions 1 and 2, and none for histogram and rollup
// chunks; hour runs and first values of float chunks in versions 6 and 7
// only.
func TestChunkStats(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	var data []SeriesData
	var want, wantWithRuns [][]ChunkStats
	runs := 0
	for i := range 60 {
		var chunks []ChunkMeta
		var ws []ChunkStats
		var smps [][]sample
		t0 := testT0
		addFloats := func(kind, n int) {
			smp := statsSamples(rng, t0, n, kind)
			chunks = append(chunks, ChunkMeta{Chunk: newXOR(t, smp)})
			ws = append(ws, wantStats(smp))
			smps = append(smps, smp)
			t0 = smp[len(smp)-1].T + 10_000
		}
		for range 1 + rng.IntN(4) {
			kind := i % 7
			if kind >= 3 && rng.IntN(2) == 0 {
				kind = 2 // a NaN, -0, infinity or stale marker in some chunks only
			}
			addFloats(kind, 1+rng.IntN(360))
		}
		if i%10 == 9 {
			// A histogram chunk within an hour run, and a few floats after
			// it (in the same run, mostly).
			h := histogramChunks(t, t0, 5, false)
			chunks = append(chunks, h...)
			var hs []sample
			for k := range 5 {
				hs = append(hs, sample{T: t0 + int64(k)*15_000})
			}
			smps = append(smps, hs)
			ws = append(ws, ChunkStats{})
			t0 += 75_000
			addFloats(2, 1+rng.IntN(20))
		}
		wr := slices.Clone(ws)
		wantRuns(smps, wr)
		for _, w := range wr {
			if w.Run {
				runs++
			}
		}
		chunks = append(chunks, ChunkMeta{Kind: KindSum, Chunk: newXOR(t, statsSamples(rng, testT0, 10, 0))})
		ws = append(ws, ChunkStats{})
		wr = append(wr, ChunkStats{})
		data = append(data, SeriesData{Labels: labels.FromStrings("__name__", "m", "i", fmt.Sprintf("%03d", i)), Chunks: chunks})
		want = append(want, ws)
		wantWithRuns = append(wantWithRuns, wr)
	}
	if runs == 0 {
		t.Fatal("no chunk ends a summable run")
	}
	kinds := map[StatsKind]int{}
	for _, f := range formats {
		t.Run(f.name, func(t *testing.T) {
			parent := t.TempDir()
			m, err := WriteSeriesWithOptions(parent, Meta{}, data, f.opts)
			if err != nil {
				t.Fatal(err)
			}
			s := openT(t, filepath.Join(parent, m.ID))
			it, err := s.Select()
			if err != nil {
				t.Fatal(err)
			}
			i := 0
			for it.Next() {
				for j, cm := range it.Chunks() {
					w := want[i][j]
					if !f.opts.NoRuns {
						w = wantWithRuns[i][j]
					}
					if f.opts.NoStats {
						w = ChunkStats{}
					}
					kinds[cm.Stats.Kind]++
					if got := fmt.Sprintf("%+v", cm.Stats); got != fmt.Sprintf("%+v", w) {
						t.Fatalf("series %d chunk %d: stats %s, want %+v", i, j, got, w)
					}
				}
				i++
			}
			if err := it.Err(); err != nil {
				t.Fatal(err)
			}
			if i != len(data) {
				t.Fatalf("%d series read, want %d", i, len(data))
			}
		})
	}
	if kinds[StatsInteger] == 0 || kinds[StatsFloat] == 0 || kinds[StatsNone] == 0 {
		t.Fatalf("statistics of each kind not all exercised: %v", kinds)
	}
}

// BenchmarkChunkStats compares what a query pays to learn the sum and
// count of a 360-sample chunk: decoding its samples, or reading the
// statistics of its meta from a compressed index (page cached).
func BenchmarkChunkStats(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	var data []SeriesData
	for i := range 200 {
		smp := make([]sample, 360)
		for j := range smp {
			smp[j] = sample{T: testT0 + int64(j)*10_000, V: float64(rng.IntN(100))}
		}
		data = append(data, SeriesData{Labels: labels.FromStrings("__name__", "x", "host", fmt.Sprintf("host-%03d", i)), Chunks: []ChunkMeta{{Chunk: newXOR(b, smp)}}})
	}
	parent := b.TempDir()
	m, err := WriteSeriesWithOptions(parent, Meta{}, data, WriterOptions{Compress: true})
	if err != nil {
		b.Fatal(err)
	}
	s, err := OpenWithCache(filepath.Join(parent, m.ID), NewPageCache(64<<20))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	b.Run("decode", func(b *testing.B) {
		b.ReportAllocs()
		var ci chunkenc.Iterator
		var chks []ChunkMeta
		for b.Loop() {
			it, err := s.Select()
			if err != nil {
				b.Fatal(err)
			}
			sum, n := 0.0, 0
			for it.Next() {
				chks = append(chks[:0], it.Chunks()...)
				for _, cm := range chks {
					c, err := s.ReadChunk(cm.Ref)
					if err != nil {
						b.Fatal(err)
					}
					ci = c.Iterator(ci)
					for ci.Next() == chunkenc.ValFloat {
						_, v := ci.At()
						sum += v
						n++
					}
				}
			}
			if n != 200*360 {
				b.Fatal(n)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/200, "ns/chunk")
	})
	b.Run("stats", func(b *testing.B) {
		b.ReportAllocs()
		var chks []ChunkMeta
		for b.Loop() {
			it, err := s.Select()
			if err != nil {
				b.Fatal(err)
			}
			sum, n := 0.0, 0
			for it.Next() {
				chks = append(chks[:0], it.Chunks()...)
				for _, cm := range chks {
					sum += cm.Stats.Sum
					n += cm.Stats.Count
				}
			}
			if n != 200*360 {
				b.Fatal(n)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/200, "ns/chunk")
	})
}

// TestRunStart: RunStart(t) is the greatest multiple of RunGrid below t,
// at and around multiples of RunGrid, on both sides of 0 (a run is
// (g, g+RunGrid], so a sample on the grid belongs to the run before).
func TestRunStart(t *testing.T) {
	const r = RunGrid
	f := func(ts, want int64) {
		t.Helper()
		if got := RunStart(ts); got != want {
			t.Errorf("RunStart(%d) = %d, want %d", ts, got, want)
		}
	}
	f(1, 0)
	f(r, 0)
	f(r+1, r)
	f(2*r, r)
	f(5*r+7, 5*r)
	f(0, -r)
	f(-1, -r)
	f(-r+1, -r)
	f(-r, -2*r)
	f(-r-1, -2*r)
	f(-3*r+1, -3*r)
	f(-3*r, -4*r)
}

// TestStatsBounds: the bounds of the statistics at their edges. A chunk
// whose values' absolute sum is exactly MaxRunAbs ends a summable run, one
// past it does not; an integer chunk whose largest absolute value times its
// count is exactly MaxExactSum, or of one value of exactly MaxExactSum, has
// integer statistics, one past either does not.
func TestStatsBounds(t *testing.T) {
	const e = MaxExactSum
	for _, c := range []struct {
		name    string
		vals    []float64
		kind    StatsKind
		run     bool
		runSum  float64
		integer bool
	}{
		{"run at MaxRunAbs", []float64{0x1p999, 0x1p999}, StatsFloat, true, 0x1p1000, false},
		{"run past MaxRunAbs", []float64{0x1p999, 0x1p999, 0x1p990}, StatsFloat, false, 0, false},
		{"integers at MaxExactSum", []float64{e / 2, -e / 2}, StatsInteger, false, 0, true},
		{"integers past MaxExactSum", []float64{e / 2, e/2 + 1}, StatsFloat, true, e + 1, false},
		{"one integer of MaxExactSum", []float64{e}, StatsInteger, false, 0, true},
		{"one integer past MaxExactSum", []float64{e + 2}, StatsFloat, true, e + 2, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			smp := make([]sample, len(c.vals))
			for i, v := range c.vals {
				smp[i] = sample{T: RunStart(testT0) + 1 + int64(i)*testStep, V: v} // one hour run
			}
			parent := t.TempDir()
			m, err := WriteSeries(parent, Meta{}, []SeriesData{{Labels: labels.FromStrings("__name__", "m"), Chunks: []ChunkMeta{{Chunk: newXOR(t, smp)}}}})
			if err != nil {
				t.Fatal(err)
			}
			s := openT(t, filepath.Join(parent, m.ID))
			it, err := s.Select()
			if err != nil {
				t.Fatal(err)
			}
			if !it.Next() {
				t.Fatalf("no series: %v", it.Err())
			}
			st := it.Chunks()[0].Stats
			if st.Kind != c.kind || st.Count != len(c.vals) || st.Run != c.run || st.Run && (st.RunCount != len(c.vals) || st.RunSum != c.runSum) {
				t.Fatalf("stats %+v, want kind %d, count %d, run %v (sum %g)", st, c.kind, len(c.vals), c.run, c.runSum)
			}
			if c.integer && (st.Sum != func() (s float64) {
				for _, v := range c.vals {
					s += v
				}
				return s
			}() || st.First != c.vals[0] || st.Last != c.vals[len(c.vals)-1]) {
				t.Fatalf("integer stats %+v of %v", st, c.vals)
			}
		})
	}
}

// TestStatsSignedZeros: Min and Max keep the first of equal values, as
// Prometheus' min_over_time and max_over_time do (a later value replaces
// the kept one only when smaller, or greater), which tells 0 from -0.
func TestStatsSignedZeros(t *testing.T) {
	nz := math.Copysign(0, -1)
	for _, c := range []struct {
		name     string
		vals     []float64
		min, max float64
	}{
		{"0 then -0", []float64{0, nz}, 0, 0},
		{"-0 then 0", []float64{nz, 0}, nz, nz},
		{"0 then -0, then greater", []float64{0, nz, 3}, 0, 3},
		{"-0 then 0, then smaller", []float64{nz, 0, -3}, -3, nz},
	} {
		t.Run(c.name, func(t *testing.T) {
			smp := make([]sample, len(c.vals))
			for i, v := range c.vals {
				smp[i] = sample{T: testT0 + int64(i)*testStep, V: v}
			}
			parent := t.TempDir()
			m, err := WriteSeries(parent, Meta{}, []SeriesData{{Labels: labels.FromStrings("__name__", "m"), Chunks: []ChunkMeta{{Chunk: newXOR(t, smp)}}}})
			if err != nil {
				t.Fatal(err)
			}
			s := openT(t, filepath.Join(parent, m.ID))
			it, err := s.Select()
			if err != nil {
				t.Fatal(err)
			}
			if !it.Next() {
				t.Fatalf("no series: %v", it.Err())
			}
			st := it.Chunks()[0].Stats
			if st.Kind != StatsFloat || math.Float64bits(st.Min) != math.Float64bits(c.min) || math.Float64bits(st.Max) != math.Float64bits(c.max) {
				t.Fatalf("stats %+v (min sign %v, max sign %v), want min %v and max %v (signs %v, %v)", st,
					math.Signbit(st.Min), math.Signbit(st.Max), c.min, c.max, math.Signbit(c.min), math.Signbit(c.max))
			}
		})
	}
}

// TestDecodeStatsBounds: the statistics decoder takes what putStats writes
// at every bound and refuses, as bytes no writer produces, integer
// statistics whose values are out of order or past MaxExactSum, counts of
// 0 or past 65535, and hour runs past MaxInt32 samples or with a sum that
// is not finite or past MaxRunAbs. (A chunk meta's bytes are covered by
// the index's CRC32C: only a writer bug or a forged index gets here.)
func TestDecodeStatsBounds(t *testing.T) {
	const e = MaxExactSum
	inf, nan := math.Inf(1), math.NaN()
	f := func(name string, s ChunkStats, wantOK bool) {
		t.Helper()
		var enc encbuf
		enc.putStats(s, true, true)
		d := decbuf{b: enc.b}
		got, ok := d.stats(true, true)
		if ok != wantOK {
			t.Errorf("%s: decoded %+v, ok %v; want ok %v", name, got, ok, wantOK)
			return
		}
		if ok && fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", s) {
			t.Errorf("%s: decoded %+v, want %+v", name, got, s)
		}
	}
	fl := func(count int, runCount int, runSum, runC float64) ChunkStats {
		return ChunkStats{Kind: StatsFloat, Count: count, Min: -1.5, Max: 2.5, First: 1, HasFirst: true,
			Run: runCount > 0, RunCount: runCount, RunSum: runSum, RunC: runC}
	}
	in := func(count int, min, max, first, last float64) ChunkStats {
		return ChunkStats{Kind: StatsInteger, Count: count, Min: min, Max: max, First: first, Last: last, Sum: first + last, HasFirst: true}
	}
	f("float", fl(3, 3, 6, 0.5), true)
	f("float, no run", fl(1, 0, 0, 0), true)
	f("float of 65535 samples", fl(math.MaxUint16, 0, 0, 0), true)
	f("float of 65536 samples", fl(math.MaxUint16+1, 0, 0, 0), false)
	f("float of no sample", fl(0, 0, 0, 0), false)
	f("run of MaxInt32 samples", fl(3, math.MaxInt32, 1, 0), true)
	f("run past MaxInt32 samples", fl(3, math.MaxInt32+1, 1, 0), false)
	f("run sum at MaxRunAbs", fl(3, 2, MaxRunAbs, 0), true)
	f("run sum at -MaxRunAbs", fl(3, 2, -MaxRunAbs, 0), true)
	f("run sum past MaxRunAbs", fl(3, 2, math.Nextafter(MaxRunAbs, inf), 0), false)
	f("run sum infinite", fl(3, 2, inf, 0), false)
	f("run sum NaN", fl(3, 2, nan, 0), false)
	f("run compensation infinite", fl(3, 2, 1, -inf), false)
	f("run compensation NaN", fl(3, 2, 1, nan), false)
	f("integers", in(4, -3, 5, -3, 5), true)
	f("integers, first and last inside", in(4, -3, 5, 0, 1), true)
	f("integers at MaxExactSum", in(2, -e/2, e/2, -e/2, e/2), true)
	f("integers past MaxExactSum", in(2, -e/2, e/2+1, -e/2, e/2+1), false)
	f("integers, min above max", in(2, 5, 4, 5, 4), false)
	f("integers, first below min", in(2, 0, 5, -1, 5), false)
	f("integers, first above max", in(2, 0, 5, 6, 5), false)
	f("integers, last below min", in(2, 0, 5, 0, -1), false)
	f("integers, last above max", in(2, 0, 5, 0, 6), false)
	f("integers of no sample", in(0, 0, 0, 0, 0), false)
	f("no statistics", ChunkStats{}, true)
	f("unknown kind", ChunkStats{Kind: numStatsKinds}, false)
}
