package query

import (
	"context"
	"fmt"
	"math/rand"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"

	"github.com/strata-tsdb/strata/ingest"
)

// latencyHistograms returns n series of request latency histograms (schema
// 3, 24 buckets from 31 ms to 2.5 s, cumulative counts growing by about
// 100 requests a step) sampled every 10 s from start to end, fixed seed.
func latencyHistograms(name string, n int, start, end time.Time) *ingest.Batch {
	rng := rand.New(rand.NewSource(1))
	const buckets = 24
	b := &ingest.Batch{}
	for i := range n {
		s := ingest.Series{Labels: labels.FromStrings("__name__", name, "host", fmt.Sprintf("host-%d", i/10), "route", fmt.Sprintf("/r%d", i%10))}
		counts := make([]int64, buckets)
		var count uint64
		var sum float64
		for ts := start; !ts.After(end); ts = ts.Add(10 * time.Second) {
			for k := range counts {
				// Most requests around the middle buckets.
				d := int64(rng.Intn(1 + 2*min(k, buckets-k)))
				counts[k] += d
				count += uint64(d)
				sum += float64(d) * 0.03 * float64(k+1) / 4
			}
			deltas := make([]int64, buckets)
			prev := int64(0)
			for k, c := range counts {
				deltas[k], prev = c-prev, c
			}
			s.Histograms = append(s.Histograms, ingest.HistogramSample{T: ts.UnixMilli(), H: &histogram.Histogram{
				Schema: 3, ZeroThreshold: 1e-128, Count: count, Sum: sum,
				PositiveSpans:   []histogram.Span{{Offset: -40, Length: buckets}},
				PositiveBuckets: deltas,
			}})
		}
		b.Series = append(b.Series, s)
	}
	return b
}

// BenchmarkHistogramQuantile1000Series is the histogram query:
// histogram_quantile(0.99, sum by (le) (rate(x[5m]))) over 1 h at a 15 s
// step on 1,000 native histogram series sampled every 10 s (24 buckets
// each), read from segments. cold bypasses the result cache; warm answers
// from it (the query ends before the freshness window).
func BenchmarkHistogramQuantile1000Series(b *testing.B) {
	end := time.Date(2026, 1, 10, 12, 0, 0, 0, time.UTC)
	e := newDiffEnv(b, end.Add(30*time.Minute))
	start := end.Add(-time.Hour)
	e.write(b, latencyHistograms("x", 1000, start.Add(-5*time.Minute), end))
	if err := e.store.Flush(context.Background()); err != nil {
		b.Fatal(err)
	}
	r := RangeQuery{Query: `histogram_quantile(0.99, sum by (le) (rate(x[5m])))`, Start: start, End: end, Step: 15 * time.Second}
	check := func(b *testing.B, res *Result) {
		if m, ok := res.Value.(promql.Matrix); !ok || len(m) != 1 || len(m[0].Floats) != 241 {
			b.Fatalf("unexpected result: %v", res.Value)
		}
	}
	histograms := float64(1000 * (3600 + 300) / 10)
	b.Run("cold", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			res, err := e.frontend.Range(context.Background(), r, true)
			if err != nil {
				b.Fatal(err)
			}
			check(b, res)
		}
		b.ReportMetric(histograms*float64(b.N)/b.Elapsed().Seconds(), "histograms/s")
	})
	b.Run("warm", func(b *testing.B) {
		if _, err := e.frontend.Range(context.Background(), r, false); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			res, err := e.frontend.Range(context.Background(), r, false)
			if err != nil || res.Cache != CacheHit {
				b.Fatalf("%v %v", err, res.Cache)
			}
			check(b, res)
		}
	})
}
