// Package cache owns Strata's result cache: opaque byte values under byte
// keys, held in memory by github.com/VictoriaMetrics/fastcache.
//
// On top of fastcache it adds:
//
//   - a TTL per entry, and a grace period past it during which an entry is
//     served stale while one background refresh recomputes it
//     (stale-while-revalidate);
//   - an approximation of LRU eviction: fastcache evicts in write order, so an
//     entry hit after a fraction of the capacity was written since it was
//     stored is written again (a "promotion");
//   - invalidation by tag in O(1): Invalidate bumps a generation counter, and
//     an entry whose tags were bumped after its computation started is a miss;
//   - stampede protection: concurrent misses on one key run one computation
//     and share its result;
//   - verification of every read: each entry holds the full key and a
//     checksum, so a hash collision or a damaged entry is a miss, never
//     another key's value;
//   - statistics (Stats, and a prometheus.Collector the owner registers);
//   - saving to and loading from a directory across restarts, tag
//     generations included, so entries invalidated before a restart stay
//     invalid after it.
//
// The entry and file layouts are described in format.md beside this file.
//
// The package must not know PromQL, query shapes or storage: the query
// frontend decides what a key is, which tags an extent depends on and when a
// write must invalidate a tag.
package cache
