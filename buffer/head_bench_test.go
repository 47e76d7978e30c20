package buffer

import (
	"fmt"
	"math/rand"
	"runtime"
	"testing"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/strata-tsdb/strata/ingest"
)

// BenchmarkHeadAppend appends batches of 10,000 samples over 2,000 series
// (5 samples each, 10 s apart), as a remote-write request would bring.
func BenchmarkHeadAppend(b *testing.B) {
	const nSeries, perSeries = 2000, 5
	rng := rand.New(rand.NewSource(1))
	lsets := make([]labels.Labels, nSeries)
	for i := range lsets {
		lsets[i] = labels.FromStrings("__name__", "cpu_usage", "host", fmt.Sprintf("host-%d", i/10), "cpu", fmt.Sprint(i%10), "region", "eu-west-1", "dc", "dc1")
	}
	h := newTestHead(b, Options{})
	batch := &ingest.Batch{Series: make([]ingest.Series, nSeries)}
	vals := make([]float64, nSeries)
	b.ReportAllocs()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		base := int64(n) * perSeries * 10_000
		for i := range batch.Series {
			s := &batch.Series[i]
			s.Labels = lsets[i]
			s.Samples = s.Samples[:0]
			for j := range perSeries {
				vals[i] += rng.NormFloat64()
				s.Samples = append(s.Samples, ingest.Sample{T: base + int64(j)*10_000, V: vals[i]})
			}
		}
		if err := h.Append(batch); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	runtime.ReadMemStats(&after)
	samples := float64(b.N) * nSeries * perSeries
	b.ReportMetric(samples/b.Elapsed().Seconds(), "samples/s")
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/samples, "allocs/sample")
}

// BenchmarkHeadLookup finds existing Kubernetes-like series by their
// labels and hash, as a decoder with the head's help does (KnownSeries):
// the series of the hash, its labels compared with the request's.
func BenchmarkHeadLookup(b *testing.B) {
	const n = 10_000
	h := newTestHead(b, Options{})
	lsets, hashes := make([]labels.Labels, n), make([]uint64, n)
	for i := range lsets {
		lsets[i], hashes[i] = k8sLabels(i), k8sLabels(i).Hash()
		if _, _, err := h.getOrCreate(lsets[i], 0); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if s, created, err := h.getOrCreate(lsets[i%n], hashes[i%n]); s == nil || created || err != nil {
			b.Fatal("not found", created, err)
		}
	}
}
