package buffer

import (
	"log/slog"
	"math"
	"path/filepath"
	"testing"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/strata-tsdb/strata/ingest"
)

// TestReplayAfterMixedBatches logs a batch with no new series, then one
// with a new series, and replays: both series and all samples come back.
// (The pooled record buffers once aliased each other, which overwrote the
// series record of the second batch with its samples.)
func TestReplayAfterMixedBatches(t *testing.T) {
	dir := t.TempDir()
	logger := slog.New(slog.DiscardHandler)
	sink := nopSink{filepath.Join(dir, "segments")}
	s, err := OpenStore(logger, dir, StoreOptions{}, sink, nil)
	if err != nil {
		t.Fatal(err)
	}
	a := labels.FromStrings("__name__", "a")
	b := labels.FromStrings("__name__", "b")
	for i := range 5 {
		if err := s.Append(batchOf(a, ingest.Sample{T: int64(i), V: float64(i)})); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 5 {
		if err := s.Append(batchOf(b, ingest.Sample{T: int64(i), V: float64(10 + i)})); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.wal.Close(); err != nil { // as after a crash: nothing flushed
		t.Fatal(err)
	}
	s, err = OpenStore(logger, dir, StoreOptions{}, sink, nil)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s.wal.Close()
	for _, c := range []struct {
		lset labels.Labels
		base float64
	}{{a, 0}, {b, 10}} {
		got := readAll(t, s.Head(), math.MinInt64, math.MaxInt64, labels.MustNewMatcher(labels.MatchEqual, "__name__", c.lset.Get("__name__")))
		if len(got) != 5 || got[4].V != c.base+4 {
			t.Fatalf("%s after replay: %v", c.lset, got)
		}
	}
}
