package wal

import (
	"errors"
	"math/rand"
	"os"
	"sync"
	"testing"
	"time"
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

// TestUnsyncedBytesBounded checks the bound docs/wal-format.md gives for
// wal.sync=interval: at most 32 MiB are acknowledged without an fsync
// (past that a commit fsyncs before it acknowledges), and no more fsyncs
// than that bound needs happen before the interval (an hour here).
func TestUnsyncedBytesBounded(t *testing.T) {
	m := NewMetrics(nil)
	w := newTestWAL(t, Options{SyncMode: SyncInterval, SyncInterval: time.Hour, Metrics: m})
	rec := make([]byte, 1<<20) // random: stored as it is, 1 MiB and 9 bytes a frame
	rand.New(rand.NewSource(1)).Read(rec)
	base := counterValue(t, m.Fsyncs)
	var at []int // the records whose Log fsynced
	for i := 1; i <= 70; i++ {
		if err := w.Log(rec); err != nil {
			t.Fatal(err)
		}
		if n := counterValue(t, m.Fsyncs) - base; n > float64(len(at)) {
			at = append(at, i)
		}
	}
	// Every 32nd record or so (a header's bytes and 9 a frame are slack).
	prev := 0
	for _, i := range at {
		if gap := i - prev; gap < 31 || gap > 33 {
			t.Fatalf("fsyncs at records %v (of 1 MiB): want one about every 32 MiB", at)
		}
		prev = i
	}
	if len(at) != 2 {
		t.Fatalf("fsyncs at records %v (of 1 MiB), want 2 in 70 MiB", at)
	}
}

// TestUnsyncedBytesAtTheBound checks the bound of TestUnsyncedBytesBounded
// at its edge: with wal.sync=interval, records whose frames leave exactly
// 32 MiB unsynced are acknowledged without an fsync, and the next byte
// forces one.
func TestUnsyncedBytesAtTheBound(t *testing.T) {
	m := NewMetrics(nil)
	w := newTestWAL(t, Options{SyncMode: SyncInterval, SyncInterval: time.Hour, Metrics: m})
	rng := rand.New(rand.NewSource(1))
	random := func(n int) []byte { // stored as it is: a frame of n+9 bytes
		b := make([]byte, n)
		rng.Read(b)
		return b
	}
	base := counterValue(t, m.Fsyncs)
	logged := 0
	for logged < maxUnsynced {
		n := min(1<<20, maxUnsynced-logged) - frameHeaderSize
		if err := w.Log(random(n)); err != nil {
			t.Fatal(err)
		}
		logged += n + frameHeaderSize
	}
	if got := w.Size(); got != maxUnsynced {
		t.Fatalf("Size %d, want exactly %d", got, maxUnsynced)
	}
	if n := counterValue(t, m.Fsyncs) - base; n != 0 {
		t.Fatalf("%v fsyncs with exactly 32 MiB unsynced, want 0", n)
	}
	if err := w.Log(random(1)); err != nil {
		t.Fatal(err)
	}
	if n := counterValue(t, m.Fsyncs) - base; n != 1 {
		t.Fatalf("%v fsyncs with one byte past 32 MiB unsynced, want 1", n)
	}
}

// TestSegmentFilledExactly checks SegmentSize at its edge: records whose
// frames fill a segment to exactly SegmentSize bytes stay in it, and the
// next record starts a new segment, also when they came in one call.
func TestSegmentFilledExactly(t *testing.T) {
	recs := make([][]byte, 4)
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
		// One record, then three in one call: the frames of a call are
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
	size := header + 3*frame
	logAll(dir, size)
	segs, err := listSegments(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(segs) != 2 {
		t.Fatalf("%d segments, want 2 (three records filling the first exactly, one in the second)", len(segs))
	}
	if offs, n := frameOffsets(t, segs[0].path); len(offs) != 3 || n != size {
		t.Fatalf("first segment: %d frames in %d bytes, want 3 in exactly SegmentSize %d", len(offs), n, size)
	}
	got, _, err := replayAll(t, dir, 0)
	if err != nil || len(got) != 4 {
		t.Fatalf("replayed %d records, %v", len(got), err)
	}
}

// TestSegmentSizeUnderGroupCommit logs records of 1000 random bytes from 8
// writers at once into segments of room for 4 frames, the first fsync held
// until the other seven calls are queued, so that the writer commits seven
// calls in one batch: no segment may grow past SegmentSize, whichever calls
// share a batch, and every record replays.
func TestSegmentSizeUnderGroupCommit(t *testing.T) {
	dir := t.TempDir()
	rec := make([]byte, 1000)
	rand.New(rand.NewSource(2)).Read(rec)
	// The sizes of a segment's header and of a frame, from one segment.
	w, err := Open(nil, dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := w.Log(rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	offs, _ := frameOffsets(t, segmentPath(dir, 0))
	size := offs[0] + 4*(offs[1]-offs[0])

	dir = t.TempDir()
	// The first fsync waits until the seven other writers' calls are
	// queued (a bounded while), so that the next batch commits seven calls.
	var once sync.Once
	slowSync := func(f *os.File) error {
		once.Do(func() {
			for deadline := time.Now().Add(10 * time.Second); len(w.reqs) < 7 && time.Now().Before(deadline); {
				time.Sleep(100 * time.Microsecond)
			}
		})
		return f.Sync()
	}
	if w, err = open(nil, dir, Options{SegmentSize: size}, slowSync); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				if err := w.Log(rec); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	assertSegmentSizes(t, dir, size)
	got, logs, err := replayAll(t, dir, 0)
	if err != nil || len(got) != 400 {
		t.Fatalf("replayed %d records (%v), want 400\n%s", len(got), err, logs)
	}
}
