package cache

import (
	"bytes"
	"fmt"
	"testing"
)

// TestPromotionOnlyPastRewriteFraction checks RewriteFraction as its
// comment defines it: a hit rewrites (promotes) an entry only once more
// than RewriteFraction × capacity bytes were written after it; a hit on a
// younger entry, or on one just promoted, does not.
func TestPromotionOnlyPastRewriteFraction(t *testing.T) {
	c := newTestCache(t, newFakeClock(), func(o *Options) { o.MaxBytes = 32 << 20; o.RewriteFraction = 0.25 })
	value := bytes.Repeat([]byte("v"), 1000)
	set := func(key string) {
		t.Helper()
		if err := c.Set([]byte(key), nil, c.Snapshot(), value, 0); err != nil {
			t.Fatal(err)
		}
	}
	hit := func(wantPromotions uint64) {
		t.Helper()
		if _, st := c.Get([]byte("hot")); st != StatusHit {
			t.Fatalf("hot entry: %v", st)
		}
		if got := c.Stats().Promotions; got != wantPromotions {
			t.Fatalf("%d promotions, want %d", got, wantPromotions)
		}
	}
	fill := func(from, n int) {
		for i := range n {
			set(fmt.Sprintf("cold-%d", from+i))
		}
	}
	set("hot")
	hit(0)
	fill(0, 4000) // about 4 MB: an eighth of the capacity
	hit(0)
	fill(4000, 5000) // about 9 MB in all: past a quarter
	hit(1)
	hit(1) // just rewritten: young again
	fill(9000, 4000)
	hit(1)
}

// TestPromotionAtExactlyRewriteFraction pins "more than RewriteFraction ×
// capacity bytes were written since" to the byte: the bytes written are
// those fastcache's ring takes, which this test counts from fastcache's
// record layout (a 4-byte length header, the 8-byte key digest and the
// value; a value SetBig stores is cut into parts of 64 KiB - 21 bytes, each
// under a 16-byte subkey, plus a 16-byte record under the key). A hit
// after exactly that many bytes is not promoted; one byte more, it is.
// Big entries of exactly two parts and one byte more are among the writes.
func TestPromotionAtExactlyRewriteFraction(t *testing.T) {
	const (
		subvalue    = 64<<10 - 16 - 4 - 1 // fastcache's maxSubvalueLen
		rewriteAt   = 512 << 10           // 1/64 of 32 MiB
		fillers     = 17
		fillerValue = 16000
	)
	ring := func(ent int) int { // bytes one stored entry of ent bytes takes
		if 4+8+ent < 64<<10 {
			return 4 + 8 + ent
		}
		parts := (ent + subvalue - 1) / subvalue
		return ent + parts*(4+16) + 4 + 8 + 16
	}
	ent := func(key string, value int) int { return entrySize(0, len(key), value) }
	// Two big entries: exactly two parts, and one byte over (three).
	bigs := []int{2 * subvalue, 2*subvalue + 1}
	// A key that none of the writes below evicts: at 32 MiB fastcache has
	// one 64 KiB chunk per bucket, so a large write evicts what its bucket
	// held. Fixed keys and values make which bucket each takes fixed.
	const hot = "hot1"

	promoted := func(extra int) uint64 {
		t.Helper()
		c := newTestCache(t, newFakeClock(), func(o *Options) { o.MaxBytes = 32 << 20; o.RewriteFraction = 1.0 / 64 })
		if got := c.Stats().MaxBytes; got != 32<<20 {
			t.Fatalf("capacity %d, want 32 MiB", got)
		}
		set := func(key string, value int) {
			t.Helper()
			if err := c.Set([]byte(key), nil, c.Snapshot(), bytes.Repeat([]byte{'v'}, value), 0); err != nil {
				t.Fatal(err)
			}
		}
		written := 0
		set(hot, 100)
		written += ring(ent(hot, 100))
		for i, e := range bigs {
			key := fmt.Sprintf("big-%d", i)
			set(key, e-ent(key, 0))
			written += ring(e)
		}
		// Fillers bring the bytes written since "hot" to rewriteAt+extra.
		for i := range fillers {
			key := fmt.Sprintf("fill-%d", i)
			v := fillerValue
			if i == fillers-1 {
				v = rewriteAt + extra - written - ring(ent(key, 0))
			}
			set(key, v)
			written += ring(ent(key, v))
		}
		if written != rewriteAt+extra {
			t.Fatalf("test arithmetic: %d bytes written, want %d", written, rewriteAt+extra)
		}
		if _, st := c.Get([]byte(hot)); st != StatusHit {
			t.Fatalf("hot entry: %v", st)
		}
		return c.Stats().Promotions
	}
	if got := promoted(0); got != 0 {
		t.Errorf("hit after exactly RewriteFraction × capacity bytes: %d promotions, want 0", got)
	}
	if got := promoted(1); got != 1 {
		t.Errorf("hit after one byte more: %d promotions, want 1", got)
	}
}
