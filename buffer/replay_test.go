package buffer

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/strata-tsdb/strata/ingest"
	"github.com/strata-tsdb/strata/internal/cputime"
)

// appendSeries appends one sample to each of n series with Kubernetes-like
// labels, in batches of 1,000.
func appendSeries(t testing.TB, s *Store, n int, ts int64) {
	t.Helper()
	b := &ingest.Batch{}
	for i := range n {
		b.Series = append(b.Series, ingest.Series{
			Labels: labels.FromStrings("__name__", "up", "namespace", fmt.Sprintf("ns-%d", i%50),
				"pod", fmt.Sprintf("pod-%d", i), "node", fmt.Sprintf("node-%d", i%300)),
			Samples: []ingest.Sample{{T: ts, V: float64(i)}},
		})
		if len(b.Series) == 1000 || i == n-1 {
			if err := s.Append(b); err != nil {
				t.Fatal(err)
			}
			b.Series = b.Series[:0]
		}
	}
}

// TestReplayBuildsPostingsInLinearWork: after a flush (graceful stop) the
// write-ahead log holds the series records in stripe order, not reference
// order. Replaying them must not insert each reference into the middle of
// the postings lists: that moved O(n) references per series, O(n²) for the
// head (1M series never became ready). The test counts the references moved
// by sorted insertion during replay, an operation count that does not
// depend on the machine's speed, and checks that the index is whole.
func TestReplayBuildsPostingsInLinearWork(t *testing.T) {
	const n = 20_000
	for _, graceful := range []bool{true, false} {
		t.Run(fmt.Sprintf("graceful=%v", graceful), func(t *testing.T) {
			dir := t.TempDir()
			sink := nopSink{filepath.Join(dir, "segments")}
			s := openTestStore(t, dir, StoreOptions{}, sink)
			appendSeries(t, s, n, 1000)
			if graceful {
				if err := s.Close(context.Background()); err != nil {
					t.Fatal(err)
				}
			} else if err := s.wal.Close(); err != nil { // as after kill -9
				t.Fatal(err)
			}
			s = openTestStore(t, dir, StoreOptions{}, sink)
			defer s.wal.Close()
			h := s.Head()
			if got := h.NumSeries(); got != n {
				t.Fatalf("%d series after replay, want %d", got, n)
			}
			// Linear: a constant number of moves per series at most. Sorted
			// insertion in stripe order moves about n²/4 per list.
			if moved := h.index.shifted; moved > n {
				t.Fatalf("replay of %d series moved %d postings references (%.0f per series): quadratic", n, moved, float64(moved)/n)
			}
			// The series records come in reference order (SeriesRecords
			// sorts them; request order after a crash), so no list needed
			// sorting.
			if n := h.index.resorted; n != 0 {
				t.Fatalf("replay sorted %d postings lists: the log had series out of reference order", n)
			}
			all := h.index.postingsForMatchers()
			if len(all) != n {
				t.Fatalf("%d references in the index, want %d", len(all), n)
			}
			for i := 1; i < len(all); i++ {
				if all[i-1] >= all[i] {
					t.Fatalf("postings not strictly sorted at %d: %d, %d", i, all[i-1], all[i])
				}
			}
			ns := h.index.postingsForMatchers(labels.MustNewMatcher(labels.MatchEqual, "namespace", "ns-7"))
			if len(ns) != n/50 {
				t.Fatalf("namespace=ns-7 has %d series, want %d", len(ns), n/50)
			}
			pods, err := h.LabelValues(context.Background(), "pod", math.MinInt64, math.MaxInt64)
			if err != nil || len(pods) != n {
				t.Fatalf("label values of pod: %d, %v; want %d", len(pods), err, n)
			}
		})
	}
}

// BenchmarkReplayAfterFlush replays the write-ahead log a graceful stop
// leaves (series records in stripe order, no samples) at growing sizes;
// ns/series should stay flat as the size doubles (it grew with n when
// replay inserted into sorted postings).
func BenchmarkReplayAfterFlush(b *testing.B) {
	for _, n := range []int{50_000, 100_000, 200_000} {
		b.Run(fmt.Sprintf("series=%d", n), func(b *testing.B) {
			dir := b.TempDir()
			sink := nopSink{filepath.Join(dir, "segments")}
			s := openTestStore(b, dir, StoreOptions{}, sink)
			appendSeries(b, s, n, 1000)
			if err := s.Close(context.Background()); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for range b.N {
				s := openTestStore(b, dir, StoreOptions{}, sink)
				if err := s.wal.Close(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/series")
		})
	}
}

// BenchmarkReplayK8s replays what loadtest/scale leaves at restart, at a
// fifth of its 1M size: 200,000 Kubernetes-like series (k8sLabels, 10
// labels) with 5 samples each, as requests of 2,000 series × 5 samples
// logged them. crash: the log as kill -9 leaves it (every series and
// sample record); graceful: as a stop leaves it (the series re-logged,
// no samples). It reports ns/series and, for crash, samples/s.
func BenchmarkReplayK8s(b *testing.B) {
	const perSeries = 5
	n := 200_000
	if v, err := strconv.Atoi(os.Getenv("STRATA_REPLAY_SERIES")); err == nil && v > 0 {
		n = v // STRATA_REPLAY_SERIES=1000000: loadtest/scale's size
	}
	for _, graceful := range []bool{false, true} {
		name := "crash"
		if graceful {
			name = "graceful"
		}
		b.Run(name, func(b *testing.B) {
			dir := b.TempDir()
			sink := nopSink{filepath.Join(dir, "segments")}
			s := openTestStore(b, dir, StoreOptions{}, sink)
			batch := &ingest.Batch{}
			for i := 0; i < n; i += 2000 {
				batch.Series = batch.Series[:0]
				for j := i; j < min(n, i+2000); j++ {
					ss := make([]ingest.Sample, perSeries)
					for k := range ss {
						ss[k] = ingest.Sample{T: 1_700_000_000_000 + int64(k)*10_000, V: float64(j % 100)}
					}
					batch.Series = append(batch.Series, ingest.Series{Labels: k8sLabels(j), Samples: ss})
				}
				if err := s.Append(batch); err != nil {
					b.Fatal(err)
				}
			}
			if graceful {
				if err := s.Close(context.Background()); err != nil {
					b.Fatal(err)
				}
			} else if err := s.wal.Close(); err != nil {
				b.Fatal(err)
			}
			runtime.GC()
			b.ReportAllocs()
			b.ResetTimer()
			cpu0, cpuOK := cputime.Process()
			for range b.N {
				s := openTestStore(b, dir, StoreOptions{}, sink)
				if got := s.head.NumSeries(); got != int64(n) {
					b.Fatalf("%d series replayed, want %d", got, n)
				}
				b.StopTimer()
				if err := s.wal.Close(); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
			per := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
			b.ReportMetric(per/float64(n), "ns/series")
			if cpu1, ok := cputime.Process(); ok && cpuOK {
				// Process CPU (GC workers included), which a loaded
				// machine does not inflate as it does wall time; the
				// close after each replay is in it too.
				b.ReportMetric(float64((cpu1-cpu0).Nanoseconds())/float64(b.N)/float64(n), "cpu-ns/series")
			}
			if !graceful {
				b.ReportMetric(float64(n*perSeries)/(per/1e9), "samples/s")
			}
		})
	}
}
