package segments

import (
	"container/list"
	"sync"
	"unsafe"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
)

// The series cache holds decoded series entries of the index (a series'
// label set and chunk metas, statistics included) for the Selects queries
// make (SelectShared): a dashboard's queries read the same series of the
// same segments again and again, and decoding their entries was a third of
// a cold query's CPU (docs/benchmarks.md). Segments are immutable, so an
// entry never goes stale; it leaves the cache when its segment closes or
// when the bound pushes it out, least recently used first.

// seriesCacheShards spreads the cache over locks: a query's selection
// looks up every series of every segment it reads.
const seriesCacheShards = 16

// seriesEntryOverhead is what a cached entry costs besides its labels
// and metas: its struct, list element and map slot.
const seriesEntryOverhead = 160

type seriesCache struct {
	shards [seriesCacheShards]seriesCacheShard

	hits, misses, evictions prometheus.Counter
	bytes, max              prometheus.GaugeFunc
}

type seriesCacheShard struct {
	mtx     sync.Mutex // mtx guards the fields below.
	max     int64
	size    int64
	entries map[seriesKey]*list.Element
	lru     list.List // of *cachedSeries, most recently used at the front
}

type seriesKey struct {
	region uint64 // the index's key (PageCache.newKey)
	ref    uint64 // the series entry's offset in the index
}

type cachedSeries struct {
	key  seriesKey
	lset labels.Labels
	chks []ChunkMeta
	size int64
}

func newSeriesCache(maxBytes int64) *seriesCache {
	c := &seriesCache{}
	for i := range c.shards {
		c.shards[i].max = maxBytes / seriesCacheShards
		c.shards[i].entries = map[seriesKey]*list.Element{}
	}
	c.hits = prometheus.NewCounter(prometheus.CounterOpts{Name: "strata_segment_series_cache_hits_total",
		Help: "Series entries a query's selection found decoded in the series cache."})
	c.misses = prometheus.NewCounter(prometheus.CounterOpts{Name: "strata_segment_series_cache_misses_total",
		Help: "Series entries a query's selection decoded from a segment's index."})
	c.evictions = prometheus.NewCounter(prometheus.CounterOpts{Name: "strata_segment_series_cache_evictions_total",
		Help: "Series entries dropped from the series cache to stay within its size."})
	c.bytes = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "strata_segment_series_cache_bytes",
		Help: "Bytes held by the series cache (estimated: label sets, chunk metas and bookkeeping)."}, func() float64 { return float64(c.size()) })
	c.max = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "strata_segment_series_cache_max_bytes",
		Help: "The bound on the series cache's bytes."}, func() float64 { return float64(maxBytes) })
	return c
}

func (c *seriesCache) collectors() []prometheus.Collector {
	return []prometheus.Collector{c.hits, c.misses, c.evictions, c.bytes, c.max}
}

func (c *seriesCache) shard(k seriesKey) *seriesCacheShard {
	h := (k.region*0x9e3779b97f4a7c15 ^ k.ref) * 0xff51afd7ed558ccd
	return &c.shards[h>>60]
}

func (c *seriesCache) size() int64 {
	var n int64
	for i := range c.shards {
		s := &c.shards[i]
		s.mtx.Lock()
		n += s.size
		s.mtx.Unlock()
	}
	return n
}

// get returns the cached entry of k; its labels and metas are shared and
// must not be modified.
func (c *seriesCache) get(k seriesKey) (labels.Labels, []ChunkMeta, bool) {
	s := c.shard(k)
	s.mtx.Lock()
	e, ok := s.entries[k]
	if ok {
		s.lru.MoveToFront(e)
	}
	s.mtx.Unlock()
	if !ok {
		c.misses.Inc()
		return labels.EmptyLabels(), nil, false
	}
	c.hits.Inc()
	cs := e.Value.(*cachedSeries)
	return cs.lset, cs.chks, true
}

// put caches the entry of k, which the caller no longer modifies; chks
// should be clipped (cap = len), so that an append to it copies.
func (c *seriesCache) put(k seriesKey, lset labels.Labels, chks []ChunkMeta) {
	n := seriesEntryOverhead + int64(lset.ByteSize()) + int64(cap(chks))*int64(unsafe.Sizeof(ChunkMeta{}))
	s := c.shard(k)
	if n > s.max {
		return
	}
	s.mtx.Lock()
	defer s.mtx.Unlock()
	if _, ok := s.entries[k]; ok {
		return // another query put it first
	}
	s.entries[k] = s.lru.PushFront(&cachedSeries{key: k, lset: lset, chks: chks, size: n})
	s.size += n
	for s.size > s.max {
		e := s.lru.Back()
		cs := e.Value.(*cachedSeries)
		s.lru.Remove(e)
		delete(s.entries, cs.key)
		s.size -= cs.size
		c.evictions.Inc()
	}
}

// drop removes the entries of an index, when its segment closes.
func (c *seriesCache) drop(region uint64) {
	for i := range c.shards {
		s := &c.shards[i]
		s.mtx.Lock()
		for e := s.lru.Front(); e != nil; {
			next := e.Next()
			if cs := e.Value.(*cachedSeries); cs.key.region == region {
				s.lru.Remove(e)
				delete(s.entries, cs.key)
				s.size -= cs.size
			}
			e = next
		}
		s.mtx.Unlock()
	}
}

// useSeriesCache has r keep its decoded series entries in cache's series
// cache (nil: none).
func (r *indexReader) useSeriesCache(cache *PageCache) {
	if cache != nil {
		r.cache, r.cacheKey = cache.series, cache.newKey()
	}
}
