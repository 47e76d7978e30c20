package cache

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/strata-tsdb/strata/cache/redistest"
)

var bg = context.Background()

// TestL2SharesEntries: what one instance computes, another serves from
// L2 (then from its L1) without computing.
func TestL2SharesEntries(t *testing.T) {
	r := redistest.Start(t)
	p := testPrefix()
	c1, c2 := newL2Cache(t, r.URL(), p), newL2Cache(t, r.URL(), p)
	waitSynced(t, r.Client(), p, c1, c2)

	var n counter
	key, tags := []byte("k1"), []string{"m:x:2026-11-20"}
	if v, st, err := c1.GetOrCompute(bg, key, tags, n.fn("v1", 0, nil)); err != nil || st != StatusMiss || string(v) != "v1" {
		t.Fatalf("c1: %q %v %v", v, st, err)
	}
	v, st, err := c2.GetOrCompute(bg, key, tags, n.fn("other", 0, nil))
	if err != nil || st != StatusHitL2 || string(v) != "v1" {
		t.Fatalf("c2: %q %v %v", v, st, err)
	}
	if v, st := c2.Get(key); st != StatusHit || string(v) != "v1" {
		t.Fatalf("c2 second read: %q %v (want an L1 hit)", v, st)
	}
	if n.calls.Load() != 1 {
		t.Fatalf("%d computations, want 1", n.calls.Load())
	}
	s := c2.Stats()
	if s.L2Hits != 1 || s.Hits != 2 || s.Computations != 0 || !s.L2Enabled || !s.L2Connected {
		t.Fatalf("c2 stats: %+v", s)
	}

	// Set writes behind; Get reads through.
	if err := c1.Set([]byte("k2"), tags, c1.Snapshot(), []byte("v2"), 0); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "k2 in L2", func() bool {
		v, st := c2.Get([]byte("k2"))
		return st == StatusHitL2 && string(v) == "v2"
	})

	// Prefetch promotes many keys in one round trip.
	c3 := newL2Cache(t, r.URL(), p)
	waitSynced(t, r.Client(), p, c1, c3)
	if got := c3.Prefetch(bg, [][]byte{[]byte("k1"), []byte("k2"), []byte("absent")}); got != 2 {
		t.Fatalf("prefetch promoted %d, want 2", got)
	}
	if _, st := c3.Get([]byte("k2")); st != StatusHit {
		t.Fatalf("after prefetch: %v", st)
	}
}

// TestL2InvalidateSeenByAll: a bump on one instance is in Redis when
// Invalidate returns, judged by at once on that instance, and applied by
// the others as it is published.
func TestL2InvalidateSeenByAll(t *testing.T) {
	r := redistest.Start(t)
	rc := r.Client()
	p := testPrefix()
	// Both hold the same data here: without the partner rule, c1 takes
	// c2's entry of a tag it bumped itself (TestL2PartnerBehind).
	noLag := func(o *Options) { o.L2.PartnerLag = -1 }
	c1, c2 := newL2Cache(t, r.URL(), p, noLag), newL2Cache(t, r.URL(), p, noLag)
	waitSynced(t, rc, p, c1, c2)

	var n counter
	key, tag := []byte("k"), "m:x:2026-11-20"
	mustCompute(t, c1, key, tag, &n, "old", StatusMiss)
	mustCompute(t, c2, key, tag, &n, "old", StatusHitL2)

	c1.Invalidate(tag)
	gen, err := rc.ZScore(bg, c1.l2.keys.Load().tags, strconv.FormatUint(tagHash(tag), 16)).Result()
	if err != nil || uint64(gen) != c1.Stats().Generation {
		t.Fatalf("generation in Redis %v (%v), c1 at %d", gen, err, c1.Stats().Generation)
	}
	if _, st := c1.Get(key); st != StatusMiss {
		t.Fatalf("c1 after its own bump: %v", st)
	}
	waitFor(t, 2*time.Second, "c2 to apply the bump", func() bool { return c2.Stats().Generation == uint64(gen) })
	if _, st := c2.Get(key); st != StatusMiss {
		t.Fatalf("c2 after c1's bump: %v", st)
	}
	mustCompute(t, c2, key, tag, &n, "new", StatusMiss)
	waitSynced(t, rc, p, c1, c2)
	mustCompute(t, c1, key, tag, &n, "new", StatusHitL2)

	// Snapshots are comparable: both instances are at the shared number.
	if s1, s2 := c1.Snapshot(), c2.Snapshot(); s1.seq != s2.seq || s1.seq != uint64(gen) {
		t.Fatalf("snapshots %d and %d, shared generation %v", s1.seq, s2.seq, gen)
	}

	// A computation that a bump on another instance overtakes stores an
	// entry that nobody serves.
	snap := c2.Snapshot()
	c1.Invalidate(tag)
	if err := c2.Set([]byte("k3"), []string{tag}, snap, []byte("racy"), 0); err != nil {
		t.Fatal(err)
	}
	waitSynced(t, rc, p, c1, c2)
	for i, c := range []*Cache{c1, c2} {
		if v, st := c.Get([]byte("k3")); st != StatusMiss {
			t.Fatalf("c%d served %q (%v) computed before a bump", i+1, v, st)
		}
	}

	// InvalidateTags: one round trip for several tags.
	mustCompute(t, c2, []byte("k5"), "m:p:2026-11-20", &n, "v5", StatusMiss)
	mustCompute(t, c2, []byte("k6"), "m:q:2026-11-20", &n, "v6", StatusMiss)
	mustCompute(t, c2, []byte("k7"), "m:r:2026-11-20", &n, "v7", StatusMiss)
	c1.InvalidateTags("m:p:2026-11-20", "m:q:2026-11-20", "m:p:2026-11-20")
	waitSynced(t, rc, p, c1, c2)
	for k, want := range map[string]Status{"k5": StatusMiss, "k6": StatusMiss, "k7": StatusHit} {
		if _, st := c2.Get([]byte(k)); st != want {
			t.Fatalf("%s after InvalidateTags: %v, want %v", k, st, want)
		}
	}

	// Reset is for every instance.
	mustCompute(t, c1, []byte("k4"), "m:y:2026-11-20", &n, "v4", StatusMiss)
	mustCompute(t, c2, []byte("k4"), "m:y:2026-11-20", &n, "v4", StatusHitL2)
	c1.Reset()
	waitSynced(t, rc, p, c1, c2)
	if _, st := c2.Get([]byte("k4")); st != StatusMiss {
		t.Fatalf("c2 after c1's Reset: %v", st)
	}
}

func mustCompute(t *testing.T, c *Cache, key []byte, tag string, n *counter, value string, want Status) {
	t.Helper()
	v, st, err := c.GetOrCompute(bg, key, []string{tag}, n.fn(value, 0, nil))
	if err != nil || st != want || string(v) != value {
		t.Fatalf("GetOrCompute(%s): %q %v %v, want %q %v", key, v, st, err, value, want)
	}
}

// TestL2Stampede: concurrent misses of one key on two instances compute
// it once.
func TestL2Stampede(t *testing.T) {
	r := redistest.Start(t)
	p := testPrefix()
	c1, c2 := newL2Cache(t, r.URL(), p), newL2Cache(t, r.URL(), p)
	waitSynced(t, r.Client(), p, c1, c2)
	for round := range 3 {
		var calls sync.Map
		var wg sync.WaitGroup
		key := fmt.Appendf(nil, "stampede-%d", round)
		statuses := make(chan Status, 64)
		for i := range 32 {
			c := c1
			if i%2 == 1 {
				c = c2
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				v, st, err := c.GetOrCompute(bg, key, []string{"m:s:2026-11-20"}, func(context.Context) ([]byte, time.Duration, error) {
					calls.Store(i, true)
					time.Sleep(100 * time.Millisecond)
					return []byte("value"), 0, nil
				})
				if err != nil || string(v) != "value" {
					t.Errorf("%q %v", v, err)
				}
				statuses <- st
			}()
		}
		wg.Wait()
		close(statuses)
		n := 0
		calls.Range(func(any, any) bool { n++; return true })
		count := map[Status]int{}
		for st := range statuses {
			count[st]++
		}
		t.Logf("round %d: %d computations; statuses %v", round, n, count)
		if n != 1 {
			t.Fatalf("round %d: %d computations, want 1", round, n)
		}
	}
	if w := c1.Stats().L2LockWaits + c2.Stats().L2LockWaits; w == 0 {
		t.Fatal("no instance waited for the other's lock")
	}
}

// TestL2DeadLockHolder: a lock left by an instance that died delays a miss
// only until the lock expires: the miss waits for it (it does not compute
// while the dead holder's lock is there), then takes the lock itself and
// computes under it (not unlocked after MaxLockWait, by default 30 s, 75
// times the lock's expiry here), and writes the value for the others.
func TestL2DeadLockHolder(t *testing.T) {
	r := redistest.Start(t)
	rc := r.Client()
	p := testPrefix()
	c := newL2Cache(t, r.URL(), p)
	waitSynced(t, rc, p, c)
	key := []byte("k")
	lockKey := lockKeyOf(c, key)
	if err := rc.Set(bg, lockKey, "dead-instance", 400*time.Millisecond).Err(); err != nil {
		t.Fatal(err)
	}
	var holder string
	v, st, err := c.GetOrCompute(bg, key, []string{"m:x:2026-11-20"}, func(context.Context) ([]byte, time.Duration, error) {
		holder, _ = rc.Get(bg, lockKey).Result() // who holds the lock while this computes
		return []byte("v"), 0, nil
	})
	if err != nil || st != StatusMiss || string(v) != "v" {
		t.Fatalf("GetOrCompute: %q %v %v", v, st, err)
	}
	if !strings.HasPrefix(holder, c.l2.tokenBase+"-") {
		t.Fatalf("computed while the lock was held by %q, want this instance's own lock", holder)
	}
	s := c.Stats()
	if s.L2LockWaits != 1 || s.L2Unshared != 0 || s.L2Writes != 1 {
		t.Fatalf("lock waits %d, unshared %d, writes %d: want a wait, then the lock taken and the value written", s.L2LockWaits, s.L2Unshared, s.L2Writes)
	}
	if n, err := rc.Exists(bg, lockKey).Result(); err != nil || n != 0 {
		t.Fatalf("lock left after the computation: %d %v", n, err)
	}
}

// TestL2Unreachable: with Redis refusing connections, or accepting them
// and never answering, the cache works as a local one without waiting on
// Redis, and says so in its stats: no request reads, locks or writes an
// entry of the tier (a silent server would hold each for OpTimeout).
func TestL2Unreachable(t *testing.T) {
	for _, tc := range []struct {
		name string
		url  func(t *testing.T) string
	}{
		{"refused", func(t *testing.T) string { return "redis://127.0.0.1:" + strconv.Itoa(freePort(t)) }},
		{"silent", silentServer},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newL2Cache(t, tc.url(t), testPrefix())
			var n counter
			mustCompute(t, c, []byte("k"), "m:x:2026-11-20", &n, "v", StatusMiss)
			mustCompute(t, c, []byte("k"), "m:x:2026-11-20", &n, "v", StatusHit)
			c.Invalidate("m:x:2026-11-20")
			mustCompute(t, c, []byte("k"), "m:x:2026-11-20", &n, "v2", StatusMiss)
			mustCompute(t, c, []byte("k"), "m:x:2026-11-20", &n, "v2", StatusHit)
			if s := c.Stats(); s.L2Connected || l2Requests(s) != [6]uint64{} {
				t.Fatalf("stats %+v", s)
			}
		})
	}
	// A refused connection is counted as an error at once.
	c := newL2Cache(t, "redis://127.0.0.1:"+strconv.Itoa(freePort(t)), testPrefix())
	waitFor(t, 5*time.Second, "errors counted", func() bool { return c.Stats().L2Errors > 0 })
}

// silentServer listens on 127.0.0.1, accepts connections and never
// answers (reading what it is sent), until the test ends; it returns its
// redis:// URL.
func silentServer(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, conn)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, _ = io.Copy(io.Discard, conn)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return "redis://" + ln.Addr().String()
}

// TestL2Outage: while Redis is down, entries from before the outage are
// misses, entries computed during it are served and invalidated locally;
// when it is back (a new, empty Redis), old entries are invalid everywhere
// and the tier works again.
func TestL2Outage(t *testing.T) {
	r := redistest.Start(t)
	p := testPrefix()
	// After a resync every tag bumped within PartnerLag counts as just
	// bumped (TestL2PartnerLag); this test is not about that.
	noLag := func(o *Options) { o.L2.PartnerLag = -1 }
	c1, c2 := newL2Cache(t, r.URL(), p, noLag), newL2Cache(t, r.URL(), p, noLag)
	waitSynced(t, r.Client(), p, c1, c2)
	var n counter
	mustCompute(t, c1, []byte("before"), "m:a:2026-11-20", &n, "v", StatusMiss)

	r.Stop()
	waitFor(t, 5*time.Second, "c1 to notice", func() bool { return !c1.Stats().L2Connected })
	if _, st := c1.Get([]byte("before")); st != StatusMiss {
		t.Fatalf("an entry from before the outage: %v while unsynced", st)
	}
	// While unsynced, requests leave Redis alone (they do not wait on a
	// server that is down): no lookup, lock or write of the tier is made,
	// which each count in one of these.
	before := c1.Stats()
	mustCompute(t, c1, []byte("during"), "m:b:2026-11-20", &n, "v", StatusMiss)
	mustCompute(t, c1, []byte("during"), "m:b:2026-11-20", &n, "v", StatusHit)
	c1.Invalidate("m:b:2026-11-20")
	mustCompute(t, c1, []byte("during"), "m:b:2026-11-20", &n, "v2", StatusMiss)
	mustCompute(t, c1, []byte("other"), "m:c:2026-11-20", &n, "v", StatusMiss)
	if got, was := l2Requests(c1.Stats()), l2Requests(before); got != was {
		t.Fatalf("requests used the L2 tier with Redis down: L2 hits, misses, lock waits, unshared, writes, dropped %v, before %v", got, was)
	}

	r.Restart()
	rc := r.Client()
	waitSynced(t, rc, p, c1, c2)
	// A new Redis: every entry computed before is invalid (rebase), on
	// both instances.
	for _, k := range []string{"before", "during", "other"} {
		if _, st := c1.Get([]byte(k)); st != StatusMiss {
			t.Fatalf("%s after the new Redis: %v", k, st)
		}
	}
	mustCompute(t, c1, []byte("after"), "m:b:2026-11-20", &n, "v3", StatusMiss)
	mustCompute(t, c2, []byte("after"), "m:b:2026-11-20", &n, "v3", StatusHitL2)
}

// l2Requests returns the counters that the L2 work of a request moves:
// lookups (hits, misses), locks (waits, computations without one) and
// entry writes (made or dropped).
func l2Requests(s Stats) [6]uint64 {
	return [6]uint64{s.L2Hits, s.L2Misses, s.L2LockWaits, s.L2Unshared, s.L2Writes, s.L2WritesDropped}
}

// TestL2Resubscribe: an instance whose subscription breaks re-reads the
// generations, sees the bumps it missed, and keeps the entries that none
// of them invalidated.
func TestL2Resubscribe(t *testing.T) {
	r := redistest.Start(t)
	rc := r.Client()
	p := testPrefix()
	c1, c2 := newL2Cache(t, r.URL(), p), newL2Cache(t, r.URL(), p)
	waitSynced(t, rc, p, c1, c2)
	var n counter
	mustCompute(t, c2, []byte("bumped"), "m:a:2026-11-20", &n, "v", StatusMiss)
	mustCompute(t, c2, []byte("kept"), "m:b:2026-11-20", &n, "v", StatusMiss)
	resyncs := c2.Stats().L2Resyncs

	if err := rc.Do(bg, "CLIENT", "KILL", "TYPE", "pubsub").Err(); err != nil {
		t.Fatal(err)
	}
	c1.Invalidate("m:a:2026-11-20") // possibly while c2 is not subscribed
	waitFor(t, 5*time.Second, "c2 to resync", func() bool {
		s := c2.Stats()
		return s.L2Resyncs > resyncs && s.L2Connected
	})
	waitSynced(t, rc, p, c1, c2)
	if _, st := c2.Get([]byte("bumped")); st != StatusMiss {
		t.Fatalf("entry bumped during the break: %v", st)
	}
	if _, st := c2.Get([]byte("kept")); st != StatusHit {
		t.Fatalf("entry not bumped: %v after the resync", st)
	}
}

// TestL2SlowRedis: a Redis that stops answering costs the requests one
// operation timeout, after which they no longer wait on it; bumps made
// meanwhile are pushed when it is back.
func TestL2SlowRedis(t *testing.T) {
	r := redistest.Start(t)
	rc := r.Client()
	p := testPrefix()
	// After a resync every tag bumped within PartnerLag counts as just
	// bumped (TestL2PartnerLag); this test is not about that.
	noLag := func(o *Options) { o.L2.PartnerLag = -1 }
	c1, c2 := newL2Cache(t, r.URL(), p, noLag), newL2Cache(t, r.URL(), p, noLag)
	waitSynced(t, rc, p, c1, c2)
	var n counter
	mustCompute(t, c2, []byte("k"), "m:a:2026-11-20", &n, "v", StatusMiss)

	r.Signal(syscall.SIGSTOP)
	stopped := true
	defer func() {
		if stopped {
			r.Signal(syscall.SIGCONT)
		}
	}()
	// The first bump waits for Redis until its deadline and leaves the
	// instance unsynced; from then on requests leave Redis alone (no bump
	// is sent; no entry of the tier is read, locked or written), so they
	// no longer wait on it.
	var bumps bumpCounter
	c1.l2.rdb.AddHook(&bumps)
	var after [6]uint64
	for i := range 5 {
		c1.Invalidate("m:a:2026-11-20")
		mustCompute(t, c1, []byte("x"+strconv.Itoa(i)), "m:x:2026-11-20", &n, "v", StatusMiss)
		if i == 0 {
			after = l2Requests(c1.Stats())
		}
	}
	if s := c1.Stats(); s.L2Connected || l2Requests(s) != after || bumps.n.Load() != 1 {
		t.Fatalf("with Redis stopped, requests after the first still used the tier: connected %v, %d bumps sent (want 1), L2 hits, misses, lock waits, unshared, writes, dropped %v, after the first %v",
			s.L2Connected, bumps.n.Load(), l2Requests(s), after)
	}
	r.Signal(syscall.SIGCONT)
	stopped = false
	waitSynced(t, rc, p, c1, c2)
	if _, st := c2.Get([]byte("k")); st != StatusMiss {
		t.Fatalf("c2 serves an entry that c1 invalidated while Redis was stopped: %v", st)
	}
	// Entries computed while unsynced after a local bump hold
	// provisional snapshots: misses now. New ones are shared again.
	for i := range 5 {
		if _, st := c1.Get([]byte("x" + strconv.Itoa(i))); st != StatusMiss {
			t.Fatalf("entry with a provisional snapshot: %v after the resync", st)
		}
	}
	mustCompute(t, c1, []byte("y"), "m:a:2026-11-20", &n, "v", StatusMiss)
	mustCompute(t, c1, []byte("y"), "m:a:2026-11-20", &n, "v", StatusHit)
	mustCompute(t, c2, []byte("y"), "m:a:2026-11-20", &n, "v", StatusHitL2)
}

// bumpCounter is a go-redis hook that counts the runs of bumpScript sent
// by hash (EVALSHA; Script.Run sends EVAL only after a NOSCRIPT answer).
type bumpCounter struct{ n atomic.Int64 }

func (*bumpCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (b *bumpCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if a := cmd.Args(); len(a) > 1 && a[0] == "evalsha" && a[1] == bumpScript.Hash() {
			b.n.Add(1)
		}
		return next(ctx, cmd)
	}
}

func (*bumpCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// TestL2SaveLoad: a saved cache keeps its entries across a restart if
// Redis is the same one, and drops them if it is not.
func TestL2SaveLoad(t *testing.T) {
	r := redistest.Start(t)
	p := testPrefix()
	dir := t.TempDir()
	o := DefaultOptions()
	o.MaxBytes = 32 << 20
	o.L2 = L2Options{URL: r.URL(), Prefix: p}
	c, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	rc := r.Client()
	waitSynced(t, rc, p, c)
	var n counter
	mustCompute(t, c, []byte("k"), "m:a:2026-11-20", &n, "v", StatusMiss)
	save := func() {
		t.Helper()
		if err := c.Save(dir); err != nil {
			t.Fatal(err)
		}
		_ = c.Close()
	}
	load := func() {
		t.Helper()
		var err error
		if c, err = Load(dir, o); err != nil {
			t.Fatal(err)
		}
		loaded := c
		t.Cleanup(func() { _ = loaded.Close() })
	}
	save()
	load()
	waitSynced(t, rc, p, c)
	if _, st := c.Get([]byte("k")); st != StatusHit {
		t.Fatalf("loaded entry after syncing with the same Redis: %v", st)
	}

	save()
	r.Stop()
	r.Restart()
	rc = r.Client()
	load()
	waitSynced(t, rc, p, c)
	if _, st := c.Get([]byte("k")); st != StatusMiss {
		t.Fatalf("loaded entry after syncing with another Redis: %v", st)
	}

	// Saved without L2: never trusted with it.
	o2 := o
	o2.L2 = L2Options{}
	plain, err := New(o2)
	if err != nil {
		t.Fatal(err)
	}
	mustCompute(t, plain, []byte("p"), "m:a:2026-11-20", &n, "v", StatusMiss)
	dir2 := t.TempDir()
	if err := plain.Save(dir2); err != nil {
		t.Fatal(err)
	}
	_ = plain.Close()
	c, err = Load(dir2, o)
	if err != nil {
		t.Fatal(err)
	}
	loaded := c
	t.Cleanup(func() { _ = loaded.Close() })
	waitSynced(t, rc, p, c)
	if _, st := c.Get([]byte("p")); st != StatusMiss {
		t.Fatalf("entry saved without L2, loaded with it: %v", st)
	}
}

// BenchmarkL2Get compares a warm Get served from L1, one served from L2
// (Redis on localhost) and a miss (L1 and L2), for 4 KiB values.
func BenchmarkL2Get(b *testing.B) {
	r := redistest.Start(b)
	p := testPrefix()
	big := func(o *Options) { o.MaxBytes = 256 << 20 }
	writer := newL2Cache(b, r.URL(), p, big)
	reader := newL2Cache(b, r.URL(), p, big)
	waitSynced(b, r.Client(), p, writer, reader)
	value := make([]byte, 4<<10)
	for i := range value {
		value[i] = byte(i * 7)
	}
	key := func(i int) []byte { return fmt.Appendf(nil, "query_range:sum(rate(x[5m])):60:%d", i) }
	const keys = 4000 // 16 MiB: all of it in L1
	snap := writer.Snapshot()
	for i := range keys {
		if err := writer.Set(key(i), []string{"m:x:2026-11-20"}, snap, value, time.Hour); err != nil {
			b.Fatal(err)
		}
		if i%1000 == 999 {
			time.Sleep(10 * time.Millisecond) // let the write-behind queue drain
		}
	}
	waitFor(b, 10*time.Second, "writes", func() bool { return writer.Stats().L2Writes+writer.Stats().L2WritesDropped >= keys })
	if d := writer.Stats().L2WritesDropped; d > 0 {
		b.Fatalf("%d writes dropped", d)
	}
	b.Run("L1-hit", func(b *testing.B) {
		i := 0
		for b.Loop() {
			if _, st := writer.Get(key(i % keys)); st != StatusHit {
				b.Fatal(st)
			}
			i++
		}
	})
	b.Run("L2-hit", func(b *testing.B) {
		// Each read promotes the entry into L1; it is deleted from L1
		// again (about 100 ns) so that the next round reads L2 again.
		i := 0
		for b.Loop() {
			k := key(i % keys)
			if _, st := reader.Get(k); st != StatusHitL2 {
				b.Fatalf("key %d: %v", i%keys, st)
			}
			var kb [8]byte
			reader.fc.Del(reader.fastKey(&kb, k))
			i++
		}
	})
	b.Run("miss", func(b *testing.B) {
		i := 0
		for b.Loop() {
			if _, st := reader.Get(key(keys + i)); st != StatusMiss {
				b.Fatal(st)
			}
			i++
		}
	})
}

// TestInvalidateTags without L2: each tag is bumped.
func TestInvalidateTags(t *testing.T) {
	c := newTestCache(t, newFakeClock())
	var n counter
	for _, k := range []string{"a", "b", "c"} {
		if _, _, err := c.GetOrCompute(bg, []byte(k), []string{"t:" + k}, n.fn(k, 0, nil)); err != nil {
			t.Fatal(err)
		}
	}
	c.InvalidateTags("t:a", "t:b", "t:a")
	for k, want := range map[string]Status{"a": StatusMiss, "b": StatusMiss, "c": StatusHit} {
		if _, st := c.Get([]byte(k)); st != want {
			t.Fatalf("%s: %v, want %v", k, st, want)
		}
	}
	if got := c.Stats().Invalidations; got != 3 {
		t.Fatalf("%d invalidations counted", got)
	}
}

// TestL2RedisFlushed: a Redis that loses the generation keys while the
// instances stay connected (FLUSHALL, eviction) is noticed by the counter
// going back; the instances rebase, so nothing cached before is served.
func TestL2RedisFlushed(t *testing.T) {
	r := redistest.Start(t)
	rc := r.Client()
	p := testPrefix()
	// A new epoch refuses L2 entries for PartnerLag (TestL2PartnerLag);
	// this test is not about that.
	noLag := func(o *Options) { o.L2.PartnerLag = -1 }
	c1, c2 := newL2Cache(t, r.URL(), p, noLag), newL2Cache(t, r.URL(), p, noLag)
	waitSynced(t, rc, p, c1, c2)
	var n counter
	c1.Invalidate("m:z:2026-11-20")
	waitSynced(t, rc, p, c1, c2)
	mustCompute(t, c1, []byte("k"), "m:a:2026-11-20", &n, "v", StatusMiss)
	mustCompute(t, c2, []byte("k"), "m:a:2026-11-20", &n, "v", StatusHitL2)
	if err := rc.FlushAll(bg).Err(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "both instances to drop the entry", func() bool {
		_, st1 := c1.Get([]byte("k"))
		_, st2 := c2.Get([]byte("k"))
		return st1 == StatusMiss && st2 == StatusMiss
	})
	waitSynced(t, rc, p, c1, c2)
	mustCompute(t, c1, []byte("k2"), "m:a:2026-11-20", &n, "v2", StatusMiss)
	mustCompute(t, c2, []byte("k2"), "m:a:2026-11-20", &n, "v2", StatusHitL2)
}

// TestL2Peek: Peek reads through to L2 as Get does. A value another
// instance computed is served from L2 (StatusHitL2, now in L1 too, and
// counted as a hit); an entry already in L1 is an L1 hit, without a
// second copy from L2; an absent key is a miss that Peek does not count.
func TestL2Peek(t *testing.T) {
	r := redistest.Start(t)
	p := testPrefix()
	c1, c2 := newL2Cache(t, r.URL(), p), newL2Cache(t, r.URL(), p)
	waitSynced(t, r.Client(), p, c1, c2)

	var n counter
	key := []byte("k")
	mustCompute(t, c1, key, "m:x:2026-11-20", &n, "v", StatusMiss)
	if v, st := c1.Peek(key); st != StatusHit || string(v) != "v" {
		t.Fatalf("c1.Peek = %q, %v; want v, hit (L1)", v, st)
	}
	if v, st := c2.Peek(key); st != StatusHitL2 || string(v) != "v" {
		t.Fatalf("c2.Peek = %q, %v; want v, hit-l2", v, st)
	}
	if v, st := c2.Peek(key); st != StatusHit || string(v) != "v" {
		t.Fatalf("c2.Peek again = %q, %v; want v, hit (promoted into L1)", v, st)
	}
	if v, st := c2.Peek([]byte("absent")); st != StatusMiss || v != nil {
		t.Fatalf("c2.Peek(absent) = %q, %v", v, st)
	}
	if s := c2.Stats(); s.Hits != 2 || s.L2Hits != 1 || s.Misses != 0 {
		t.Fatalf("c2: %d hits (%d from L2), %d misses; want 2 (1), 0", s.Hits, s.L2Hits, s.Misses)
	}
}

// TestL2GetOrExtend: GetOrExtend across instances. A fresh value in L2
// that the caller does not accept is what its extension starts from (not
// nothing), made under the key's lock and shared through L2: another
// instance that accepts the extended value serves it from L2 without
// computing.
func TestL2GetOrExtend(t *testing.T) {
	r := redistest.Start(t)
	p := testPrefix()
	c1, c2, c3 := newL2Cache(t, r.URL(), p), newL2Cache(t, r.URL(), p), newL2Cache(t, r.URL(), p)
	waitSynced(t, r.Client(), p, c1, c2, c3)

	key, tags := []byte("k"), []string{"m:x:2026-11-20"}
	var mu sync.Mutex
	var olds []string
	extend := func(_ context.Context, old []byte) ([]byte, time.Duration, error) {
		mu.Lock()
		olds = append(olds, string(old))
		mu.Unlock()
		return append([]byte(string(old)), 'x'), 0, nil
	}
	atLeast := func(n int) func([]byte) bool { return func(v []byte) bool { return len(v) >= n } }
	call := func(c *Cache, accept func([]byte) bool, want string, wantSt Status, wantRan bool, wantOlds ...string) {
		t.Helper()
		mu.Lock()
		olds = nil
		mu.Unlock()
		v, st, ran, err := c.GetOrExtend(bg, key, tags, accept, extend)
		if err != nil || string(v) != want || st != wantSt || ran != wantRan {
			t.Fatalf("GetOrExtend = %q, %v, ran %v, %v; want %q, %v, ran %v", v, st, ran, err, want, wantSt, wantRan)
		}
		mu.Lock()
		defer mu.Unlock()
		if !slices.Equal(olds, wantOlds) {
			t.Fatalf("extended from %q, want %q", olds, wantOlds)
		}
	}
	call(c1, atLeast(1), "x", StatusMiss, true, "")
	call(c2, atLeast(2), "xx", StatusMiss, true, "x") // from c1's value in L2
	call(c3, atLeast(2), "xx", StatusHitL2, false)    // c2's value, from L2
	if s := c3.Stats(); s.Computations != 0 || s.L2Hits != 1 {
		t.Fatalf("c3: %d computations, %d L2 hits; want 0, 1", s.Computations, s.L2Hits)
	}
	// Each computed under the key's lock, and wrote its value with the
	// lock's release, or served from L2: none unshared.
	for i, c := range []*Cache{c1, c2, c3} {
		s := c.Stats()
		if s.L2Unshared != 0 {
			t.Errorf("instance %d: %d misses computed without the shared lock, want 0", i+1, s.L2Unshared)
		}
		if want := uint64(min(1, 2-i)); s.L2Writes != want {
			t.Errorf("instance %d: %d L2 writes, want %d", i+1, s.L2Writes, want)
		}
	}
}

// TestL2ComputeErrorReleasesLock: a computation that fails under the key's
// lock releases it: the next miss, on another instance, takes the lock at
// once instead of waiting for it to expire.
func TestL2ComputeErrorReleasesLock(t *testing.T) {
	r := redistest.Start(t)
	p := testPrefix()
	c1, c2 := newL2Cache(t, r.URL(), p), newL2Cache(t, r.URL(), p)
	waitSynced(t, r.Client(), p, c1, c2)
	var n counter
	boom := errors.New("boom")
	if _, _, err := c1.GetOrCompute(bg, []byte("k"), nil, n.fn("", 0, boom)); !errors.Is(err, boom) {
		t.Fatalf("c1: %v, want boom", err)
	}
	mustCompute(t, c2, []byte("k"), "m:x:2026-11-20", &n, "v", StatusMiss)
	if s := c2.Stats(); s.L2LockWaits != 0 || s.L2Unshared != 0 {
		t.Fatalf("c2: %d lock waits, %d unshared; want 0, 0 (the failed computation's lock released)", s.L2LockWaits, s.L2Unshared)
	}
}

// TestL2PrefetchManyKeys: Prefetch reads any number of keys (in chunks of
// 256 per round trip), promotes every fresh one L1 lacks, skips those L1
// holds, and counts only what it promoted.
func TestL2PrefetchManyKeys(t *testing.T) {
	r := redistest.Start(t)
	rc := r.Client()
	p := testPrefix()
	w, c := newL2Cache(t, r.URL(), p, patient), newL2Cache(t, r.URL(), p, patient)
	waitSynced(t, rc, p, w, c)
	const n = 600 // three chunks, the last one partial
	keys := make([][]byte, 0, n+2)
	for i := range n {
		k := []byte("k" + strconv.Itoa(i))
		keys = append(keys, k)
		if err := w.Set(k, []string{"m:x"}, w.Snapshot(), []byte("v"+strconv.Itoa(i)), 0); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 10*time.Second, "the entries written to Redis", func() bool { return w.Stats().L2Writes == n })
	// Two keys c holds in L1 already, and one nobody has.
	for _, i := range []int{5, 300} {
		if v, st := c.Get(keys[i]); st != StatusHitL2 || string(v) != "v"+strconv.Itoa(i) {
			t.Fatalf("Get(%s) = %q, %v", keys[i], v, st)
		}
	}
	keys = append(keys, []byte("absent"))
	// A caller that gave up is not an error of Redis: it neither counts
	// nor pauses the tier for the calls that follow.
	canceled, cancel := context.WithCancel(bg)
	cancel()
	if got := c.Prefetch(canceled, keys); got != 0 {
		t.Fatalf("Prefetch with a canceled context promoted %d", got)
	}
	if got := c.Prefetch(bg, keys); got != n-2 {
		t.Fatalf("Prefetch promoted %d, want %d", got, n-2)
	}
	for i, k := range keys[:n] {
		if v, st := c.Get(k); st != StatusHit || string(v) != "v"+strconv.Itoa(i) {
			t.Fatalf("after Prefetch, Get(%s) = %q, %v; want an L1 hit", k, v, st)
		}
	}
	if got := c.Prefetch(bg, keys); got != 0 {
		t.Fatalf("second Prefetch promoted %d, want 0", got)
	}
	if got := c.Prefetch(bg, nil); got != 0 {
		t.Fatalf("Prefetch of no keys promoted %d", got)
	}
	if s := c.Stats(); s.L2Errors != 0 || !s.L2Connected {
		t.Fatalf("Redis errors after the prefetches: %+v", s)
	}
}

// patient gives Redis operations a deadline no load on the test machine
// reaches, for tests whose every L2 read must succeed.
func patient(o *Options) { o.L2.OpTimeout = 10 * time.Second }
