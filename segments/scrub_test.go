package segments

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestScrubQuarantinesDamage damages one published segment's chunks file
// in place (as a disk would, under the mapping) while queries read the
// set: the scrub must take exactly that segment out of the set, move it to
// quarantine and count it, and leave the sound ones alone pass after pass.
func TestScrubQuarantinesDamage(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "segments")
	set, err := OpenSet(nil, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	var metas []Meta
	for i := range 3 {
		metas = append(metas, writeTestSegment(t, dir, Meta{ID: NewID(time.Now().Add(time.Duration(i) * time.Millisecond)), Seq: uint64(i + 1)}, genSeries(uint64(i), 20, 3)))
	}
	if err := set.Publish(metas); err != nil {
		t.Fatal(err)
	}
	m := NewScrubMetrics(nil)
	sc := NewScrubber(nil, set, ScrubOptions{BytesPerSecond: 1 << 30, Pause: time.Millisecond}, m)
	sc.Start()
	defer sc.Stop()

	// Readers hold segments meanwhile, as queries do.
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			segs, release := set.Acquire(minInt64, maxInt64)
			for _, s := range segs {
				if _, err := readAll(s); err != nil && s.Meta().ID != metas[1].ID {
					t.Errorf("read sound segment %s: %v", s.Meta().ID, err)
				}
			}
			release()
		}
	}()
	defer func() { close(stop); <-done }()

	waitUntil(t, "two clean passes", func() bool { return testutil.ToFloat64(m.Passes) >= 2 })
	if n := testutil.ToFloat64(m.Corrupt); n != 0 || len(set.Segments()) != 3 {
		t.Fatalf("a scrub of sound segments found %v damaged, left %d of 3", n, len(set.Segments()))
	}

	path := filepath.Join(dir, metas[1].ID, "chunks", "000001")
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	b := []byte{0}
	if _, err := f.ReadAt(b, st.Size()/2); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x08
	if _, err := f.WriteAt(b, st.Size()/2); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	waitUntil(t, "the damaged segment quarantined", func() bool {
		_, err := os.Stat(filepath.Join(dir, quarantineDirname, metas[1].ID))
		return err == nil
	})
	var ids []string
	for _, in := range set.Segments() {
		ids = append(ids, in.Meta.ID)
	}
	if !slices.Equal(ids, []string{metas[0].ID, metas[2].ID}) {
		t.Fatalf("segments after the scrub: %v, want %s and %s", ids, metas[0].ID, metas[2].ID)
	}
	if n := testutil.ToFloat64(m.Corrupt); n != 1 {
		t.Fatalf("strata_segments_scrub_corrupt_total = %v, want 1", n)
	}
	if n := set.Quarantined(); n != 1 {
		t.Fatalf("Quarantined() = %d, want 1", n)
	}
	if testutil.ToFloat64(m.ScrubbedBytes) == 0 {
		t.Fatal("no scrubbed bytes counted")
	}
}

// waitUntil polls cond for a generous while.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}
