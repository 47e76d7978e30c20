package cache

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/strata-tsdb/strata/cache/redistest"
)

// TestL2DamagedEntries: an L2 value is served only if it decodes to an
// entry of the key asked for, no larger than MaxEntryBytes; anything else
// in Redis under the key's name (damage, another key's entry under the
// same name, an oversized value) is a miss, counted, and never served. An
// entry of exactly MaxEntryBytes is served.
func TestL2DamagedEntries(t *testing.T) {
	const maxEntry = 4 << 10
	r := redistest.Start(t)
	rc := r.Client()
	p := testPrefix()
	small := func(o *Options) { o.MaxEntryBytes = maxEntry; patient(o) }
	w, c := newL2Cache(t, r.URL(), p, small), newL2Cache(t, r.URL(), p, small)
	waitSynced(t, rc, p, w, c)

	tags := []string{"m:x"}
	largest := bytes.Repeat([]byte{'v'}, maxEntry-56-8*len(tags)-len("largest"))
	for k, v := range map[string][]byte{"largest": largest, "a": []byte("A")} {
		if err := w.Set([]byte(k), tags, w.Snapshot(), v, 0); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 10*time.Second, "the entries written to Redis", func() bool { return w.Stats().L2Writes == 2 })
	if v, st := c.Get([]byte("largest")); st != StatusHitL2 || !bytes.Equal(v, largest) {
		t.Fatalf("entry of exactly MaxEntryBytes from L2: %v, %d bytes", st, len(v))
	}

	name := func(key string) string { return entryKeyOf(c, []byte(key)) }
	entryA, err := rc.Get(bg, name("a")).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	overLimit := snappy.Encode(nil, bytes.Repeat([]byte{0}, maxEntry+1))
	for _, tc := range []struct {
		name      string
		val       []byte
		collision bool
	}{
		{"not snappy", []byte("garbage"), false},
		{"not an entry", snappy.Encode(nil, []byte("not an entry at all, but long enough to be one")), false},
		{"over MaxEntryBytes", overLimit, false},
		{"another key's entry", entryA, true},
	} {
		key := "k " + tc.name
		if err := rc.Set(bg, name(key), tc.val, time.Minute).Err(); err != nil {
			t.Fatal(err)
		}
		before := c.Stats()
		if v, st := c.Get([]byte(key)); st != StatusMiss || v != nil {
			t.Fatalf("%s: Get = %q, %v; want a miss", tc.name, v, st)
		}
		after := c.Stats()
		corrupt, coll := after.CorruptEntries-before.CorruptEntries, after.Collisions-before.Collisions
		if tc.collision && (coll != 1 || corrupt != 0) || !tc.collision && (corrupt != 1 || coll != 0) {
			t.Errorf("%s: %d more corrupt entries, %d more collisions", tc.name, corrupt, coll)
		}
		if after.L2Misses != before.L2Misses+1 || after.L2Hits != before.L2Hits || after.L2Errors != 0 {
			t.Errorf("%s: L2 counters %+v, before %+v", tc.name, after, before)
		}
		// What is computed instead replaces it.
		var n counter
		if v, st := mustGet(t, c, key, tags, n.fn("fresh", 0, nil)); v != "fresh" || st != StatusMiss || n.calls.Load() != 1 {
			t.Fatalf("%s: GetOrCompute = %q, %v after %d computations", tc.name, v, st, n.calls.Load())
		}
	}
}

// countingHandler is a slog.Handler that counts the records whose message
// starts with prefix.
type countingHandler struct {
	prefix string
	n      *atomic.Int64
}

func (h countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h countingHandler) Handle(_ context.Context, r slog.Record) error {
	if strings.HasPrefix(r.Message, h.prefix) {
		h.n.Add(1)
	}
	return nil
}
func (h countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h countingHandler) WithGroup(string) slog.Handler      { return h }

// TestL2ErrorPausesAndLogsOnce: a failed entry read counts an error and
// pauses the tier's entry operations for half a second (so that a Redis
// in trouble costs one failure per pause, not one per request), and is
// logged at most once a minute.
func TestL2ErrorPausesAndLogsOnce(t *testing.T) {
	r := redistest.Start(t)
	rc := r.Client()
	p := testPrefix()
	var logged atomic.Int64
	c := newL2Cache(t, r.URL(), p, patient, func(o *Options) {
		o.L2.Logger = slog.New(countingHandler{prefix: "result cache: Redis L2 operation failed", n: &logged})
	})
	waitSynced(t, rc, p, c)
	// A GET of a key holding a hash fails (WRONGTYPE).
	if err := rc.HSet(bg, entryKeyOf(c, []byte("bad")), "f", "v").Err(); err != nil {
		t.Fatal(err)
	}
	get := func(wantErrors uint64) {
		t.Helper()
		c.l2.skipUntil.Store(0) // the previous pause is over
		before := time.Now().UnixNano()
		if v, st := c.Get([]byte("bad")); st != StatusMiss || v != nil {
			t.Fatalf("Get of a key Redis fails on: %q, %v", v, st)
		}
		if got := c.Stats().L2Errors; got != wantErrors {
			t.Fatalf("L2 errors %d, want %d", got, wantErrors)
		}
		if until := c.l2.skipUntil.Load(); until < before+int64(500*time.Millisecond) {
			t.Fatalf("paused until %d ns after the failure, want at least 500 ms", until-before)
		}
	}
	get(1)
	get(2)
	if n := logged.Load(); n != 1 {
		t.Fatalf("%d log lines for two failures within a minute, want 1", n)
	}
	c.l2.lastErrLog.Add(-int64(time.Minute) - 1) // a minute since the line
	get(3)
	if n := logged.Load(); n != 2 {
		t.Fatalf("%d log lines after a minute, want 2", n)
	}
}

// TestL2WarnsOfEvictingPolicy: an instance warns, once, when Redis may
// evict keys without a TTL (maxmemory-policy allkeys-*), which would end
// the shared epoch; with a volatile policy it does not.
func TestL2WarnsOfEvictingPolicy(t *testing.T) {
	r := redistest.Start(t)
	rc := r.Client()
	for _, tc := range []struct {
		policy string
		warn   int64
	}{{"volatile-lru", 0}, {"allkeys-lru", 1}, {"noeviction", 0}} {
		if err := rc.ConfigSet(bg, "maxmemory-policy", tc.policy).Err(); err != nil {
			t.Fatal(err)
		}
		var warned atomic.Int64
		p := testPrefix()
		c := newL2Cache(t, r.URL(), p, func(o *Options) {
			o.L2.Logger = slog.New(countingHandler{prefix: "result cache: Redis may evict the L2 tag generations", n: &warned})
		})
		waitSynced(t, rc, p, c)
		// A second resync checks nothing again.
		c.l2.markUnsynced(errResync)
		waitSynced(t, rc, p, c)
		if c.Stats().L2Resyncs < 2 {
			t.Fatalf("%s: %d resyncs", tc.policy, c.Stats().L2Resyncs)
		}
		if n := warned.Load(); n != tc.warn {
			t.Errorf("maxmemory-policy %s: %d warnings, want %d", tc.policy, n, tc.warn)
		}
	}
}

// TestL2SharedPrune: the shared generations are pruned by age (a bump
// older than MaxTTL + Grace can no longer matter: the floor rises to the
// newest such) and by count (beyond MaxTrackedTags, down to half of it),
// and every instance's mirror follows the published floor.
func TestL2SharedPrune(t *testing.T) {
	r := redistest.Start(t)
	rc := r.Client()
	p := testPrefix()
	clk := newFakeClock()
	c := newL2Cache(t, r.URL(), p, patient, func(o *Options) { o.Now = clk.Now; o.MaxTrackedTags = 4 })
	other := newL2Cache(t, r.URL(), p, patient)
	waitSynced(t, rc, p, c, other)
	k := c.l2.keys.Load()
	shared := func() (floor uint64, tags []string) {
		t.Helper()
		floor, err := rc.Get(bg, k.floor).Uint64()
		if err != nil {
			t.Fatal(err)
		}
		zs, err := rc.ZRangeWithScores(bg, k.tags, 0, -1).Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, z := range zs {
			tags = append(tags, fmt.Sprintf("%v:%v", z.Member, z.Score))
		}
		return floor, tags
	}
	tag := func(name string) string { return tagHex(tagHash(name)) }
	floor0, _ := shared()
	for _, name := range []string{"a", "b"} {
		if err := c.Invalidate(name); err != nil {
			t.Fatal(err)
		}
	}
	ab := c.gens.seq.Load() // the generation of b
	c.l2.prune()            // a checkpoint: ab at this time
	clk.Advance(time.Minute)
	if err := c.Invalidate("c"); err != nil {
		t.Fatal(err)
	}
	cGen := c.gens.seq.Load()
	c.l2.prune() // a minute later: a and b are younger than MaxTTL + Grace (2m)
	if f, tags := shared(); f != floor0 || len(tags) != 4 {
		t.Fatalf("pruned young generations: floor %d (was %d), tags %v", f, floor0, tags)
	}
	clk.Advance(2 * time.Minute)
	c.l2.prune() // a and b are 3 minutes old, c 2 minutes
	f, tags := shared()
	if want := []string{"~:0", fmt.Sprintf("%s:%d", tag("c"), cGen)}; f != ab || !slices.Equal(tags, want) {
		t.Fatalf("after the prune by age: floor %d, tags %v; want %d, %v", f, tags, ab, want)
	}
	// The floor is published: the other instance's mirror follows.
	waitFor(t, 10*time.Second, "the other instance's floor", func() bool { return other.gens.floor.Load() == ab })

	// By count: 7 tags above the floor, limit 4: the newest 2 remain.
	var last []string
	for i := range 6 {
		name := fmt.Sprint("t", i)
		if err := c.Invalidate(name); err != nil {
			t.Fatal(err)
		}
		if i >= 4 {
			last = append(last, fmt.Sprintf("%s:%d", tag(name), c.gens.seq.Load()))
		}
	}
	top := c.gens.seq.Load()
	c.l2.prune()
	f, tags = shared()
	if want := append([]string{"~:0"}, last...); f != top-2 || !slices.Equal(tags, want) {
		t.Fatalf("after the prune by count: floor %d, tags %v; want %d, %v", f, tags, top-2, want)
	}
	// Floor first, then the records at or below it go.
	waitFor(t, 10*time.Second, "the other instance's floor, and 2 tags tracked", func() bool {
		return other.gens.floor.Load() == top-2 && other.Stats().TrackedTags == 2
	})
	// Prunes that succeed count no error (and pause nothing).
	if e := c.Stats().L2Errors; e != 0 {
		t.Fatalf("%d L2 errors after successful prunes", e)
	}
}

// TestL2InvalidateManyTags: InvalidateTags with L2 bumps every distinct
// tag once in Redis, however many (in script calls of 512), and every
// instance judges by the bumps.
func TestL2InvalidateManyTags(t *testing.T) {
	r := redistest.Start(t)
	rc := r.Client()
	p := testPrefix()
	c1, c2 := newL2Cache(t, r.URL(), p, patient), newL2Cache(t, r.URL(), p, patient)
	waitSynced(t, rc, p, c1, c2)
	const n = 1100 // three script calls
	tags := make([]string, 0, n+2)
	for i := range n {
		tags = append(tags, fmt.Sprint("t", i))
	}
	tags = append(tags, "t0", "t1099") // bumped once
	var calls counter
	for _, i := range []int{0, 511, 512, 1023, 1024, 1099} {
		mustGet(t, c2, fmt.Sprint("k", i), []string{tags[i]}, calls.fn("v", 0, nil))
	}
	mustGet(t, c2, "untouched", []string{"other"}, calls.fn("v", 0, nil))
	before, err := sharedSeq(rc, p)
	if err != nil {
		t.Fatal(err)
	}
	if err := c1.InvalidateTags(tags...); err != nil {
		t.Fatal(err)
	}
	after, err := sharedSeq(rc, p)
	if err != nil {
		t.Fatal(err)
	}
	if after-before != n || c1.gens.seq.Load() != after {
		t.Fatalf("shared counter went from %d to %d (%d here), want %d bumps", before, after, c1.gens.seq.Load(), n)
	}
	if got := rc.ZCard(bg, c1.l2.keys.Load().tags).Val(); got != n+1 { // and "~"
		t.Fatalf("%d tag generations in Redis, want %d", got-1, n)
	}
	waitSynced(t, rc, p, c1, c2)
	for _, i := range []int{0, 511, 512, 1023, 1024, 1099} {
		expectGet(t, c2, fmt.Sprint("k", i), "", StatusMiss)
	}
	expectGet(t, c2, "untouched", "v", StatusHit)
	if got := c1.Stats().Invalidations; got != n+2 {
		t.Fatalf("%d invalidations counted, want %d", got, n+2)
	}
}

// TestL2CheckState: the maintenance check keeps an instance synced while
// it has heard every number the counter reached by the check before, and
// resyncs it when one was never published to it, or when the shared
// state is incomplete.
func TestL2CheckState(t *testing.T) {
	r := redistest.Start(t)
	rc := r.Client()
	p := testPrefix()
	c := newL2Cache(t, r.URL(), p, patient)
	waitSynced(t, rc, p, c)
	if err := c.Invalidate("a"); err != nil {
		t.Fatal(err)
	}
	waitSynced(t, rc, p, c)
	waitFor(t, 10*time.Second, "the bump's message", func() bool { return c.l2.sync.heard.Load() == c.gens.seq.Load() })
	resyncs := c.Stats().L2Resyncs
	for range 3 {
		c.l2.checkState()
	}
	if s := c.Stats(); !s.L2Connected || s.L2Resyncs != resyncs {
		t.Fatalf("checks of an intact state heard in full: connected %v, %d resyncs (was %d)", s.L2Connected, s.L2Resyncs, resyncs)
	}

	// A number the counter handed out and nobody published.
	k := c.l2.keys.Load()
	seq, err := rc.Incr(bg, k.seq).Uint64()
	if err != nil {
		t.Fatal(err)
	}
	c.l2.checkState() // reads it
	c.l2.checkState() // finds it never heard
	if c.l2.synced() && c.Stats().L2Resyncs == resyncs {
		t.Fatal("still synced, without a resync, two checks after an unpublished number")
	}
	waitSynced(t, rc, p, c)
	if g := c.Stats().Generation; g < seq {
		t.Fatalf("generation %d after the resync, want at least %d", g, seq)
	}

	// An incomplete state: the floor key gone.
	resyncs = c.Stats().L2Resyncs
	if err := rc.Del(bg, k.floor).Err(); err != nil {
		t.Fatal(err)
	}
	c.l2.checkState()
	waitFor(t, 10*time.Second, "a resync into a new epoch", func() bool {
		s := c.Stats()
		return s.L2Connected && s.L2Resyncs > resyncs && c.l2.keys.Load().epoch != k.epoch
	})
}

// TestL2CaughtUp: a lookup that read a counter this instance has not
// heard yet waits for the subscription to deliver it: it goes on, synced,
// as soon as the number is heard; after OpTimeout without it, the instance
// goes unsynced (and resyncs).
func TestL2CaughtUp(t *testing.T) {
	r := redistest.Start(t)
	rc := r.Client()
	p := testPrefix()
	c := newL2Cache(t, r.URL(), p, patient)
	waitSynced(t, rc, p, c)
	l := c.l2
	heard := l.sync.heard.Load()
	if !l.caughtUp(heard) || !l.caughtUp(heard-1) {
		t.Fatal("not caught up with numbers heard")
	}
	done := make(chan bool)
	go func() { done <- l.caughtUp(heard + 2) }()
	l.hear(heard + 1) // not enough
	select {
	case ok := <-done:
		t.Fatalf("caughtUp(%d) returned %v with %d heard", heard+2, ok, heard+1)
	case <-time.After(50 * time.Millisecond):
	}
	l.hear(heard + 2)
	select {
	case ok := <-done:
		if !ok {
			t.Fatal("caughtUp false once the number was heard")
		}
	case <-time.After(time.Minute):
		t.Fatal("caughtUp still waiting a minute after the number was heard")
	}
	if !l.synced() {
		t.Fatal("unsynced after catching up")
	}

	quick := newL2Cache(t, r.URL(), testPrefix(), func(o *Options) { o.L2.OpTimeout = time.Millisecond })
	waitFor(t, 10*time.Second, "the second cache synced", func() bool { return quick.Stats().L2Connected })
	resyncs := quick.Stats().L2Resyncs
	if quick.l2.caughtUp(quick.l2.sync.heard.Load() + 1) {
		t.Fatal("caught up with a number never heard")
	}
	waitFor(t, 10*time.Second, "a resync after the wait timed out", func() bool {
		s := quick.Stats()
		return s.L2Resyncs > resyncs
	})
}

// TestL2CounterWentBack: when the shared counter goes back (a Redis
// restored from an older snapshot hands out numbers again), a bump that
// gets a number this instance has seen is not trusted: the bump is made
// locally, at once, and pushed again at the resync that follows, after
// which no instance serves an entry of the tag.
func TestL2CounterWentBack(t *testing.T) {
	r := redistest.Start(t)
	rc := r.Client()
	p := testPrefix()
	noLag := func(o *Options) { o.L2.PartnerLag = -1; patient(o) }
	c1, c2 := newL2Cache(t, r.URL(), p, noLag), newL2Cache(t, r.URL(), p, noLag)
	waitSynced(t, rc, p, c1, c2)
	for _, tag := range []string{"a", "b", "c"} {
		if err := c1.Invalidate(tag); err != nil {
			t.Fatal(err)
		}
	}
	waitSynced(t, rc, p, c1, c2)
	var n counter
	mustCompute(t, c1, []byte("k"), "T", &n, "v", StatusMiss)
	mustCompute(t, c2, []byte("k"), "T", &n, "v", StatusHitL2)
	resyncs := c1.Stats().L2Resyncs
	// One back: the next INCR hands out the last number both have seen,
	// the snapshot of the entry.
	k := c1.l2.keys.Load()
	if err := rc.Set(bg, k.seq, c1.gens.seq.Load()-1, 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := c1.Invalidate("T"); err != nil {
		t.Fatalf("Invalidate with the counter gone back: %v", err)
	}
	if v, st := c1.Get([]byte("k")); st != StatusMiss {
		t.Fatalf("c1 serves %q (%v) after invalidating its tag", v, st)
	}
	if s := c1.Stats(); s.L2Errors == 0 {
		t.Fatalf("the counter going back was not counted as an error: %+v", s)
	}
	waitFor(t, 10*time.Second, "c1 resynced and c2 judging by the bump pushed again", func() bool {
		_, st := c2.Get([]byte("k"))
		return c1.Stats().L2Resyncs > resyncs && c1.Stats().L2Connected && st == StatusMiss
	})
	waitSynced(t, rc, p, c1, c2)
	for _, c := range []*Cache{c1, c2} {
		if v, st := c.Get([]byte("k")); st != StatusMiss {
			t.Fatalf("k served after its tag's bump: %q, %v", v, st)
		}
	}
}

// TestL2ResetRefused: a Reset that Redis refuses is made here at once and
// pushed when Redis takes writes again: then no instance serves what it
// cached before the Reset.
func TestL2ResetRefused(t *testing.T) {
	r := redistest.Start(t)
	rc := r.Client()
	p := testPrefix()
	noLag := func(o *Options) { o.L2.PartnerLag = -1; patient(o) }
	c1, c2 := newL2Cache(t, r.URL(), p, noLag), newL2Cache(t, r.URL(), p, noLag)
	waitSynced(t, rc, p, c1, c2)
	var n counter
	mustCompute(t, c1, []byte("k"), "T", &n, "v", StatusMiss)
	mustCompute(t, c2, []byte("k"), "T", &n, "v", StatusHitL2)
	if err := rc.ConfigSet(bg, "maxmemory", "1").Err(); err != nil { // writes refused (OOM)
		t.Fatal(err)
	}
	if err := c1.Reset(); err != nil {
		t.Fatalf("Reset with Redis refusing writes: %v", err)
	}
	if s := c1.Stats(); s.L2Errors == 0 {
		t.Fatalf("the refused Reset was not counted: %+v", s)
	}
	expectGet(t, c1, "k", "", StatusMiss)
	if err := rc.ConfigSet(bg, "maxmemory", "0").Err(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "c2 judging by the Reset pushed at c1's resync", func() bool {
		_, st := c2.Get([]byte("k"))
		return st == StatusMiss
	})
	waitSynced(t, rc, p, c1, c2)
	expectGet(t, c1, "k", "", StatusMiss)
	expectGet(t, c2, "k", "", StatusMiss)
}

// TestL2EntryExpiresWithGrace: an entry written to Redis expires there
// when its grace period ends (TTL + Grace after it was computed), not
// later: Redis does not keep what no instance may serve.
func TestL2EntryExpiresWithGrace(t *testing.T) {
	r := redistest.Start(t)
	rc := r.Client()
	p := testPrefix()
	c := newL2Cache(t, r.URL(), p, patient) // TTL 1m, Grace 1m
	waitSynced(t, rc, p, c)
	if err := c.Set([]byte("k"), []string{"T"}, c.Snapshot(), []byte("v"), 30*time.Second); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the entry written to Redis", func() bool { return c.Stats().L2Writes == 1 })
	ttl, err := rc.PTTL(bg, entryKeyOf(c, []byte("k"))).Result()
	if err != nil {
		t.Fatal(err)
	}
	// At most 30s + 1m from the Set, which was before now.
	if ttl <= 0 || ttl > 90*time.Second {
		t.Fatalf("entry's Redis TTL %v, want in (0, 90s]", ttl)
	}
}

// TestL2AdoptRaisesFloor: an instance that adopts an epoch another one
// started, with a counter below the numbers it holds, raises the new
// epoch's floor above them. Otherwise a computation it started before
// stores an entry whose snapshot the new counter reaches later, and that
// entry is then served although its tag was bumped in between.
func TestL2AdoptRaisesFloor(t *testing.T) {
	r := redistest.Start(t)
	rc := r.Client()
	p := testPrefix()
	c := newL2Cache(t, r.URL(), p, func(o *Options) { o.L2.PartnerLag = -1; patient(o) })
	waitSynced(t, rc, p, c)
	var many []string
	for i := range 20 {
		many = append(many, fmt.Sprint("before", i))
	}
	if err := c.InvalidateTags(many...); err != nil {
		t.Fatal(err)
	}
	held := c.gens.seq.Load()

	gate, open := newGate(t)
	done := make(chan string, 1)
	go func() {
		v, _, err := c.GetOrCompute(bg, []byte("K"), []string{"T"}, func(context.Context) ([]byte, time.Duration, error) {
			<-gate
			return []byte("old"), 0, nil
		})
		if err != nil {
			done <- err.Error()
			return
		}
		done <- string(v)
	}()
	waitFor(t, time.Minute, "the computation started", func() bool {
		c.flights.mu.Lock()
		defer c.flights.mu.Unlock()
		return c.flights.m["K"] != nil
	})

	// Another instance starts a new epoch at 1 (as after a lost state).
	old := c.l2.keys.Load()
	nk := c.l2.keysFor("E2")
	if err := createScript.Run(bg, rc, []string{nk.epochKey, nk.seq, nk.floor, nk.tags}, old.epoch, c.l2.channel, "E2", 1).Err(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the new epoch adopted", func() bool {
		return c.Stats().L2Connected && c.l2.keys.Load().epoch == "E2"
	})
	if f := c.gens.floor.Load(); f <= held {
		t.Errorf("floor %d after adopting the epoch, want above %d", f, held)
	}
	open()
	if v := <-done; v != "old" {
		t.Fatalf("computation: %s", v)
	}
	// T is bumped, then the counter passes the computation's snapshot.
	if err := c.Invalidate("T"); err != nil {
		t.Fatal(err)
	}
	var after []string
	for i := range int(held) + 5 {
		after = append(after, fmt.Sprint("after", i))
	}
	if err := c.InvalidateTags(after...); err != nil {
		t.Fatal(err)
	}
	if v, st := c.Get([]byte("K")); st != StatusMiss {
		t.Fatalf("K computed before T's bump served after it: %q, %v", v, st)
	}
}

// TestL2ManyPendingPushed: tags bumped while Redis refused writes are all
// pushed at the resync, however many (in script calls of 512), and the
// other instances then judge by them.
func TestL2ManyPendingPushed(t *testing.T) {
	r := redistest.Start(t)
	rc := r.Client()
	p := testPrefix()
	noLag := func(o *Options) { o.L2.PartnerLag = -1; patient(o) }
	c1, c2 := newL2Cache(t, r.URL(), p, noLag), newL2Cache(t, r.URL(), p, noLag)
	waitSynced(t, rc, p, c1, c2)
	const n = 1100
	tags := make([]string, n)
	for i := range tags {
		tags[i] = fmt.Sprint("t", i)
	}
	var calls counter
	for _, i := range []int{0, 511, 512, 1023, 1024, 1099} {
		mustGet(t, c2, fmt.Sprint("k", i), []string{tags[i]}, calls.fn("v", 0, nil))
	}
	if err := rc.ConfigSet(bg, "maxmemory", "1").Err(); err != nil { // writes refused (OOM)
		t.Fatal(err)
	}
	if err := c1.InvalidateTags(tags...); err != nil {
		t.Fatalf("InvalidateTags with Redis refusing writes: %v", err)
	}
	if err := rc.ConfigSet(bg, "maxmemory", "0").Err(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "every pending tag in Redis", func() bool {
		return rc.ZCard(bg, c1.l2.keys.Load().tags).Val() == n+1 // and "~"
	})
	waitSynced(t, rc, p, c1, c2)
	for _, i := range []int{0, 511, 512, 1023, 1024, 1099} {
		expectGet(t, c2, fmt.Sprint("k", i), "", StatusMiss)
	}
}

// TestL2OutageLogged: the Logger gets one line when Redis becomes
// unavailable, however many reconnections fail, and one when it is back;
// a resync asked for by the cache itself is no outage and logs nothing.
func TestL2OutageLogged(t *testing.T) {
	r := redistest.Start(t)
	p := testPrefix()
	var down, up atomic.Int64
	c := newL2Cache(t, r.URL(), p, func(o *Options) {
		o.L2.Logger = slog.New(multiHandler{
			countingHandler{prefix: "result cache: Redis L2 unavailable", n: &down},
			countingHandler{prefix: "result cache: Redis L2 available again", n: &up},
		})
	})
	waitSynced(t, r.Client(), p, c)
	resyncs := c.Stats().L2Resyncs
	c.l2.markUnsynced(errResync)
	waitFor(t, 10*time.Second, "a resync", func() bool { s := c.Stats(); return s.L2Connected && s.L2Resyncs > resyncs })
	// A bump that finds the shared state lost: a new epoch, no outage.
	if err := r.Client().Del(bg, c.l2.keys.Load().floor).Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.Invalidate("x"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "a resync", func() bool { s := c.Stats(); return s.L2Connected && s.L2Resyncs > resyncs+1 })
	if down.Load() != 0 || up.Load() != 0 {
		t.Fatalf("resyncs logged %d outages, %d recoveries", down.Load(), up.Load())
	}
	r.Stop()
	waitFor(t, 10*time.Second, "failed reconnections", func() bool { return c.Stats().L2Errors >= 3 })
	if n := down.Load(); n != 1 {
		t.Fatalf("%d outage lines, want 1", n)
	}
	r.Restart()
	waitSynced(t, r.Client(), p, c)
	// The line comes just after the instance counts as connected.
	waitFor(t, 10*time.Second, "the recovery logged", func() bool { return up.Load() > 0 })
	if down.Load() != 1 || up.Load() != 1 {
		t.Fatalf("after the outage: %d outage lines, %d recoveries; want 1, 1", down.Load(), up.Load())
	}
}

// multiHandler hands each record to every handler.
type multiHandler []slog.Handler

func (m multiHandler) Enabled(context.Context, slog.Level) bool { return true }
func (m multiHandler) Handle(ctx context.Context, r slog.Record) error {
	for _, h := range m {
		_ = h.Handle(ctx, r)
	}
	return nil
}
func (m multiHandler) WithAttrs([]slog.Attr) slog.Handler { return m }
func (m multiHandler) WithGroup(string) slog.Handler      { return m }
