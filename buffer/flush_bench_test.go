package buffer

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
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

func benchFlush(b *testing.B, nSeries, k int) {
	dir := b.TempDir()
	s, err := OpenStore(slog.New(slog.DiscardHandler), dir, StoreOptions{}, nopSink{filepath.Join(dir, "segments")}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.wal.Close()
	lsets := make([]labels.Labels, nSeries)
	for i := range lsets {
		lsets[i] = labels.FromStrings("__name__", "cpu", "namespace", fmt.Sprintf("ns-%d", i%50), "pod", fmt.Sprintf("pod-%d", i/10), "cpu", fmt.Sprint(i%10), "instance", fmt.Sprintf("10.0.%d.%d:9100", i/2560%256, i/10%256))
	}
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
		cpu0, _ := cputime.Process()
		b.StartTimer()
		if err := s.Flush(context.Background()); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		cpu1, _ := cputime.Process()
		cpu += cpu1 - cpu0
		if n := s.head.SamplesInHead(); n != 0 {
			b.Fatalf("%d samples left in the head", n)
		}
		_ = os.RemoveAll(filepath.Join(dir, "segments"))
		if err := os.MkdirAll(filepath.Join(dir, "segments"), 0o755); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N)/float64(nSeries), "cpu-ns/series")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N)/float64(nSeries*k), "cpu-ns/sample")
}
