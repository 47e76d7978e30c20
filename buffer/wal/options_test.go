package wal

import (
	"testing"
	"time"
)

// TestOptionDefaults checks what the Options comments promise: a zero
// field means its default, a set one is kept.
func TestOptionDefaults(t *testing.T) {
	d := Options{}.withDefaults()
	if d.SegmentSize != DefaultSegmentSize || d.SyncInterval != DefaultSyncInterval || d.RetryInterval != DefaultRetryInterval {
		t.Errorf("zero options became %+v", d)
	}
	set := Options{SegmentSize: 1 << 20, SyncInterval: time.Minute, RetryInterval: 3 * time.Second}
	if got := set.withDefaults(); got.SegmentSize != set.SegmentSize || got.SyncInterval != set.SyncInterval || got.RetryInterval != set.RetryInterval {
		t.Errorf("options %+v became %+v", set, got)
	}
}

// TestReplayProgressFromSegmentZero checks the first progress report of a
// replay from the log's first segment, 0: segments 0 through the last,
// none started.
func TestReplayProgressFromSegmentZero(t *testing.T) {
	dir := t.TempDir()
	w := openTestWAL(t, dir, Options{})
	for _, rec := range []string{"a", "b"} {
		if err := w.Log([]byte(rec)); err != nil {
			t.Fatal(err)
		}
		if _, err := w.Cut(); err != nil {
			t.Fatal(err)
		}
	}
	_, last, err := w.Segments()
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	var got []Progress
	if err := ReplayWithProgress(nil, dir, 0, func([]byte) error { return nil }, func(p Progress) { got = append(got, p) }); err != nil {
		t.Fatal(err)
	}
	if len(got) == 0 || got[0].First != 0 || got[0].Last != last || got[0].Current != -1 {
		t.Fatalf("progress %+v, want the first report to say segments 0..%d, none started", got, last)
	}
}
