package segments

import (
	"fmt"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestLRU: the bound holds, the least recently used value goes first (a
// get makes a value recent), the first of two puts of a key stays, a value
// larger than the bound is not kept (one of exactly the bound is), and removals give their bytes back
// without counting as evictions.
func TestLRU(t *testing.T) {
	ev := prometheus.NewCounter(prometheus.CounterOpts{Name: "x"})
	c := newLRU[int, string](30, 1, nil, ev)
	c.put(1, "a", 10)
	c.put(2, "b", 10)
	c.put(3, "c", 10)
	if _, ok := c.get(1); !ok { // 1 is now the most recent; 2 the least
		t.Fatal("1 missing")
	}
	c.put(4, "d", 10)
	if c.has(2) || !c.has(1) || !c.has(3) || !c.has(4) {
		t.Fatalf("after the fourth put: has 1 %v 2 %v 3 %v 4 %v, want 2 out", c.has(1), c.has(2), c.has(3), c.has(4))
	}
	if n := testutil.ToFloat64(ev); n != 1 {
		t.Fatalf("%v evictions, want 1", n)
	}
	c.put(3, "c2", 10)
	if v, _ := c.get(3); v != "c" {
		t.Fatalf("second put replaced the first: %q", v)
	}
	c.put(5, "big", 31)
	if c.has(5) || c.size() != 30 {
		t.Fatalf("a value over the bound: kept %v, size %d", c.has(5), c.size())
	}
	c.remove(1)
	c.removeIf(func(k int) bool { return k == 4 })
	if c.has(1) || c.has(4) || c.size() != 10 || testutil.ToFloat64(ev) != 1 {
		t.Fatalf("after removals: has 1 %v 4 %v, size %d, evictions %v", c.has(1), c.has(4), c.size(), testutil.ToFloat64(ev))
	}
	c.reset()
	if c.has(3) || c.size() != 0 {
		t.Fatal("reset kept a value")
	}
	// A value of exactly the bound is kept.
	c.put(6, "whole", 30)
	if !c.has(6) || c.size() != 30 {
		t.Fatalf("a value of exactly the bound: kept %v, size %d", c.has(6), c.size())
	}
}

// TestLRUShardsConcurrent: readers and writers on every shard at once
// (under -race) never see another key's value, and every shard stays
// within its part of the bound.
func TestLRUShardsConcurrent(t *testing.T) {
	ev := prometheus.NewCounter(prometheus.CounterOpts{Name: "x"})
	c := newLRU[uint64, string](16*50, 16, func(k uint64) uint64 { return k * 0x9e3779b97f4a7c15 >> 60 }, ev)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				k := uint64((i*7 + g) % 300)
				if v, ok := c.get(k); ok && v != fmt.Sprint(k) {
					errs <- fmt.Errorf("key %d holds %q", k, v)
					return
				}
				c.put(k, fmt.Sprint(k), 10)
				if i%500 == 0 {
					c.removeIf(func(k uint64) bool { return k%3 == 0 })
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for i := range c.shards {
		if s := &c.shards[i]; s.size > s.max || s.size != int64(10*len(s.entries)) || s.order.Len() != len(s.entries) {
			t.Fatalf("shard %d: size %d bound %d entries %d list %d", i, s.size, s.max, len(s.entries), s.order.Len())
		}
	}
	if testutil.ToFloat64(ev) == 0 {
		t.Fatal("300 keys of 10 bytes in 800 bytes: nothing evicted")
	}
}
