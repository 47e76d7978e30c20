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
