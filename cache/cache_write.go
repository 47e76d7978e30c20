package cache

import (
	"encoding/binary"
	"fmt"
	"sync"
	"time"

	"github.com/cespare/xxhash/v2"
)

// Set stores value under key with tags, as computed from the data seen after
// snap was taken. A ttl of zero means Options.TTL, a larger one than
// Options.MaxTTL is cut to it, and a negative one stores nothing. The cache
// copies key, tags and value. It returns ErrTooLarge, ErrNoSnapshot or
// ErrClosed when it stored nothing for those reasons.
//
// With an L2 tier the entry is also written to Redis, in the background.
func (c *Cache) Set(key []byte, tags []string, snap Snapshot, value []byte, ttl time.Duration) error {
	return c.set(key, tags, snap, value, ttl, nil, true)
}

// SetLocal is Set without the L2 tier: the entry stays in this instance.
// It is for values derived from other entries (an answer encoded from
// cached extents), which another instance derives as cheaply from the
// shared entries as it would read them from Redis.
func (c *Cache) SetLocal(key []byte, tags []string, snap Snapshot, value []byte, ttl time.Duration) error {
	return c.set(key, tags, snap, value, ttl, nil, false)
}

// set is Set; with lk, the L2 write happens at once, with the release of
// the lock (the caller releases lk in any case). Without toL2 the entry
// stays out of the L2 tier.
func (c *Cache) set(key []byte, tags []string, snap Snapshot, value []byte, ttl time.Duration, lk *l2Lock, toL2 bool) error {
	if c.closed.Load() {
		return ErrClosed
	}
	if snap.at == 0 {
		return ErrNoSnapshot
	}
	if ttl < 0 {
		return nil
	}
	if ttl == 0 {
		ttl = c.opts.TTL
	}
	ttl = min(ttl, c.opts.maxTTL())
	size := entrySize(len(tags), len(key), len(value))
	if len(tags) > maxTags || size > c.maxEntry {
		c.m.notStored.Add(1)
		return fmt.Errorf("set %d-byte entry with %d tags: %w", size, len(tags), ErrTooLarge)
	}
	meta := entryMeta{
		created:  snap.at,
		expires:  snap.at + int64(ttl),
		graceEnd: snap.at + int64(ttl) + int64(c.opts.Grace),
		seq:      snap.seq,
	}
	if meta.graceEnd <= c.now().UnixNano() {
		return nil // useless already, e.g. a computation slower than TTL+Grace
	}
	bp := getBuf(size)
	b := appendEntryHeader((*bp)[:0], &meta, len(tags), len(key))
	b = appendTagHashes(b, tags)
	b = append(b, key...)
	b = append(b, value...)
	sealEntry(b)
	var kb [8]byte
	fk := c.fastKey(&kb, key)
	c.store(fk, b)
	if c.l2 != nil && toL2 {
		c.l2.put(fk, b, meta.graceEnd, meta.seq, lk)
	}
	*bp = b
	putBuf(bp)
	return nil
}

// fastKey returns the fastcache key of key: a 64-bit digest. The full key is
// inside the entry and compared on every read, so two keys with one digest
// evict each other but never see each other's value.
func (c *Cache) fastKey(kb *[8]byte, key []byte) []byte {
	var h uint64
	if c.digestHook != nil {
		h = c.digestHook(key)
	} else {
		h = xxhash.Sum64(key)
	}
	binary.LittleEndian.PutUint64(kb[:], h)
	return kb[:]
}

// store writes the encoded entry ent under fastcache key fk, stamping it
// with the write position.
func (c *Cache) store(fk, ent []byte) {
	n := uint64(4 + len(fk) + len(ent))
	small := n < chunkSize
	if !small {
		parts := (len(ent) + bigPart - 1) / bigPart
		n = uint64(len(ent)+parts*(16+4)) + 4 + uint64(len(fk)) + bigMetaLen
	}
	pos := c.written.Add(n) - n
	binary.LittleEndian.PutUint64(ent[offWrittenAt:], pos)
	if small {
		c.fc.Set(fk, ent)
	} else {
		c.fc.SetBig(fk, ent)
	}
}

// bufPool holds encoding buffers of at most maxPooledBuf bytes.
var bufPool sync.Pool

const maxPooledBuf = 256 << 10

func getBuf(size int) *[]byte {
	if size <= maxPooledBuf {
		if bp, ok := bufPool.Get().(*[]byte); ok {
			return bp
		}
	}
	b := make([]byte, 0, size)
	return &b
}

func putBuf(bp *[]byte) {
	if cap(*bp) <= maxPooledBuf {
		*bp = (*bp)[:0]
		bufPool.Put(bp)
	}
}
