package cache

import (
	"container/list"
	"fmt"
	"math/rand"
	"testing"
)

// exactLRU is a byte-budget LRU: it evicts the least recently used entries
// until the sum of their sizes fits the budget.
type exactLRU struct {
	budget, used int
	ll           *list.List // front: most recently used
	items        map[string]*list.Element
}

type lruItem struct {
	key  string
	size int
}

func newExactLRU(budget int) *exactLRU {
	return &exactLRU{budget: budget, ll: list.New(), items: make(map[string]*list.Element)}
}

// get reports whether key is cached, marking it used.
func (l *exactLRU) get(key string) bool {
	el, ok := l.items[key]
	if ok {
		l.ll.MoveToFront(el)
	}
	return ok
}

func (l *exactLRU) add(key string, size int) {
	if el, ok := l.items[key]; ok {
		l.used += size - el.Value.(*lruItem).size
		el.Value.(*lruItem).size = size
		l.ll.MoveToFront(el)
	} else {
		l.items[key] = l.ll.PushFront(&lruItem{key: key, size: size})
		l.used += size
	}
	for l.used > l.budget {
		el := l.ll.Back()
		it := el.Value.(*lruItem)
		l.ll.Remove(el)
		delete(l.items, it.key)
		l.used -= it.size
	}
}

// zipfTrace is a fixed-seed trace of key indexes with a value size per key.
type zipfTrace struct {
	keys  []uint64
	sizes []int // value size of key i
}

// newZipfTrace returns n requests over nkeys keys, Zipf distributed with
// exponent s, each replaced with probability oneOff by a key requested only
// once (a scan: new time ranges, ad hoc queries). Values are minSize to
// maxSize bytes.
func newZipfTrace(seed int64, nkeys, n int, s, oneOff float64, minSize, maxSize int) *zipfTrace {
	rng := rand.New(rand.NewSource(seed))
	tr := &zipfTrace{keys: make([]uint64, n), sizes: make([]int, nkeys)}
	// Popularity ranks are shuffled over the keys so that hot keys are not
	// neighbours in key space.
	perm := rng.Perm(nkeys)
	z := rand.NewZipf(rng, s, 1, uint64(nkeys-1))
	for i := range tr.keys {
		tr.keys[i] = uint64(perm[z.Uint64()])
		if rng.Float64() < oneOff {
			tr.keys[i] = uint64(len(tr.sizes))
			tr.sizes = append(tr.sizes, 0)
		}
	}
	for i := range tr.sizes {
		tr.sizes[i] = minSize + rng.Intn(maxSize-minSize+1)
	}
	return tr
}

func traceKey(dst []byte, i uint64) []byte { return fmt.Appendf(dst[:0], "range:%08d", i) }

// cacheHitRatio replays tr through c: a get, and a set on a miss. The first
// warm requests only warm the cache up.
func cacheHitRatio(c *Cache, tr *zipfTrace, warm int) float64 {
	value := make([]byte, 64<<10)
	var kb, dst []byte
	hits := 0
	for i, k := range tr.keys {
		kb = traceKey(kb, k)
		var st Status
		dst, st = c.GetAppend(dst[:0], kb)
		if st != StatusHit {
			_ = c.Set(kb, nil, c.Snapshot(), value[:tr.sizes[k]], 0)
		} else if i >= warm {
			hits++
		}
	}
	return float64(hits) / float64(len(tr.keys)-warm)
}

// lruHitRatio replays tr through an exact LRU of budget bytes, counting each
// entry as the bytes it takes in fastcache (untagged).
func lruHitRatio(budget int, tr *zipfTrace, warm int) float64 {
	lru := newExactLRU(budget)
	var kb []byte
	hits := 0
	for i, k := range tr.keys {
		kb = traceKey(kb, k)
		if lru.get(string(kb)) {
			if i >= warm {
				hits++
			}
		} else {
			lru.add(string(kb), 4+8+entrySize(0, len(kb), tr.sizes[k]))
		}
	}
	return float64(hits) / float64(len(tr.keys)-warm)
}

// The promotion scheme must keep at least 95% of an exact LRU's hit ratio
// on Zipf traces. Deterministic: fixed seeds, one goroutine, a fake clock.
//
// Plain write-order eviction (FIFO, RewriteFraction 0) is close to LRU on a
// pure Zipf trace already; the trace with one-off keys is where it falls
// behind, and where promotion must beat it.
func TestHitRatioVsExactLRU(t *testing.T) {
	if testing.Short() {
		t.Skip("replays 900,000 requests")
	}
	for _, tc := range []struct {
		name      string
		s, oneOff float64
	}{
		{"zipf1.01", 1.01, 0},
		{"zipf1.2", 1.2, 0},
		{"zipf1.01+30%one-off", 1.01, 0.3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// 200,000 keys of 200 B to 2 KiB (1.1 KiB on average, 220
			// MiB in all) through a 32 MiB cache.
			tr := newZipfTrace(1, 200_000, 300_000, tc.s, tc.oneOff, 200, 2048)
			c := newTestCache(t, newFakeClock())
			approx := cacheHitRatio(c, tr, 75_000)
			exact := lruHitRatio(int(c.capacity), tr, 75_000)
			fifo := cacheHitRatio(newTestCache(t, newFakeClock(), func(o *Options) { o.RewriteFraction = 0 }), tr, 75_000)
			t.Logf("hit ratio: exact LRU %.4f, promotion %.4f (%.1f%%, %d promotions), FIFO %.4f (%.1f%%)",
				exact, approx, 100*approx/exact, c.Stats().Promotions, fifo, 100*fifo/exact)
			if approx < 0.95*exact {
				t.Errorf("hit ratio %.4f below 95%% of exact LRU's %.4f", approx, exact)
			}
			if tc.oneOff > 0 && approx <= fifo {
				t.Errorf("promotion %.4f no better than FIFO %.4f", approx, fifo)
			}
		})
	}
}

// BenchmarkHitRatio reports the hit ratios of the cache, by RewriteFraction
// (0: FIFO), and of an exact LRU of the same byte budget on Zipf traces.
func BenchmarkHitRatio(b *testing.B) {
	for _, oneOff := range []float64{0, 0.3} {
		tr := newZipfTrace(1, 200_000, 400_000, 1.01, oneOff, 200, 2048)
		exact := lruHitRatio(32<<20, tr, 100_000)
		for _, fraction := range []float64{0, 0.125, 0.25, 0.5} {
			b.Run(fmt.Sprintf("one-off=%v/rewrite=%v", oneOff, fraction), func(b *testing.B) {
				var approx float64
				for b.Loop() {
					c := newTestCache(b, newFakeClock(), func(o *Options) { o.RewriteFraction = fraction })
					approx = cacheHitRatio(c, tr, 100_000)
					_ = c.Close()
				}
				b.ReportMetric(approx, "hit-ratio")
				b.ReportMetric(exact, "lru-hit-ratio")
				b.ReportMetric(approx/exact, "of-lru")
			})
		}
	}
}
