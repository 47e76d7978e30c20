package buffer

import (
	"context"
	"log/slog"
	"math"
	"path/filepath"
	"testing"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/strata-tsdb/strata/ingest"
)

func openTestStore(t testing.TB, dir string, opts StoreOptions, sink SegmentSink) *Store {
	t.Helper()
	s, err := OpenStore(slog.New(slog.DiscardHandler), dir, opts, sink, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustAppend(t *testing.T, s *Store, lset labels.Labels, ts int64, v float64) {
	t.Helper()
	if err := s.Append(batchOf(lset, ingest.Sample{T: ts, V: v})); err != nil {
		t.Fatalf("append %s@%d: %v", lset, ts, err)
	}
}

func mustFlush(t *testing.T, s *Store) {
	t.Helper()
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestReplayAfterMixedBatches logs a batch with no new series, then one
// with a new series, and replays: both series and all samples come back.
// (The pooled record buffers once aliased each other, which overwrote the
// series record of the second batch with its samples.)
func TestReplayAfterMixedBatches(t *testing.T) {
	dir := t.TempDir()
	sink := nopSink{filepath.Join(dir, "segments")}
	s := openTestStore(t, dir, StoreOptions{}, sink)
	a := labels.FromStrings("__name__", "a")
	b := labels.FromStrings("__name__", "b")
	for i := range 5 {
		mustAppend(t, s, a, int64(i), float64(i))
	}
	for i := range 5 {
		mustAppend(t, s, b, int64(i), float64(10+i))
	}
	if err := s.wal.Close(); err != nil { // as after a crash: nothing flushed
		t.Fatal(err)
	}
	s = openTestStore(t, dir, StoreOptions{}, sink)
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
