package buffer

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/strata-tsdb/strata/ingest"
	"github.com/strata-tsdb/strata/internal/cputime"
	"github.com/strata-tsdb/strata/segments"
)

// latencySeries simulates one request-latency histogram (schema 3, as
// client_golang's NativeHistogramBucketFactor 1.1 gives): every scrape adds
// observations drawn from a log-normal distribution around a typical
// latency, and the cumulative histogram is what a scrape exposes.
type latencySeries struct {
	rng     *rand.Rand
	median  float64
	buckets map[int32]uint64 // bucket index -> cumulative count
	count   uint64
	zero    uint64
	sum     float64
}

func newLatencySeries(seed int64) *latencySeries {
	rng := rand.New(rand.NewSource(seed))
	return &latencySeries{rng: rng, median: 0.02 + rng.Float64()*0.2, buckets: map[int32]uint64{}}
}

// scrape adds n observations and returns the histogram as exposed.
func (l *latencySeries) scrape(n int) *histogram.Histogram {
	for range n {
		v := l.median * math.Exp(l.rng.NormFloat64()*0.6)
		l.count++
		l.sum += v
		if v <= 1e-6 {
			l.zero++
			continue
		}
		// Schema 3: bucket i holds (2^((i-1)/8), 2^(i/8)].
		l.buckets[int32(math.Ceil(math.Log2(v)*8))]++
	}
	h := &histogram.Histogram{Schema: 3, ZeroThreshold: 1e-6, ZeroCount: l.zero, Count: l.count, Sum: l.sum}
	idx := make([]int32, 0, len(l.buckets))
	for i := range l.buckets {
		idx = append(idx, i)
	}
	slices.Sort(idx)
	var prevIdx int32
	var prevCount int64
	for k, i := range idx {
		switch {
		case k == 0:
			h.PositiveSpans = append(h.PositiveSpans, histogram.Span{Offset: i, Length: 1})
		case i-prevIdx <= 3: // small gaps are filled with empty buckets, as client_golang does
			for g := prevIdx + 1; g < i; g++ {
				h.PositiveBuckets = append(h.PositiveBuckets, -prevCount)
				prevCount = 0
			}
			h.PositiveSpans[len(h.PositiveSpans)-1].Length += uint32(i - prevIdx)
		default:
			h.PositiveSpans = append(h.PositiveSpans, histogram.Span{Offset: i - prevIdx - 1, Length: 1})
		}
		c := int64(l.buckets[i])
		h.PositiveBuckets = append(h.PositiveBuckets, c-prevCount)
		prevIdx, prevCount = i, c
	}
	return h
}

// BenchmarkHeadAppendHistograms appends batches of 2,500 native histograms
// over 500 latency series (5 scrapes each, 10 s apart), as a remote-write
// request from a Prometheus scraping them would bring. Building the
// histograms is not timed.
func BenchmarkHeadAppendHistograms(b *testing.B) {
	const nSeries, perSeries = 500, 5
	lsets := make([]labels.Labels, nSeries)
	gens := make([]*latencySeries, nSeries)
	for i := range lsets {
		lsets[i] = labels.FromStrings("__name__", "http_request_duration_seconds", "host", fmt.Sprintf("host-%d", i/10), "route", fmt.Sprintf("/api/v%d", i%10))
		gens[i] = newLatencySeries(int64(i))
	}
	h := newTestHead(b, Options{})
	batch := &ingest.Batch{Series: make([]ingest.Series, nSeries)}
	buckets := 0
	b.ReportAllocs()
	var mallocs uint64
	var ms runtime.MemStats
	var cpu time.Duration
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		b.StopTimer()
		base := int64(n) * perSeries * 10_000
		for i := range batch.Series {
			s := &batch.Series[i]
			s.Labels = lsets[i]
			s.Histograms = s.Histograms[:0]
			for j := range perSeries {
				hh := gens[i].scrape(50)
				buckets += len(hh.PositiveBuckets)
				s.Histograms = append(s.Histograms, ingest.HistogramSample{T: base + int64(j)*10_000, H: hh})
			}
		}
		runtime.ReadMemStats(&ms)
		before := ms.Mallocs
		cpuBefore, _ := cputime.Process()
		b.StartTimer()
		if err := h.Append(batch); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		cpuAfter, cpuOK := cputime.Process()
		if cpuOK {
			cpu += cpuAfter - cpuBefore
		}
		runtime.ReadMemStats(&ms)
		mallocs += ms.Mallocs - before
		b.StartTimer()
	}
	b.StopTimer()
	samples := float64(b.N) * nSeries * perSeries
	b.ReportMetric(samples/b.Elapsed().Seconds(), "samples/s")
	if cpu > 0 {
		// The process' CPU time during the appends (GC included): on a
		// machine shared with other work, samples/s measures the waits
		// too, this does not.
		b.ReportMetric(samples/cpu.Seconds(), "samples/cpu-s")
	}
	b.ReportMetric(float64(mallocs)/samples, "allocs/sample")
	b.ReportMetric(float64(buckets)/samples, "buckets/sample")
}

// BenchmarkHistogramBytesOnDisk writes 2 h of 10 s scrapes of 200 latency
// histograms through a store (WAL, head, flush) into a segment and reports
// the bytes of its chunk files per histogram sample, and of the WAL before
// the flush.
func BenchmarkHistogramBytesOnDisk(b *testing.B) {
	for range b.N {
		dir := b.TempDir()
		set, err := segments.OpenSet(slog.New(slog.DiscardHandler), filepath.Join(dir, "segments"))
		if err != nil {
			b.Fatal(err)
		}
		s, err := OpenStore(slog.New(slog.DiscardHandler), dir, StoreOptions{}, set, nil)
		if err != nil {
			b.Fatal(err)
		}
		const nSeries, scrapes = 200, 720
		gens := make([]*latencySeries, nSeries)
		lsets := make([]labels.Labels, nSeries)
		for i := range gens {
			gens[i] = newLatencySeries(int64(i))
			lsets[i] = labels.FromStrings("__name__", "http_request_duration_seconds", "host", fmt.Sprintf("host-%d", i/10), "route", fmt.Sprintf("/api/v%d", i%10))
		}
		t0 := int64(1_700_000_000_000) / 7_200_000 * 7_200_000
		buckets := 0
		for k := range scrapes {
			batch := &ingest.Batch{}
			for i := range gens {
				hh := gens[i].scrape(50)
				buckets += len(hh.PositiveBuckets)
				batch.Series = append(batch.Series, ingest.Series{Labels: lsets[i], Histograms: []ingest.HistogramSample{{T: t0 + int64(k)*10_000, H: hh}}})
			}
			if err := s.Append(batch); err != nil {
				b.Fatal(err)
			}
		}
		walBytes := s.WALSize()
		if err := s.Flush(context.Background()); err != nil {
			b.Fatal(err)
		}
		var chunkBytes int64
		err = filepath.Walk(filepath.Join(dir, "segments"), func(p string, fi os.FileInfo, err error) error {
			if err == nil && !fi.IsDir() && strings.Contains(p, string(filepath.Separator)+"chunks"+string(filepath.Separator)) {
				chunkBytes += fi.Size()
			}
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
		n := float64(nSeries * scrapes)
		b.ReportMetric(float64(chunkBytes)/n, "chunk-bytes/sample")
		b.ReportMetric(float64(walBytes)/n, "wal-bytes/sample")
		b.ReportMetric(float64(buckets)/n, "buckets/sample")
		if err := s.Close(context.Background()); err != nil {
			b.Fatal(err)
		}
		_ = set.Close()
	}
}
