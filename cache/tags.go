package cache

// Snapshot returns the current tag generations and time, to be taken before
// computing a value that will be stored with Set.
func (c *Cache) Snapshot() Snapshot {
	return Snapshot{seq: c.gens.seq.Load(), at: c.now().UnixNano()}
}

// Invalidate makes every entry carrying tag a miss, including entries whose
// computation is running now and entries it will never see: it only bumps
// the tag's generation, in O(1) and without any scan. A tag with no entries
// costs one record (a few dozen bytes) until it is pruned.
func (c *Cache) Invalidate(tag string) {
	c.gens.bump(tagHash(tag), c.now().UnixNano())
	c.m.invalidations.Add(1)
	limit := c.trackedTagLimit()
	if c.gens.count.Load() > int64(limit) && c.gens.pruneMu.TryLock() {
		// Amortized O(1): a prune at least halves the records, so it runs
		// once per limit/2 bumps at most. Others bumping meanwhile go on.
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
