package cache

import (
	"fmt"
	"testing"
)

// TestEvictedBytesAcrossReset: EvictedBytes counts the bytes overwritten to
// make room, at most what was written, and carries over Reset (which
// replaces fastcache's counters): it never goes down, and evictions after
// a Reset add to it.
func TestEvictedBytesAcrossReset(t *testing.T) {
	c := newTestCache(t, newFakeClock())
	value := make([]byte, 60<<10) // one fastcache slot each
	written := uint64(0)
	fill := func(round int) {
		t.Helper()
		for i := range 800 { // 48 MiB into a 32 MiB cache
			if err := c.Set(fmt.Appendf(nil, "k%d-%d", round, i), nil, c.Snapshot(), value, 0); err != nil {
				t.Fatal(err)
			}
			written += uint64(len(value))
		}
	}
	if s := c.Stats(); s.EvictedBytes != 0 {
		t.Fatalf("EvictedBytes %d before any write", s.EvictedBytes)
	}
	fill(0)
	first := c.Stats().EvictedBytes
	if first == 0 || first > written+written/8 {
		t.Fatalf("EvictedBytes %d after writing %d bytes into a 32 MiB cache, want more than 0 and about at most that", first, written)
	}
	t.Logf("evicted %d of %d bytes written", first, written)
	if err := c.Reset(); err != nil {
		t.Fatal(err)
	}
	if s := c.Stats(); s.EvictedBytes != first || s.Entries != 0 {
		t.Fatalf("after Reset: EvictedBytes %d, entries %d; want %d carried over and 0", s.EvictedBytes, s.Entries, first)
	}
	fill(1)
	if s := c.Stats(); s.EvictedBytes <= first || s.EvictedBytes > written+written/8 {
		t.Fatalf("EvictedBytes %d after a Reset and %d more bytes, want above %d and about at most %d", s.EvictedBytes, written/2, first, written)
	}
}
