package wal

import (
	"errors"
	"math/rand"
	"testing"
)

// TestLargestRecord checks MaxRecordSize at its edge: a record of exactly
// MaxRecordSize bytes is logged and replays, one byte more is refused by
// Log with ErrRecordTooLarge and nothing of it is written. (The record is
// zeros: snappy makes about 12 MiB of it; the replay holds 256 MiB.)
func TestLargestRecord(t *testing.T) {
	dir := t.TempDir()
	w := openTestWAL(t, dir, Options{})
	if err := w.Log(make([]byte, MaxRecordSize+1)); !errors.Is(err, ErrRecordTooLarge) {
		t.Fatalf("Log of MaxRecordSize+1 bytes: %v, want ErrRecordTooLarge", err)
	}
	rec := make([]byte, MaxRecordSize)
	rec[0], rec[len(rec)-1] = 1, 2
	if err := w.Log(rec); err != nil {
		t.Fatalf("Log of MaxRecordSize bytes: %v", err)
	}
	if err := w.Log([]byte("after")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	var got []int
	err := Replay(nil, dir, 0, func(r []byte) error {
		got = append(got, len(r))
		if len(r) == MaxRecordSize && (r[0] != 1 || r[len(r)-1] != 2) {
			t.Error("the largest record replayed with other bytes")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != MaxRecordSize || got[1] != len("after") {
		t.Fatalf("replayed records of %v bytes, want [%d 5]", got, MaxRecordSize)
	}
}

// TestSegmentFilledExactly checks SegmentSize at its edge: records whose
// frames fill a segment to exactly SegmentSize bytes stay in it, and the
// next record starts a new segment, also when they came in one call.
func TestSegmentFilledExactly(t *testing.T) {
	recs := make([][]byte, 3)
	rng := rand.New(rand.NewSource(1))
	for i := range recs {
		recs[i] = make([]byte, 1000) // random: stored as it is
		rng.Read(recs[i])
	}
	logAll := func(dir string, segmentSize int64) {
		t.Helper()
		w, err := Open(nil, dir, Options{SegmentSize: segmentSize})
		if err != nil {
			t.Fatal(err)
		}
		// One record, then two in one call: the frames of a call are
		// placed one by one where the call does not fit whole.
		if err := w.Log(recs[0]); err != nil {
			t.Fatal(err)
		}
		if err := w.Log(recs[1:]...); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	// The sizes of a segment's header and of a frame, from one large segment.
	dir := t.TempDir()
	logAll(dir, 0)
	offs, _ := frameOffsets(t, segmentPath(dir, 0))
	header, frame := offs[0], offs[1]-offs[0]

	dir = t.TempDir()
	size := header + 2*frame
	logAll(dir, size)
	segs, err := listSegments(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(segs) != 2 {
		t.Fatalf("%d segments, want 2 (two records filling the first exactly, one in the second)", len(segs))
	}
	if offs, n := frameOffsets(t, segs[0].path); len(offs) != 2 || n != size {
		t.Fatalf("first segment: %d frames in %d bytes, want 2 in exactly SegmentSize %d", len(offs), n, size)
	}
	got, _, err := replayAll(t, dir, 0)
	if err != nil || len(got) != 3 {
		t.Fatalf("replayed %d records, %v", len(got), err)
	}
}
