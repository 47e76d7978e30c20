package buffer

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/strata-tsdb/strata/ingest"
	"github.com/strata-tsdb/strata/internal/cputime"
)

// BenchmarkFlushSamplesPerSeries measures the CPU of one flush of 100,000
// series holding k samples each, for several k: what a flush costs per
// series and per sample, which is what the flush trigger's floor of
// FlushSamplesPerSeries a series weighs (StoreOptions).
func BenchmarkFlushSamplesPerSeries(b *testing.B) {
	for _, k := range []int{4, 32, 120} {
		b.Run(fmt.Sprintf("k=%d", k), func(b *testing.B) { benchFlush(b, 100_000, k) })
	}
}

// openFlushBench opens a store in a temporary directory whose segments go
// to a sink that publishes nothing (the benchmark empties it between
// flushes), closed when the benchmark ends, and returns it with the label
// sets of nSeries node-exporter-like series.
func openFlushBench(b *testing.B, nSeries int) (s *Store, dir string, lsets []labels.Labels) {
	dir = b.TempDir()
	s, err := OpenStore(slog.New(slog.DiscardHandler), dir, StoreOptions{}, nopSink{filepath.Join(dir, "segments")}, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.wal.Close() })
	lsets = make([]labels.Labels, nSeries)
	for i := range lsets {
		lsets[i] = labels.FromStrings("__name__", "cpu", "namespace", fmt.Sprintf("ns-%d", i%50), "pod", fmt.Sprintf("pod-%d", i/10), "cpu", fmt.Sprint(i%10), "instance", fmt.Sprintf("10.0.%d.%d:9100", i/2560%256, i/10%256))
	}
	return s, dir, lsets
}

// emptySegments removes what the flushes wrote to dir's segments.
func emptySegments(b *testing.B, dir string) {
	_ = os.RemoveAll(filepath.Join(dir, "segments"))
	if err := os.MkdirAll(filepath.Join(dir, "segments"), 0o755); err != nil {
		b.Fatal(err)
	}
}

// timedFlush flushes s with the benchmark's timer running (it is stopped
// before and after), checks that the head is empty after it and returns
// the process's CPU time during the flush.
func timedFlush(b *testing.B, s *Store) time.Duration {
	cpu0, _ := cputime.Process()
	b.StartTimer()
	if err := s.Flush(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	cpu1, _ := cputime.Process()
	if n := s.head.SamplesInHead(); n != 0 {
		b.Fatalf("%d samples left in the head", n)
	}
	return cpu1 - cpu0
}

func benchFlush(b *testing.B, nSeries, k int) {
	s, dir, lsets := openFlushBench(b, nSeries)
	ts := int64(1_700_000_000_000)
	var cpu time.Duration
	for b.Loop() {
		b.StopTimer()
		for j := range k {
			bt := &ingest.Batch{}
			for i, lset := range lsets {
				bt.Series = append(bt.Series, ingest.Series{Labels: lset, Samples: []ingest.Sample{{T: ts + int64(j)*10_000, V: float64(i + j)}}})
				if len(bt.Series) == 2000 || i == len(lsets)-1 {
					if err := s.Append(bt); err != nil {
						b.Fatal(err)
					}
					bt = &ingest.Batch{}
				}
			}
		}
		ts += int64(k) * 10_000
		cpu += timedFlush(b, s)
		emptySegments(b, dir)
		b.StartTimer()
	}
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N)/float64(nSeries), "cpu-ns/series")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N)/float64(nSeries*k), "cpu-ns/sample")
}

// BenchmarkFlushThenAppend measures a flush of 200,000 series holding k
// samples each and the one append per series that follows it: since a
// flush seals each open chunk (sealForFlushLocked), that append starts a
// new chunk in every series. Besides the figures of the whole (ns/op,
// B/op, allocs/op), it reports the flush's CPU per series and what the
// append after the flush allocates per series and its CPU, beside those
// of the append before the flush (into an open chunk).
func BenchmarkFlushThenAppend(b *testing.B) {
	for _, k := range []int{4, 32} {
		b.Run(fmt.Sprintf("k=%d", k), func(b *testing.B) { benchFlushThenAppend(b, 200_000, k) })
	}
}

func benchFlushThenAppend(b *testing.B, nSeries, k int) {
	s, dir, lsets := openFlushBench(b, nSeries)
	batches := make([]*ingest.Batch, 0, nSeries/2000+1)
	for i := 0; i < nSeries; i += 2000 {
		bt := &ingest.Batch{}
		for _, lset := range lsets[i:min(nSeries, i+2000)] {
			bt.Series = append(bt.Series, ingest.Series{Labels: lset, Samples: make([]ingest.Sample, 1)})
		}
		batches = append(batches, bt)
	}
	ts := int64(1_700_000_000_000)
	// round appends one sample to every series and returns what it
	// allocated and the process's CPU time meanwhile.
	round := func() (mallocs, bytes uint64, cpu time.Duration) {
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		cpu0, _ := cputime.Process()
		for _, bt := range batches {
			for i := range bt.Series {
				bt.Series[i].Samples[0] = ingest.Sample{T: ts, V: float64(i)}
			}
			if err := s.Append(bt); err != nil {
				b.Fatal(err)
			}
		}
		cpu1, _ := cputime.Process()
		runtime.ReadMemStats(&m1)
		ts += 10_000
		return m1.Mallocs - m0.Mallocs, m1.TotalAlloc - m0.TotalAlloc, cpu1 - cpu0
	}
	round()
	var (
		cpu, beforeCPU, afterCPU     time.Duration
		before, beforeB, after, aftB uint64
	)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		for j := 1; j < k; j++ {
			m, n, c := round()
			if j == k-1 {
				before, beforeB, beforeCPU = before+m, beforeB+n, beforeCPU+c
			}
		}
		emptySegments(b, dir)
		cpu += timedFlush(b, s)
		b.StartTimer()
		m, n, c := round()
		after, aftB, afterCPU = after+m, aftB+n, afterCPU+c
	}
	per := float64(b.N) * float64(nSeries)
	b.ReportMetric(float64(cpu.Nanoseconds())/per, "flush-cpu-ns/series")
	b.ReportMetric(float64(after)/per, "append-after-allocs/series")
	b.ReportMetric(float64(aftB)/per, "append-after-B/series")
	b.ReportMetric(float64(afterCPU.Nanoseconds())/per, "append-after-cpu-ns/series")
	if k > 1 {
		b.ReportMetric(float64(before)/per, "append-before-allocs/series")
		b.ReportMetric(float64(beforeB)/per, "append-before-B/series")
		b.ReportMetric(float64(beforeCPU.Nanoseconds())/per, "append-before-cpu-ns/series")
	}
}
