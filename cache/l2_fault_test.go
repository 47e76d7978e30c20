package cache

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/strata-tsdb/strata/cache/redistest"
)

// The fault-injection suite of the L2 tier: each test puts Redis (a real
// redis-server) in one failure state and checks that every instance
// degrades to misses, never to a hit of an entry an acknowledged bump
// invalidated. Each was a reproduction of a defect of issue 21.

// l2TestOptions are the options of the caches of these tests.
func l2TestOptions(url, prefix string) Options {
	o := DefaultOptions()
	o.MaxBytes = 32 << 20
	o.TTL = time.Minute
	o.Grace = time.Minute
	o.L2 = L2Options{URL: url, Prefix: prefix, OpTimeout: 100 * time.Millisecond}
	return o
}

// loadL2 loads (or creates) a cache saved in dir, closed at the end of
// the test unless the caller closed it before.
func loadL2(t *testing.T, dir string, o Options) *Cache {
	t.Helper()
	c, err := Load(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func saveClose(t *testing.T, dir string, c *Cache) {
	t.Helper()
	if err := c.Save(dir); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
}

// mustMiss fails unless every cache misses key (a hit there would serve
// what an acknowledged bump invalidated).
func mustMiss(t *testing.T, what string, key string, cs ...*Cache) {
	t.Helper()
	for i, c := range cs {
		if v, st := c.Get([]byte(key)); st != StatusMiss {
			t.Errorf("%s: instance %d served %q (%v) for %s, invalidated by an acknowledged bump", what, i, v, st, key)
		}
	}
}

// TestL2BumpsRefusedByRedisSurviveRestart (issue 21, 1): bumps that Redis
// refused (out of memory) survive a restart of both instances, one
// stopped cleanly, the other without saving anything (as after a crash):
// after it neither serves the invalidated entry, while Redis still refuses
// writes nor once it accepts them again.
func TestL2BumpsRefusedByRedisSurviveRestart(t *testing.T) {
	r := redistest.Start(t)
	rc := r.Client()
	p := testPrefix()
	o := l2TestOptions(r.URL(), p)
	// Without the partner rule, which would keep the restarted
	// instances from sharing for a minute (TestL2PartnerBehind).
	o.L2.PartnerLag = -1
	dirs := []string{t.TempDir(), t.TempDir()}
	a, b := loadL2(t, dirs[0], o), loadL2(t, dirs[1], o)
	waitSynced(t, rc, p, a, b)
	var n counter
	key, tag := "k", "m:x:2026-11-20"
	mustCompute(t, a, []byte(key), tag, &n, "old", StatusMiss)
	mustCompute(t, b, []byte(key), tag, &n, "old", StatusHitL2)

	if err := rc.ConfigSet(bg, "maxmemory", "1").Err(); err != nil {
		t.Fatal(err)
	}
	a.Invalidate(tag) // a late write acknowledged by both
	b.Invalidate(tag)
	mustMiss(t, "after the bumps", key, a, b)
	saveClose(t, dirs[0], a)          // a clean stop
	if err := b.Close(); err != nil { // as a crash leaves it: nothing saved
		t.Fatal(err)
	}

	a, b = loadL2(t, dirs[0], o), loadL2(t, dirs[1], o)
	waitFor(t, 10*time.Second, "a sync attempt of both", func() bool {
		for _, c := range []*Cache{a, b} {
			if s := c.Stats(); !s.L2Connected && s.L2Errors == 0 {
				return false
			}
		}
		return true
	})
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		mustMiss(t, "restarted, Redis refusing writes", key, a, b)
		if t.Failed() {
			return
		}
	}
	if err := rc.ConfigSet(bg, "maxmemory", "0").Err(); err != nil {
		t.Fatal(err)
	}
	waitSynced(t, rc, p, a, b)
	mustMiss(t, "restarted, Redis accepting writes again", key, a, b)
	mustCompute(t, a, []byte(key), tag, &n, "new", StatusMiss)
	mustCompute(t, b, []byte(key), tag, &n, "new", StatusHitL2)
}

// TestL2FlushAllThenRestartOutOfOrder (issue 21, 2): Redis is flushed
// while both instances are stopped; the second starts first and moves the
// fresh counter past the first's saved one; the first must not keep its
// saved entries.
func TestL2FlushAllThenRestartOutOfOrder(t *testing.T) {
	r := redistest.Start(t)
	rc := r.Client()
	p := testPrefix()
	o := l2TestOptions(r.URL(), p)
	dirA, dirB := t.TempDir(), t.TempDir()
	a, b := loadL2(t, dirA, o), loadL2(t, dirB, o)
	waitSynced(t, rc, p, a, b)
	var n counter
	key, tag := "k", "m:x:2026-11-20"
	mustCompute(t, a, []byte(key), tag, &n, "old", StatusMiss)
	a.Invalidate(tag)
	b.Invalidate(tag)
	waitSynced(t, rc, p, a, b)
	mustMiss(t, "after the bumps", key, a, b)
	saveClose(t, dirA, a)
	saveClose(t, dirB, b)

	if err := rc.FlushAll(bg).Err(); err != nil {
		t.Fatal(err)
	}
	b = loadL2(t, dirB, o)
	waitSynced(t, rc, p, b)
	for i := range 20 {
		b.Invalidate(fmt.Sprintf("m:other%d:2026-11-20", i))
	}
	a = loadL2(t, dirA, o)
	waitSynced(t, rc, p, a, b)
	mustMiss(t, "A restarted after B on a flushed Redis", key, a)
}

// TestL2LosingAnySharedKey (issue 21, 3): deleting any one of the keys
// that hold the shared generations (as DEL or an allkeys-* eviction does)
// is detected at the next resync: no entry invalidated before (by a tag
// bump, or by a Reset's floor) is served again, on either instance, and
// the tier works afterwards.
func TestL2LosingAnySharedKey(t *testing.T) {
	r := redistest.Start(t)
	rc := r.Client()
	setup := func(t *testing.T) (p string, a, b *Cache) {
		p = testPrefix()
		// Without the partner rule, which refuses every L2 entry for a
		// while after a new epoch: the epoch alone must keep out what
		// was invalidated.
		noLag := func(o *Options) { o.L2.PartnerLag = -1 }
		a, b = newL2Cache(t, r.URL(), p, noLag), newL2Cache(t, r.URL(), p, noLag)
		waitSynced(t, rc, p, a, b)
		var n counter
		mustCompute(t, a, []byte("floored"), "m:f:2026-11-20", &n, "v", StatusMiss)
		mustCompute(t, b, []byte("floored"), "m:f:2026-11-20", &n, "v", StatusHitL2)
		a.Reset() // the floor invalidates "floored"
		waitSynced(t, rc, p, a, b)
		mustCompute(t, a, []byte("bumped"), "m:b:2026-11-20", &n, "v", StatusMiss)
		mustCompute(t, b, []byte("bumped"), "m:b:2026-11-20", &n, "v", StatusHitL2)
		a.Invalidate("m:b:2026-11-20") // the tag invalidates "bumped"
		waitSynced(t, rc, p, a, b)
		mustMiss(t, "before the loss", "floored", a, b)
		mustMiss(t, "before the loss", "bumped", a, b)
		return p, a, b
	}
	p, _, _ := setup(t)
	keys, err := rc.Keys(bg, p+"{gen}*").Result()
	if err != nil || len(keys) < 3 {
		t.Fatalf("shared keys %v (%v)", keys, err)
	}
	var suffixes []string
	for _, k := range keys {
		suffixes = append(suffixes, strings.TrimPrefix(k, p))
	}
	sort.Strings(suffixes)
	t.Logf("shared keys: %v", suffixes)
	for i, suffix := range suffixes {
		name := suffix
		if i := strings.LastIndexByte(name, ':'); i >= 0 {
			name = name[i+1:]
		}
		t.Run(name, func(t *testing.T) {
			p, a, b := setup(t)
			// The same key of this prefix (an epoch in the name differs).
			keys, err := rc.Keys(bg, p+"{gen}*").Result()
			if err != nil {
				t.Fatal(err)
			}
			sort.Strings(keys)
			if len(keys) != len(suffixes) {
				t.Fatalf("keys %v, want as many as %v", keys, suffixes)
			}
			before := a.Stats().L2Resyncs + b.Stats().L2Resyncs
			if err := rc.Del(bg, keys[i]).Err(); err != nil {
				t.Fatal(err)
			}
			if err := rc.Do(bg, "CLIENT", "KILL", "TYPE", "pubsub").Err(); err != nil {
				t.Fatal(err)
			}
			waitFor(t, 10*time.Second, "both to resync", func() bool {
				sa, sb := a.Stats(), b.Stats()
				return sa.L2Connected && sb.L2Connected && sa.L2Resyncs+sb.L2Resyncs >= before+2
			})
			waitSynced(t, rc, p, a, b)
			mustMiss(t, "after losing "+keys[i], "floored", a, b)
			mustMiss(t, "after losing "+keys[i], "bumped", a, b)
			var n counter
			mustCompute(t, a, []byte("after"), "m:a:2026-11-20", &n, "v", StatusMiss)
			mustCompute(t, b, []byte("after"), "m:a:2026-11-20", &n, "v", StatusHitL2)
		})
	}
}

// TestL2PubSubLag (issue 21, 4): an instance whose subscription delivers
// late still judges entries by every bump made in Redis before its
// lookup: an L2 entry read with the shared counter, and an L1 entry after
// Prefetch (which a query calls first).
func TestL2PubSubLag(t *testing.T) {
	r := redistest.Start(t)
	rc := r.Client()
	px := redistest.NewProxy(t, r.Addr())
	p := testPrefix()
	a := newL2Cache(t, r.URL(), p)
	b := newL2Cache(t, px.URL(), p)
	waitSynced(t, rc, p, a, b)
	var n counter

	// An entry in B's L1 (promoted from L2).
	mustCompute(t, a, []byte("l1"), "m:l:2026-11-20", &n, "old", StatusMiss)
	mustCompute(t, b, []byte("l1"), "m:l:2026-11-20", &n, "old", StatusHitL2)
	px.FreezePubSub(true)
	a.Invalidate("m:l:2026-11-20") // acknowledged before B's lookup
	b.Prefetch(bg, [][]byte{[]byte("l1")})
	mustMiss(t, "L1 entry, bump not yet delivered to B", "l1", b)
	px.FreezePubSub(false)
	waitSynced(t, rc, p, a, b)

	// An entry only in L2.
	mustCompute(t, a, []byte("l2"), "m:m:2026-11-20", &n, "old", StatusMiss)
	px.FreezePubSub(true)
	a.Invalidate("m:m:2026-11-20")
	mustMiss(t, "L2 entry, bump not yet delivered to B", "l2", b)
	px.FreezePubSub(false)
	waitSynced(t, rc, p, a, b)
	mustCompute(t, b, []byte("l2"), "m:m:2026-11-20", &n, "new", StatusMiss)
}

// TestL2PartnerLag (issue 21, 5): instances fed the same writes
// independently. Behind: an instance that acknowledged a late write does
// not serve an entry of the same tag that its partner, which has not
// received the write yet, computed into L2. Ahead: an instance that has
// not received a write its partner acknowledged does not serve the
// partner's entry that holds it.
func TestL2PartnerLag(t *testing.T) {
	r := redistest.Start(t)
	rc := r.Client()
	for _, c := range []struct {
		name         string
		writer, peer int // the writer acknowledged the write; the peer computes
	}{{"behind", 0, 1}, {"ahead", 1, 1}} {
		t.Run(c.name, func(t *testing.T) {
			p := testPrefix()
			cs := []*Cache{newL2Cache(t, r.URL(), p), newL2Cache(t, r.URL(), p)}
			waitSynced(t, rc, p, cs...)
			tag := "m:x:2026-11-20"
			for i := range 10 {
				k := fmt.Sprintf("k%d", i)
				cs[c.writer].Invalidate(tag)
				waitSynced(t, rc, p, cs...)
				var n counter
				mustCompute(t, cs[c.peer], []byte(k), tag, &n, "peer's answer", StatusMiss)
				if v, st := cs[0].Get([]byte(k)); st != StatusMiss {
					t.Fatalf("try %d: instance 0 served %q (%v), computed by its partner that differs from it on a write", i, v, st)
				}
			}
		})
	}
	// The rule lasts PartnerLag: past it the partner's entries are served.
	// Patient: b must take the lock and write its entry with the release,
	// not time out under a loaded machine and write it behind, after a asks.
	p := testPrefix()
	lag := func(o *Options) { o.L2.PartnerLag = 300 * time.Millisecond }
	a, b := newL2Cache(t, r.URL(), p, lag, patient), newL2Cache(t, r.URL(), p, lag, patient)
	waitSynced(t, rc, p, a, b)
	a.Invalidate("m:y:2026-11-20")
	waitSynced(t, rc, p, a, b)
	time.Sleep(400 * time.Millisecond)
	var n counter
	mustCompute(t, b, []byte("late"), "m:y:2026-11-20", &n, "v", StatusMiss)
	mustCompute(t, a, []byte("late"), "m:y:2026-11-20", &n, "v", StatusHitL2)
}

// syncBuf is a goroutine-safe log sink.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// misconf makes r refuse writes and PING with MISCONF, as a failing RDB
// save does with the stock stop-writes-on-bgsave-error: the save goes to a
// directory that no longer exists.
func misconf(t *testing.T, rc *redis.Client) {
	t.Helper()
	gone := filepath.Join(t.TempDir(), "gone")
	if err := os.Mkdir(gone, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, kv := range [][2]string{{"save", "3600 1"}, {"stop-writes-on-bgsave-error", "yes"}, {"dir", gone}} {
		if err := rc.ConfigSet(bg, kv[0], kv[1]).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.RemoveAll(gone); err != nil {
		t.Fatal(err)
	}
	if err := rc.BgSave(bg).Err(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "MISCONF", func() bool {
		err := rc.Set(bg, "probe", "x", 0).Err()
		return err != nil && strings.HasPrefix(err.Error(), "MISCONF")
	})
}

// TestL2MisconfNoFlapping (issue 21, 7): a Redis that refuses writes and
// PING (MISCONF) but serves reads does not make the instance flap between
// synced and unsynced: no resync, no lost L1 hit, at most one log line.
func TestL2MisconfNoFlapping(t *testing.T) {
	r := redistest.Start(t)
	rc := r.Client()
	p := testPrefix()
	var logs syncBuf
	c := newL2Cache(t, r.URL(), p, func(o *Options) {
		o.L2.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	waitSynced(t, rc, p, c)
	var n counter
	mustCompute(t, c, []byte("k"), "m:x:2026-11-20", &n, "v", StatusMiss)
	resyncs := c.Stats().L2Resyncs
	misconf(t, rc)
	misses := 0
	// The subscription is pinged after a second of silence: 4 s see
	// several pings.
	for deadline := time.Now().Add(4 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if _, st := c.Get([]byte("k")); st != StatusHit {
			misses++
		}
	}
	s := c.Stats()
	lines := strings.Count(logs.String(), "\n")
	t.Logf("under MISCONF for 4 s: %d resyncs, %d lookups not served from L1, %d log lines:\n%s", s.L2Resyncs-resyncs, misses, lines, logs.String())
	if s.L2Resyncs != resyncs || misses > 0 || lines > 1 {
		t.Fatalf("flapping under MISCONF: %d resyncs, %d L1 hits lost, %d log lines", s.L2Resyncs-resyncs, misses, lines)
	}
}

// TestL2PartnerLagSurvivesFloor: a raise of the floor (a Reset of any
// instance, a prune, an instance adopting an epoch above its numbers)
// drops the generations at or below it, and with them the time of each
// bump, which the partner rule judges L2 entries by. The rule must hold
// all the same: an instance that acknowledged a write a moment ago takes
// no extent from L2 that its partner computed without it after the floor
// went up. (In cmd/strata's TestL2ConcurrentDifferential a lost shared
// key can make the instance that adopts the new epoch second raise its
// floor, dropping the other's records of writes it has just
// acknowledged.)
func TestL2PartnerLagSurvivesFloor(t *testing.T) {
	r := redistest.Start(t)
	rc := r.Client()
	for _, c := range []struct {
		name  string
		opts  func(*Options)
		floor func(t *testing.T, a, b *Cache) // raises the floor after a's bump
	}{
		{"partner's reset", nil, func(t *testing.T, _, b *Cache) {
			if err := b.Reset(); err != nil {
				t.Fatal(err)
			}
		}},
		{"prune by count", func(o *Options) { o.MaxTrackedTags = 8 }, func(t *testing.T, a, _ *Cache) {
			// More tags than a tracks: a prune drops the oldest
			// records, the write's among them.
			for i := range 16 {
				if err := a.Invalidate(fmt.Sprintf("other:%d", i)); err != nil {
					t.Fatal(err)
				}
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := testPrefix()
			var opts []func(*Options)
			if c.opts != nil {
				opts = append(opts, c.opts)
			}
			a, b := newL2Cache(t, r.URL(), p, opts...), newL2Cache(t, r.URL(), p, opts...)
			waitSynced(t, rc, p, a, b)
			tag := "m:x:2026-11-20"
			// a acknowledges a write of tag; b has not received it yet.
			if err := a.Invalidate(tag); err != nil {
				t.Fatal(err)
			}
			c.floor(t, a, b)
			waitSynced(t, rc, p, a, b)
			// b computes without the write, after the floor: valid by
			// the generations, refused by a's partner rule.
			var n counter
			mustCompute(t, b, []byte("k"), tag, &n, "without the write", StatusMiss)
			if v, st := a.Get([]byte("k")); st != StatusMiss {
				t.Fatalf("instance a served %q (%v), computed by its partner without a write a acknowledged less than PartnerLag ago", v, st)
			}
		})
	}
}

// TestL2PartnerLagEdge: the partner rule refuses an L2 entry of a tag
// bumped less than PartnerLag ago, and serves it from the instant the bump
// is exactly PartnerLag old (by the cache clock: both instances on one
// settable clock); also when a Reset dropped the bump's record.
func TestL2PartnerLagEdge(t *testing.T) {
	r := redistest.Start(t)
	rc := r.Client()
	p := testPrefix()
	clk := newFakeClock()
	opts := func(o *Options) { o.Now = clk.Now; o.TTL = time.Hour; o.L2.PartnerLag = time.Minute }
	a, b := newL2Cache(t, r.URL(), p, opts), newL2Cache(t, r.URL(), p, opts)
	waitSynced(t, rc, p, a, b)
	tag := "m:y:2026-11-20"
	if err := a.Invalidate(tag); err != nil {
		t.Fatal(err)
	}
	waitSynced(t, rc, p, a, b)
	var n counter
	mustCompute(t, b, []byte("k"), tag, &n, "v", StatusMiss)
	clk.Advance(time.Minute - time.Nanosecond)
	if v, st := a.Get([]byte("k")); st != StatusMiss {
		t.Fatalf("a nanosecond before PartnerLag: %q, %v; want a miss", v, st)
	}
	clk.Advance(time.Nanosecond)
	if v, st := a.Get([]byte("k")); st != StatusHitL2 || string(v) != "v" {
		t.Fatalf("at PartnerLag: %q, %v; want v from L2", v, st)
	}

	// The same edge for a bump whose record a Reset dropped: judged by the
	// time of the latest dropped bump.
	tag = "m:z:2026-11-20"
	if err := a.Invalidate(tag); err != nil {
		t.Fatal(err)
	}
	if err := a.Reset(); err != nil {
		t.Fatal(err)
	}
	waitSynced(t, rc, p, a, b)
	mustCompute(t, b, []byte("k2"), tag, &n, "v2", StatusMiss)
	clk.Advance(time.Minute - time.Nanosecond)
	if v, st := a.Get([]byte("k2")); st != StatusMiss {
		t.Fatalf("a nanosecond before PartnerLag after a dropped bump: %q, %v; want a miss", v, st)
	}
	clk.Advance(time.Nanosecond)
	if v, st := a.Get([]byte("k2")); st != StatusHitL2 || string(v) != "v2" {
		t.Fatalf("at PartnerLag after a dropped bump: %q, %v; want v2 from L2", v, st)
	}
}

// TestL2PendingFileRead: the bumps a process kept in l2-pending (Redis did
// not take them) are pushed to Redis by the next process that loads the
// directory, and the file goes once Redis has them. A last record without
// its newline was never acknowledged and bumps nothing; empty lines are
// skipped. The removal is not reported as a failure.
func TestL2PendingFileRead(t *testing.T) {
	r := redistest.Start(t)
	rc := r.Client()
	for _, tc := range []struct {
		name, file string
		pushed     map[string]bool
	}{
		{"bump and torn record", "b " + tagHex(tagHash("T")) + "\nb " + tagHex(tagHash("U")), map[string]bool{"T": true, "U": false}},
		{"empty line and bump", "\nb " + tagHex(tagHash("U")) + "\n", map[string]bool{"T": false, "U": true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := testPrefix()
			dir := t.TempDir()
			path := filepath.Join(dir, pendingFileName)
			if err := os.WriteFile(path, []byte(tc.file), 0o644); err != nil {
				t.Fatal(err)
			}
			var logs syncBuf
			o := l2TestOptions(r.URL(), p)
			o.L2.Logger = slog.New(slog.NewTextHandler(&logs, nil))
			synced := recordFsyncs(t) // before the cache's goroutines start
			c := loadL2(t, dir, o)
			waitSynced(t, rc, p, c)
			epoch, err := rc.Get(bg, p+"{gen}:epoch").Result()
			if err != nil {
				t.Fatal(err)
			}
			for tag, want := range tc.pushed {
				_, err := rc.ZScore(bg, p+"{gen}:"+epoch+":tags", tagHex(tagHash(tag))).Result()
				if got := err == nil; got != want {
					t.Errorf("tag %s in Redis after the pending file %q was pushed: %v (%v), want %v", tag, tc.file, got, err, want)
				}
			}
			if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("pending file after the resync: %v, want it removed", err)
			}
			if got := synced(); !slices.Contains(got, dir) {
				t.Errorf("the removal of the pending file was not synced: fsyncs %q", got)
			}
			if strings.Contains(logs.String(), "cannot remove") {
				t.Errorf("the removal of the pending file was logged as failed:\n%s", logs.String())
			}
		})
	}
}

// TestL2PendingFileWritten: with Redis unreachable, an invalidation of a
// cache loaded from a directory is kept in l2-pending there (the directory
// created if it does not exist yet) before Invalidate returns, and
// Invalidate reports it durable (nil); each append holds the bump.
func TestL2PendingFileWritten(t *testing.T) {
	url := "redis://127.0.0.1:" + strconv.Itoa(freePort(t))
	dir := filepath.Join(t.TempDir(), "not-yet")
	synced := recordFsyncs(t) // before the cache's goroutines start
	c := loadL2(t, dir, l2TestOptions(url, testPrefix()))
	var want string
	path := filepath.Join(dir, pendingFileName)
	for i, tag := range []string{"T", "U"} {
		if err := c.Invalidate(tag); err != nil {
			t.Fatalf("Invalidate(%s) with Redis unreachable: %v, want it kept on disk", tag, err)
		}
		want += "b " + tagHex(tagHash(tag)) + "\n"
		b, err := os.ReadFile(path)
		if err != nil || string(b) != want {
			t.Fatalf("pending file after Invalidate(%s): %q, %v; want %q", tag, b, err, want)
		}
		// Synced before Invalidate returns: the file at each bump; the
		// directory made for it and the directory's new entry once.
		got := synced()
		count := func(name string) int {
			n := 0
			for _, s := range got {
				if s == name {
					n++
				}
			}
			return n
		}
		if count(path) != i+1 || count(dir) != 1 || count(filepath.Dir(dir)) != 1 {
			t.Fatalf("fsyncs after Invalidate(%s): %q", tag, got)
		}
	}
}

// TestL2PendingNotDurable: a bump Redis did not take that cannot be kept
// on disk either is made locally and returns ErrInvalidationNotDurable,
// saying why (here: the tier is unavailable), counted as an error and
// logged once however often it happens; once the file can be written
// again, every bump remembered since is written (after a newline ending
// any torn record), and that is logged too.
func TestL2PendingNotDurable(t *testing.T) {
	url := "redis://127.0.0.1:" + strconv.Itoa(freePort(t))
	dir := t.TempDir()
	path := filepath.Join(dir, pendingFileName)
	var logs syncBuf
	o := l2TestOptions(url, testPrefix())
	o.L2.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	c := loadL2(t, dir, o)
	if err := os.Mkdir(path, 0o755); err != nil { // the file cannot be opened
		t.Fatal(err)
	}
	var n counter
	mustGet(t, c, "k", []string{"T"}, n.fn("v", 0, nil))
	for i, tag := range []string{"T", "U"} {
		errs := c.Stats().L2Errors
		err := c.Invalidate(tag)
		if !errors.Is(err, ErrInvalidationNotDurable) || !strings.Contains(err.Error(), "Redis did not take it (the Redis L2 tier is unavailable)") {
			t.Fatalf("Invalidate(%s) with Redis unreachable and the file unwritable: %v", tag, err)
		}
		if c.Stats().L2Errors == errs {
			t.Fatalf("Invalidate(%s): the failed write was not counted as an error", tag)
		}
		if got := strings.Count(logs.String(), "cannot keep invalidations"); got != 1 {
			t.Fatalf("after %d failures, %d log lines about them, want 1:\n%s", i+1, got, logs.String())
		}
	}
	if _, st := c.Get([]byte("k")); st != StatusMiss {
		t.Fatalf("entry of a tag bumped locally: %v", st)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := c.Invalidate("V"); err != nil {
		t.Fatalf("Invalidate once the file can be written: %v", err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	want := []string{"", "b " + tagHex(tagHash("T")), "b " + tagHex(tagHash("U")), "b " + tagHex(tagHash("V")), ""}
	if len(lines) == len(want) {
		slices.Sort(lines[1:4])
		slices.Sort(want[1:4])
	}
	if !slices.Equal(lines, want) {
		t.Fatalf("pending file %q, want the lines %q", b, want)
	}
	if !strings.Contains(logs.String(), "kept on disk again") {
		t.Fatalf("no log line saying the bumps are kept again:\n%s", logs.String())
	}
}

// TestL2PendingFileAfterResync: the pending file, removed once a resync
// pushed its bumps, is created again by the next bump Redis does not take
// (not written to the removed file, which stayed open).
func TestL2PendingFileAfterResync(t *testing.T) {
	r := redistest.Start(t)
	p := testPrefix()
	dir := t.TempDir()
	path := filepath.Join(dir, pendingFileName)
	c := loadL2(t, dir, l2TestOptions(r.URL(), p))
	waitSynced(t, r.Client(), p, c)
	for i, tag := range []string{"T", "U"} {
		r.Stop()
		waitFor(t, 10*time.Second, "the cache to notice the outage", func() bool { return !c.Stats().L2Connected })
		if err := c.Invalidate(tag); err != nil {
			t.Fatal(err)
		}
		if b, err := os.ReadFile(path); err != nil || string(b) != "b "+tagHex(tagHash(tag))+"\n" {
			t.Fatalf("outage %d: pending file %q, %v; want the bump of %s", i+1, b, err, tag)
		}
		r.Restart()
		waitSynced(t, r.Client(), p, c)
		if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("outage %d: pending file after the resync: %v, want it removed", i+1, err)
		}
	}
}
