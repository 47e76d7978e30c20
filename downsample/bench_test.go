package downsample

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/strata-tsdb/strata/segments"
)

// benchData returns 1,000 series of one day at 10 s (8,640 samples each),
// half counters, half integer gauges (a bounded random walk), as 120-sample
// raw chunks.
func benchData() ([]rawSeries, [][]segments.ChunkMeta, int) {
	rng := rand.New(rand.NewPCG(42, 42))
	const nSeries, step = 1000, 10 * sec
	var (
		series []rawSeries
		chunks [][]segments.ChunkMeta
		n      int
	)
	for i := range nSeries {
		lset := lbls("__name__", []string{"http_requests_total", "cpu_percent"}[i%2], "instance", fmt.Sprintf("host-%03d:9100", i/2))
		var ss []sample
		v := float64(rng.IntN(100))
		for ts := day0 + step; ts <= day0+Window; ts += step {
			if i%2 == 0 {
				v += float64(rng.IntN(20))
			} else {
				v = min(100, max(0, v+float64(rng.IntN(7)-3)))
			}
			ss = append(ss, sample{T: ts, V: v})
		}
		n += len(ss)
		series = append(series, rawSeries{lset, ss})
		chunks = append(chunks, rawChunks(ss))
	}
	return series, chunks, n
}

func chainOf(chunks []segments.ChunkMeta) chunkenc.Iterator {
	cs := make([]chunkenc.Chunk, len(chunks))
	maxTs := make([]int64, len(chunks))
	for i, c := range chunks {
		cs[i], maxTs[i] = c.Chunk, math.MaxInt64
	}
	return segments.NewChainIterator(cs, maxTs)
}

func chunkBytes(chunks []segments.ChunkMeta) int {
	n := 0
	for _, c := range chunks {
		n += len(c.Chunk.Bytes())
	}
	return n
}

// BenchmarkAggregate rolls 1,000 series x 1 day at 10 s up to 5m and the
// result to 1h, from decoded-in-memory XOR chunks, and reports throughput
// and the XOR bytes of the rollups against the raw chunks.
func BenchmarkAggregate(b *testing.B) {
	_, raw, nSamples := benchData()
	rawBytes := 0
	for _, cs := range raw {
		rawBytes += chunkBytes(cs)
	}
	var bytes5m, bytes1h int
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		bytes5m, bytes1h = 0, 0
		agg := newRawAggregator(Res5m)
		for _, cs := range raw {
			fine, err := agg.run(chainOf(cs), nil)
			if err != nil {
				b.Fatal(err)
			}
			coarse, err := AggregateRollup(fine, Res1h)
			if err != nil {
				b.Fatal(err)
			}
			bytes5m += chunkBytes(fine)
			bytes1h += chunkBytes(coarse)
		}
	}
	b.ReportMetric(float64(nSamples)*float64(b.N)/b.Elapsed().Seconds(), "samples/s")
	b.ReportMetric(float64(rawBytes)/float64(nSamples), "raw_bytes/sample")
	b.ReportMetric(float64(bytes5m)/float64(rawBytes), "5m/raw_bytes")
	b.ReportMetric(float64(bytes1h)/float64(rawBytes), "1h/raw_bytes")
}

// BenchmarkRun runs the Downsampler on a set holding 1,000 series x 1 day at
// 10 s in one raw segment, writing the 5m and the 1h rollup, and reports
// throughput and the on-disk size of the rollups against the raw segment.
func BenchmarkRun(b *testing.B) {
	series, _, nSamples := benchData()
	set := newTestSet(b, b.TempDir())
	writeRaw(b, set, series, math.MinInt64, math.MaxInt64)
	clock := newClock(day0 + Window + 240*Res1h + 1)
	d, _ := newTestDownsampler(b, set, clock)
	sizes := func() (raw, r5m, r1h int64) {
		for _, in := range set.Segments() {
			switch in.Meta.Resolution {
			case 0:
				raw += in.Size
			case Res5m:
				r5m += in.Size
			case Res1h:
				r1h += in.Size
			}
		}
		return raw, r5m, r1h
	}
	var raw, r5m, r1h int64
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		n, err := d.Run(context.Background())
		if err != nil || n != 2 {
			b.Fatalf("wrote %d rollups: %v", n, err)
		}
		b.StopTimer()
		raw, r5m, r1h = sizes()
		var ids []string
		for _, in := range set.Segments() {
			if in.Meta.Resolution != 0 {
				ids = append(ids, in.Meta.ID)
			}
		}
		if err := set.Replace(ids, nil); err != nil {
			b.Fatal(err)
		}
		clock.set(clock.t.UnixMilli() + 1)
		b.StartTimer()
	}
	b.ReportMetric(float64(nSamples)*float64(b.N)/b.Elapsed().Seconds(), "samples/s")
	b.ReportMetric(float64(raw), "raw_bytes")
	b.ReportMetric(float64(r5m)/float64(raw), "5m/raw_bytes")
	b.ReportMetric(float64(r1h)/float64(raw), "1h/raw_bytes")
}
