package cache

import (
	"context"
	"encoding/binary"
	"slices"
)

// Get returns the value stored under key and how it was served: StatusHit,
// StatusHitL2 (from the shared tier, now in L1 too), StatusStale (past its
// TTL, inside its grace period; Get starts no refresh) or StatusMiss with a
// nil value. The value is a new slice owned by the caller.
func (c *Cache) Get(key []byte) ([]byte, Status) {
	v, st := c.GetAppend(nil, key)
	if st == StatusMiss {
		return nil, st
	}
	return v, st
}

// GetAppend is Get appending the value to dst: on a hit the returned slice is
// dst with the value appended, and on a miss it is dst unchanged in length.
// With a dst of sufficient capacity a hit does not allocate.
func (c *Cache) GetAppend(dst, key []byte) ([]byte, Status) {
	dst, st := c.lookup(dst, key, c.now().UnixNano())
	if st == StatusMiss && c.l2 != nil && c.l2.usable() && !c.closed.Load() {
		var kb [8]byte
		if v, res := c.l2.get(key, c.fastKey(&kb, key)); res == l2Found {
			dst, st = append(dst, v...), StatusHitL2
		}
	}
	c.m.count(st)
	return dst, st
}

// Peek is Get for a caller that follows a miss or a stale answer with
// GetOrCompute (which counts those): it counts only fresh hits.
func (c *Cache) Peek(key []byte) ([]byte, Status) {
	v, st := c.lookup(nil, key, c.now().UnixNano())
	if st == StatusMiss && c.l2 != nil && c.l2.usable() && !c.closed.Load() {
		var kb [8]byte
		if w, res := c.l2.get(key, c.fastKey(&kb, key)); res == l2Found {
			v, st = append([]byte(nil), w...), StatusHitL2
		}
	}
	switch st {
	case StatusHit, StatusHitL2:
		c.m.count(st)
	case StatusMiss:
		return nil, st
	}
	return v, st
}

// PeekLocal is Peek without the L2 tier: it reads this instance's entries
// only (those of SetLocal, which never reach L2, and any other), so a
// miss costs no round trip. It reads the entry into buf from its start
// (buf's length is ignored; its capacity grown when too small, so that a
// caller can read into a buffer it reuses) and returns that buffer, grown
// or not, with the value: a slice of it where the entry held it, not moved
// to the buffer's start (a stored answer of 80 KB is not copied once more).
// On a miss v is nil.
func (c *Cache) PeekLocal(buf, key []byte) (grown, v []byte, st Status) {
	grown, off, st := c.lookupEntry(buf[:0], key, c.now().UnixNano())
	if st == StatusMiss {
		return grown, nil, st
	}
	if st == StatusHit {
		c.m.count(st)
	}
	return grown, grown[off:], st
}

// Prefetch reads from the L2 tier, in pipelined round trips, the keys that
// L1 does not hold, and promotes the fresh, valid ones into L1, so that
// the lookups that follow are L1 hits. A caller about to look up many keys
// (the extents of one query) saves a round trip per key. It returns the
// number of entries promoted; without an L2 tier it does nothing.
func (c *Cache) Prefetch(ctx context.Context, keys [][]byte) int {
	if c.l2 == nil || c.closed.Load() {
		return 0
	}
	return c.l2.prefetch(ctx, keys)
}

// lookup appends the value stored under key to dst and says whether it is
// fresh (StatusHit) or stale (StatusStale). On a miss it returns dst with its
// length unchanged. It promotes aged fresh hits.
func (c *Cache) lookup(dst, key []byte, now int64) ([]byte, Status) {
	buf, off, st := c.lookupEntry(dst, key, now)
	if st == StatusMiss {
		return buf, st
	}
	n := copy(buf[len(dst):], buf[off:])
	return buf[:len(dst)+n], st
}

// lookupEntry is lookup leaving the value where the entry holds it: it
// appends the entry stored under key to dst and returns the result with
// the offset of the value in it (the value runs to the end). On a miss it
// returns dst with its length unchanged.
func (c *Cache) lookupEntry(dst, key []byte, now int64) ([]byte, int, Status) {
	if c.closed.Load() {
		return dst, 0, StatusMiss
	}
	var kb [8]byte
	fk := c.fastKey(&kb, key)
	n0 := len(dst)
	buf, ok := c.fc.HasGet(dst, fk)
	if !ok {
		return dst, 0, StatusMiss
	}
	big := len(buf)-n0 == bigMetaLen
	if big {
		// A SetBig entry: the key holds its hash and length.
		n := binary.BigEndian.Uint64(buf[n0+8:])
		if n > uint64(c.maxEntry) {
			c.m.corrupt.Add(1)
			return buf[:n0], 0, StatusMiss
		}
		buf = c.fc.GetBig(slices.Grow(buf[:n0], int(n)), fk)
		if len(buf) == n0 {
			return buf, 0, StatusMiss // a part was evicted
		}
	}
	raw := buf[n0:]
	e, err := decodeEntryChecked(raw, !big)
	if err != nil {
		c.m.corrupt.Add(1)
		return buf[:n0], 0, StatusMiss
	}
	if !e.hasKey(key) {
		c.m.collisions.Add(1)
		return buf[:n0], 0, StatusMiss
	}
	st := c.classify(&e, now)
	switch st {
	case StatusMiss:
		return buf[:n0], 0, StatusMiss
	case StatusHit:
		if c.rewriteAfter > 0 && c.written.Load()-e.writtenAt > c.rewriteAfter {
			c.store(fk, raw)
			c.m.promotions.Add(1)
		}
	}
	return buf, len(buf) - len(e.value), st
}

// classify says whether e is fresh (StatusHit), stale (StatusStale) or
// unusable (StatusMiss) at now.
func (c *Cache) classify(e *entry, now int64) Status {
	switch {
	case !c.entryValid(e):
		return StatusMiss // never served stale
	case e.created > now+maxClockSkew:
		return StatusMiss
	case now < e.expires:
		return StatusHit
	case now < e.graceEnd:
		return StatusStale
	default:
		return StatusMiss
	}
}

// entryValid reports whether e is valid by tag generations (and, with an
// L2 tier, whether the sync state lets it be judged).
func (c *Cache) entryValid(e *entry) bool {
	if c.l2 != nil && !c.l2.entryUsable(e) {
		return false
	}
	return c.gens.valid(e)
}
