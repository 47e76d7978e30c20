package query

import (
	"context"
	"fmt"
	"math/rand"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"

	"github.com/strata-tsdb/strata/buffer"
	"github.com/strata-tsdb/strata/ingest"
)

// loadCounters fills a head with n counter series sampled every 10 s from
// start to end, with a fixed seed.
func loadCounters(tb testing.TB, h *buffer.Head, name string, n int, start, end time.Time) {
	tb.Helper()
	rng := rand.New(rand.NewSource(1))
	b := &ingest.Batch{}
	for i := range n {
		s := ingest.Series{Labels: labels.FromStrings("__name__", name, "host", fmt.Sprintf("host-%d", i/10), "cpu", fmt.Sprint(i%10))}
		v := 0.0
		for ts := start; !ts.After(end); ts = ts.Add(10 * time.Second) {
			v += float64(rng.Intn(100))
			s.Samples = append(s.Samples, ingest.Sample{T: ts.UnixMilli(), V: v})
		}
		b.Series = append(b.Series, s)
	}
	if err := h.Append(b); err != nil {
		tb.Fatal(err)
	}
}

// BenchmarkSumRate1000Series evaluates sum(rate(x[5m])) over 1 h at a 15 s
// step on 1,000 series sampled every 10 s, all in the head.
func BenchmarkSumRate1000Series(b *testing.B) {
	h, err := buffer.NewHead(buffer.Options{}, nil)
	if err != nil {
		b.Fatal(err)
	}
	end := time.Unix(1_700_000_000, 0)
	start := end.Add(-time.Hour)
	loadCounters(b, h, "x", 1000, start.Add(-5*time.Minute), end)
	eng, err := NewEngine(nil, nil, NewQueryable(h, nil), Options{})
	if err != nil {
		b.Fatal(err)
	}
	q := RangeQuery{Query: "sum(rate(x[5m]))", Start: start, End: end, Step: 15 * time.Second}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		res, err := eng.Range(context.Background(), q)
		if err != nil {
			b.Fatal(err)
		}
		if m := res.Value.(promql.Matrix); len(m) != 1 || len(m[0].Floats) != 241 {
			b.Fatalf("unexpected result shape: %d series", len(m))
		}
	}
	b.ReportMetric(float64(1000*(3600+300)/10)*float64(b.N)/b.Elapsed().Seconds(), "samples/s")
}
