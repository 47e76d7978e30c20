package segments

import (
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
	pages   *lru[pageKey, []byte] // one shard: a page is read by one reader at a time
	series  *seriesCache

	hits, misses, evictions prometheus.Counter
	bytes, count            prometheus.GaugeFunc
}

type pageKey struct {
	region uint64
	page   int
}

// NewPageCache returns a cache of at most maxBytes of decompressed pages;
// maxBytes <= 0 means DefaultPageCacheSize. A page larger than the bound
// is read but not kept.
func NewPageCache(maxBytes int64) *PageCache {
	if maxBytes <= 0 {
		maxBytes = DefaultPageCacheSize
	}
	c := &PageCache{max: maxBytes, series: newSeriesCache(maxBytes / 2)}
	c.hits = prometheus.NewCounter(prometheus.CounterOpts{Name: "strata_segment_page_cache_hits_total",
		Help: "Reads of a compressed segment page found decompressed in the page cache."})
	c.misses = prometheus.NewCounter(prometheus.CounterOpts{Name: "strata_segment_page_cache_misses_total",
		Help: "Reads of a compressed segment page that decompressed it."})
	c.evictions = prometheus.NewCounter(prometheus.CounterOpts{Name: "strata_segment_page_cache_evictions_total",
		Help: "Pages dropped from the page cache to stay within its size."})
	c.pages = newLRU[pageKey, []byte](maxBytes, 1, nil, c.evictions)
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
func (c *PageCache) Size() int64 { return c.pages.size() }

// newKey returns a region key no other region of this cache has.
func (c *PageCache) newKey() uint64 { return c.nextKey.Add(1) }

func (c *PageCache) get(region uint64, page int) ([]byte, bool) {
	b, ok := c.pages.get(pageKey{region, page})
	if !ok {
		c.misses.Inc()
		return nil, false
	}
	c.hits.Inc()
	return b, true
}

// has reports whether the cache holds the page, counting neither a hit
// nor a miss.
func (c *PageCache) has(region uint64, page int) bool {
	return c.pages.has(pageKey{region, page})
}

// put keeps a decompressed page; one larger than the cache's bound is not
// kept.
func (c *PageCache) put(region uint64, page int, b []byte) {
	c.pages.put(pageKey{region, page}, b, int64(cap(b)))
}

// drop removes the pages of a region, when its segment closes.
func (c *PageCache) drop(region uint64, pages int) {
	for i := range pages {
		c.pages.remove(pageKey{region, i})
	}
}
