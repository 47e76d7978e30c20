package remote

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	uploads, uploadFailures, uploadedBytes prometheus.Counter
	bucketDeletes, localEvictions          prometheus.Counter
	abandonedDeletes                       prometheus.Counter
	cacheHits, cacheMisses, cacheEvictions prometheus.Counter
	fetchedBytes, discovered               prometheus.Counter
	rangeRequests, blockHits, blockMisses  prometheus.Counter
	blockEvictions, damagedBlocks          prometheus.Counter
	fetchSeconds, uploadSeconds            prometheus.Histogram
	// Deletes in the bucket (tombstones.go, rewrite.go).
	tombstonesUploaded, tombstonesDiscovered, bucketRewrites, bucketMerges, rollupRebuilds prometheus.Counter
}

func newMetrics() *metrics {
	c := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	}
	m := &metrics{
		uploads:          c("strata_object_uploads_total", "Segments uploaded to the bucket and verified."),
		uploadFailures:   c("strata_object_upload_failures_total", "Segment uploads that failed (retried with backoff)."),
		uploadedBytes:    c("strata_object_uploaded_bytes_total", "Bytes sent to the bucket by segment uploads."),
		bucketDeletes:    c("strata_object_bucket_deletes_total", "Segments deleted from the bucket: replaced by a compacted upload, or past retention."),
		abandonedDeletes: c("strata_object_abandoned_uploads_deleted_total", "Half-uploads (objects without meta.json, older than storage.object.abandoned_after, of segments no longer on disk) deleted from the bucket."),
		localEvictions:   c("strata_object_local_evictions_total", "Local segment copies deleted because they are verified in the bucket and past storage.local.keep or storage.local.max_bytes."),
		cacheHits:        c("strata_object_cache_hits_total", "Reads of bucket segments that found them open."),
		cacheMisses:      c("strata_object_cache_misses_total", "Reads of bucket segments that opened them (meta.json, index, page tables: through the block cache)."),
		cacheEvictions:   c("strata_object_cache_evictions_total", "Open bucket segments closed to keep their indexes within a quarter of storage.object.cache_max_bytes."),
		fetchedBytes:     c("strata_object_fetched_bytes_total", "Bytes fetched from the bucket for reads (ranged GETs and meta.json)."),
		rangeRequests:    c("strata_object_read_requests_total", "GETs of bucket segment bytes for reads (ranges of index and chunks files, and meta.json)."),
		blockHits:        c("strata_object_cache_block_hits_total", "Blocks of bucket segment files found in the remote read cache."),
		blockMisses:      c("strata_object_cache_block_misses_total", "Blocks of bucket segment files not in the remote read cache (fetched)."),
		blockEvictions:   c("strata_object_cache_block_evictions_total", "Blocks dropped from the remote read cache to stay within storage.object.cache_max_bytes."),
		damagedBlocks:    c("strata_object_cache_damaged_blocks_total", "Blocks of the remote read cache found damaged on disk (dropped and fetched again)."),
		discovered:       c("strata_object_segments_discovered_total", "Segments a reader found new in the bucket by listing it (their cached answers invalidated)."),
		fetchSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "strata_object_fetch_duration_seconds",
			Help: "Time of one GET of bucket segment bytes for a read.", Buckets: prometheus.ExponentialBuckets(0.005, 2, 16)}),
		uploadSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "strata_object_upload_duration_seconds",
			Help: "Time to upload and verify one segment.", Buckets: prometheus.ExponentialBuckets(0.005, 2, 16)}),
	}
	m.tombstonesUploaded = c("strata_object_tombstones_uploaded_total", "Tombstone objects (deletes) uploaded to the bucket and verified.")
	m.tombstonesDiscovered = c("strata_object_tombstones_discovered_total", "Tombstone objects a reader found new in the bucket by listing it (their cached answers invalidated).")
	m.bucketRewrites = c("strata_object_bucket_rewrites_total", "Bucket segments rewritten without the samples their tombstones hide (the rewrite uploaded before the original is deleted).")
	m.bucketMerges = c("strata_object_bucket_merges_total", "Merges in the bucket of several raw segments of one day that only the bucket holds (the merged segment uploaded before the inputs are deleted).")
	m.rollupRebuilds = c("strata_object_bucket_rollup_rebuilds_total", "Rollups of days only the bucket holds rebuilt from the bucket's raw data after it changed there (late data merged, a delete applied), uploaded before the old rollups are deleted.")
	return m
}

func (m *metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.uploads, m.uploadFailures, m.uploadedBytes, m.bucketDeletes, m.localEvictions, m.abandonedDeletes,
		m.cacheHits, m.cacheMisses, m.cacheEvictions, m.fetchedBytes, m.discovered,
		m.rangeRequests, m.blockHits, m.blockMisses, m.blockEvictions, m.damagedBlocks, m.fetchSeconds, m.uploadSeconds,
		m.tombstonesUploaded, m.tombstonesDiscovered, m.bucketRewrites, m.bucketMerges, m.rollupRebuilds}
}
