package cache

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/strata-tsdb/strata/cache/redistest"
)

// pollCounter is a go-redis hook that counts the lock polls sent (the
// pipelines that hold an EXISTS) and those that failed.
type pollCounter struct{ polls, failed atomic.Int64 }

func (*pollCounter) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (*pollCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }

func (p *pollCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		poll, failed := false, err != nil && !errors.Is(err, redis.Nil)
		for _, c := range cmds {
			poll = poll || c.Name() == "exists"
			failed = failed || c.Err() != nil && !errors.Is(c.Err(), redis.Nil)
		}
		if poll {
			p.polls.Add(1)
			if failed {
				p.failed.Add(1)
			}
		}
		return err
	}
}

// holdLock takes key's lock in c's epoch for an instance that is not c (a
// live holder: it expires only after a minute) and returns the lock's name.
func holdLock(t *testing.T, rc *redis.Client, c *Cache, key []byte) string {
	t.Helper()
	name := lockKeyOf(c, key)
	if err := rc.Set(bg, name, "other-instance", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	return name
}

// lockWait is two caches sharing a redis-server of the test's own, in
// sync, with key's lock held by a third instance (holdLock) and the lock
// polls of c1 counted: a miss of c1 on key waits for the lock.
type lockWait struct {
	rc     *redis.Client
	c1, c2 *Cache
	polls  *pollCounter
	key    []byte
	tags   []string
	lock   string // the held lock's name in Redis
}

func newLockWait(t *testing.T) *lockWait {
	t.Helper()
	r := redistest.Start(t)
	p := testPrefix()
	w := &lockWait{rc: r.Client(), c1: newL2Cache(t, r.URL(), p), c2: newL2Cache(t, r.URL(), p),
		polls: &pollCounter{}, key: []byte("k"), tags: []string{"m:x:2026-11-20"}}
	waitSynced(t, w.rc, p, w.c1, w.c2)
	w.c1.l2.rdb.AddHook(w.polls)
	w.lock = holdLock(t, w.rc, w.c1, w.key)
	return w
}

// TestL2LockWaitEnds: a miss that waits for another instance's lock ends
// its wait in one of three ways, each counted as it should be: MaxLockWait
// passes (it computes without the lock: unshared), its caller leaves (no
// computation, not counted as unshared), or Redis fails three polls in a
// row (it computes without the lock, each failure counted as an error;
// one or two failures alone do not end the wait).
func TestL2LockWaitEnds(t *testing.T) {
	r := redistest.Start(t)
	rc := r.Client()
	p := testPrefix()

	t.Run("MaxLockWait", func(t *testing.T) {
		c := newL2Cache(t, r.URL(), p, func(o *Options) { o.L2.MaxLockWait = 200 * time.Millisecond })
		waitSynced(t, rc, p, c)
		key := []byte("waited-out")
		holdLock(t, rc, c, key)
		var n counter
		mustCompute(t, c, key, "m:x:2026-11-20", &n, "v", StatusMiss)
		if s := c.Stats(); s.L2LockWaits != 1 || s.L2Unshared != 1 || n.calls.Load() != 1 {
			t.Fatalf("lock waits %d, unshared %d, computations %d; want 1, 1, 1", s.L2LockWaits, s.L2Unshared, n.calls.Load())
		}
	})

	t.Run("caller leaves", func(t *testing.T) {
		c := newL2Cache(t, r.URL(), p) // MaxLockWait 30 s
		waitSynced(t, rc, p, c)
		key := []byte("left")
		holdLock(t, rc, c, key)
		ctx, cancel := context.WithCancel(bg)
		done := make(chan error, 1)
		var n counter
		go func() {
			_, _, err := c.GetOrCompute(ctx, key, []string{"m:x:2026-11-20"}, n.fn("v", 0, nil))
			done <- err
		}()
		waitFor(t, flightWait, "the miss to wait for the lock", func() bool { return c.Stats().L2LockWaits == 1 })
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("GetOrCompute after its caller left: %v", err)
		}
		waitIdle(t, c)
		if s := c.Stats(); s.L2Unshared != 0 || n.calls.Load() != 0 {
			t.Fatalf("unshared %d, computations %d after the only caller left; want 0, 0", s.L2Unshared, n.calls.Load())
		}
	})

	t.Run("polls fail", func(t *testing.T) {
		c := newL2Cache(t, r.URL(), p, func(o *Options) { o.L2.MaxLockWait = 5 * time.Second })
		waitSynced(t, rc, p, c)
		var polls pollCounter
		c.l2.rdb.AddHook(&polls)
		key := []byte("failing")
		holdLock(t, rc, c, key)
		var n counter
		done := make(chan error, 1)
		go func() {
			_, _, err := c.GetOrCompute(bg, key, []string{"m:x:2026-11-20"}, n.fn("v", 0, nil))
			done <- err
		}()
		waitFor(t, flightWait, "the miss to poll the lock", func() bool { return polls.polls.Load() > 0 })
		errs := c.Stats().L2Errors
		// A hash where the entry should be: every poll's GET fails
		// (WRONGTYPE), and nothing else of this instance reads it.
		if err := rc.HSet(bg, entryKeyOf(c, key), "f", "v").Err(); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		s := c.Stats()
		if s.L2Errors-errs != 3 || polls.failed.Load() != 3 || s.L2Unshared != 1 || n.calls.Load() != 1 {
			t.Fatalf("%d errors counted, %d polls failed, unshared %d, computations %d; want 3, 3, 1, 1",
				s.L2Errors-errs, polls.failed.Load(), s.L2Unshared, n.calls.Load())
		}
	})
}

// TestL2LockRefreshed: a holder that computes for longer than the lock's
// expiry keeps its lock (it refreshes it every LockTTL/3, without error),
// so no other instance computes meanwhile.
func TestL2LockRefreshed(t *testing.T) {
	r := redistest.Start(t)
	rc := r.Client()
	p := testPrefix()
	c := newL2Cache(t, r.URL(), p) // LockTTL 3 s: a refresh every second
	waitSynced(t, rc, p, c)
	key := []byte("long")
	lockKey := lockKeyOf(c, key)
	release := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		_, _, err := c.GetOrCompute(bg, key, []string{"m:x:2026-11-20"}, func(context.Context) ([]byte, time.Duration, error) {
			<-release
			return []byte("v"), 0, nil
		})
		done <- err
	}()
	defer func() {
		select {
		case <-release:
		default:
			close(release)
		}
	}()
	// Watch the lock's remaining time: it must go up again (a refresh)
	// twice, and never run out, while the holder computes.
	refreshes, last := 0, time.Duration(0)
	for refreshes < 2 {
		ttl, err := rc.PTTL(bg, lockKey).Result()
		switch {
		case err != nil:
			t.Fatal(err)
		case ttl == -2*time.Nanosecond && last == 0:
			// Not taken yet.
		case ttl < 0:
			t.Fatalf("the lock ran out (PTTL %v) while its holder computed, after %d refreshes", ttl, refreshes)
		case last > 0 && ttl > last:
			refreshes++
		}
		if ttl > 0 {
			last = ttl
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if s := c.Stats(); s.L2Errors != 0 || s.L2Unshared != 0 || s.L2Writes != 1 {
		t.Fatalf("errors %d, unshared %d, writes %d; want 0, 0, 1", s.L2Errors, s.L2Unshared, s.L2Writes)
	}
}

// TestL2WaiterKeepsRefusedValue: a value that appears in L2 while a miss
// waits for another instance's lock, fresh but refused by the caller's
// accept, is what the miss extends if its wait ends without a usable one.
func TestL2WaiterKeepsRefusedValue(t *testing.T) {
	w := newLockWait(t)
	c1, c2, key, tags := w.c1, w.c2, w.key, w.tags

	type result struct {
		v   []byte
		old []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		var old []byte
		v, _, _, err := c1.GetOrExtend(bg, key, tags, func(v []byte) bool { return len(v) >= 2 }, func(_ context.Context, o []byte) ([]byte, time.Duration, error) {
			old = o
			return append([]byte(string(o)), 'y'), 0, nil
		})
		done <- result{v, old, err}
	}()
	waitFor(t, flightWait, "c1 to wait for the lock", func() bool { return c1.Stats().L2LockWaits == 1 })
	// c2 writes a value c1 refuses (one byte), behind; c1 polls it.
	if err := c2.Set(key, tags, c2.Snapshot(), []byte("x"), 0); err != nil {
		t.Fatal(err)
	}
	waitFor(t, flightWait, "c2's write", func() bool { return c2.Stats().L2Writes == 1 })
	seen := w.polls.polls.Load()
	waitFor(t, flightWait, "two more polls", func() bool { return w.polls.polls.Load() >= seen+2 })
	// End the wait: the tier pauses (as after an error), so the miss stops
	// waiting and computes from what it found.
	c1.l2.skipUntil.Store(time.Now().Add(time.Hour).UnixNano())
	res := <-done
	if res.err != nil || string(res.old) != "x" || string(res.v) != "xy" {
		t.Fatalf("GetOrExtend = %q, %v, extended from %q; want \"xy\" from \"x\"", res.v, res.err, res.old)
	}
}

// TestL2WaiterServedByPoll: a miss waiting for another instance's lock is
// served the value as soon as a poll finds it, while the lock is still
// held; the polls that find nothing count no damaged entry.
func TestL2WaiterServedByPoll(t *testing.T) {
	w := newLockWait(t)
	c1, c2, key, tags := w.c1, w.c2, w.key, w.tags

	type result struct {
		v   []byte
		st  Status
		err error
	}
	done := make(chan result, 1)
	var n counter
	go func() {
		v, st, err := c1.GetOrCompute(bg, key, tags, n.fn("computed", 0, nil))
		done <- result{v, st, err}
	}()
	waitFor(t, flightWait, "c1 to poll the lock", func() bool { return w.polls.polls.Load() >= 2 })
	if err := c2.Set(key, tags, c2.Snapshot(), []byte("shared"), 0); err != nil {
		t.Fatal(err)
	}
	res := <-done
	if res.err != nil || res.st != StatusHitL2 || string(res.v) != "shared" || n.calls.Load() != 0 {
		t.Fatalf("GetOrCompute = %q, %v, %v, %d computations; want the shared value from L2", res.v, res.st, res.err, n.calls.Load())
	}
	if v, err := w.rc.Get(bg, w.lock).Result(); err != nil || v != "other-instance" {
		t.Fatalf("lock %q, %v: the other instance's lock was touched", v, err)
	}
	if s := c1.Stats(); s.CorruptEntries != 0 || s.L2Hits != 1 || s.L2Unshared != 0 {
		t.Fatalf("damaged entries %d, L2 hits %d, unshared %d; want 0, 1, 0", s.CorruptEntries, s.L2Hits, s.L2Unshared)
	}
}

// TestL2ReadErrorTakesNoLock: a miss whose L2 read fails computes without
// the lock at once: it takes no lock (which nobody would release before it
// expires) and counts one error.
func TestL2ReadErrorTakesNoLock(t *testing.T) {
	r := redistest.Start(t)
	rc := r.Client()
	p := testPrefix()
	c := newL2Cache(t, r.URL(), p)
	waitSynced(t, rc, p, c)
	key := []byte("k")
	// A hash where the entry should be: its GET fails (WRONGTYPE).
	if err := rc.HSet(bg, entryKeyOf(c, key), "f", "v").Err(); err != nil {
		t.Fatal(err)
	}
	var n counter
	mustCompute(t, c, key, "m:x:2026-11-20", &n, "v", StatusMiss)
	if s := c.Stats(); s.L2Errors != 1 || s.L2Unshared != 1 || s.L2LockWaits != 0 {
		t.Fatalf("errors %d, unshared %d, lock waits %d; want 1, 1, 0", s.L2Errors, s.L2Unshared, s.L2LockWaits)
	}
	if n, err := rc.Exists(bg, lockKeyOf(c, key)).Result(); err != nil || n != 0 {
		t.Fatalf("lock left after a failed read: %d %v", n, err)
	}
}

// TestL2LostStateLoggedAndRefused: the shared state lost (FLUSHALL) is
// logged once, by the instance that starts the new epoch, and not at a
// first start; after it, every instance refuses L2 entries for PartnerLag
// (the bumps of the lost state, and their times, are gone), even one
// written in the new epoch.
func TestL2LostStateLoggedAndRefused(t *testing.T) {
	r := redistest.Start(t)
	rc := r.Client()
	p := testPrefix()
	var lost atomic.Int64
	logLost := func(o *Options) {
		o.L2.Logger = slog.New(countingHandler{prefix: "result cache: the shared L2 state in Redis was lost", n: &lost})
	}
	c1, c2 := newL2Cache(t, r.URL(), p, logLost), newL2Cache(t, r.URL(), p, logLost) // PartnerLag a minute
	waitSynced(t, rc, p, c1, c2)
	if n := lost.Load(); n != 0 {
		t.Fatalf("%d lost-state lines at a first start", n)
	}
	if err := rc.FlushAll(bg).Err(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, flightWait, "the loss to be logged", func() bool { return lost.Load() > 0 })
	waitSynced(t, rc, p, c1, c2)
	if n := lost.Load(); n != 1 {
		t.Fatalf("%d lost-state lines for one loss, want 1", n)
	}
	var n counter
	mustCompute(t, c2, []byte("k"), "m:a:2026-11-20", &n, "v", StatusMiss)
	if w := c2.Stats().L2Writes; w != 1 {
		t.Fatalf("c2 wrote %d entries to L2, want 1", w)
	}
	mustCompute(t, c1, []byte("k"), "m:a:2026-11-20", &n, "v", StatusMiss) // not an L2 hit: refused
	if h := c1.Stats().L2Hits; h != 0 {
		t.Fatalf("c1 took %d entries from L2 within PartnerLag of a lost state", h)
	}
}
