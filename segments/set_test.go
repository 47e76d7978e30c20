package segments

import (
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
)

// TestAcquiredTombstonesOutliveReplace acquires a tombstoned segment,
// then a compaction replaces it (its output holds the data without what
// the tombstone hid, and the set drops the tombstone): the reader of the
// old segment must still apply the tombstone it acquired with it, or the
// deleted data shows again. Set.Tombstones, looked up after the replace,
// no longer knows it, which is why readers take them with the segments.
func TestAcquiredTombstonesOutliveReplace(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "segments")
	set, err := OpenSet(slog.New(slog.DiscardHandler), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	series := genSeries(1, 3, 1)
	old := writeTestSegment(t, dir, Meta{ID: NewID(time.Now()), Seq: 1}, series)
	if err := set.Publish([]Meta{old}); err != nil {
		t.Fatal(err)
	}
	victim := series[0].lset
	ms := []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "instance", victim.Get("instance")),
		labels.MustNewMatcher(labels.MatchEqual, "__name__", victim.Get("__name__"))}
	if _, err := set.AddTombstone(ms, minInt64, maxInt64); err != nil {
		t.Fatal(err)
	}
	segs, tombs, release := set.AcquireWithTombstones(minInt64, maxInt64)
	defer release()
	if len(segs) != 1 {
		t.Fatalf("acquired %d segments, want 1", len(segs))
	}
	// The compaction's output: the same series but the deleted one.
	out := writeTestSegment(t, dir, Meta{ID: NewID(time.Now().Add(time.Millisecond)), Seq: 1}, series[1:])
	if err := set.Replace([]string{old.ID}, []Meta{out}); err != nil {
		t.Fatal(err)
	}
	if got := DeletedRanges(tombs[old.ID], victim); len(got) != 1 || got[0] != [2]int64{minInt64, maxInt64} {
		t.Fatalf("the acquired view hides %v of %s, want all of it", got, victim)
	}
	if got := set.Tombstones(old.ID); len(got) != 0 {
		t.Fatalf("the set still lists %d tombstones of the replaced segment", len(got))
	}
	// More tombstones later do not change what the reader acquired.
	if _, err := set.AddTombstone(ms, 0, 1); err != nil {
		t.Fatal(err)
	}
	if n := len(tombs[old.ID]); n != 1 {
		t.Fatalf("the acquired view changed: %d tombstones", n)
	}
}
