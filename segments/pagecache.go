package segments

import (
	"container/list"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// DefaultPageCacheSize is the size of the page cache of a Set, in bytes of
// decompressed pages.
const DefaultPageCacheSize = 64 << 20

// PageCache holds decompressed pages of compressed segments (format
// version 2), least recently used first out, within a bound on their
// uncompressed bytes. Chunks read from a page stay valid after the page
// leaves the cache: they keep its memory alive. It is safe for concurrent
// use; two readers missing the same page both decompress it.
//
// PageCache also holds, within a bound of its own (half of maxBytes), the
// decoded series entries that queries' selections read (see
// seriesCache and Segment.SelectShared).
//
// PageCache is a prometheus.Collector of its hits, misses and size, and of
// its series entries'.
type PageCache struct {
	max     int64
	nextKey atomic.Uint64
	series  *seriesCache

	mtx   sync.Mutex // mtx guards the fields below.
	size  int64
	pages map[pageKey]*list.Element
	lru   list.List // of *cachedPage, most recently used at the front

	hits, misses, evictions prometheus.Counter
	bytes, count            prometheus.GaugeFunc
}

type pageKey struct {
	region uint64
	page   int
}

type cachedPage struct {
	key pageKey
	b   []byte
}

// NewPageCache returns a cache of at most maxBytes of decompressed pages;
// maxBytes <= 0 means DefaultPageCacheSize. A page larger than the bound
// is read but not kept.
func NewPageCache(maxBytes int64) *PageCache {
	if maxBytes <= 0 {
		maxBytes = DefaultPageCacheSize
	}
	c := &PageCache{max: maxBytes, pages: map[pageKey]*list.Element{}, series: newSeriesCache(maxBytes / 2)}
	c.hits = prometheus.NewCounter(prometheus.CounterOpts{Name: "strata_segment_page_cache_hits_total",
		Help: "Reads of a compressed segment page found decompressed in the page cache."})
	c.misses = prometheus.NewCounter(prometheus.CounterOpts{Name: "strata_segment_page_cache_misses_total",
		Help: "Reads of a compressed segment page that decompressed it."})
	c.evictions = prometheus.NewCounter(prometheus.CounterOpts{Name: "strata_segment_page_cache_evictions_total",
		Help: "Pages dropped from the page cache to stay within its size."})
	c.bytes = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "strata_segment_page_cache_bytes",
		Help: "Decompressed bytes held by the page cache."}, func() float64 { return float64(c.Size()) })
	c.count = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "strata_segment_page_cache_max_bytes",
		Help: "The bound on the page cache's decompressed bytes."}, func() float64 { return float64(c.max) })
	return c
}

// Describe implements prometheus.Collector.
func (c *PageCache) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range c.collectors() {
		m.Describe(ch)
	}
}

// Collect implements prometheus.Collector.
func (c *PageCache) Collect(ch chan<- prometheus.Metric) {
	for _, m := range c.collectors() {
		m.Collect(ch)
	}
}

func (c *PageCache) collectors() []prometheus.Collector {
	return append([]prometheus.Collector{c.hits, c.misses, c.evictions, c.bytes, c.count}, c.series.collectors()...)
}

var _ prometheus.Collector = (*PageCache)(nil)

// Size returns the decompressed bytes the cache holds.
func (c *PageCache) Size() int64 {
	c.mtx.Lock()
	defer c.mtx.Unlock()
	return c.size
}

// newKey returns a region key no other region of this cache has.
func (c *PageCache) newKey() uint64 { return c.nextKey.Add(1) }

func (c *PageCache) get(region uint64, page int) ([]byte, bool) {
	k := pageKey{region, page}
	c.mtx.Lock()
	e, ok := c.pages[k]
	if ok {
		c.lru.MoveToFront(e)
	}
	c.mtx.Unlock()
	if !ok {
		c.misses.Inc()
		return nil, false
	}
	c.hits.Inc()
	return e.Value.(*cachedPage).b, true
}

// has reports whether the cache holds the page, counting neither a hit
// nor a miss.
func (c *PageCache) has(region uint64, page int) bool {
	c.mtx.Lock()
	defer c.mtx.Unlock()
	_, ok := c.pages[pageKey{region, page}]
	return ok
}

func (c *PageCache) put(region uint64, page int, b []byte) {
	n := int64(cap(b))
	if n > c.max {
		return
	}
	k := pageKey{region, page}
	c.mtx.Lock()
	defer c.mtx.Unlock()
	if _, ok := c.pages[k]; ok {
		return // another reader put it first
	}
	c.pages[k] = c.lru.PushFront(&cachedPage{key: k, b: b})
	c.size += n
	for c.size > c.max {
		e := c.lru.Back()
		p := e.Value.(*cachedPage)
		c.lru.Remove(e)
		delete(c.pages, p.key)
		c.size -= int64(cap(p.b))
		c.evictions.Inc()
	}
}

// drop removes the pages of a region, when its segment closes.
func (c *PageCache) drop(region uint64, pages int) {
	c.mtx.Lock()
	defer c.mtx.Unlock()
	for i := range pages {
		k := pageKey{region, i}
		if e, ok := c.pages[k]; ok {
			c.lru.Remove(e)
			delete(c.pages, k)
			c.size -= int64(cap(e.Value.(*cachedPage).b))
		}
	}
}
