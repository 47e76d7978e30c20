package cache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestOptionsValidate(t *testing.T) {
	if err := DefaultOptions().Validate(); err != nil {
		t.Fatalf("DefaultOptions invalid: %v", err)
	}
	f := func(name string, mutate func(*Options)) {
		t.Helper()
		o := DefaultOptions()
		mutate(&o)
		if err := o.Validate(); err == nil {
			t.Errorf("%s: Validate() = nil, want an error", name)
		}
		if _, err := New(o); err == nil {
			t.Errorf("%s: New() = nil error", name)
		}
	}
	f("MaxBytes 0", func(o *Options) { o.MaxBytes = 0 })
	f("TTL 0", func(o *Options) { o.TTL = 0 })
	f("MaxTTL below TTL", func(o *Options) { o.MaxTTL = o.TTL / 2 })
	f("negative grace", func(o *Options) { o.Grace = -1 })
	f("RewriteFraction 1", func(o *Options) { o.RewriteFraction = 1 })
	f("RewriteFraction NaN", func(o *Options) { o.RewriteFraction = float64(0) / float64(zero()) })
	f("negative MaxEntryBytes", func(o *Options) { o.MaxEntryBytes = -1 })
	l2 := func(mutate func(*L2Options)) func(*Options) {
		return func(o *Options) {
			o.L2 = L2Options{URL: "redis://127.0.0.1:1/0"}
			mutate(&o.L2)
		}
	}
	f("bad L2 URL", l2(func(o *L2Options) { o.URL = "http://127.0.0.1:1" }))
	f("negative OpTimeout", l2(func(o *L2Options) { o.OpTimeout = -1 }))
	f("negative LockTTL", l2(func(o *L2Options) { o.LockTTL = -1 }))
	f("negative MaxLockWait", l2(func(o *L2Options) { o.MaxLockWait = -1 }))
	f("negative WriteQueue", l2(func(o *L2Options) { o.WriteQueue = -1 }))
	// Zero means the default, and a negative PartnerLag turns the rule off.
	o := DefaultOptions()
	o.L2 = L2Options{URL: "redis://127.0.0.1:1/0", PartnerLag: -1}
	if err := o.Validate(); err != nil {
		t.Errorf("L2 with zero timeouts: %v", err)
	}
	o.L2 = L2Options{OpTimeout: -1} // no URL: the tier is off, nothing else is read
	if err := o.Validate(); err != nil {
		t.Errorf("L2 off, other fields set: %v", err)
	}
}

// TestL2OptionDefaults: the zero L2Options fields take the documented
// defaults, and set fields are kept.
func TestL2OptionDefaults(t *testing.T) {
	d := L2Options{URL: "redis://x"}.withDefaults()
	if d.Prefix != "strata:" || d.OpTimeout != 100*time.Millisecond || d.LockTTL != 3*time.Second ||
		d.MaxLockWait != 30*time.Second || d.WriteQueue != 4096 || d.PartnerLag != time.Minute || d.Logger == nil {
		t.Fatalf("defaults: %+v", d)
	}
	set := L2Options{URL: "redis://x", Prefix: "p:", OpTimeout: 1, LockTTL: 2, MaxLockWait: 3, WriteQueue: 4, PartnerLag: -1}
	if got := set.withDefaults(); got.Prefix != "p:" || got.OpTimeout != 1 || got.LockTTL != 2 ||
		got.MaxLockWait != 3 || got.WriteQueue != 4 || got.PartnerLag != -1 {
		t.Fatalf("set fields changed: %+v", got)
	}
}

func zero() int { return 0 }

func TestStatusString(t *testing.T) {
	for st, want := range map[Status]string{StatusMiss: "miss", StatusHit: "hit", StatusStale: "stale", StatusShared: "shared"} {
		if st.String() != want {
			t.Errorf("%d.String() = %q, want %q", st, st.String(), want)
		}
	}
}

func TestTTL(t *testing.T) {
	clk := newFakeClock()
	c := newTestCache(t, clk, func(o *Options) { o.Grace = 0; o.MaxTTL = time.Hour })
	var n counter

	if v, st := mustGet(t, c, "a", nil, n.fn("A", 0, nil)); v != "A" || st != StatusMiss {
		t.Fatalf("first = %q, %v", v, st)
	}
	if v, st := mustGet(t, c, "a", nil, n.fn("A2", 0, nil)); v != "A" || st != StatusHit {
		t.Fatalf("second = %q, %v", v, st)
	}
	clk.Advance(time.Minute - time.Nanosecond)
	expectGet(t, c, "a", "A", StatusHit)
	clk.Advance(time.Nanosecond)
	expectGet(t, c, "a", "", StatusMiss) // TTL reached, no grace
	if v, st := mustGet(t, c, "a", nil, n.fn("A3", 0, nil)); v != "A3" || st != StatusMiss {
		t.Fatalf("after expiry = %q, %v", v, st)
	}

	// A TTL from compute is honored, capped at MaxTTL; a negative one is
	// not cached.
	mustGet(t, c, "short", nil, n.fn("S", time.Second, nil))
	mustGet(t, c, "long", nil, n.fn("L", 48*time.Hour, nil))
	mustGet(t, c, "none", nil, n.fn("N", -1, nil))
	clk.Advance(time.Second)
	expectGet(t, c, "short", "", StatusMiss)
	expectGet(t, c, "none", "", StatusMiss)
	clk.Advance(time.Hour - time.Second - time.Nanosecond)
	expectGet(t, c, "long", "L", StatusHit)
	clk.Advance(time.Nanosecond)
	expectGet(t, c, "long", "", StatusMiss)
	if got := n.calls.Load(); got != 5 {
		t.Errorf("computations = %d, want 5", got)
	}
}

func TestStaleWhileRevalidate(t *testing.T) {
	clk := newFakeClock()
	c := newTestCache(t, clk)
	var n counter
	mustGet(t, c, "k", nil, n.fn("v1", 0, nil))
	clk.Advance(time.Minute + time.Second) // past TTL, inside grace
	expectGet(t, c, "k", "v1", StatusStale)

	// Many concurrent stale reads: all served at once, one refresh.
	release := make(chan struct{})
	refresh := func(ctx context.Context) ([]byte, time.Duration, error) {
		n.calls.Add(1)
		<-release
		return []byte("v2"), 0, nil
	}
	const readers = 50
	errs := make(chan error, readers)
	for range readers {
		go func() {
			v, st, err := c.GetOrCompute(context.Background(), []byte("k"), nil, refresh)
			if err == nil && (st != StatusStale || string(v) != "v1") {
				err = fmt.Errorf("got %q, %v; want v1, stale", v, st)
			}
			errs <- err
		}()
	}
	// Stale reads return without waiting for the refresh: bounded (very
	// generously) so that one that waits fails rather than hangs.
	timeout := time.After(time.Minute)
	for range readers {
		select {
		case err := <-errs:
			if err != nil {
				close(release)
				t.Fatal(err)
			}
		case <-timeout:
			close(release)
			t.Fatal("stale reads still waiting after a minute: they wait for the refresh")
		}
	}
	close(release)
	waitIdle(t, c)
	if got := n.calls.Load(); got != 2 {
		t.Fatalf("computations = %d, want 2 (initial + one refresh)", got)
	}
	expectGet(t, c, "k", "v2", StatusHit)
	s := c.Stats()
	if s.Stale != readers+1 || s.Refreshes != 1 || s.RefreshFailures != 0 {
		t.Errorf("stats: stale %d refreshes %d failures %d", s.Stale, s.Refreshes, s.RefreshFailures)
	}
}

func TestRefreshFailureKeepsStaleUntilGraceEnds(t *testing.T) {
	clk := newFakeClock()
	c := newTestCache(t, clk)
	var n counter
	mustGet(t, c, "k", nil, n.fn("v1", 0, nil))
	fail := n.fn("", 0, errors.New("backend down"))

	clk.Advance(time.Minute)
	for i := range 3 {
		if v, st := mustGet(t, c, "k", nil, fail); v != "v1" || st != StatusStale {
			t.Fatalf("stale read %d = %q, %v", i, v, st)
		}
		waitIdle(t, c)
		clk.Advance(10 * time.Second)
	}
	if s := c.Stats(); s.RefreshFailures != 3 || s.Refreshes != 3 {
		t.Errorf("refreshes %d, failures %d; want 3, 3", s.Refreshes, s.RefreshFailures)
	}
	clk.Advance(30*time.Second - time.Nanosecond) // just inside grace
	expectGet(t, c, "k", "v1", StatusStale)
	clk.Advance(time.Nanosecond) // grace over
	expectGet(t, c, "k", "", StatusMiss)
	_, st, err := c.GetOrCompute(context.Background(), []byte("k"), nil, fail)
	if err == nil || st != StatusMiss {
		t.Fatalf("after grace: %v, %v; want the compute error", st, err)
	}
}

func TestTagInvalidation(t *testing.T) {
	clk := newFakeClock()
	c := newTestCache(t, clk)
	var n counter
	mustGet(t, c, "a", []string{"m:cpu:2026-11-20", "m:mem:2026-11-20"}, n.fn("A", 0, nil))
	mustGet(t, c, "b", []string{"m:cpu:2026-11-21"}, n.fn("B", 0, nil))
	mustGet(t, c, "c", nil, n.fn("C", 0, nil))

	c.Invalidate("m:nothing") // a tag no entry carries
	expectGet(t, c, "a", "A", StatusHit)

	c.Invalidate("m:mem:2026-11-20") // first bump of a tag: generation 0 → 1
	expectGet(t, c, "a", "", StatusMiss)
	expectGet(t, c, "b", "B", StatusHit)
	expectGet(t, c, "c", "C", StatusHit)

	// Recomputed after the bump: valid again.
	mustGet(t, c, "a", []string{"m:cpu:2026-11-20", "m:mem:2026-11-20"}, n.fn("A2", 0, nil))
	expectGet(t, c, "a", "A2", StatusHit)
	c.Invalidate("m:cpu:2026-11-20")
	c.Invalidate("m:cpu:2026-11-20")
	expectGet(t, c, "a", "", StatusMiss)
	expectGet(t, c, "b", "B", StatusHit)
	if s := c.Stats(); s.Invalidations != 4 || s.TrackedTags != 3 {
		t.Errorf("invalidations %d tracked %d; want 4, 3", s.Invalidations, s.TrackedTags)
	}
}

func TestTagBumpDuringComputation(t *testing.T) {
	clk := newFakeClock()
	c := newTestCache(t, clk)
	started, bumped := make(chan struct{}), make(chan struct{})
	compute := func(context.Context) ([]byte, time.Duration, error) {
		close(started)
		<-bumped // a write lands while the query runs
		return []byte("old data"), 0, nil
	}
	done := make(chan error)
	go func() {
		v, st, err := c.GetOrCompute(context.Background(), []byte("k"), []string{"t"}, compute)
		if err == nil && (string(v) != "old data" || st != StatusMiss) {
			err = fmt.Errorf("got %q, %v", v, st)
		}
		done <- err
	}()
	<-started
	c.Invalidate("t")
	close(bumped)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// The value was stored, but with the generations from before the bump.
	expectGet(t, c, "k", "", StatusMiss)

	// The split form: Snapshot, compute, Set.
	snap := c.Snapshot()
	c.Invalidate("t")
	if err := c.Set([]byte("k2"), []string{"t"}, snap, []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	expectGet(t, c, "k2", "", StatusMiss)
	snap = c.Snapshot()
	if err := c.Set([]byte("k2"), []string{"t"}, snap, []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	expectGet(t, c, "k2", "v", StatusHit)
}

func TestTagInvalidatedNeverServedStale(t *testing.T) {
	clk := newFakeClock()
	c := newTestCache(t, clk)
	var n counter
	mustGet(t, c, "k", []string{"t"}, n.fn("v1", 0, nil))
	clk.Advance(90 * time.Second) // stale
	expectGet(t, c, "k", "v1", StatusStale)
	c.Invalidate("t")
	expectGet(t, c, "k", "", StatusMiss)
	if v, st := mustGet(t, c, "k", []string{"t"}, n.fn("v2", 0, nil)); v != "v2" || st != StatusMiss {
		t.Fatalf("got %q, %v; want v2 computed synchronously", v, st)
	}
}

func TestKeyCollision(t *testing.T) {
	clk := newFakeClock()
	c := newTestCache(t, clk)
	c.digestHook = func([]byte) uint64 { return 42 } // every key, one digest
	var n counter
	mustGet(t, c, "a", nil, n.fn("A", 0, nil))
	expectGet(t, c, "b", "", StatusMiss) // finds a's entry, must not return it
	if v, st := mustGet(t, c, "b", nil, n.fn("B", 0, nil)); v != "B" || st != StatusMiss {
		t.Fatalf("b = %q, %v", v, st)
	}
	expectGet(t, c, "b", "B", StatusHit)
	expectGet(t, c, "a", "", StatusMiss) // evicted by b, not confused with it
	// Get b, GetOrCompute b (its lookup and the flight's re-check), Get a.
	if s := c.Stats(); s.Collisions != 4 {
		t.Errorf("collisions = %d, want 4", s.Collisions)
	}
}

func TestCorruptEntriesAreMisses(t *testing.T) {
	clk := newFakeClock()
	c := newTestCache(t, clk)
	key := []byte("k")
	snap := c.Snapshot()
	if err := c.Set(key, []string{"t"}, snap, []byte("value"), 0); err != nil {
		t.Fatal(err)
	}
	var kb [8]byte
	fk := c.fastKey(&kb, key)
	good := c.fc.Get(nil, fk)
	expectGet(t, c, "k", "value", StatusHit)

	flip := func(i int) []byte {
		b := bytes.Clone(good)
		b[i] ^= 0x10
		return b
	}
	cases := map[string][]byte{
		"empty":            {},
		"truncated header": good[:entryHeaderLen-1],
		"header only":      good[:entryHeaderLen],
		"truncated value":  good[:len(good)-1],
		"zero filled":      make([]byte, len(good)),
		"flipped value":    flip(len(good) - 1),
		"flipped key":      flip(len(good) - 6),
		"flipped version":  flip(offVersion),
		"flipped checksum": flip(offChecksum),
		"flipped tag":      flip(entryHeaderLen),
		"huge key length":  flip(offKeyLen + 3),
		"huge tag count":   flip(offNTags + 1),
		"big meta value":   bytes.Repeat([]byte{0xff}, bigMetaLen),
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			c.fc.Set(fk, b)
			before := c.Stats().CorruptEntries
			expectGet(t, c, "k", "", StatusMiss)
			if name != "empty" && c.Stats().CorruptEntries == before {
				t.Error("not counted as corrupt")
			}
		})
	}
	// A flipped writtenAt is only an LRU hint: still a hit.
	c.fc.Set(fk, flip(offWrittenAt))
	expectGet(t, c, "k", "value", StatusHit)

	// A well-formed entry whose snapshot lies beyond the sequence (never
	// taken from this cache) would escape every later bump: a miss.
	e, err := decodeEntry(good)
	if err != nil {
		t.Fatal(err)
	}
	e.seq = c.gens.seq.Load() + 1
	c.fc.Set(fk, appendEntry(nil, &e))
	expectGet(t, c, "k", "", StatusMiss)
}

func TestBigValues(t *testing.T) {
	clk := newFakeClock()
	// 256 MiB: 8 chunks of 64 KiB per bucket. SetBig spreads a value in
	// parts of nearly 64 KiB over random buckets; in the smallest cache
	// (one chunk per bucket) two parts of a 3 MiB value often share a
	// bucket and evict each other.
	c := newTestCache(t, clk, func(o *Options) { o.MaxBytes = 256 << 20 })
	rng := rand.New(rand.NewSource(1))
	for _, size := range []int{64<<10 - 100, 64 << 10, 256 << 10, 3 << 20} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			want := make([]byte, size)
			rng.Read(want)
			key := fmt.Sprintf("big-%d", size)
			var n counter
			compute := func(context.Context) ([]byte, time.Duration, error) {
				n.calls.Add(1)
				return want, 0, nil
			}
			for i, wantSt := range []Status{StatusMiss, StatusHit, StatusHit} {
				v, st, err := c.GetOrCompute(context.Background(), []byte(key), []string{"t" + key}, compute)
				if err != nil || st != wantSt || !bytes.Equal(v, want) {
					t.Fatalf("call %d: %v, %d bytes, %v; want %v", i, st, len(v), err, wantSt)
				}
			}
			// GetAppend keeps what dst held.
			got, st := c.GetAppend([]byte("prefix"), []byte(key))
			if st != StatusHit || string(got[:6]) != "prefix" || !bytes.Equal(got[6:], want) {
				t.Fatalf("GetAppend: %v, %d bytes", st, len(got))
			}
			// PeekLocal reads into the same buffer again, from its start.
			buf, v, st := c.PeekLocal(got[:6], []byte(key))
			if st != StatusHit || !bytes.Equal(v, want) || &buf[0] != &got[0] || &buf[len(buf)-1] != &v[len(v)-1] {
				t.Fatalf("PeekLocal: %v, %d bytes (want the value at the end of the buffer given, which has room)", st, len(v))
			}
			c.Invalidate("t" + key)
			expectGet(t, c, key, "", StatusMiss)
			if n.calls.Load() != 1 {
				t.Errorf("computations = %d", n.calls.Load())
			}
		})
	}
	// Over MaxEntryBytes (an eighth of the capacity): returned, not stored.
	huge := make([]byte, 33<<20)
	err := c.Set([]byte("huge"), nil, c.Snapshot(), huge, 0)
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Set(33 MiB) = %v, want ErrTooLarge", err)
	}
	var n counter
	v, st, err := c.GetOrCompute(context.Background(), []byte("huge"), nil, func(context.Context) ([]byte, time.Duration, error) {
		n.calls.Add(1)
		return huge, 0, nil
	})
	if err != nil || st != StatusMiss || len(v) != len(huge) {
		t.Fatalf("GetOrCompute(huge) = %d bytes, %v, %v", len(v), st, err)
	}
	expectGet(t, c, "huge", "", StatusMiss)
}

func TestBigValuePartEvicted(t *testing.T) {
	clk := newFakeClock()
	c := newTestCache(t, clk)
	value := bytes.Repeat([]byte("x"), 200<<10)
	if err := c.Set([]byte("k"), nil, c.Snapshot(), value, 0); err != nil {
		t.Fatal(err)
	}
	// Remove the first part: the value must read as a miss, not short.
	var kb [8]byte
	meta := c.fc.Get(nil, c.fastKey(&kb, []byte("k")))
	if len(meta) != bigMetaLen {
		t.Fatalf("metavalue of %d bytes", len(meta))
	}
	c.fc.Del(append(meta[:8:8], make([]byte, 8)...)) // subkey: value hash, part 0
	expectGet(t, c, "k", "", StatusMiss)
}

func TestLRUPromotion(t *testing.T) {
	value := bytes.Repeat([]byte("v"), 1000)
	run := func(fraction float64) (hotMisses int) {
		clk := newFakeClock()
		c := newTestCache(t, clk, func(o *Options) { o.RewriteFraction = fraction })
		hot := make([][]byte, 100)
		for i := range hot {
			hot[i] = fmt.Appendf(nil, "hot-%d", i)
			if err := c.Set(hot[i], nil, c.Snapshot(), value, 0); err != nil {
				t.Fatal(err)
			}
		}
		// A scan of 100,000 cold keys, 3.5 times the capacity, with the hot
		// keys read after every 1,000.
		var dst []byte
		for i := range 100_000 {
			if err := c.Set(fmt.Appendf(nil, "cold-%d", i), nil, c.Snapshot(), value, 0); err != nil {
				t.Fatal(err)
			}
			if i%1000 == 999 {
				for _, k := range hot {
					var st Status
					if dst, st = c.GetAppend(dst[:0], k); st != StatusHit {
						hotMisses++
						_ = c.Set(k, nil, c.Snapshot(), value, 0)
					}
				}
			}
		}
		if fraction > 0 && c.Stats().Promotions == 0 {
			t.Error("no promotions")
		}
		return hotMisses
	}
	if m := run(0.25); m != 0 {
		t.Errorf("with promotion: %d hot misses, want 0", m)
	}
	if m := run(0); m < 100 {
		t.Errorf("without promotion (FIFO): %d hot misses, want >= 100", m)
	}
}

func TestReset(t *testing.T) {
	clk := newFakeClock()
	c := newTestCache(t, clk)
	var n counter
	mustGet(t, c, "a", []string{"t"}, n.fn("A", 0, nil))
	c.Invalidate("u")
	snap := c.Snapshot() // taken before Reset: its entries must not survive it
	c.Reset()
	expectGet(t, c, "a", "", StatusMiss)
	if err := c.Set([]byte("b"), nil, snap, []byte("B"), 0); err != nil {
		t.Fatal(err)
	}
	expectGet(t, c, "b", "", StatusMiss)
	mustGet(t, c, "a", []string{"t"}, n.fn("A2", 0, nil))
	expectGet(t, c, "a", "A2", StatusHit)
	if s := c.Stats(); s.TrackedTags != 0 {
		t.Errorf("tracked tags after Reset = %d", s.TrackedTags)
	}
}

func TestSetErrors(t *testing.T) {
	clk := newFakeClock()
	c := newTestCache(t, clk)
	if err := c.Set([]byte("k"), nil, Snapshot{}, []byte("v"), 0); !errors.Is(err, ErrNoSnapshot) {
		t.Errorf("zero snapshot: %v", err)
	}
	tags := make([]string, maxTags+1)
	if err := c.Set([]byte("k"), tags, c.Snapshot(), []byte("v"), 0); !errors.Is(err, ErrTooLarge) {
		t.Errorf("too many tags: %v", err)
	}
	// A snapshot older than TTL+grace stores nothing.
	snap := c.Snapshot()
	clk.Advance(3 * time.Minute)
	if err := c.Set([]byte("k"), nil, snap, []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	expectGet(t, c, "k", "", StatusMiss)
	// A clock set back: an entry from the future beyond maxClockSkew is
	// a miss rather than fresh for longer than its TTL.
	if err := c.Set([]byte("k"), nil, c.Snapshot(), []byte("v"), time.Hour); err != nil {
		t.Fatal(err)
	}
	clk.Advance(-2 * time.Minute)
	expectGet(t, c, "k", "", StatusMiss)
}

func TestEmptyValueAndKey(t *testing.T) {
	clk := newFakeClock()
	c := newTestCache(t, clk)
	if err := c.Set(nil, nil, c.Snapshot(), nil, 0); err != nil {
		t.Fatal(err)
	}
	v, st := c.Get(nil)
	if st != StatusHit || v == nil || len(v) != 0 {
		t.Fatalf("Get(empty) = %v (nil %v), %v", v, v == nil, st)
	}
}

func TestPruneGenerations(t *testing.T) {
	clk := newFakeClock()
	c := newTestCache(t, clk) // MaxTTL = TTL = 1m, grace 1m
	var n counter
	mustGet(t, c, "k", []string{"t"}, n.fn("v", time.Hour, nil))
	clk.Advance(time.Second)
	c.Invalidate("t")
	expectGet(t, c, "k", "", StatusMiss)

	clk.Advance(time.Minute)
	if got := c.PruneGenerations(); got != 0 {
		t.Fatalf("pruned %d generations younger than MaxTTL+Grace", got)
	}
	clk.Advance(2 * time.Minute)
	if got := c.PruneGenerations(); got != 1 {
		t.Fatalf("pruned %d, want 1", got)
	}
	// Even with the clock set back so that the entry looks fresh, the
	// dropped bump still invalidates it.
	clk.Advance(-3*time.Minute - 30*time.Second)
	expectGet(t, c, "k", "", StatusMiss)
}

func TestMaxTrackedTags(t *testing.T) {
	clk := newFakeClock()
	c := newTestCache(t, clk, func(o *Options) { o.MaxTrackedTags = 10 })
	var n counter
	mustGet(t, c, "old", []string{"never-bumped"}, n.fn("v", 0, nil))
	for i := range 11 {
		c.Invalidate(fmt.Sprint("tag-", i))
	}
	s := c.Stats()
	if s.TrackedTags != 5 {
		t.Fatalf("tracked tags = %d after the limit pruned, want 5 (the older half of 11 dropped, down to half the limit)", s.TrackedTags)
	}
	// The prune raised the floor over "old": a miss, the price of bounded
	// memory. Bumps still tracked keep working.
	expectGet(t, c, "old", "", StatusMiss)
	mustGet(t, c, "new", []string{"tag-10"}, n.fn("v", 0, nil))
	expectGet(t, c, "new", "v", StatusHit)
	c.Invalidate("tag-10")
	expectGet(t, c, "new", "", StatusMiss)
}

// TestMaxTrackedTagsZero: MaxTrackedTags 0 means the default bound
// (1<<20), not "none": Invalidate prunes nothing while fewer tags are
// tracked, even generations old enough to drop; PruneGenerations drops
// those.
func TestMaxTrackedTagsZero(t *testing.T) {
	clk := newFakeClock()
	c := newTestCache(t, clk, func(o *Options) { o.MaxTrackedTags = 0 })
	c.Invalidate("old")
	clk.Advance(time.Hour) // past MaxTTL + Grace: "old" may be dropped
	for i := range 10 {
		c.Invalidate(fmt.Sprint("tag-", i))
	}
	if got := c.Stats().TrackedTags; got != 11 {
		t.Fatalf("tracked tags = %d, want 11: Invalidate pruned below the limit", got)
	}
	if got := c.PruneGenerations(); got != 1 {
		t.Fatalf("PruneGenerations dropped %d, want 1", got)
	}
}

func TestCollector(t *testing.T) {
	clk := newFakeClock()
	c := newTestCache(t, clk)
	var n counter
	mustGet(t, c, "a", nil, n.fn("A", 0, nil))
	mustGet(t, c, "a", nil, n.fn("A", 0, nil))
	c.RecordPartialHit()
	c.Invalidate("x")

	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(c.Collector()); err != nil {
		t.Fatal(err)
	}
	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) > 0 {
		t.Fatalf("lint: %v %v", problems, err)
	}
	want := `
# HELP strata_cache_lookups_total Lookups by how they were served.
# TYPE strata_cache_lookups_total counter
strata_cache_lookups_total{result="hit"} 1
strata_cache_lookups_total{result="miss"} 1
strata_cache_lookups_total{result="shared"} 0
strata_cache_lookups_total{result="stale"} 0
# HELP strata_cache_partial_hits_total Requests answered partly from the cache.
# TYPE strata_cache_partial_hits_total counter
strata_cache_partial_hits_total 1
# HELP strata_cache_invalidations_total Tag invalidations.
# TYPE strata_cache_invalidations_total counter
strata_cache_invalidations_total 1
# HELP strata_cache_max_bytes Effective capacity of the cache in bytes.
# TYPE strata_cache_max_bytes gauge
strata_cache_max_bytes 3.3554432e+07
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"strata_cache_lookups_total", "strata_cache_partial_hits_total",
		"strata_cache_invalidations_total", "strata_cache_max_bytes"); err != nil {
		t.Fatal(err)
	}
}

func TestClosed(t *testing.T) {
	clk := newFakeClock()
	c := newTestCache(t, clk)
	var n counter
	mustGet(t, c, "a", nil, n.fn("A", 0, nil))
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	expectGet(t, c, "a", "", StatusMiss)
	if _, _, err := c.GetOrCompute(context.Background(), []byte("a"), nil, n.fn("A", 0, nil)); !errors.Is(err, ErrClosed) {
		t.Errorf("GetOrCompute after Close: %v", err)
	}
	if err := c.Set([]byte("a"), nil, c.Snapshot(), nil, 0); !errors.Is(err, ErrClosed) {
		t.Errorf("Set after Close: %v", err)
	}
	if err := c.Save(t.TempDir()); !errors.Is(err, ErrClosed) {
		t.Errorf("Save after Close: %v", err)
	}
}

// TestClockSetBackUpToSkew: an entry created up to maxClockSkew (a minute)
// ahead of the clock, after the clock was set back, is still served; one
// created further ahead is a miss, so a clock set back cannot stretch an
// entry's life by more than that.
func TestClockSetBackUpToSkew(t *testing.T) {
	clk := newFakeClock()
	c := newTestCache(t, clk, func(o *Options) { o.MaxTTL = time.Hour })
	if err := c.Set([]byte("k"), nil, c.Snapshot(), []byte("v"), time.Hour); err != nil {
		t.Fatal(err)
	}
	clk.Advance(-time.Minute)
	expectGet(t, c, "k", "v", StatusHit)
	clk.Advance(-time.Nanosecond)
	expectGet(t, c, "k", "", StatusMiss)
}

// TestPeekCountsOnlyFreshHits: Peek serves what Get serves, but counts a
// lookup only when it is a fresh hit (its caller follows a miss or a stale
// answer with GetOrCompute, which counts those).
func TestPeekCountsOnlyFreshHits(t *testing.T) {
	clk := newFakeClock()
	c := newTestCache(t, clk)
	if v, st := c.Peek([]byte("k")); v != nil || st != StatusMiss {
		t.Fatalf("Peek(absent) = %q, %v", v, st)
	}
	if err := c.Set([]byte("k"), nil, c.Snapshot(), []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	if v, st := c.Peek([]byte("k")); string(v) != "v" || st != StatusHit {
		t.Fatalf("Peek(fresh) = %q, %v", v, st)
	}
	clk.Advance(time.Minute) // past TTL, inside grace
	if v, st := c.Peek([]byte("k")); string(v) != "v" || st != StatusStale {
		t.Fatalf("Peek(stale) = %q, %v", v, st)
	}
	if s := c.Stats(); s.Hits != 1 || s.Misses != 0 || s.Stale != 0 {
		t.Fatalf("after Peek: %d hits, %d misses, %d stale; want 1, 0, 0", s.Hits, s.Misses, s.Stale)
	}
}

// TestPeekLocal: PeekLocal reads a fresh or stale entry into the buffer
// given, from its start, and returns its value as a slice of it; on a miss
// the value is nil. Like Peek, it counts fresh hits only.
func TestPeekLocal(t *testing.T) {
	clk := newFakeClock()
	c := newTestCache(t, clk)
	if _, v, st := c.PeekLocal([]byte("d"), []byte("k")); v != nil || st != StatusMiss {
		t.Fatalf("PeekLocal(absent) = %q, %v", v, st)
	}
	if err := c.Set([]byte("k"), nil, c.Snapshot(), []byte("value"), 0); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1, 256)
	got, v, st := c.PeekLocal(buf, []byte("k"))
	if string(v) != "value" || st != StatusHit || &got[0] != &buf[0] || &got[len(got)-1] != &v[len(v)-1] {
		t.Fatalf("PeekLocal(fresh) = %q, %v (want it at the end of the entry read into buf's array, which has room)", v, st)
	}
	// Read again into what it returned: the same value.
	if _, v, st := c.PeekLocal(got, []byte("k")); string(v) != "value" || st != StatusHit {
		t.Fatalf("PeekLocal(fresh, again) = %q, %v", v, st)
	}
	clk.Advance(time.Minute) // past TTL, inside grace
	if _, v, st := c.PeekLocal(nil, []byte("k")); string(v) != "value" || st != StatusStale {
		t.Fatalf("PeekLocal(stale) = %q, %v", v, st)
	}
	clk.Advance(time.Hour) // past grace
	if _, v, st := c.PeekLocal([]byte("d"), []byte("k")); v != nil || st != StatusMiss {
		t.Fatalf("PeekLocal(expired) = %q, %v", v, st)
	}
	if s := c.Stats(); s.Hits != 2 || s.Stale != 0 {
		t.Fatalf("after PeekLocal: %d hits, %d stale; want 2, 0", s.Hits, s.Stale)
	}
}

// TestSetPastGraceStoresNothing: a value whose grace period has ended when
// Set is called (a computation slower than TTL + Grace) is not stored: it
// takes no room, and even a clock set back does not serve it. One
// nanosecond before the end of its grace it is stored, and served stale.
func TestSetPastGraceStoresNothing(t *testing.T) {
	clk := newFakeClock()
	c := newTestCache(t, clk) // TTL 1m, grace 1m
	snap := c.Snapshot()
	clk.Advance(2 * time.Minute)
	if err := c.Set([]byte("late"), nil, snap, []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	if n := c.Stats().Entries; n != 0 {
		t.Fatalf("%d entries after a Set at the end of its grace, want 0", n)
	}
	clk.Advance(-time.Second)
	expectGet(t, c, "late", "", StatusMiss)

	snap = c.Snapshot()
	clk.Advance(2*time.Minute - time.Nanosecond)
	if err := c.Set([]byte("in-time"), nil, snap, []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	expectGet(t, c, "in-time", "v", StatusStale)
}

// TestPruneAgeEdge: a bump made exactly MaxTTL + Grace ago is not yet
// forgotten (only those made more than that ago are); and a prune by count
// that finds enough records past that age to get back to the limit drops
// only those.
func TestPruneAgeEdge(t *testing.T) {
	clk := newFakeClock()
	c := newTestCache(t, clk, func(o *Options) { o.MaxTrackedTags = 10 }) // MaxTTL = TTL = 1m, grace 1m
	_ = c.Invalidate("ancient")
	clk.Advance(2 * time.Minute)
	if got := c.PruneGenerations(); got != 0 {
		t.Fatalf("pruned %d generations made exactly MaxTTL+Grace ago, want 0", got)
	}
	clk.Advance(time.Nanosecond)
	for i := range 10 {
		_ = c.Invalidate(fmt.Sprint("tag-", i)) // the last makes 11 records
	}
	if s := c.Stats(); s.TrackedTags != 10 {
		t.Fatalf("tracked tags = %d after a prune by count, want 10 (only the one past MaxTTL+Grace dropped)", s.TrackedTags)
	}
}
