package cache

import (
	"sync/atomic"

	"github.com/VictoriaMetrics/fastcache"
	"github.com/prometheus/client_golang/prometheus"
)

// counters are the cache's own monotonic counters.
type counters struct {
	hits, misses, stale, shared, partialHits                  atomic.Uint64
	computations, computeErrors, refreshes, refreshFailures   atomic.Uint64
	invalidations, promotions, collisions, corrupt, notStored atomic.Uint64
}

// count counts one lookup served with st.
func (m *counters) count(st Status) {
	switch st {
	case StatusHit, StatusHitL2:
		m.hits.Add(1)
	case StatusStale:
		m.stale.Add(1)
	case StatusShared:
		m.shared.Add(1)
	default:
		m.misses.Add(1)
	}
}

// Stats is a point-in-time view of a Cache. Every lookup (Get, GetAppend,
// GetOrCompute) counts in exactly one of Hits, Stale, Misses and
// SharedWaits; a hit served from the L2 tier counts in Hits and L2Hits.
type Stats struct {
	// Entries is the number of fastcache slots in use; a value stored
	// through SetBig (over 64 KiB) takes one slot per 64 KiB part plus one.
	Entries uint64
	// Bytes is the memory held by fastcache's chunks.
	Bytes uint64
	// MaxBytes is the effective capacity (Options.MaxBytes rounded up).
	MaxBytes uint64
	// EvictedBytes counts the bytes fastcache overwrote to make room.
	EvictedBytes uint64

	// Hits counts lookups served fresh from the cache.
	Hits uint64
	// PartialHits counts RecordPartialHit calls.
	PartialHits uint64
	// Misses counts lookups that found nothing usable (and, in
	// GetOrCompute, started the computation).
	Misses uint64
	// Stale counts lookups served stale, inside the grace period.
	Stale uint64
	// SharedWaits counts GetOrCompute misses that waited for a computation
	// another call had started.
	SharedWaits uint64

	// Computations counts computations run for misses, ComputeErrors those
	// that failed.
	Computations, ComputeErrors uint64
	// Refreshes counts background refreshes of stale entries,
	// RefreshFailures those that failed (the stale entry stays).
	Refreshes, RefreshFailures uint64

	// Invalidations counts Invalidate calls.
	Invalidations uint64
	// TrackedTags is the number of tag generations held in memory.
	TrackedTags uint64

	// Promotions counts hits written again to approximate LRU.
	Promotions uint64
	// Collisions counts reads that found another key's entry under the
	// same digest (a miss).
	Collisions uint64
	// CorruptEntries counts reads of entries that failed to decode or
	// verify (a miss).
	CorruptEntries uint64
	// NotStored counts values too large to store.
	NotStored uint64

	// Generation is the last tag generation known here (with L2: the
	// last shared one this instance has applied).
	Generation uint64

	// L2Enabled says whether the cache has a Redis tier; the other L2
	// fields are zero without one.
	L2Enabled bool
	// L2Connected says whether the tier is in use now: subscribed, and
	// the generations re-read since the last disconnection.
	L2Connected bool
	// L2Hits counts L2 reads that found a fresh, valid entry (promoted
	// into L1); L2Misses those that found nothing usable.
	L2Hits, L2Misses uint64
	// L2Errors counts failed Redis operations and failed connection
	// attempts.
	L2Errors uint64
	// L2Writes counts entries written to Redis, L2WritesDropped those
	// not written because the write queue was full or the tier paused.
	L2Writes, L2WritesDropped uint64
	// L2LockWaits counts misses that waited for another instance's
	// computation of the same key.
	L2LockWaits uint64
	// L2Resyncs counts complete re-reads of the shared generations
	// (one per connection, the first included).
	L2Resyncs uint64
	// L2Unshared counts misses that went on to compute without the
	// shared lock: Redis failed or was slow, the shared state changed
	// epoch, the local mirror lagged it, or the wait for another
	// instance ran past cache.l2 max lock wait. Each is a computation
	// another instance may be making too (by design: never wait on a
	// Redis that cannot answer).
	L2Unshared uint64
}

// Stats returns the current statistics. It takes every fastcache bucket lock
// in turn, so it is meant for scrapes, not hot paths.
func (c *Cache) Stats() Stats {
	var fs fastcache.Stats
	c.fc.UpdateStats(&fs)
	m := &c.m
	s := Stats{
		Entries:      fs.EntriesCount,
		Bytes:        fs.BytesSize,
		MaxBytes:     c.capacity,
		EvictedBytes: c.evictedBase.Load() + fs.EvictedBytes,

		Hits:        m.hits.Load(),
		PartialHits: m.partialHits.Load(),
		Misses:      m.misses.Load(),
		Stale:       m.stale.Load(),
		SharedWaits: m.shared.Load(),

		Computations:    m.computations.Load(),
		ComputeErrors:   m.computeErrors.Load(),
		Refreshes:       m.refreshes.Load(),
		RefreshFailures: m.refreshFailures.Load(),

		Invalidations: m.invalidations.Load(),
		TrackedTags:   uint64(max(c.gens.count.Load(), 0)),

		Promotions: m.promotions.Load(),
		Collisions: m.collisions.Load() + fs.Collisions,
		CorruptEntries: m.corrupt.Load() + fs.Corruptions + fs.InvalidMetavalueErrors +
			fs.InvalidValueLenErrors + fs.InvalidValueHashErrors,
		NotStored: m.notStored.Load(),

		Generation: c.gens.seq.Load(),
	}
	if l := c.l2; l != nil {
		s.L2Enabled = true
		s.L2Connected = l.synced()
		s.L2Hits, s.L2Misses, s.L2Errors = l.m.hits.Load(), l.m.misses.Load(), l.m.errors.Load()
		s.L2Writes, s.L2WritesDropped = l.m.writes.Load(), l.m.dropped.Load()
		s.L2LockWaits, s.L2Resyncs, s.L2Unshared = l.m.lockWaits.Load(), l.m.resyncs.Load(), l.m.unshared.Load()
	}
	return s
}

// Collector returns a prometheus.Collector exporting Stats as strata_cache_*
// metrics. Register it on the registry of your choice; the package registers
// nothing itself.
func (c *Cache) Collector() prometheus.Collector { return collector{c} }

type collector struct{ c *Cache }

var _ prometheus.Collector = collector{}

func newDesc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("strata_cache_"+name, help, labels, nil)
}

var (
	descEntries      = newDesc("entries", "fastcache slots in use (a value over 64 KiB takes one per 64 KiB part, plus one).")
	descBytes        = newDesc("bytes", "Memory held by the cache's chunks.")
	descMaxBytes     = newDesc("max_bytes", "Effective capacity of the cache in bytes.")
	descEvicted      = newDesc("evicted_bytes_total", "Bytes overwritten to make room.")
	descLookups      = newDesc("lookups_total", "Lookups by how they were served.", "result")
	descPartial      = newDesc("partial_hits_total", "Requests answered partly from the cache.")
	descComputations = newDesc("computations_total", "Computations run for misses.")
	descComputeErrs  = newDesc("computation_errors_total", "Computations for misses that failed.")
	descRefreshes    = newDesc("refreshes_total", "Background refreshes of stale entries.")
	descRefreshErrs  = newDesc("refresh_failures_total", "Background refreshes that failed.")
	descInvalidate   = newDesc("invalidations_total", "Tag invalidations.")
	descTags         = newDesc("tracked_tags", "Tag generations held in memory.")
	descPromotions   = newDesc("promotions_total", "Hits written again to approximate LRU eviction.")
	descCollisions   = newDesc("collisions_total", "Reads that found another key's entry under the same digest.")
	descCorrupt      = newDesc("corrupt_entries_total", "Reads of entries that failed to decode or verify.")
	descNotStored    = newDesc("not_stored_total", "Values too large to store.")
	descL2Connected  = newDesc("l2_connected", "1 while the Redis L2 tier is in use (subscribed and generations in sync).")
	descL2Hits       = newDesc("l2_hits_total", "L2 (Redis) reads that found a fresh, valid entry.")
	descL2Misses     = newDesc("l2_misses_total", "L2 (Redis) reads that found nothing usable.")
	descL2Errors     = newDesc("l2_errors_total", "Failed Redis operations and connection attempts of the L2 tier.")
	descL2Writes     = newDesc("l2_writes_total", "Entries written to the L2 tier.")
	descL2Dropped    = newDesc("l2_writes_dropped_total", "Entries not written to the L2 tier (queue full or tier paused).")
	descL2LockWaits  = newDesc("l2_lock_waits_total", "Misses that waited for another instance computing the same key.")
	descL2Resyncs    = newDesc("l2_resyncs_total", "Complete re-reads of the shared tag generations.")
)

// Describe implements prometheus.Collector.
func (collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		descEntries, descBytes, descMaxBytes, descEvicted, descLookups, descPartial,
		descComputations, descComputeErrs, descRefreshes, descRefreshErrs,
		descInvalidate, descTags, descPromotions, descCollisions, descCorrupt, descNotStored,
		descL2Connected, descL2Hits, descL2Misses, descL2Errors, descL2Writes, descL2Dropped,
		descL2LockWaits, descL2Resyncs,
	} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (col collector) Collect(ch chan<- prometheus.Metric) {
	s := col.c.Stats()
	gauge := func(d *prometheus.Desc, v uint64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v))
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge(descEntries, s.Entries)
	gauge(descBytes, s.Bytes)
	gauge(descMaxBytes, s.MaxBytes)
	counter(descEvicted, s.EvictedBytes)
	counter(descLookups, s.Hits, "hit")
	counter(descLookups, s.Misses, "miss")
	counter(descLookups, s.Stale, "stale")
	counter(descLookups, s.SharedWaits, "shared")
	counter(descPartial, s.PartialHits)
	counter(descComputations, s.Computations)
	counter(descComputeErrs, s.ComputeErrors)
	counter(descRefreshes, s.Refreshes)
	counter(descRefreshErrs, s.RefreshFailures)
	counter(descInvalidate, s.Invalidations)
	gauge(descTags, s.TrackedTags)
	counter(descPromotions, s.Promotions)
	counter(descCollisions, s.Collisions)
	counter(descCorrupt, s.CorruptEntries)
	counter(descNotStored, s.NotStored)
	if s.L2Enabled {
		connected := uint64(0)
		if s.L2Connected {
			connected = 1
		}
		gauge(descL2Connected, connected)
		counter(descL2Hits, s.L2Hits)
		counter(descL2Misses, s.L2Misses)
		counter(descL2Errors, s.L2Errors)
		counter(descL2Writes, s.L2Writes)
		counter(descL2Dropped, s.L2WritesDropped)
		counter(descL2LockWaits, s.L2LockWaits)
		counter(descL2Resyncs, s.L2Resyncs)
	}
}
