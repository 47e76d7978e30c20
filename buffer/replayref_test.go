package buffer

import (
	"math"
	"path/filepath"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
)

// TestSeriesAfterReplayKeepNewRefs: series created after a replay get
// references none of the replayed series has, so that a second replay
// gives each its own samples.
func TestSeriesAfterReplayKeepNewRefs(t *testing.T) {
	dir := t.TempDir()
	sink := nopSink{filepath.Join(dir, "segments")}
	name := func(i int) labels.Labels { return labels.FromStrings("__name__", "s", "i", string(rune('a'+i))) }
	s := openTestStore(t, dir, StoreOptions{}, sink)
	for i := range 3 {
		mustAppend(t, s, name(i), 1, float64(i))
	}
	if err := s.wal.Close(); err != nil { // as after a crash: nothing flushed
		t.Fatal(err)
	}
	s = openTestStore(t, dir, StoreOptions{}, sink)
	for i := 3; i < 6; i++ {
		mustAppend(t, s, name(i), 1, float64(i))
	}
	if err := s.wal.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTestStore(t, dir, StoreOptions{}, sink)
	defer s.wal.Close()
	for i := range 6 {
		got := readAll(t, s.Head(), math.MinInt64, math.MaxInt64, labels.MustNewMatcher(labels.MatchEqual, "i", name(i).Get("i")))
		if len(got) != 1 || got[0].V != float64(i) {
			t.Errorf("%s after two replays: %v, want one sample of %d", name(i), got, i)
		}
	}
}
