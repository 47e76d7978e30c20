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
