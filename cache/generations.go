package cache

import (
	"slices"
	"sync"
	"sync/atomic"
)

// Tag invalidation uses one sequence for all tags. Invalidate(tag) takes the
// next number of the sequence and records it as the tag's generation. A
// computation first takes a Snapshot (the last number handed out) and its
// entry keeps it: the entry is valid while every one of its tags has a
// generation at or below the snapshot. A tag never bumped has generation 0,
// so its entries are valid until its first bump.
//
// This is the per-tag generation scheme with one counter instead of many: an
// entry stores one number however many tags it has, and a single atomic load
// answers "was anything at all bumped since?".
//
// Memory: one record per tag bumped since the last prune, never per entry,
// and nothing for tags that were never bumped. Records are removed only
// together with a raise of floor, the number below which every snapshot is
// invalid, so dropping a record can cost misses but never serve an entry
// that a dropped bump invalidated. See prune.

const genShardCount = 64

// genRecord is the generation of one tag.
type genRecord struct {
	gen uint64
	at  int64 // unix ns of the bump that set gen
}

type genShard struct {
	mu sync.RWMutex
	m  map[uint64]genRecord // tag hash → generation; guarded by mu
	_  [40]byte             // keep shards on separate cache lines
}

type generations struct {
	// seq is the last generation handed out.
	seq atomic.Uint64
	// floor invalidates every snapshot below it; it only grows.
	floor atomic.Uint64
	// count is the number of records over all shards.
	count atomic.Int64
	// pruneMu serializes prunes and resets.
	pruneMu sync.Mutex
	// droppedAt (unix ns) is the latest bump time of every record removed
	// so far (by a prune, a floor, a reset or a replace). A record carries
	// the time of its tag's last bump, which the partner rule of an L2
	// tier judges entries by (l2_partner.go); a tag whose record is gone
	// may have been bumped as late as droppedAt. Raised before the records
	// go, so a reader that finds a record missing and reads droppedAt
	// after it sees the time of the bump it lost.
	droppedAt atomic.Int64

	shards [genShardCount]genShard
}

func (g *generations) init() {
	for i := range g.shards {
		g.shards[i].m = make(map[uint64]genRecord)
	}
}

func (g *generations) shard(h uint64) *genShard { return &g.shards[h%genShardCount] }

// bump gives tag hash h a new generation and returns it.
func (g *generations) bump(h uint64, at int64) uint64 {
	gen := g.seq.Add(1)
	s := g.shard(h)
	s.mu.Lock()
	// Two concurrent bumps of one tag may reach here out of order; the tag
	// must keep the higher generation.
	if r, ok := s.m[h]; !ok || r.gen < gen {
		if !ok {
			g.count.Add(1)
		}
		s.m[h] = genRecord{gen: gen, at: at}
	}
	s.mu.Unlock()
	return gen
}

// record returns the record of tag hash h, the zero record if it has none.
func (g *generations) record(h uint64) genRecord {
	s := g.shard(h)
	s.mu.RLock()
	r := s.m[h]
	s.mu.RUnlock()
	return r
}

// get returns the generation of tag hash h, 0 if it has none.
func (g *generations) get(h uint64) uint64 {
	s := g.shard(h)
	s.mu.RLock()
	r := s.m[h]
	s.mu.RUnlock()
	return r.gen
}

// valid reports whether an entry with snapshot seq and the tag hashes of e is
// still valid.
func (g *generations) valid(e *entry) bool {
	switch seq := g.seq.Load(); {
	case e.seq == seq:
		// Nothing was bumped since the snapshot (floor <= seq always).
		return true
	case e.seq > seq:
		// A snapshot from the future: never taken from this sequence
		// (seq only grows, and a restart restores it with the data).
		return false
	}
	for i := range e.numTags() {
		if g.get(e.tag(i)) > e.seq {
			return false
		}
	}
	// floor is read after the records: prune raises floor before it
	// removes records, so a record found missing above is covered here.
	return e.seq >= g.floor.Load()
}

// raiseFloor raises floor to at least f.
func (g *generations) raiseFloor(f uint64) {
	for {
		old := g.floor.Load()
		if f <= old || g.floor.CompareAndSwap(old, f) {
			return
		}
	}
}

// prune drops the records of bumps made before cutoff (unix ns), and, if
// more than limit records remain, the oldest ones until limit/2 remain
// (limit <= 0: no count limit). It returns the number of records dropped.
//
// Dropping a record must not revive an entry it invalidated, so floor is
// first raised to the highest dropped generation: every entry whose snapshot
// predates that bump becomes a miss. For a bump made before cutoff =
// now - (MaxTTL + Grace), those entries have expired anyway, so the time
// based part of pruning costs nothing while the clock is sane, and stays
// safe when it is not.
func (g *generations) prune(cutoff int64, limit int) int {
	g.pruneMu.Lock()
	defer g.pruneMu.Unlock()
	return g.pruneLocked(cutoff, limit)
}

// pruneLocked is prune with pruneMu held.
func (g *generations) pruneLocked(cutoff int64, limit int) int {
	var x uint64 // highest generation to drop
	var gens []uint64
	for i := range g.shards {
		s := &g.shards[i]
		s.mu.RLock()
		for _, r := range s.m {
			if r.at < cutoff && r.gen > x {
				x = r.gen
			}
			if limit > 0 {
				gens = append(gens, r.gen)
			}
		}
		s.mu.RUnlock()
	}
	if limit > 0 {
		slices.Sort(gens)
		// Records above x stay; drop more if too many of them remain.
		keep := len(gens) - countAtMost(gens, x)
		if keep > limit {
			x = gens[len(gens)-limit/2-1]
		}
	}
	if x == 0 {
		return 0
	}
	g.raiseFloor(x)
	return g.dropAtMost(x)
}

// dropAtMost removes the records of generation x or older and returns how
// many it removed.
func (g *generations) dropAtMost(x uint64) int {
	dropped := 0
	for i := range g.shards {
		s := &g.shards[i]
		s.mu.Lock()
		var at int64
		for _, r := range s.m {
			if r.gen <= x {
				at = max(at, r.at)
			}
		}
		g.raiseDroppedAt(at)
		for h, r := range s.m {
			if r.gen <= x {
				delete(s.m, h)
				dropped++
			}
		}
		s.mu.Unlock()
	}
	g.count.Add(-int64(dropped))
	return dropped
}

// countAtMost returns the number of elements of sorted s that are <= x.
func countAtMost(s []uint64, x uint64) int {
	n, _ := slices.BinarySearch(s, x+1)
	return n
}

// reset invalidates every snapshot taken so far and drops all records.
func (g *generations) reset() {
	g.pruneMu.Lock()
	defer g.pruneMu.Unlock()
	g.raiseFloor(g.seq.Add(1))
	for i := range g.shards {
		s := &g.shards[i]
		s.mu.Lock()
		g.count.Add(-int64(len(s.m)))
		g.clearLocked(s)
		s.mu.Unlock()
	}
}

// clearLocked removes every record of shard s, whose mu is held, raising
// droppedAt first.
func (g *generations) clearLocked(s *genShard) {
	var at int64
	for _, r := range s.m {
		at = max(at, r.at)
	}
	g.raiseDroppedAt(at)
	clear(s.m)
}

// raiseDroppedAt raises droppedAt to at least at.
func (g *generations) raiseDroppedAt(at int64) {
	for {
		old := g.droppedAt.Load()
		if at <= old || g.droppedAt.CompareAndSwap(old, at) {
			return
		}
	}
}

// genState is the persistent form of generations.
type genState struct {
	seq, floor uint64
	tags       []genFileRecord
}

type genFileRecord struct {
	hash uint64
	genRecord
}

// state returns a copy of g for saving. seq is read last, so it is at least
// every saved record's generation even while bumps race with the copy (a
// bump takes its number before it stores its record).
func (g *generations) state() genState {
	st := genState{floor: g.floor.Load()}
	for i := range g.shards {
		s := &g.shards[i]
		s.mu.RLock()
		for h, r := range s.m {
			st.tags = append(st.tags, genFileRecord{hash: h, genRecord: r})
		}
		s.mu.RUnlock()
	}
	st.seq = g.seq.Load()
	return st
}

// restore replaces the content of g by st. g must not be in use.
func (g *generations) restore(st genState) {
	g.seq.Store(st.seq)
	g.floor.Store(st.floor)
	for i := range g.shards {
		clear(g.shards[i].m)
	}
	for _, r := range st.tags {
		g.shards[r.hash%genShardCount].m[r.hash] = r.genRecord
	}
	n := 0
	for i := range g.shards {
		n += len(g.shards[i].m)
	}
	g.count.Store(int64(n))
}

// The methods below keep generations as a mirror of the generations shared
// in Redis when the cache has an L2 tier (l2_sync.go). Every change they
// make only raises numbers, so applying one message twice, or a message
// and the reply of the same bump, is harmless.

// raiseSeq raises seq to at least s.
func (g *generations) raiseSeq(s uint64) {
	for {
		old := g.seq.Load()
		if s <= old || g.seq.CompareAndSwap(old, s) {
			return
		}
	}
}

// apply records generation gen of tag hash h, handed out by the shared
// sequence, unless the tag has a higher one already, then raises seq to it.
// The record is written before seq is raised: a reader that sees the new
// seq finds the record.
func (g *generations) apply(h, gen uint64, at int64) {
	s := g.shard(h)
	s.mu.Lock()
	if r, ok := s.m[h]; !ok || r.gen < gen {
		if !ok {
			g.count.Add(1)
		}
		s.m[h] = genRecord{gen: gen, at: at}
	}
	s.mu.Unlock()
	g.raiseSeq(gen)
}

// applyFloor raises floor (and seq) to f and drops the records at or below
// it, as a prune does: floor is raised first, so no entry a dropped record
// invalidated becomes valid.
func (g *generations) applyFloor(f uint64) {
	g.pruneMu.Lock()
	defer g.pruneMu.Unlock()
	g.raiseFloor(f)
	g.raiseSeq(f)
	g.dropAtMost(f)
}

// replace sets g to the shared state read from Redis: seq, floor and the
// generation of every tag, recorded as bumped at at. Unlike every other
// change it may lower seq and floor (numbers handed out locally while the
// shared state was unreachable are dropped); the caller makes every entry
// a miss while it runs.
func (g *generations) replace(seq, floor uint64, tags map[uint64]uint64, at int64) {
	g.pruneMu.Lock()
	defer g.pruneMu.Unlock()
	for i := range g.shards {
		s := &g.shards[i]
		s.mu.Lock()
		g.clearLocked(s)
		s.mu.Unlock()
	}
	for h, gen := range tags {
		s := g.shard(h)
		s.mu.Lock()
		s.m[h] = genRecord{gen: gen, at: at}
		s.mu.Unlock()
	}
	g.count.Store(int64(len(tags)))
	g.floor.Store(floor)
	g.seq.Store(seq)
}
