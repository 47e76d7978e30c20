package buffer

import (
	"math"
	"path/filepath"
	"sync"
	"testing"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/strata-tsdb/strata/ingest"
)

// TestLogOrderIsApplyOrder has writers race on the same timestamps of the
// same series (two series per batch, in opposite orders for half of the
// writers), so that last write wins picks among concurrent writes. The
// head before a crash and the head a replay of the log rebuilds must
// agree sample for sample: each series' writes are applied in the order
// the log holds them.
func TestLogOrderIsApplyOrder(t *testing.T) {
	dir := t.TempDir()
	sink := nopSink{filepath.Join(dir, "segments")}
	s := openTestStore(t, dir, StoreOptions{}, sink)
	a := labels.FromStrings("__name__", "race", "s", "a")
	b := labels.FromStrings("__name__", "race", "s", "b")
	const writers, rounds, stamps = 8, 200, 5
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range rounds {
				var samples []ingest.Sample
				for ts := range stamps {
					samples = append(samples, ingest.Sample{T: int64(r*stamps + ts), V: float64(w)})
				}
				first, second := a, b
				if w%2 == 1 {
					first, second = b, a
				}
				batch := &ingest.Batch{Series: []ingest.Series{{Labels: first, Samples: samples}, {Labels: second, Samples: samples}}}
				if err := s.Append(batch); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	read := func(h *Head, name string) []ingest.Sample {
		return readAll(t, h, math.MinInt64, math.MaxInt64,
			labels.MustNewMatcher(labels.MatchEqual, "__name__", "race"), labels.MustNewMatcher(labels.MatchEqual, "s", name))
	}
	before := map[string][]ingest.Sample{"a": read(s.Head(), "a"), "b": read(s.Head(), "b")}
	if err := s.wal.Close(); err != nil { // as after a crash: nothing flushed
		t.Fatal(err)
	}
	s = openTestStore(t, dir, StoreOptions{}, sink)
	defer s.wal.Close()
	for name, want := range before {
		got := read(s.Head(), name)
		if len(got) != rounds*stamps || len(got) != len(want) {
			t.Fatalf("series %s: %d samples after replay, %d before, want %d", name, len(got), len(want), rounds*stamps)
		}
		diff := 0
		for i := range want {
			if got[i] != want[i] {
				if diff < 5 {
					t.Errorf("series %s at t=%d: %v before the crash, %v after replay", name, want[i].T, want[i].V, got[i].V)
				}
				diff++
			}
		}
		if diff > 0 {
			t.Errorf("series %s: %d of %d samples differ after replay", name, diff, len(want))
		}
	}
}
