package cache

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Stampede protection across instances. A miss that finds nothing usable
// in L2 takes the key's lock in Redis (SET NX PX LockTTL) and computes;
// its holder refreshes the expiry every LockTTL/3 while it computes, and
// on completion writes the value and deletes the lock in one pipeline
// (SET, then a compare-and-delete). A miss that finds the lock taken polls
// (EXISTS lock, then GET value, in one round trip; 2 ms doubling to 50 ms)
// until the value appears (an L2 hit), or the lock is gone without a
// usable value (it tries to take the lock itself), or MaxLockWait passes
// (it computes without the lock). A holder that dies stops refreshing, so
// its lock expires within LockTTL: nobody waits on a dead instance for
// longer than that, and nothing deadlocks.

var (
	unlockScript = redis.NewScript(`if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`)
	extendScript = redis.NewScript(`if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0`)
)

// l2Lock is a computation lock held in Redis by this cache.
type l2Lock struct {
	l     *l2
	key   string
	token string
	stop  chan struct{}
	once  sync.Once
}

// futureWait bounds how long a waiter polls a value stored by an instance
// whose generations are ahead of this one's (it is usable once this
// instance has applied the bumps the other saw).
const futureWait = 500 * time.Millisecond

// acquire looks key up in L2 and, on a miss (nothing fresh, valid and
// accepted: accept nil accepts any value), takes its lock or waits for
// the instance that holds it. It returns the value of an L2 hit; or the
// lock to compute under; or neither (compute without a lock: Redis
// failed, or waiting took too long); or the error of ctx. old is a fresh
// value found that accept refused, if any (what the computation may
// extend).
func (l *l2) acquire(ctx context.Context, key, fk []byte, accept func([]byte) bool) (v, old []byte, held *l2Lock, err error) {
	defer func() {
		if v == nil && held == nil && err == nil {
			l.m.unshared.Add(1)
		}
	}()
	ok := func(v []byte) bool { return accept == nil || accept(v) }
	v, res := l.get(key, fk)
	switch {
	case res == l2Found && ok(v):
		return v, nil, nil, nil
	case res == l2Found:
		old = v
	case res == l2Error:
		return nil, nil, nil, nil
	}
	k := l.keys.Load()
	lockKey, entryKey := k.lockKey(fk), k.entryKey(fk)
	token := l.newToken()
	deadline := time.Now().Add(l.opts.MaxLockWait)
	delay := 2 * time.Millisecond
	var futureSince time.Time
	waited := false
	pollErrors := 0
	for {
		// Try the lock and read the value again in one round trip: a
		// holder may have written it and let the lock go since the read
		// above, and the lock must not start a second computation then.
		octx, cancel := l.valueCtx()
		var setnx *redis.BoolCmd
		var get *redis.StringCmd
		var sr *stateRead
		_, err := l.rdb.Pipelined(octx, func(p redis.Pipeliner) error {
			sr = l.queueState(octx, p)
			setnx = p.SetNX(octx, lockKey, token, l.opts.LockTTL)
			get = p.Get(octx, entryKey)
			return nil
		})
		cancel()
		if err != nil && !errors.Is(err, redis.Nil) {
			l.fail("lock", err)
			return nil, old, nil, nil
		}
		took := setnx.Val()
		var lk *l2Lock
		if took {
			lk = l.startLock(lockKey, token)
		}
		if sr.k != k || !l.current(sr) {
			// The epoch changed, or the mirror lags: compute, unshared.
			lk.release(nil)
			return nil, old, nil, nil
		}
		if b, gerr := get.Bytes(); gerr == nil {
			if raw, value, res := l.judge(b, key, l.c.now().UnixNano()); res == l2Found {
				if ok(value) {
					l.m.hits.Add(1)
					l.promote(fk, raw)
					lk.release(nil)
					return value, nil, nil, nil
				}
				old = value
			}
		}
		if took {
			return nil, old, lk, nil
		}
		if !waited {
			waited = true
			l.m.lockWaits.Add(1)
		}
	poll:
		for {
			if !time.Now().Before(deadline) || !l.usable() {
				return nil, old, nil, nil
			}
			t := time.NewTimer(delay)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil, old, nil, ctx.Err()
			case <-l.ctx.Done():
				t.Stop()
				return nil, old, nil, nil
			case <-t.C:
			}
			delay = min(2*delay, 50*time.Millisecond)

			octx, cancel := l.valueCtx()
			var exists *redis.IntCmd
			var get *redis.StringCmd
			var sr *stateRead
			// EXISTS before GET: a holder writes the value before it
			// deletes the lock, so "no lock" here means the value, if
			// any, is already there.
			_, err := l.rdb.Pipelined(octx, func(p redis.Pipeliner) error {
				sr = l.queueState(octx, p)
				exists = p.Exists(octx, lockKey)
				get = p.Get(octx, entryKey)
				return nil
			})
			cancel()
			if err != nil && !errors.Is(err, redis.Nil) {
				// A slow reply (a large value, a busy machine) is no
				// reason to compute what the holder is computing; a
				// Redis that keeps failing is.
				if pollErrors++; pollErrors == 3 {
					l.fail("poll", err)
					return nil, old, nil, nil
				}
				l.m.errors.Add(1)
				continue
			}
			pollErrors = 0
			if sr.k != k || !l.current(sr) {
				return nil, old, nil, nil
			}
			b, gerr := get.Bytes()
			res := l2Absent
			var raw, value []byte
			if gerr == nil {
				raw, value, res = l.judge(b, key, l.c.now().UnixNano())
			}
			switch {
			case res == l2Found && ok(value):
				l.m.hits.Add(1)
				l.promote(fk, raw)
				return value, nil, nil, nil
			case res == l2Found:
				old = value // not enough yet: wait for the holder
			case res == l2Future:
				if futureSince.IsZero() {
					futureSince = time.Now()
				} else if time.Since(futureSince) > futureWait {
					return nil, old, nil, nil
				}
				continue
			}
			if exists.Val() == 0 {
				break poll // the holder is gone without a usable value: try the lock
			}
		}
	}
}

// startLock returns the lock key held with token and starts refreshing it.
func (l *l2) startLock(key, token string) *l2Lock {
	lk := &l2Lock{l: l, key: key, token: token, stop: make(chan struct{})}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		t := time.NewTicker(l.opts.LockTTL / 3)
		defer t.Stop()
		for {
			select {
			case <-lk.stop:
				return
			case <-l.ctx.Done():
				return
			case <-t.C:
				ctx, cancel := l.opCtx()
				err := extendScript.Run(ctx, l.rdb, []string{key}, token, l.opts.LockTTL.Milliseconds()).Err()
				cancel()
				if err != nil && !errors.Is(err, redis.Nil) {
					l.fail("extend lock", err)
				}
			}
		}
	}()
	return lk
}

// release stops refreshing lk and deletes it if this cache still holds
// it, after writing w (if not nil) in the same round trip. It may be
// called more than once, and on a nil lock.
func (lk *l2Lock) release(w *l2Write) {
	if lk == nil {
		return
	}
	lk.once.Do(func() {
		close(lk.stop)
		l := lk.l
		n := 0
		if w != nil {
			n = len(w.val)
		}
		ctx, cancel := l.sizedCtx(n)
		defer cancel()
		_, err := l.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			if w != nil {
				p.Set(ctx, w.key, w.val, w.ttl)
			}
			unlockScript.Eval(ctx, p, []string{lk.key}, lk.token)
			return nil
		})
		if err != nil {
			l.fail("unlock", err)
			return
		}
		if w != nil {
			l.m.writes.Add(1)
		}
	})
}
