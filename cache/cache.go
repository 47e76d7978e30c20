package cache

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/fastcache"
)

// Errors callers may decide on.
var (
	// ErrClosed is returned by a Cache after Close.
	ErrClosed = errors.New("cache closed")
	// ErrTooLarge is returned by Set for an entry larger than
	// Options.MaxEntryBytes or with more than 65535 tags; it was not stored.
	ErrTooLarge = errors.New("cache entry too large")
	// ErrNoSnapshot is returned by Set when passed the zero Snapshot.
	ErrNoSnapshot = errors.New("zero cache Snapshot")
)

const (
	// chunkSize is fastcache's chunk size: a key and value with 4 bytes of
	// lengths must fit below it for Set, larger ones go through SetBig.
	chunkSize = 64 << 10
	// bigMetaLen is the length of the value SetBig stores under the key
	// itself (value hash and length). Entries are never that short.
	bigMetaLen = 16
	// bigPart is the size of the parts SetBig cuts a value into.
	bigPart = chunkSize - 16 - 4 - 1
	// maxClockSkew is how far in the future an entry's creation time may
	// lie; past it the entry is a miss, so a clock that was set back cannot
	// stretch an entry's life by more than this.
	maxClockSkew = int64(time.Minute)
)

// Status says how a value was served.
type Status uint8

const (
	// StatusMiss: nothing usable was cached; the value (if any) was
	// computed by this call.
	StatusMiss Status = iota
	// StatusHit: served from the cache, fresh.
	StatusHit
	// StatusStale: served from the cache past its TTL, inside its grace
	// period; GetOrCompute started a background refresh unless one was
	// running already.
	StatusStale
	// StatusShared: this call missed and waited for a computation that
	// another call had started, and shares its result. An HTTP layer that
	// only knows hit and miss should report it as a miss.
	StatusShared
	// StatusHitL2: served fresh from the shared L2 tier (Redis), possibly
	// computed by another instance; it is in L1 now. An HTTP layer that
	// only knows hit and miss should report it as a hit.
	StatusHitL2
)

// String returns "miss", "hit", "stale", "shared" or "hit-l2".
func (s Status) String() string {
	switch s {
	case StatusHit:
		return "hit"
	case StatusHitL2:
		return "hit-l2"
	case StatusStale:
		return "stale"
	case StatusShared:
		return "shared"
	default:
		return "miss"
	}
}

// Snapshot is the state of the tag generations at one instant. Take it with
// Cache.Snapshot before the computation of a value reads any data, and pass
// it to Set with the value: a tag bumped after the snapshot invalidates the
// entry, even if the bump landed while the value was being computed. The
// zero Snapshot is invalid.
type Snapshot struct {
	seq uint64
	at  int64 // unix ns; becomes the entry's creation time
}

// Cache is a byte cache with TTL, tags, stampede protection and
// stale-while-revalidate. All its methods may be called concurrently.
type Cache struct {
	opts     Options
	now      func() time.Time
	fc       *fastcache.Cache
	gens     generations
	capacity uint64 // effective fastcache capacity in bytes
	maxEntry int    // largest encoded entry stored

	// written counts the bytes written to fastcache (its ring position,
	// summed over buckets); entries remember it for promotion.
	written      atomic.Uint64
	rewriteAfter uint64 // promote a hit older than this many written bytes; 0: never

	flights  flightGroup
	closed   atomic.Bool
	closeCtx context.Context // canceled by Close; stops computations
	stop     context.CancelFunc
	wg       sync.WaitGroup // running computations

	adminMu sync.Mutex // serializes Save, Reset and Close
	saveSeq uint64     // number of the last saved data directory; guarded by adminMu

	// evictedBase carries fastcache's evicted-bytes count over Reset,
	// which zeroes it.
	evictedBase atomic.Uint64

	m counters

	// l2 is the shared Redis tier; nil without one.
	l2 *l2

	// digestHook replaces the key digest in tests (to force collisions).
	digestHook func(key []byte) uint64
}

// New returns an empty cache. With Options.L2 it starts connecting to
// Redis in the background; it does not wait for it.
func New(o Options) (*Cache, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	return newIn(o, "")
}

// newIn is New for a cache whose state lives in dir ("" for none).
func newIn(o Options, dir string) (*Cache, error) {
	c := newCache(o, fastcache.New(o.MaxBytes))
	if err := c.startL2(nil, dir); err != nil {
		return nil, err
	}
	return c, nil
}

// startL2 starts the L2 tier if the options ask for one. saved is what a
// loaded cache says about the Redis it was synced with; dir is the
// directory of a loaded cache, where bumps that could not reach Redis are
// kept ("" for none).
func (c *Cache) startL2(saved *savedL2, dir string) error {
	if !c.opts.L2.Enabled() {
		return nil
	}
	l, err := newL2(c, c.opts.L2, saved, dir)
	if err != nil {
		c.fc.Reset()
		return err
	}
	c.l2 = l
	return nil
}

func newCache(o Options, fc *fastcache.Cache) *Cache {
	c := &Cache{opts: o, now: o.Now, fc: fc}
	if c.now == nil {
		c.now = time.Now
	}
	c.gens.init()
	c.flights.m = make(map[string]*flight)
	c.closeCtx, c.stop = context.WithCancel(context.Background())
	var s fastcache.Stats
	fc.UpdateStats(&s)
	c.capacity = s.MaxBytesSize
	c.rewriteAfter = uint64(o.RewriteFraction * float64(c.capacity))
	c.maxEntry = o.MaxEntryBytes
	if c.maxEntry == 0 {
		c.maxEntry = int(c.capacity / 8)
	}
	return c
}

// Close cancels running computations and background refreshes, waits for
// them to return (a ComputeFunc must return once its context is canceled),
// and releases the cache's memory. After Close, Get misses and the other
// methods return ErrClosed; Save first if the cache should survive.
func (c *Cache) Close() error {
	c.adminMu.Lock()
	defer c.adminMu.Unlock()
	if c.closed.Swap(true) {
		return nil
	}
	c.flights.mu.Lock()
	c.flights.closed = true
	c.flights.mu.Unlock()
	c.stop()
	c.wg.Wait()
	if c.l2 != nil {
		c.l2.close()
	}
	c.fc.Reset()
	return nil
}

// Reset empties the cache: every stored entry is dropped, and every
// computation running now stores an entry that will be a miss. Counters are
// kept. With an L2 tier it does so for every instance sharing it: the
// shared floor is raised past every snapshot taken so far. Its error is
// Invalidate's: the reset is made here all the same.
func (c *Cache) Reset() error {
	c.adminMu.Lock()
	defer c.adminMu.Unlock()
	var err error
	if c.l2 != nil {
		err = c.l2.reset()
	} else {
		c.gens.reset()
	}
	var s fastcache.Stats
	c.fc.UpdateStats(&s)
	c.evictedBase.Add(s.EvictedBytes)
	c.fc.Reset()
	return err
}

// RecordPartialHit counts a request that the caller answered partly from
// the cache (for example some extents cached, others computed).
func (c *Cache) RecordPartialHit() { c.m.partialHits.Add(1) }
