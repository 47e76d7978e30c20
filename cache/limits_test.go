package cache

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
)

// TestLargestEntryIsServed checks MaxEntryBytes at its exact edge, as its
// comment defines the size (value, key, 8 bytes a tag, 56-byte header): an
// entry of exactly MaxEntryBytes is stored and served, one byte more is
// refused with ErrTooLarge. Both below and above the 64 KiB at which
// values are stored in parts.
func TestLargestEntryIsServed(t *testing.T) {
	for _, max := range []int{4 << 10, 200 << 10} {
		t.Run(fmt.Sprint(max), func(t *testing.T) {
			c := newTestCache(t, newFakeClock(), func(o *Options) { o.MaxBytes = 64 << 20; o.MaxEntryBytes = max })
			key, tags := []byte("largest"), []string{"a", "b"}
			value := bytes.Repeat([]byte{'v'}, max-56-8*len(tags)-len(key))
			if err := c.Set(key, tags, c.Snapshot(), value, 0); err != nil {
				t.Fatalf("Set of an entry of exactly MaxEntryBytes: %v", err)
			}
			if got, st := c.Get(key); st != StatusHit || !bytes.Equal(got, value) {
				t.Fatalf("entry of exactly MaxEntryBytes: %v, %d bytes", st, len(got))
			}
			over := append(value, 'v')
			if err := c.Set([]byte("toolong"), tags, c.Snapshot(), over, 0); !errors.Is(err, ErrTooLarge) {
				t.Fatalf("Set of an entry of MaxEntryBytes+1: %v, want ErrTooLarge", err)
			}
			if _, st := c.Get([]byte("toolong")); st != StatusMiss {
				t.Fatalf("entry over MaxEntryBytes stored: %v", st)
			}
		})
	}
}

// TestMostTagsIsServed checks the tag limit ErrTooLarge's comment states:
// an entry with 65535 tags is stored and served (and invalidated by its
// last tag), one with 65536 is refused.
func TestMostTagsIsServed(t *testing.T) {
	c := newTestCache(t, newFakeClock(), func(o *Options) { o.MaxBytes = 64 << 20 })
	tags := make([]string, 65536)
	for i := range tags {
		tags[i] = fmt.Sprint("t", i)
	}
	if err := c.Set([]byte("most"), tags[:65535], c.Snapshot(), []byte("v"), 0); err != nil {
		t.Fatalf("Set with 65535 tags: %v", err)
	}
	expectGet(t, c, "most", "v", StatusHit)
	if err := c.Set([]byte("over"), tags, c.Snapshot(), []byte("v"), 0); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Set with 65536 tags: %v, want ErrTooLarge", err)
	}
	expectGet(t, c, "over", "", StatusMiss)
	c.Invalidate(tags[65534])
	expectGet(t, c, "most", "", StatusMiss)
}

// TestValuesAroundPartSizeAreServed stores and reads back values of every
// size around 64 KiB, where fastcache stops taking a key and value whole
// and the cache splits them into parts.
func TestValuesAroundPartSizeAreServed(t *testing.T) {
	c := newTestCache(t, newFakeClock(), func(o *Options) { o.MaxBytes = 64 << 20 })
	value := bytes.Repeat([]byte{'x'}, 64<<10+64)
	for size := 64<<10 - 256; size <= len(value); size++ {
		key := []byte(fmt.Sprint("k", size))
		if err := c.Set(key, []string{"t"}, c.Snapshot(), value[:size], 0); err != nil {
			t.Fatalf("Set of %d bytes: %v", size, err)
		}
		if got, st := c.Get(key); st != StatusHit || len(got) != size {
			t.Fatalf("value of %d bytes: %v, %d bytes", size, st, len(got))
		}
	}
}

// TestSetReusesBuffers: Set encodes an entry in a pooled buffer, so a Set
// of a small entry allocates nothing once the pool holds one (on average
// over many calls: the race detector makes sync.Pool drop a quarter of
// what it is given, and a GC empties it).
func TestSetReusesBuffers(t *testing.T) {
	c := newTestCache(t, newFakeClock())
	key, tags, value := []byte("k"), []string{"t"}, bytes.Repeat([]byte{'v'}, 1000)
	snap := c.Snapshot()
	allocs := testing.AllocsPerRun(1000, func() {
		if err := c.Set(key, tags, snap, value, 0); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 0.5 {
		t.Fatalf("Set allocates %.2f times a call, want about 0", allocs)
	}
}
