package buffer

import (
	"fmt"
	"log/slog"
	"math/rand"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/strata-tsdb/strata/ingest"
	"github.com/strata-tsdb/strata/internal/cputime"
	"github.com/strata-tsdb/strata/segments"
)

// fillStore appends total samples over nSeries series (10 s apart, random
// walks, fixed seed) in batches of batchSize samples through the WAL.
func fillStore(tb testing.TB, s *Store, nSeries, total, batchSize int) {
	tb.Helper()
	rng := rand.New(rand.NewSource(1))
	lsets := make([]labels.Labels, nSeries)
	vals := make([]float64, nSeries)
	for i := range lsets {
		lsets[i] = labels.FromStrings("__name__", "cpu", "host", fmt.Sprintf("host-%d", i/10), "cpu", fmt.Sprint(i%10), "dc", "eu1")
	}
	perSeries := max(1, batchSize/nSeries)
	b := &ingest.Batch{Series: make([]ingest.Series, nSeries)}
	ts := int64(1_700_000_000_000)
	for done := 0; done < total; done += nSeries * perSeries {
		for i := range b.Series {
			sr := &b.Series[i]
			sr.Labels = lsets[i]
			sr.Samples = sr.Samples[:0]
			for j := range perSeries {
				vals[i] += rng.NormFloat64()
				sr.Samples = append(sr.Samples, ingest.Sample{T: ts + int64(j)*10_000, V: vals[i]})
			}
		}
		ts += int64(perSeries) * 10_000
		if err := s.Append(b); err != nil {
			tb.Fatal(err)
		}
	}
}

type nopSink struct{ dir string }

func (n nopSink) Dir() string                   { return n.dir }
func (n nopSink) Publish([]segments.Meta) error { return nil }
func (n nopSink) NextSeq() (uint64, error)      { return 1, nil }

// BenchmarkStoreReplay measures start-up on a write-ahead log of 10 M
// samples over 2,000 series: replay into a fresh head.
func BenchmarkStoreReplay(b *testing.B) {
	const total = 10_000_000
	dir := b.TempDir()
	logger := slog.New(slog.DiscardHandler)
	s, err := OpenStore(logger, dir, StoreOptions{}, nopSink{filepath.Join(dir, "segments")}, nil)
	if err != nil {
		b.Fatal(err)
	}
	fillStore(b, s, 2000, total, 10_000)
	if err := s.wal.Close(); err != nil { // as after a crash: nothing flushed
		b.Fatal(err)
	}
	b.ResetTimer()
	cpu0, cpuOK := cputime.Process()
	for b.Loop() {
		s, err := OpenStore(logger, dir, StoreOptions{}, nopSink{filepath.Join(dir, "segments")}, nil)
		if err != nil {
			b.Fatal(err)
		}
		if got := s.head.NumSamples(); got < total {
			b.Fatalf("replayed %d samples, want %d", got, total)
		}
		b.StopTimer()
		if err := s.wal.Close(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(total)*float64(b.N)/b.Elapsed().Seconds(), "samples/s")
	if cpu1, ok := cputime.Process(); ok && cpuOK {
		// Process CPU, GC included: what a loaded machine does not inflate.
		b.ReportMetric(float64((cpu1-cpu0).Nanoseconds())/float64(b.N)/total, "cpu-ns/sample")
	}
}

// BenchmarkStoreAppend measures appends through the WAL with fsync on
// (group commit), from 4 concurrent writers of batches of 2,000 series:
// 5 samples each (10,000-sample batches), and 1 sample each, the shape
// Prometheus' remote write sends (max_samples_per_send 2,000).
func BenchmarkStoreAppend(b *testing.B) {
	for _, per := range []int{5, 1} {
		b.Run(fmt.Sprintf("2000x%d", per), func(b *testing.B) { benchStoreAppend(b, per) })
	}
}

func benchStoreAppend(b *testing.B, per int) {
	dir := b.TempDir()
	s, err := OpenStore(slog.New(slog.DiscardHandler), dir, StoreOptions{}, nopSink{filepath.Join(dir, "segments")}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.wal.Close()
	b.ReportAllocs()
	b.SetParallelism(2) // 2 × GOMAXPROCS(2) = 4 writers
	var seq int64
	cpu0, cpuOK := cputime.Process()
	b.RunParallel(func(pb *testing.PB) {
		rng := rand.New(rand.NewSource(1))
		w := int(atomicAdd(&seq))
		lsets := make([]labels.Labels, 2000)
		for i := range lsets {
			lsets[i] = labels.FromStrings("__name__", "cpu", "writer", fmt.Sprint(w), "host", fmt.Sprintf("host-%d", i/10), "cpu", fmt.Sprint(i%10))
		}
		bt := &ingest.Batch{Series: make([]ingest.Series, 2000)}
		ts := int64(1_700_000_000_000)
		for pb.Next() {
			for i := range bt.Series {
				sr := &bt.Series[i]
				sr.Labels = lsets[i]
				sr.Samples = sr.Samples[:0]
				for j := range per {
					sr.Samples = append(sr.Samples, ingest.Sample{T: ts + int64(j)*10_000, V: rng.Float64()})
				}
			}
			ts += int64(per) * 10_000
			if err := s.Append(bt); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)*2000*float64(per)/b.Elapsed().Seconds(), "samples/s")
	if cpu1, ok := cputime.Process(); ok && cpuOK {
		// Process CPU, the WAL's and GC included: what a loaded machine
		// inflates less than wall time.
		b.ReportMetric(float64((cpu1-cpu0).Nanoseconds())/(float64(b.N)*2000*float64(per)), "cpu-ns/sample")
	}
}

func atomicAdd(p *int64) int64 { return atomic.AddInt64(p, 1) }
