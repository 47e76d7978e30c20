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
//     invalid after it;
//   - optionally (Options.L2), a second tier in Redis shared by several
//     instances that hold the same data, with tag generations shared
//     through Redis and stampede protection across instances.
//
// # L2 and shared generations
//
// With an L2 tier a lookup goes L1 (fastcache) → L2 (Redis) → compute; an
// L2 hit is promoted into L1 and a computed entry is written to both (the
// same entry bytes, snappy-compressed, with a Redis TTL ending with its
// grace period). An L2 entry is verified and judged exactly as an L1 one.
//
// Cross-instance generation scheme: Redis holds the one counter that
// numbers every invalidation of every instance, and each tag's generation
// (a sorted set), under an epoch that every shared key's name derives
// from. Invalidate runs one Lua script (check the epoch's state is intact,
// INCR the counter, record it as the tag's generation, PUBLISH it) and
// applies the number to the instance's in-memory copy before it returns,
// so the bump is in Redis before the write that caused it is
// acknowledged. Every instance applies published bumps to its copy as
// they arrive, and judges entries by it; a lookup that reads Redis (an L2
// read, Prefetch at the start of a query) reads the counter in the same
// round trip and waits until the copy holds every bump up to it, so a
// bump acknowledged anywhere before a query is judged by, whatever the
// pub/sub delay. If Redis fails, refuses a bump, or the state of the epoch
// is found incomplete (any of its keys lost), the instance is "unsynced":
// it stops using L2, treats L1 entries cached before as misses, and bumps
// locally, remembering the tags (fsynced in the cache directory before
// Invalidate returns, for a loaded cache). When Redis answers again it
// starts a new epoch if the state was lost, pushes the remembered bumps,
// re-reads every generation and goes on. No instance takes from L2 an
// entry of a tag bumped less than L2Options.PartnerLag ago (an instance
// may not have received that write yet). Correctness
// degrades to misses, never to stale hits. Details: l2_sync.go,
// l2_pending.go, l2_partner.go, l2_lock.go, format.md.
//
// The entry and file layouts are described in format.md beside this file.
//
// The package must not know PromQL, query shapes or storage: the query
// frontend decides what a key is, which tags an extent depends on and when a
// write must invalidate a tag.
package cache
