package cache

import (
	"context"
	"fmt"
	"runtime/debug"
	"slices"
	"sync"
	"time"
)

// ComputeFunc computes the value of a missing or stale key. It returns the
// value, its TTL (zero: Options.TTL; negative: return the value but do not
// cache it) and an error (nothing is cached). The cache owns the returned
// value afterwards: it is handed, read-only, to every caller waiting for it.
//
// ctx carries the values of the context of the call that started the
// computation, but not its cancellation: a computation is canceled when
// every caller waiting for it has gone, on RefreshTimeout for a background
// refresh, and by Close.
type ComputeFunc func(ctx context.Context) (value []byte, ttl time.Duration, err error)

// GetOrCompute returns the value of key, computing it with compute on a
// miss. The tags are those the value depends on; they are recorded with the
// value when it is stored.
//
// Concurrent misses on one key run compute once: the first caller's
// computation is shared by the others (StatusShared). A stale entry is
// returned at once (StatusStale) while one background refresh recomputes
// it; while a refresh fails, the stale entry keeps being served until its
// grace period ends. An entry invalidated by a tag is never served.
//
// The returned value must not be modified: it may be shared with other
// callers. On a miss whose computation failed, the error of compute is
// returned; a canceled ctx returns ctx.Err() at once, leaving the
// computation to the other callers waiting for it, if any.
func (c *Cache) GetOrCompute(ctx context.Context, key []byte, tags []string, compute ComputeFunc) ([]byte, Status, error) {
	v, st, _, err := c.getOrExtend(ctx, key, tags, nil, func(ctx context.Context, _ []byte) ([]byte, time.Duration, error) { return compute(ctx) })
	return v, st, err
}

// ExtendFunc computes the value of a key, given the fresh value cached
// now that the caller's accept function refused (old, nil if there is
// none): typically old extended to what the caller needs. It returns
// what a ComputeFunc returns.
type ExtendFunc func(ctx context.Context, old []byte) (value []byte, ttl time.Duration, err error)

// GetOrExtend is GetOrCompute for a value that a caller may find
// insufficient: a cached value is served only if accept returns true for
// it (a fresh one; a stale one is served, with a refresh, as by
// GetOrCompute). Otherwise extend computes the value from the cached one,
// de-duplicated exactly like a miss: concurrent calls on one key share
// one computation, and with an L2 tier, instances share it through the
// key's lock in Redis. A call that shares a computation whose value it
// does not accept (it needed more) computes again, up to two more times,
// then extends alone without storing.
//
// ran reports whether this call's extend computed the value it returns
// (false for a hit or a shared computation). accept must not modify its
// argument and may be called concurrently.
func (c *Cache) GetOrExtend(ctx context.Context, key []byte, tags []string, accept func([]byte) bool, extend ExtendFunc) (value []byte, st Status, ran bool, err error) {
	return c.getOrExtend(ctx, key, tags, accept, extend)
}

// flightResult is what one call of a flight learns.
type flightResult struct {
	val []byte
	st  Status
	ran bool // this call's flight computed val
}

func (c *Cache) getOrExtend(ctx context.Context, key []byte, tags []string, accept func([]byte) bool, extend ExtendFunc) ([]byte, Status, bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, StatusMiss, false, err
	}
	v, st := c.lookup(nil, key, c.now().UnixNano())
	switch {
	case st == StatusHit && (accept == nil || accept(v)):
		c.m.hits.Add(1)
		return v, st, false, nil
	case st == StatusStale:
		c.m.stale.Add(1)
		c.refresh(ctx, key, tags, extend)
		return v, st, false, nil
	}
	for try := 0; ; try++ {
		r, err := c.join(ctx, key, tags, accept, extend)
		if err != nil || accept == nil || accept(r.val) {
			return r.val, r.st, r.ran, err
		}
		if try == 2 {
			// Others keep extending it less than this call needs:
			// compute alone.
			v, _, err := callCompute(ctx, func(ctx context.Context) ([]byte, time.Duration, error) { return extend(ctx, r.val) })
			return v, StatusMiss, err == nil, err
		}
	}
}

// flight is one computation of one key, shared by the calls waiting for it.
type flight struct {
	done chan struct{} // closed when val, hit and err are set
	val  []byte
	hit  Status // StatusHit or StatusHitL2: found fresh in L1 or L2, compute not called
	err  error

	accept     func([]byte) bool  // what the flight's value must pass; nil: any
	background bool               // a refresh: runs even with no waiters
	snap       Snapshot           // taken when the flight started, before compute reads anything
	waiters    int                // calls waiting; guarded by flightGroup.mu
	cancel     context.CancelFunc // cancels the computation's context
}

// flightGroup tracks the running computations by key. It is
// golang.org/x/sync/singleflight with two changes: the computation runs in
// its own goroutine, so a waiter can leave when its context ends while the
// others keep waiting, and it is canceled only when all waiters have left.
type flightGroup struct {
	mu     sync.Mutex
	m      map[string]*flight // guarded by mu
	closed bool               // guarded by mu; no new flights after Close
}

// join waits for the flight of key, starting it if there is none.
func (c *Cache) join(ctx context.Context, key []byte, tags []string, accept func([]byte) bool, extend ExtendFunc) (flightResult, error) {
	k := string(key)
	g := &c.flights
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return flightResult{st: StatusMiss}, ErrClosed
	}
	f, shared := g.m[k]
	if shared && !c.flightCurrent(f, tags) {
		// A tag of key was bumped after the flight took its snapshot: its
		// value may predate a write this lookup must see. Start a new
		// flight (the old one finishes for its own waiters; what it
		// stores is invalid already).
		shared = false
	}
	if shared {
		f.waiters++
	} else {
		f = c.startLocked(ctx, k, tags, accept, extend, false)
	}
	g.mu.Unlock()

	st := StatusMiss
	if shared {
		st = StatusShared
	}
	select {
	case <-f.done:
	case <-ctx.Done():
		c.leave(k, f)
		c.m.count(st)
		return flightResult{st: st}, ctx.Err()
	}
	if st == StatusMiss && f.hit != StatusMiss {
		st = f.hit
	}
	c.m.count(st)
	if f.err != nil {
		return flightResult{st: st}, f.err
	}
	return flightResult{val: f.val, st: st, ran: !shared && f.hit == StatusMiss}, nil
}

// flightCurrent reports whether flight f can answer a lookup made now of a
// key with tags: no tag was bumped, and no floor raised, since f took its
// snapshot. It must be called with flights.mu held (it reads f.snap,
// written before f was registered).
func (c *Cache) flightCurrent(f *flight, tags []string) bool { return c.snapshotCurrent(f.snap, tags) }

// snapshotCurrent reports whether no tag of tags was bumped, and no floor
// raised, since snap was taken.
func (c *Cache) snapshotCurrent(snap Snapshot, tags []string) bool {
	if c.gens.seq.Load() == snap.seq {
		return true
	}
	if c.gens.floor.Load() > snap.seq {
		return false
	}
	for _, t := range tags {
		if c.gens.get(tagHash(t)) > snap.seq {
			return false
		}
	}
	return true
}

// leave removes a waiter that gave up on f. The last one to leave a
// foreground flight cancels it, and forgets it so that the next miss starts
// afresh instead of joining a canceled computation.
func (c *Cache) leave(k string, f *flight) {
	g := &c.flights
	g.mu.Lock()
	defer g.mu.Unlock()
	f.waiters--
	if f.waiters > 0 || f.background {
		return
	}
	f.cancel()
	if g.m[k] == f {
		delete(g.m, k)
	}
}

// refresh starts a background refresh of key unless a computation of key is
// running already.
func (c *Cache) refresh(ctx context.Context, key []byte, tags []string, extend ExtendFunc) {
	k := string(key)
	g := &c.flights
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return
	}
	if _, ok := g.m[k]; ok {
		return
	}
	c.startLocked(ctx, k, tags, nil, extend, true)
}

// startLocked registers and starts a flight for k. g.mu must be held.
func (c *Cache) startLocked(ctx context.Context, k string, tags []string, accept func([]byte) bool, extend ExtendFunc, background bool) *flight {
	fctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	if background && c.opts.RefreshTimeout > 0 {
		var cancelTimeout context.CancelFunc
		fctx, cancelTimeout = context.WithTimeout(fctx, c.opts.RefreshTimeout)
		cancelBoth := cancel
		cancel = func() { cancelTimeout(); cancelBoth() }
	}
	// The snapshot precedes the computation: a tag bumped while it runs
	// invalidates what it stores, and a lookup made after such a bump
	// does not join it (flightCurrent).
	f := &flight{done: make(chan struct{}), accept: accept, background: background, cancel: cancel, snap: c.Snapshot()}
	if !background {
		f.waiters = 1
	}
	c.flights.m[k] = f
	c.wg.Add(1)
	go c.run(fctx, k, f, slices.Clone(tags), extend)
	return f
}

// run computes flight f of key k and publishes its result.
func (c *Cache) run(ctx context.Context, k string, f *flight, tags []string, extend ExtendFunc) {
	defer c.wg.Done()
	defer f.cancel()
	stop := context.AfterFunc(c.closeCtx, f.cancel)
	defer stop()

	f.val, f.hit, f.err = c.fill(ctx, []byte(k), tags, f.accept, extend, f.background, f.snap)

	// The result is in the cache before the flight is forgotten, so a miss
	// that comes after it finds either the flight or the entry (fill
	// checks the cache first for misses that raced with the end of a
	// previous flight).
	g := &c.flights
	g.mu.Lock()
	if g.m[k] == f {
		delete(g.m, k)
	}
	g.mu.Unlock()
	close(f.done)
}

// fill returns the value of key: from the cache if it is fresh there and
// accepted (L1, then L2), else computed (from the fresh value found but
// not accepted, if any) and stored. With an L2 tier the computation runs
// under the key's lock in Redis, or after waiting for another instance's
// computation (l2_lock.go).
func (c *Cache) fill(ctx context.Context, key []byte, tags []string, accept func([]byte) bool, extend ExtendFunc, background bool, snap Snapshot) (val []byte, hit Status, err error) {
	var old []byte
	if v, st := c.lookup(nil, key, c.now().UnixNano()); st == StatusHit {
		if accept == nil || accept(v) {
			return v, StatusHit, nil
		}
		old = v
	}
	var lk *l2Lock
	if c.l2 != nil && c.l2.usable() {
		var kb [8]byte
		v, l2old, l, err := c.l2.acquire(ctx, key, c.fastKey(&kb, key), accept)
		switch {
		case err != nil:
			return nil, StatusMiss, err
		case v != nil:
			return v, StatusHitL2, nil
		}
		if old == nil {
			old = l2old
		}
		lk = l
		defer lk.release(nil)
	}
	v, ttl, err := callCompute(ctx, func(ctx context.Context) ([]byte, time.Duration, error) { return extend(ctx, old) })
	switch {
	case err != nil && background:
		c.m.refreshFailures.Add(1)
	case err != nil:
		c.m.computeErrors.Add(1)
	}
	if background {
		c.m.refreshes.Add(1)
	} else {
		c.m.computations.Add(1)
	}
	if err != nil {
		return nil, StatusMiss, err
	}
	// ErrTooLarge and ErrClosed leave the value uncached, nothing more. A
	// value invalidated while it was computed would be a miss: it is not
	// stored over the entry of a later computation.
	if c.snapshotCurrent(snap, tags) {
		_ = c.set(key, tags, snap, v, ttl, lk, true)
	}
	return v, StatusMiss, nil
}

// callCompute calls compute, turning a panic into an error: compute runs in
// its own goroutine, where a panic would end the process.
func callCompute(ctx context.Context, compute ComputeFunc) (v []byte, ttl time.Duration, err error) {
	defer func() {
		if r := recover(); r != nil {
			v, ttl, err = nil, 0, fmt.Errorf("cache compute panicked: %v\n%s", r, debug.Stack())
		}
	}()
	return compute(ctx)
}
