package segments

import (
	"log/slog"
	"slices"
	"testing"
	"time"
)

// TestWriteOrder: the sequence decides, whatever the IDs say; segments
// without one (older versions) come first, among themselves by ID.
func TestWriteOrder(t *testing.T) {
	early, late := NewID(time.Unix(1000, 0)), NewID(time.Unix(2000, 0))
	f := func(a, b Meta, want int) {
		t.Helper()
		if got := WriteOrder(a, b); got != want {
			t.Fatalf("WriteOrder(%+v, %+v) = %d, want %d", a, b, got, want)
		}
		if got := WriteOrder(b, a); got != -want {
			t.Fatalf("WriteOrder(%+v, %+v) = %d, want %d", b, a, got, -want)
		}
	}
	f(Meta{ID: late, Seq: 1}, Meta{ID: early, Seq: 2}, -1) // clock stepped back
	f(Meta{ID: early, Seq: 1}, Meta{ID: late, Seq: 2}, -1)
	f(Meta{ID: late}, Meta{ID: early, Seq: 1}, -1) // no Seq: older
	f(Meta{ID: early}, Meta{ID: late}, -1)         // both without: by ID
}

// TestSequencePersists: NextSeq keeps increasing across reopening the set,
// starts above the Seq of every segment found on disk (a sequence file
// lost or older than the segments), and Acquire returns segments in write
// order, segments written before Seq existed first.
func TestSequencePersists(t *testing.T) {
	dir := t.TempDir()
	logger := slog.New(slog.DiscardHandler)
	set, err := OpenSet(logger, dir)
	if err != nil {
		t.Fatal(err)
	}
	var seqs []uint64
	for range 3 {
		n, err := set.NextSeq()
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, n)
	}
	if !slices.Equal(seqs, []uint64{1, 2, 3}) {
		t.Fatalf("sequence %v, want 1 2 3", seqs)
	}
	series := genSeries(1, 3, 1)
	// A segment with Seq 10 (as written by another copy of the sequence),
	// with the oldest ID, and one from before Seq existed, with the newest.
	withSeq := writeTestSegment(t, dir, Meta{ID: NewID(time.Unix(1000, 0)), Seq: 10}, series)
	legacy := writeTestSegment(t, dir, Meta{ID: NewID(time.Unix(2000, 0))}, series)
	if err := set.Publish([]Meta{withSeq, legacy}); err != nil {
		t.Fatal(err)
	}
	segs, release := set.Acquire(minInt64, maxInt64)
	var order []string
	for _, s := range segs {
		order = append(order, s.Meta().ID)
	}
	release()
	if !slices.Equal(order, []string{legacy.ID, withSeq.ID}) {
		t.Fatalf("acquire order %v, want the segment without a sequence first", order)
	}
	if err := set.Close(); err != nil {
		t.Fatal(err)
	}
	set, err = OpenSet(logger, dir)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := set.NextSeq(); err != nil || n != 11 {
		t.Fatalf("next sequence after reopening: %d, %v; want 11 (above the segment's 10)", n, err)
	}
	if err := set.Close(); err != nil {
		t.Fatal(err)
	}
	set, err = OpenSet(logger, dir)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := set.NextSeq(); err != nil || n != 12 {
		t.Fatalf("next sequence after reopening again: %d, %v; want 12 (persisted)", n, err)
	}
	if err := set.Close(); err != nil {
		t.Fatal(err)
	}
}
