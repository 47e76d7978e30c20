package segments

import (
	"math"
	"math/rand"
	"testing"

	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/strata-tsdb/strata/internal/cputime"
)

// randomXOR returns an XOR chunk of n samples whose timestamp deltas and
// values exercise every branch of the encoding.
func randomXOR(t testing.TB, rng *rand.Rand, n int) *chunkenc.XORChunk {
	c := chunkenc.NewXORChunk()
	app, err := c.Appender()
	if err != nil {
		t.Fatal(err)
	}
	ts := rng.Int63n(1<<42) - 1<<40
	v := 0.0
	for range n {
		switch rng.Intn(8) {
		case 0: // same delta
		case 1:
			ts += int64(rng.Intn(1 << 13))
		case 2:
			ts += int64(rng.Intn(1 << 16))
		case 3:
			ts += int64(rng.Intn(1 << 19))
		case 4:
			ts += rng.Int63n(1 << 40)
		default:
			ts += 10_000
		}
		ts++
		switch rng.Intn(10) {
		case 0: // unchanged
		case 8:
			v = math.Float64frombits(value.StaleNaN)
		case 1:
			v = math.NaN()
		case 2:
			v = math.Inf(-1 + 2*rng.Intn(2))
		case 3:
			v = rng.NormFloat64() * 1e300
		case 4:
			v = float64(rng.Intn(100))
		case 5:
			v = math.Float64frombits(rng.Uint64())
		case 6:
			v += 1
		default:
			v = rng.Float64()
		}
		app.Append(0, ts, v)
	}
	return c
}

func iterXOR(c chunkenc.Chunk, mint, maxt int64) []promql.FPoint {
	var out []promql.FPoint
	it := c.Iterator(nil)
	for it.Next() != chunkenc.ValNone {
		t, v := it.At()
		if t > maxt {
			break
		}
		if t >= mint {
			out = append(out, promql.FPoint{T: t, F: v})
		}
	}
	return out
}

func sameFPoints(a, b []promql.FPoint) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].T != b[i].T || math.Float64bits(a[i].F) != math.Float64bits(b[i].F) {
			return false
		}
	}
	return true
}

// TestAppendXOREqualsIterator: AppendXOR gives, bit for bit, the samples
// chunkenc's iterator gives, whole and cut to a time range.
func TestAppendXOREqualsIterator(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	for i := range 2000 {
		c := randomXOR(t, rng, 1+rng.Intn(300))
		all := iterXOR(c, math.MinInt64, math.MaxInt64)
		mint, maxt := int64(math.MinInt64), int64(math.MaxInt64)
		if i%2 == 1 {
			mint = all[rng.Intn(len(all))].T + int64(rng.Intn(3)) - 1
			maxt = all[rng.Intn(len(all))].T + int64(rng.Intn(3)) - 1
		}
		got, stale, err := AppendXOR[promql.FPoint](nil, c.Bytes(), mint, maxt)
		if err != nil {
			t.Fatalf("chunk %d: %v", i, err)
		}
		want := iterXOR(c, mint, maxt)
		if !sameFPoints(got, want) {
			t.Fatalf("chunk %d [%d, %d]: %d samples %v, iterator's %d %v", i, mint, maxt, len(got), got, len(want), want)
		}
		wantStale := 0
		for _, p := range want {
			if value.IsStaleNaN(p.F) {
				wantStale++
			}
		}
		if stale != wantStale {
			t.Fatalf("chunk %d: %d stale markers counted, %d read", i, stale, wantStale)
		}
	}
}

// TestAppendXORDamaged: a truncated or bit-flipped chunk gives an error or
// samples, never a panic; a truncated one never more samples than it holds.
func TestAppendXORDamaged(t *testing.T) {
	rng := rand.New(rand.NewSource(4))
	for range 500 {
		c := randomXOR(t, rng, 1+rng.Intn(200))
		b := c.Bytes()
		cut := b[:rng.Intn(len(b))]
		if pts, _, err := AppendXOR[promql.FPoint](nil, cut, math.MinInt64, math.MaxInt64); err == nil && len(pts) > c.NumSamples() {
			t.Fatalf("truncated chunk gave %d samples of %d", len(pts), c.NumSamples())
		}
		flipped := append([]byte(nil), b...)
		flipped[rng.Intn(len(flipped))] ^= 1 << rng.Intn(8)
		_, _, _ = AppendXOR[promql.FPoint](nil, flipped, math.MinInt64, math.MaxInt64)
	}
	if _, _, err := AppendXOR[promql.FPoint](nil, nil, 0, 1); err == nil {
		t.Fatal("empty data: no error")
	}
}

func FuzzAppendXOR(f *testing.F) {
	rng := rand.New(rand.NewSource(5))
	for range 8 {
		f.Add(randomXOR(f, rng, 1+rng.Intn(50)).Bytes())
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, _, err := AppendXOR[promql.FPoint](nil, data, math.MinInt64, math.MaxInt64)
		if err != nil || len(data) < 2 {
			return
		}
		// What decodes must be what chunkenc decodes.
		c, cerr := chunkenc.FromData(chunkenc.EncXOR, data)
		if cerr != nil {
			return
		}
		it := c.Iterator(nil)
		var want []promql.FPoint
		for it.Next() != chunkenc.ValNone {
			ts, v := it.At()
			want = append(want, promql.FPoint{T: ts, F: v})
		}
		if it.Err() == nil && !sameFPoints(got, want) {
			t.Fatalf("AppendXOR %v, chunkenc %v", got, want)
		}
	})
}

// BenchmarkDecodeXOR decodes a chunk of 360 samples at 10 s of integer
// percentages, and of a fractional random walk (TSBS' CPU gauges), by
// AppendXOR and by chunkenc's iterator.
func BenchmarkDecodeXOR(b *testing.B) {
	const n = 360
	for _, data := range []string{"int", "frac"} {
		rng := rand.New(rand.NewSource(1))
		c := chunkenc.NewXORChunk()
		app, _ := c.Appender()
		w := 50.0
		for i := range n {
			v := float64(rng.Intn(100))
			if data == "frac" {
				w = min(100, max(0, w+rng.NormFloat64()))
				v = w
			}
			app.Append(0, int64(i)*10_000, v)
		}
		var dst []promql.FPoint
		b.Run(data+"/AppendXOR", func(b *testing.B) {
			b.ReportAllocs()
			cpu0, _ := cputime.Process()
			for b.Loop() {
				dst, _, _ = AppendXOR(dst[:0], c.Bytes(), math.MinInt64, math.MaxInt64)
			}
			cpu1, _ := cputime.Process()
			b.ReportMetric(float64((cpu1-cpu0).Nanoseconds())/float64(b.N*n), "cpu-ns/sample")
		})
		b.Run(data+"/iterator", func(b *testing.B) {
			b.ReportAllocs()
			var it chunkenc.Iterator
			cpu0, _ := cputime.Process()
			for b.Loop() {
				dst = dst[:0]
				it = c.Iterator(it)
				for it.Next() != chunkenc.ValNone {
					t, v := it.At()
					dst = append(dst, promql.FPoint{T: t, F: v})
				}
			}
			cpu1, _ := cputime.Process()
			b.ReportMetric(float64((cpu1-cpu0).Nanoseconds())/float64(b.N*n), "cpu-ns/sample")
		})
	}
}
