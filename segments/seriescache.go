package segments

import (
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
	entries *lru[seriesKey, cachedSeries]

	hits, misses, evictions prometheus.Counter
	bytes, max              prometheus.GaugeFunc
}

type seriesKey struct {
	region uint64 // the index's key (PageCache.newKey)
	ref    uint64 // the series entry's offset in the index
}

type cachedSeries struct {
	lset labels.Labels
	chks []ChunkMeta
}

func newSeriesCache(maxBytes int64) *seriesCache {
	c := &seriesCache{}
	c.hits = prometheus.NewCounter(prometheus.CounterOpts{Name: "strata_segment_series_cache_hits_total",
		Help: "Series entries a query's selection found decoded in the series cache."})
	c.misses = prometheus.NewCounter(prometheus.CounterOpts{Name: "strata_segment_series_cache_misses_total",
		Help: "Series entries a query's selection decoded from a segment's index."})
	c.evictions = prometheus.NewCounter(prometheus.CounterOpts{Name: "strata_segment_series_cache_evictions_total",
		Help: "Series entries dropped from the series cache to stay within its size."})
	c.bytes = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "strata_segment_series_cache_bytes",
		Help: "Bytes held by the series cache (estimated: label sets, chunk metas and bookkeeping)."}, func() float64 { return float64(c.entries.size()) })
	c.max = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "strata_segment_series_cache_max_bytes",
		Help: "The bound on the series cache's bytes."}, func() float64 { return float64(maxBytes) })
	c.entries = newLRU[seriesKey, cachedSeries](maxBytes, seriesCacheShards, func(k seriesKey) uint64 {
		return ((k.region*0x9e3779b97f4a7c15 ^ k.ref) * 0xff51afd7ed558ccd) >> 60
	}, c.evictions)
	return c
}

func (c *seriesCache) collectors() []prometheus.Collector {
	return []prometheus.Collector{c.hits, c.misses, c.evictions, c.bytes, c.max}
}

// get returns the cached entry of k; its labels and metas are shared and
// must not be modified.
func (c *seriesCache) get(k seriesKey) (labels.Labels, []ChunkMeta, bool) {
	cs, ok := c.entries.get(k)
	if !ok {
		c.misses.Inc()
		return labels.EmptyLabels(), nil, false
	}
	c.hits.Inc()
	return cs.lset, cs.chks, true
}

// put caches the entry of k, which the caller no longer modifies; chks
// should be clipped (cap = len), so that an append to it copies.
func (c *seriesCache) put(k seriesKey, lset labels.Labels, chks []ChunkMeta) {
	n := seriesEntryOverhead + int64(lset.ByteSize()) + int64(cap(chks))*int64(unsafe.Sizeof(ChunkMeta{}))
	c.entries.put(k, cachedSeries{lset: lset, chks: chks}, n)
}

// drop removes the entries of an index, when its segment closes.
func (c *seriesCache) drop(region uint64) {
	c.entries.removeIf(func(k seriesKey) bool { return k.region == region })
}

// useSeriesCache has r keep its decoded series entries in cache's series
// cache (nil: none).
func (r *indexReader) useSeriesCache(cache *PageCache) {
	if cache != nil {
		r.cache, r.cacheKey = cache.series, cache.newKey()
	}
}
