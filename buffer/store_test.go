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

// TestBatchAfterCutLogsItsSeries is a crash right after a flush that a
// write raced: the write of an existing series lands in the log after the
// flush cut it but before the flush re-logs every series' record, and the
// flush then truncates the log below the cut, where the series' only
// record was. The replay must still know the series. (Before log epochs,
// the batch logged no series record, the replay dropped its samples as
// having an unknown reference, and a write whose apply came after the
// flush's snapshot was lost although acknowledged.) The sink keeps no
// data, so only the log can bring the sample back.
func TestBatchAfterCutLogsItsSeries(t *testing.T) {
	dir := t.TempDir()
	sink := nopSink{filepath.Join(dir, "segments")}
	s := openTestStore(t, dir, StoreOptions{}, sink)
	a := labels.FromStrings("__name__", "a")
	mustAppend(t, s, a, 1000, 1)
	s.testHookAfterCut = func() { mustAppend(t, s, a, 2000, 2) }
	mustFlush(t, s)
	s.testHookAfterCut = nil
	if err := s.wal.Close(); err != nil { // a crash: no flush at close
		t.Fatal(err)
	}
	s = openTestStore(t, dir, StoreOptions{}, sink)
	defer s.wal.Close()
	got := readAll(t, s.Head(), math.MinInt64, math.MaxInt64, labels.MustNewMatcher(labels.MatchEqual, "__name__", "a"))
	if len(got) != 1 || got[0].T != 2000 || got[0].V != 2 {
		t.Fatalf("after replay the head holds %v, want the sample written after the cut (2000, 2)", got)
	}
}
