package cache

import (
	"bytes"
	"encoding/binary"
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

// TestBigEntryDamageCounted: a value stored in parts (fastcache's SetBig)
// whose parts do not add up to the length its key records, or do not
// hash to what it records, is a miss and counts once in CorruptEntries
// (from fastcache's own counters).
func TestBigEntryDamageCounted(t *testing.T) {
	c := newTestCache(t, newFakeClock())
	key := []byte("big")
	value := bytes.Repeat([]byte("0123456789abcdef"), 200<<10/16)
	if err := c.Set(key, nil, c.Snapshot(), value, 0); err != nil {
		t.Fatal(err)
	}
	var kb [8]byte
	fk := c.fastKey(&kb, key)
	meta := c.fc.Get(nil, fk)
	if len(meta) != 16 {
		t.Fatalf("the key holds %d bytes, want SetBig's 16", len(meta))
	}
	expectGet(t, c, "big", string(value), StatusHit)
	damaged := func(what string) {
		t.Helper()
		before := c.Stats().CorruptEntries
		expectGet(t, c, "big", "", StatusMiss)
		if got := c.Stats().CorruptEntries; got != before+1 {
			t.Errorf("%s: CorruptEntries %d after %d, want one more", what, got, before)
		}
	}
	short := bytes.Clone(meta)
	binary.BigEndian.PutUint64(short[8:], binary.BigEndian.Uint64(meta[8:])-1)
	c.fc.Set(fk, short)
	damaged("length one short")

	c.fc.Set(fk, meta)
	sub := append(bytes.Clone(meta[:8]), make([]byte, 8)...) // part 0
	part := c.fc.Get(nil, sub)
	if len(part) == 0 {
		t.Fatal("part 0 not found")
	}
	part[len(part)/2] ^= 1
	c.fc.Set(sub, part)
	damaged("a part's byte flipped")
}

// TestInvalidMetavalueCounted: a read in parts (fastcache's GetBig) of a
// key that no longer holds SetBig's 16 bytes counts once in
// CorruptEntries, from fastcache's own counter. The cache's reads get
// there only when a Set replaces the key between their two reads of it
// (lookupEntry's HasGet, then GetBig); the test makes fastcache's read
// directly.
func TestInvalidMetavalueCounted(t *testing.T) {
	c := newTestCache(t, newFakeClock())
	key := []byte("big")
	var kb [8]byte
	fk := c.fastKey(&kb, key)
	c.fc.Set(fk, []byte("not 16 bytes"))
	before := c.Stats().CorruptEntries
	if v := c.fc.GetBig(nil, fk); len(v) != 0 {
		t.Fatalf("GetBig of a key of 12 bytes returned %q", v)
	}
	if got := c.Stats().CorruptEntries; got != before+1 {
		t.Fatalf("CorruptEntries %d after %d, want one more", got, before)
	}
}
