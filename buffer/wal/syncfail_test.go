package wal

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"
)

// lossyDisk is a sync hook that fails fsyncs on demand the way Linux does
// (fsyncgate): the failed fsync reports EIO once, the pages it could not
// write are marked clean, and here they are also evicted, so what reads
// back is what the disk held: zeros. A later fsync succeeds without
// writing them. Only a writer that writes those bytes again keeps them.
type lossyDisk struct {
	mu       sync.Mutex
	failing  bool             // fail every fsync while set
	failNext int              // fail this many more fsyncs, then succeed
	pattern  []bool           // fail (true) or not each next fsync, before the above
	failures int              // fsyncs failed so far
	durable  map[string]int64 // per file, the size its last good fsync covered
	// images holds, per file, its bytes at its last good fsync, when set
	// (non-nil): what a power cut leaves of it.
	images map[string][]byte
}

func (d *lossyDisk) sync(f *os.File) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	name := f.Name()
	fail := d.failing || d.failNext > 0
	if len(d.pattern) > 0 {
		fail, d.pattern = d.pattern[0], d.pattern[1:]
	}
	if !fail {
		d.durable[name] = st.Size()
		if d.images != nil {
			b, err := os.ReadFile(name)
			if err != nil {
				return err
			}
			d.images[name] = b
		}
		return f.Sync()
	}
	d.failures++
	if d.failNext > 0 {
		d.failNext--
	}
	if from := d.durable[name]; st.Size() > from {
		g, err := os.OpenFile(name, os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		_, err = g.WriteAt(make([]byte, st.Size()-from), from)
		if cerr := g.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	return &os.PathError{Op: "sync", Path: name, Err: syscall.EIO}
}

func (d *lossyDisk) set(failing bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.failing = failing
}

// failFor fails the next n fsyncs only.
func (d *lossyDisk) failFor(n int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.failNext = n
}

func (d *lossyDisk) failed() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.failures
}

// TestBackgroundFsyncFailure checks that with wal.sync=interval a failed
// background fsync loses nothing acknowledged: the records acknowledged
// before it (written but not yet fsynced) replay after Close, the WAL
// refuses writes (ErrUnwritable) while fsyncs fail, and a write is
// acknowledged again only once the lost bytes were written again and
// fsynced. On the old writer a later fsync "succeeded", the records of
// before the failure were gone (zeros) and replay met damage.
func TestBackgroundFsyncFailure(t *testing.T) {
	dir := t.TempDir()
	disk := &lossyDisk{durable: map[string]int64{}}
	w, err := open(nil, dir, Options{SyncMode: SyncInterval, SyncInterval: 5 * time.Millisecond, RetryInterval: 5 * time.Millisecond}, disk.sync)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	rec := func(i int) []byte { return fmt.Appendf(nil, "record %03d %s", i, "some padding to compress") }
	var want [][]byte
	log := func(i int) error {
		err := w.Log(rec(i))
		if err == nil {
			want = append(want, rec(i))
		}
		return err
	}
	for i := range 10 {
		if err := log(i); err != nil {
			t.Fatal(err)
		}
	}
	// Wait until a background fsync covered them.
	waitFor(t, "a background fsync", func() bool {
		disk.mu.Lock()
		defer disk.mu.Unlock()
		return disk.durable[segmentPath(dir, 0)] >= w.Size() && w.Size() > 0
	})
	disk.set(true)
	// Acknowledged after write(2), before any fsync, until the background
	// fsync fails (the first one always is: the file is clean until it).
	i, acked := 10, 0
	for deadline := time.Now().Add(time.Minute); ; i++ {
		err := log(i)
		if errors.Is(err, ErrUnwritable) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		acked++
		if disk.failed() > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the background fsync did not fail")
		}
		time.Sleep(time.Millisecond)
	}
	if acked == 0 || disk.failed() == 0 {
		t.Fatalf("%d records acknowledged before the failure, %d fsyncs failed", acked, disk.failed())
	}
	// While fsyncs fail, nothing is acknowledged.
	for range 5 {
		i++
		if err := log(i); !errors.Is(err, ErrUnwritable) {
			t.Errorf("Log while fsyncs fail = %v, want ErrUnwritable", err)
		}
	}
	disk.set(false)
	waitFor(t, "the WAL to heal", func() bool { i++; return log(i) == nil })
	for range 4 {
		i++
		if err := log(i); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got, logs, err := replayAll(t, dir, 0)
	if err != nil {
		t.Fatalf("replay: %v\n%s", err, logs)
	}
	if !slices.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("replayed %d records:\n%q\nwant the %d acknowledged:\n%q", len(got), got, len(want), want)
	}
}

// TestCloseHealsFailedFsync checks Close's last fsync, with wal.sync=interval
// (records acknowledged after write(2), none fsynced yet): when it fails once
// and the pages it could not write are lost, Close writes the acknowledged
// bytes again and fsyncs them, and reports success only because that worked.
// Every acknowledged record then replays, also from what a power cut right
// after Close would leave (each file as its last good fsync saw it). On a
// second failure, Close reports it.
func TestCloseHealsFailedFsync(t *testing.T) {
	for _, c := range []struct {
		name    string
		fails   []bool // the fsyncs from Close's on: failed (true) or not
		wantErr bool
	}{
		{"none fails", nil, false},
		{"Close's fails", []bool{true}, false},
		// Close's fsync, then restore's of the segment cut back (which
		// succeeds) and of the bytes written again (which fails).
		{"the rewrite's fails", []bool{true, false, true}, true},
		{"every one fails", slices.Repeat([]bool{true}, 10), true},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			disk := &lossyDisk{durable: map[string]int64{}, images: map[string][]byte{}}
			// No background fsync and no retry before Close.
			w, err := open(nil, dir, Options{SyncMode: SyncInterval, SyncInterval: time.Hour, RetryInterval: time.Hour}, disk.sync)
			if err != nil {
				t.Fatal(err)
			}
			var want [][]byte
			for i := range 20 {
				rec := fmt.Appendf(nil, "record %03d %s", i, "some padding to compress")
				if err := w.Log(rec); err != nil {
					t.Fatal(err)
				}
				want = append(want, rec)
			}
			disk.mu.Lock()
			disk.pattern = c.fails
			disk.mu.Unlock()
			err = w.Close()
			if want := len(slices.DeleteFunc(slices.Clone(c.fails), func(f bool) bool { return !f })); disk.failed() == 0 && want > 0 || disk.failed() > want {
				t.Fatalf("%d fsyncs failed, want 1 to %d", disk.failed(), want)
			}
			if c.wantErr {
				if !errors.Is(err, syscall.EIO) {
					t.Fatalf("Close with fsyncs failing = %v, want EIO", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Close = %v, want nil: the lost bytes were written again and fsynced", err)
			}
			// What a power cut right after Close leaves: each file as its
			// last good fsync saw it.
			cut := t.TempDir()
			for name, b := range disk.images {
				if err := os.WriteFile(filepath.Join(cut, filepath.Base(name)), b, 0o666); err != nil {
					t.Fatal(err)
				}
			}
			for _, d := range []string{dir, cut} {
				got, logs, err := replayAll(t, d, 0)
				if err != nil {
					t.Fatalf("replay: %v\n%s", err, logs)
				}
				if !slices.EqualFunc(got, want, slices.Equal) {
					t.Fatalf("replayed %d records (%s):\n%q\nwant the %d acknowledged:\n%q", len(got), d, got, len(want), want)
				}
			}
		})
	}
}

// waitFor polls cond until it holds, failing the test after a generous
// deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); !cond(); time.Sleep(2 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// TestSizeAfterRecovery checks that Size, the WAL's bytes on disk (the
// strata_wal_bytes gauge and /api/v1/status/tsdb's WAL size), still equals
// the size of its segment files after a failed fsync and the recovery that
// follows: the failed request's bytes and recover's probe are cut off the
// file, and Size must lose exactly what the file lost.
func TestSizeAfterRecovery(t *testing.T) {
	dir := t.TempDir()
	disk := &lossyDisk{durable: map[string]int64{}}
	w, err := open(nil, dir, Options{SyncMode: SyncAlways, RetryInterval: time.Hour}, disk.sync)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	onDisk := func() int64 {
		t.Helper()
		segs, err := listSegments(dir)
		if err != nil {
			t.Fatal(err)
		}
		var n int64
		for _, s := range segs {
			st, err := os.Stat(s.path)
			if err != nil {
				t.Fatal(err)
			}
			n += st.Size()
		}
		return n
	}
	rec := []byte("a record that fails its fsync once")
	if err := w.Log(rec); err != nil {
		t.Fatal(err)
	}
	disk.failFor(1)
	if err := w.Log(rec); !errors.Is(err, ErrUnwritable) {
		t.Fatalf("Log with its fsync failing = %v, want ErrUnwritable", err)
	}
	for range 2 { // the first recovers the WAL before it is written
		if err := w.Log(rec); err != nil {
			t.Fatal(err)
		}
	}
	if disk.failed() != 1 {
		t.Fatalf("%d fsyncs failed, want 1", disk.failed())
	}
	if got, want := w.Size(), onDisk(); got != want {
		t.Fatalf("Size after a failed fsync and its recovery = %d, segment files hold %d bytes", got, want)
	}
}
