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
// (a sorted set). Invalidate runs one Lua script (INCR the counter, record
// it as the tag's generation, PUBLISH it) and applies the number to the
// instance's in-memory copy before it returns, so the bump is in Redis
// before the write that caused it is acknowledged. Every instance applies
// published bumps to its copy as they arrive (only ever raising numbers),
// and takes snapshots from that copy: a snapshot is always a number the
// shared counter handed out, so an entry stored by any instance is judged
// correctly by every other: valid while each of its tags has a generation
// at or below its snapshot. If the subscription or a bump fails, the
// instance is "unsynced": it stops using L2, treats L1 entries cached
// before as misses, and bumps locally with provisional numbers above the
// last shared one (remembering the tags). When Redis answers again it
// re-subscribes, raises the shared counter above its provisional numbers,
// bumps the remembered tags in Redis, re-reads every generation, and from
// then on treats snapshots among the provisional numbers as misses (a
// "hole"). A Redis that lost its state (new run_id, counter gone back) is
// rebased: the counter and floor are raised past every number seen, so
// every entry anywhere becomes a miss. Correctness degrades to misses,
// never to stale hits. Details: l2_sync.go, l2_lock.go, format.md.
//
// The entry and file layouts are described in format.md beside this file.
//
// The package must not know PromQL, query shapes or storage: the query
// frontend decides what a key is, which tags an extent depends on and when a
// write must invalidate a tag.
package cache
