package cache

// Snapshot returns the current tag generations and time, to be taken before
// computing a value that will be stored with Set.
//
// With an L2 tier the sequence mirrors the shared one (l2_sync.go), so a
// snapshot taken here is comparable with bumps made on other instances.
func (c *Cache) Snapshot() Snapshot {
	return Snapshot{seq: c.gens.seq.Load(), at: c.now().UnixNano()}
}

// Invalidate makes every entry carrying tag a miss, including entries whose
// computation is running now and entries it will never see: it only bumps
// the tag's generation, in O(1) and without any scan. A tag with no entries
// costs one record (a few dozen bytes) until it is pruned.
//
// With an L2 tier the bump goes through Redis, for every instance: when
// Invalidate returns, the new generation is in Redis and published, and
// this instance judges by it. If Redis fails (one OpTimeout at most), the
// bump is made locally and pushed to Redis when it is back; meanwhile this
// instance is unsynced (see l2_sync.go). For a cache loaded from a
// directory the local bump is kept on disk until Redis has it; if it
// cannot be, Invalidate returns ErrInvalidationNotDurable (wrapped, naming
// the file): the bump is made here all the same, but whatever caused it
// must not be acknowledged as complete (l2_pending.go).
func (c *Cache) Invalidate(tag string) error {
	var err error
	if c.l2 != nil {
		err = c.l2.bump(tagHash(tag), c.now().UnixNano())
	} else {
		c.gens.bump(tagHash(tag), c.now().UnixNano())
	}
	c.m.invalidations.Add(1)
	c.pruneByCount()
	return err
}

// InvalidateTags is Invalidate for each of tags (duplicates are bumped
// once). With an L2 tier it takes one Redis round trip for all of them
// (per 512 tags) instead of one per tag: a caller invalidating the tags of
// a whole write batch should use it. Its error is Invalidate's.
func (c *Cache) InvalidateTags(tags ...string) error {
	if len(tags) == 0 {
		return nil
	}
	at := c.now().UnixNano()
	seen := make(map[uint64]struct{}, len(tags))
	hs := make([]uint64, 0, len(tags))
	for _, t := range tags {
		h := tagHash(t)
		if _, dup := seen[h]; !dup {
			seen[h] = struct{}{}
			hs = append(hs, h)
		}
	}
	var err error
	if c.l2 != nil {
		err = c.l2.bumpMany(hs, at)
	} else {
		for _, h := range hs {
			c.gens.bump(h, at)
		}
	}
	c.m.invalidations.Add(uint64(len(tags)))
	c.pruneByCount()
	return err
}

// pruneByCount prunes the generations when there are too many of them.
// Amortized O(1): a prune at least halves the records, so it runs once per
// limit/2 bumps at most. Others bumping meanwhile go on.
func (c *Cache) pruneByCount() {
	limit := c.trackedTagLimit()
	if c.gens.count.Load() > int64(limit) && c.gens.pruneMu.TryLock() {
		defer c.gens.pruneMu.Unlock()
		if c.gens.count.Load() > int64(limit) {
			c.gens.pruneLocked(c.pruneCutoff(), limit)
		}
	}
}

func (c *Cache) trackedTagLimit() int {
	if c.opts.MaxTrackedTags > 0 {
		return c.opts.MaxTrackedTags
	}
	return 1 << 20
}

// pruneCutoff returns the time before which a bump can no longer matter:
// every entry created before it is past its grace period.
func (c *Cache) pruneCutoff() int64 {
	return c.now().UnixNano() - int64(c.opts.maxTTL()+c.opts.Grace)
}

// PruneGenerations forgets the tag generations set more than MaxTTL + Grace
// ago, and returns how many it dropped. The entries they could invalidate
// are past their grace period by then, so pruning serves no entry that was
// invalidated and normally costs no hit (if the clock was set back, some
// entries created before the newest dropped bump become misses). The owner
// may call it periodically; Save calls it, and Invalidate prunes by count
// (see Options.MaxTrackedTags).
func (c *Cache) PruneGenerations() int {
	return c.gens.prune(c.pruneCutoff(), 0)
}
