package segments

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
)

// BenchmarkCompactSeries merges two segments of one window holding the
// same n series (Kubernetes-like labels, two samples each, one shared
// timestamp) and reports the compaction's cost per series, so that the
// growth from one size to the next shows whether a day with millions of
// series compacts in linear work (issue 20):
//
//	go test -run X -bench CompactSeries -benchtime 3x ./segments
func BenchmarkCompactSeries(b *testing.B) {
	for _, n := range []int{25_000, 50_000, 100_000, 200_000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			older, newer := make([]testSeries, n), make([]testSeries, n)
			for i := range n {
				lset := labels.FromStrings("__name__", "container_cpu_usage_seconds_total",
					"namespace", "ns-"+strconv.Itoa(i%300), "pod", "pod-"+strconv.Itoa(i/10),
					"container", "c-"+strconv.Itoa(i%10), "node", "node-"+strconv.Itoa(i%5000))
				older[i] = floats(lset, sample{1, float64(i)}, sample{2, 1})
				newer[i] = floats(lset, sample{2, 2}, sample{3, float64(i)})
			}
			b.ResetTimer()
			for it := range b.N {
				b.StopTimer()
				dir := filepath.Join(b.TempDir(), fmt.Sprintf("segments-%d", it))
				set, err := OpenSet(slog.New(slog.DiscardHandler), dir)
				if err != nil {
					b.Fatal(err)
				}
				now := time.Now()
				metas := []Meta{
					writeTestSegment(b, dir, Meta{ID: NewID(now), Seq: 1}, older),
					writeTestSegment(b, dir, Meta{ID: NewID(now.Add(time.Millisecond)), Seq: 2}, newer),
				}
				if err := set.Publish(metas); err != nil {
					b.Fatal(err)
				}
				c, err := NewCompactor(nil, set, CompactOptions{Ranges: []int64{10, 100}}, nil)
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				if k, err := c.Compact(context.Background()); err != nil || k != 1 {
					b.Fatalf("Compact: %d, %v; want 1 compaction", k, err)
				}
				b.StopTimer()
				segs, release := set.Acquire(minInt64, maxInt64)
				if len(segs) != 1 || segs[0].Meta().NumSeries != uint64(n) || segs[0].Meta().NumSamples != uint64(3*n) {
					b.Fatalf("after compaction: %d segments, want 1 of %d series and %d samples", len(segs), n, 3*n)
				}
				release()
				set.Close()
				b.StartTimer()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/series")
		})
	}
}
