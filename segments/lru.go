package segments

import (
	"container/list"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// lru holds values within a bound on their sizes, least recently used
// first out. It is spread over shards, each with its own lock and an equal
// part of the bound, so that readers looking up many keys at once (a
// query's selection) do not queue on one lock. It is safe for concurrent
// use.
type lru[K comparable, V any] struct {
	shards    []lruShard[K, V]
	shardOf   func(K) uint64 // any hash of the key; nil with one shard
	evictions prometheus.Counter
}

type lruShard[K comparable, V any] struct {
	mtx     sync.Mutex // mtx guards the fields below.
	max     int64
	size    int64
	entries map[K]*list.Element
	order   list.List // of *lruEntry, most recently used at the front
}

type lruEntry[K comparable, V any] struct {
	key  K
	v    V
	size int64
}

// newLRU returns a cache of at most maxBytes over n shards (shardOf picks
// a key's shard; it may be nil when n is 1), counting what the bound
// pushes out in evictions.
func newLRU[K comparable, V any](maxBytes int64, n int, shardOf func(K) uint64, evictions prometheus.Counter) *lru[K, V] {
	c := &lru[K, V]{shards: make([]lruShard[K, V], n), shardOf: shardOf, evictions: evictions}
	for i := range c.shards {
		c.shards[i].max = maxBytes / int64(n)
		c.shards[i].entries = map[K]*list.Element{}
	}
	return c
}

func (c *lru[K, V]) shard(k K) *lruShard[K, V] {
	if len(c.shards) == 1 {
		return &c.shards[0]
	}
	return &c.shards[c.shardOf(k)%uint64(len(c.shards))]
}

// get returns the value of k and makes it the most recently used.
func (c *lru[K, V]) get(k K) (V, bool) {
	s := c.shard(k)
	s.mtx.Lock()
	defer s.mtx.Unlock()
	e, ok := s.entries[k]
	if !ok {
		var zero V
		return zero, false
	}
	s.order.MoveToFront(e)
	return e.Value.(*lruEntry[K, V]).v, true
}

// has reports whether the cache holds k, leaving the order alone.
func (c *lru[K, V]) has(k K) bool {
	s := c.shard(k)
	s.mtx.Lock()
	defer s.mtx.Unlock()
	_, ok := s.entries[k]
	return ok
}

// put keeps v, of the given size, under k, unless k is held already (two
// readers that missed the same key both put it; the first stays) or v
// alone is larger than its shard's bound. It then drops the least
// recently used values until the shard is within its bound.
func (c *lru[K, V]) put(k K, v V, size int64) {
	s := c.shard(k)
	if size > s.max {
		return
	}
	s.mtx.Lock()
	defer s.mtx.Unlock()
	if _, ok := s.entries[k]; ok {
		return
	}
	s.entries[k] = s.order.PushFront(&lruEntry[K, V]{key: k, v: v, size: size})
	s.size += size
	for s.size > s.max {
		s.remove(s.order.Back())
		c.evictions.Inc()
	}
}

// remove drops k when the cache holds it.
func (c *lru[K, V]) remove(k K) {
	s := c.shard(k)
	s.mtx.Lock()
	defer s.mtx.Unlock()
	if e, ok := s.entries[k]; ok {
		s.remove(e)
	}
}

// removeIf drops every value whose key drop selects.
func (c *lru[K, V]) removeIf(drop func(K) bool) {
	for i := range c.shards {
		s := &c.shards[i]
		s.mtx.Lock()
		for e := s.order.Front(); e != nil; {
			next := e.Next()
			if drop(e.Value.(*lruEntry[K, V]).key) {
				s.remove(e)
			}
			e = next
		}
		s.mtx.Unlock()
	}
}

func (s *lruShard[K, V]) remove(e *list.Element) {
	x := e.Value.(*lruEntry[K, V])
	s.order.Remove(e)
	delete(s.entries, x.key)
	s.size -= x.size
}

// size returns the sizes of the values held, summed.
func (c *lru[K, V]) size() int64 {
	var n int64
	for i := range c.shards {
		s := &c.shards[i]
		s.mtx.Lock()
		n += s.size
		s.mtx.Unlock()
	}
	return n
}

// reset drops every value without counting evictions.
func (c *lru[K, V]) reset() {
	for i := range c.shards {
		s := &c.shards[i]
		s.mtx.Lock()
		clear(s.entries)
		s.order.Init()
		s.size = 0
		s.mtx.Unlock()
	}
}
