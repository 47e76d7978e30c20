package cache

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/strata-tsdb/strata/cache/redistest"
)

// TestL2SharesEntriesOfEverySize: entries of sizes from 100 bytes to a
// megabyte (incompressible) reach L2 and another instance serves them,
// both when written with the release of the lock of their computation
// and when written behind (Set). The deadlines of those writes grow with
// the bytes moved; each must stay a deadline in the future whatever the
// size (a duration computed in the wrong order overflows int64 for all
// but the smallest entries, and half of them then wrap negative: a
// write that can never succeed).
func TestL2SharesEntriesOfEverySize(t *testing.T) {
	r := redistest.Start(t)
	p := testPrefix()
	c1, c2 := newL2Cache(t, r.URL(), p, patient), newL2Cache(t, r.URL(), p, patient)
	waitSynced(t, r.Client(), p, c1, c2)
	rng := rand.New(rand.NewPCG(5, 6))
	tags := []string{"m:x:2026-11-20"}
	for _, size := range []int{100, 300, 1000, 3000, 10_000, 30_000, 100_000, 300_000, 1 << 20} {
		val := make([]byte, size)
		for i := range val {
			val[i] = byte(rng.Uint32())
		}
		// Computed under the lock: written with its release.
		var n counter
		key := fmt.Appendf(nil, "locked-%d", size)
		if v, st, err := c1.GetOrCompute(bg, key, tags, n.fn(string(val), 0, nil)); err != nil || st != StatusMiss || !bytes.Equal(v, val) {
			t.Fatalf("size %d: c1 computing: %d bytes, %v, %v", size, len(v), st, err)
		}
		if v, st, err := c2.GetOrCompute(bg, key, tags, n.fn("computed again", 0, nil)); err != nil || st != StatusHitL2 || !bytes.Equal(v, val) {
			t.Fatalf("size %d: entry computed under the lock, read by another instance: %d bytes, %v, %v (want StatusHitL2); stats %+v", size, len(v), st, err, c1.Stats())
		}
		// Written behind.
		key = fmt.Appendf(nil, "behind-%d", size)
		if err := c1.Set(key, tags, c1.Snapshot(), val, 0); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 10*time.Second, fmt.Sprintf("the written-behind entry of %d bytes in L2", size), func() bool {
			v, st := c2.Get(key)
			return st == StatusHitL2 && bytes.Equal(v, val)
		})
	}
	if s := c1.Stats(); s.L2Errors != 0 {
		t.Fatalf("%d Redis errors", s.L2Errors)
	}
}

// TestL2SharesLargeEntryUnderLock: an entry computed under the lock
// whose compressed size is past what OpTimeout alone allows at 64 MiB/s
// (8 MiB at the default 100 ms) still reaches L2 with the lock's release:
// that write's deadline is OpTimeout plus the time for its bytes at
// 64 MiB/s (225 ms here, for what a loopback Redis takes 10-40 ms to
// move on the shared test machine), not OpTimeout less it, which is past
// before the write starts and so fails every entry this large, each
// failure also pausing the tier. Not a timing assertion: one of five
// entries must get through, which only a machine that cannot move
// 32 MiB/s to a loopback Redis would miss.
func TestL2SharesLargeEntryUnderLock(t *testing.T) {
	r := redistest.Start(t)
	p := testPrefix()
	big := func(o *Options) { o.MaxBytes = 128 << 20 } // entries up to 16 MiB
	c1, c2 := newL2Cache(t, r.URL(), p, big), newL2Cache(t, r.URL(), p, big)
	waitSynced(t, r.Client(), p, c1, c2)
	rng := rand.New(rand.NewPCG(7, 8))
	val := make([]byte, 8<<20) // incompressible
	for i := range val {
		val[i] = byte(rng.Uint32())
	}
	tags := []string{"m:x:2026-11-20"}
	var failed []string
	for try := range 5 {
		// A failed write pauses the tier briefly; a miss while it is
		// paused would not use the lock.
		waitFor(t, 10*time.Second, "the tier usable", func() bool { return c1.l2.usable() && c2.l2.usable() })
		var n counter
		key := fmt.Appendf(nil, "large-%d", try)
		if v, st, err := c1.GetOrCompute(bg, key, tags, n.fn(string(val), 0, nil)); err != nil || st != StatusMiss || !bytes.Equal(v, val) {
			t.Fatalf("c1 computing: %d bytes, %v, %v", len(v), st, err)
		}
		v, st, err := c2.GetOrCompute(bg, key, tags, n.fn("computed again", 0, nil))
		if err != nil {
			t.Fatal(err)
		}
		if st == StatusHitL2 && bytes.Equal(v, val) {
			return
		}
		failed = append(failed, fmt.Sprintf("%d bytes, %v", len(v), st))
	}
	t.Fatalf("none of 5 large entries computed under the lock was read by another instance from L2 (%v); c1's stats %+v", failed, c1.Stats())
}

// TestL2WriteBehindOutlastsStall: the write-behind queue's pipeline, off
// the requests' paths, has a deadline of ten OpTimeouts (at least a
// second), so a Redis that stalls writes for longer than a request may
// wait still gets the entry. With OpTimeout 1 s, an entry Set while Redis
// holds writes for 3 s (CLIENT PAUSE WRITE, which the server ends by
// itself) reaches L2, and no error is counted; a deadline of one second
// would fail the write (and pause the tier).
func TestL2WriteBehindOutlastsStall(t *testing.T) {
	r := redistest.Start(t)
	rc := r.Client()
	p := testPrefix()
	opt := func(o *Options) { o.L2.OpTimeout = time.Second }
	c1, c2 := newL2Cache(t, r.URL(), p, opt), newL2Cache(t, r.URL(), p, opt)
	waitSynced(t, rc, p, c1, c2)
	before := c1.Stats()
	if err := rc.Do(bg, "CLIENT", "PAUSE", "3000", "WRITE").Err(); err != nil {
		t.Fatal(err)
	}
	key := []byte("k")
	if err := c1.Set(key, []string{"m:x:2026-11-20"}, c1.Snapshot(), []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	done := func(s Stats) uint64 { return s.L2Writes + s.L2Errors + s.L2WritesDropped }
	waitFor(t, 30*time.Second, "the write behind to end", func() bool { return done(c1.Stats()) > done(before) })
	if s := c1.Stats(); s.L2Writes != before.L2Writes+1 || s.L2Errors != before.L2Errors {
		t.Fatalf("after a 3 s write stall: %d entries written, %d errors (want 1 and 0)", s.L2Writes-before.L2Writes, s.L2Errors-before.L2Errors)
	}
	if v, st := c2.Get(key); st != StatusHitL2 || string(v) != "v" {
		t.Fatalf("the entry written behind, read by another instance: %q %v, want an L2 hit", v, st)
	}
}

// TestL2WritesBehindLargeEntry: an entry of 64 MiB written behind reaches
// Redis: the pipeline's deadline is its base (a second here) plus the
// bytes' time at 64 MiB/s, not the base less it, which is past before
// the write starts for any batch of 64 MiB or more. Checked in Redis
// itself (a read of 64 MiB within a lookup's deadline is not promised).
// Not a timing assertion: one of five entries must get through in its
// 2 s, which only a machine that cannot move 32 MiB/s to a loopback Redis
// would miss.
func TestL2WritesBehindLargeEntry(t *testing.T) {
	r := redistest.Start(t)
	rc := r.Client()
	p := testPrefix()
	c := newL2Cache(t, r.URL(), p, func(o *Options) { o.MaxBytes = 1 << 30 }) // entries up to 128 MiB
	waitSynced(t, rc, p, c)
	val := make([]byte, 64<<20+1<<10) // incompressible
	rand.NewChaCha8([32]byte{9}).Read(val)
	done := func(s Stats) uint64 { return s.L2Writes + s.L2Errors + s.L2WritesDropped }
	var failed []string
	for try := range 5 {
		waitFor(t, 10*time.Second, "the tier usable", c.l2.usable)
		before := c.Stats()
		key := fmt.Appendf(nil, "large-%d", try)
		if err := c.Set(key, []string{"m:x:2026-11-20"}, c.Snapshot(), val, 0); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 60*time.Second, "the write behind to end", func() bool { return done(c.Stats()) > done(before) })
		n, err := rc.StrLen(bg, entryKeyOf(c, key)).Result()
		if err != nil {
			t.Fatal(err)
		}
		if n >= int64(len(val)) {
			return
		}
		s := c.Stats()
		failed = append(failed, fmt.Sprintf("%d bytes in Redis, %d written, %d errors", n, s.L2Writes-before.L2Writes, s.L2Errors-before.L2Errors))
	}
	t.Fatalf("none of 5 entries of 64 MiB written behind reached Redis: %v", failed)
}

// TestL2LargeWriteOutlastsStall: the deadline of a write of n bytes, with
// the lock's release or behind, leaves time for the bytes (n at 64 MiB/s)
// beyond its base (OpTimeout; at least a second behind), so a large entry
// still reaches Redis when Redis holds writes for a little longer than
// the base: CLIENT PAUSE WRITE, ended by the server itself, set by a
// go-redis hook just as the write is sent, for the base and 150 ms (the
// allowance is 250 ms for 16 MiB, 500 ms for 32 MiB). A deadline of the
// base alone fails every such write. One of five entries must get
// through, so a slow moment of the machine fails nothing.
func TestL2LargeWriteOutlastsStall(t *testing.T) {
	r := redistest.Start(t)
	rc := r.Client()
	p := testPrefix()
	c := newL2Cache(t, r.URL(), p, func(o *Options) { o.MaxBytes = 512 << 20 }) // entries up to 64 MiB
	waitSynced(t, rc, p, c)
	stall := &stallBeforeSet{rc: rc}
	c.l2.rdb.AddHook(stall)
	tags := []string{"m:x:2026-11-20"}
	inRedis := func(key []byte) int64 {
		t.Helper()
		n, err := rc.StrLen(bg, entryKeyOf(c, key)).Result()
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	for _, w := range []struct {
		name  string
		size  int
		pause time.Duration
		write func(key, val []byte)
	}{
		{"with the lock's release", 16 << 20, 100*time.Millisecond + 150*time.Millisecond, func(key, val []byte) {
			var n counter
			if _, st, err := c.GetOrCompute(bg, key, tags, n.fn(string(val), 0, nil)); err != nil || st != StatusMiss {
				t.Fatalf("computing: %v, %v", st, err)
			}
		}},
		{"behind", 32 << 20, time.Second + 150*time.Millisecond, func(key, val []byte) {
			done := func(s Stats) uint64 { return s.L2Writes + s.L2Errors + s.L2WritesDropped }
			before := c.Stats()
			if err := c.Set(key, tags, c.Snapshot(), val, 0); err != nil {
				t.Fatal(err)
			}
			waitFor(t, 60*time.Second, "the write behind to end", func() bool { return done(c.Stats()) > done(before) })
		}},
	} {
		t.Run(w.name, func(t *testing.T) {
			val := make([]byte, w.size) // incompressible
			rand.NewChaCha8([32]byte{byte(w.size >> 20)}).Read(val)
			var failed []int64
			for try := range 5 {
				waitFor(t, 10*time.Second, "the tier usable", c.l2.usable)
				key := fmt.Appendf(nil, "%s-%d", w.name, try)
				stall.set(entryKeyOf(c, key), w.pause)
				w.write(key, val)
				n := inRedis(key)
				if n >= int64(w.size) {
					return
				}
				failed = append(failed, n)
			}
			t.Fatalf("none of 5 entries of %d MiB written while Redis held writes for %v reached Redis (bytes there: %v); stats %+v", w.size>>20, w.pause, failed, c.Stats())
		})
	}
}

// stallBeforeSet is a go-redis hook: before a pipeline that sets key is
// sent, it has Redis hold writes for d (CLIENT PAUSE WRITE).
type stallBeforeSet struct {
	rc  *redis.Client
	mu  sync.Mutex
	key string
	d   time.Duration
}

func (s *stallBeforeSet) set(key string, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.key, s.d = key, d
}

func (*stallBeforeSet) DialHook(next redis.DialHook) redis.DialHook { return next }

func (*stallBeforeSet) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }

func (s *stallBeforeSet) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		s.mu.Lock()
		key, d := s.key, s.d
		s.mu.Unlock()
		for _, c := range cmds {
			if a := c.Args(); len(a) > 1 && a[0] == "set" && a[1] == key {
				if err := s.rc.Do(context.Background(), "CLIENT", "PAUSE", d.Milliseconds(), "WRITE").Err(); err != nil {
					return err
				}
				break
			}
		}
		return next(ctx, cmds)
	}
}
