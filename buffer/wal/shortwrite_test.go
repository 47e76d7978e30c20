package wal

import (
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/strata-tsdb/strata/internal/tmpfstest"
)

// TestShortWriteThenFailedFsync checks, with wal.sync=interval, that the
// bytes a failed Log left in the segment never come back. The segment
// already holds an fsynced part (from a first recovery) and an
// acknowledged, unsynced part; then, on a full disk, a Log's write(2)
// writes part of its frames (a short write) and fails, and Close's
// recovery finds its fsync failing once (the unsynced pages lost, as
// Linux may lose them). Close must write again exactly the acknowledged
// bytes past the last good fsync, from its copy of them, cut down to the
// acknowledged frames: the copy also holds the failed Log's partial
// bytes. Replay then returns the acknowledged records, and no record of
// the failed Log.
func TestShortWriteThenFailedFsync(t *testing.T) {
	mnt := tmpfstest.Mount(t, 1<<20)
	dir := filepath.Join(mnt, "wal")
	disk := &lossyDisk{durable: map[string]int64{}}
	// No background fsync and no retry: recoveries run only before the
	// requests that follow a failure.
	w, err := open(nil, dir, Options{SyncMode: SyncInterval, SyncInterval: time.Hour, RetryInterval: time.Hour}, disk.sync)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	rng := rand.New(rand.NewPCG(3, 4))
	record := func(n int) []byte { // incompressible: the frame is as long
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	var want [][]byte
	logAcked := func(rec []byte) {
		t.Helper()
		if err := w.Log(rec); err != nil {
			t.Fatal(err)
		}
		want = append(want, rec)
	}
	filler := filepath.Join(mnt, "filler")
	fullDiskLog := func(recs ...[]byte) {
		t.Helper()
		if err := w.Log(recs...); !errors.Is(err, ErrUnwritable) || !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("log on a full disk: %v, want ErrUnwritable wrapping ENOSPC", err)
		}
	}

	// 1. A first part, fsynced by the recovery after a full disk: the
	// segment's last good fsync is then past its start.
	for range 3 {
		logAcked(record(1000))
	}
	fill(t, filler)
	fullDiskLog(record(20 << 10))
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	// 2. Acknowledged after write(2), not fsynced.
	for range 3 {
		logAcked(record(1000))
	}
	// 3. A disk with 32 KiB free: the next Log's 100 small frames (about
	// 100 KiB) are written in part, then write(2) fails.
	fill(t, filler)
	if st, err := os.Stat(filler); err != nil {
		t.Fatal(err)
	} else if err := os.Truncate(filler, st.Size()-32<<10); err != nil {
		t.Fatal(err)
	}
	before := w.Size()
	var failed [][]byte
	for range 100 {
		failed = append(failed, record(1000))
	}
	fullDiskLog(failed...)
	if w.Size() <= before {
		t.Fatalf("Size %d after the failed Log, %d before: the write was not short", w.Size(), before)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	// 4. Close: its recovery's fsync fails once, losing the unsynced
	// pages; Close writes them again and succeeds.
	disk.mu.Lock()
	disk.pattern = []bool{true}
	disk.mu.Unlock()
	if err := w.Close(); err != nil {
		t.Fatalf("Close = %v, want nil: the acknowledged bytes could be written again", err)
	}
	if disk.failed() != 1 {
		t.Fatalf("%d fsyncs failed, want 1", disk.failed())
	}
	got, logs, err := replayAll(t, dir, 0)
	if err != nil {
		t.Fatalf("replay: %v\n%s", err, logs)
	}
	if logs != "" {
		t.Errorf("replay repaired something:\n%s", logs)
	}
	equalRecords(t, got, want)
}
