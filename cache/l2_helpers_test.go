package cache

import (
	"context"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// freePort returns a port on 127.0.0.1 that was free a moment ago.
func freePort(t testing.TB) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

var prefixSeq atomic.Uint64

// newL2Cache returns a cache with an L2 tier on url under prefix (on the
// wall clock: entries in Redis live by it), closed at the end of the test.
func newL2Cache(t testing.TB, url, prefix string, mutate ...func(*Options)) *Cache {
	t.Helper()
	o := DefaultOptions()
	o.MaxBytes = 32 << 20
	o.TTL = time.Minute
	o.Grace = time.Minute
	o.L2 = L2Options{URL: url, Prefix: prefix, OpTimeout: 100 * time.Millisecond}
	for _, f := range mutate {
		f(&o)
	}
	c, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// entryKeyOf and lockKeyOf return the names in Redis of key's entry and
// of its lock, in c's current epoch.
func entryKeyOf(c *Cache, key []byte) string {
	var kb [8]byte
	return c.l2.keys.Load().entryKey(c.fastKey(&kb, key))
}

func lockKeyOf(c *Cache, key []byte) string {
	var kb [8]byte
	return c.l2.keys.Load().lockKey(c.fastKey(&kb, key))
}

// testPrefix returns a prefix no other cache of the test binary uses.
func testPrefix() string { return fmt.Sprintf("t%d:", prefixSeq.Add(1)) }

// waitFor polls cond every 5 ms until it holds, failing after d.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
	}
}

// waitSynced waits until every cache is connected and has applied the
// same last generation as Redis has handed out.
func waitSynced(t testing.TB, rc *redis.Client, prefix string, cs ...*Cache) {
	t.Helper()
	waitFor(t, 10*time.Second, "caches in sync with Redis", func() bool {
		seq, err := sharedSeq(rc, prefix)
		if err != nil {
			return false
		}
		for _, c := range cs {
			s := c.Stats()
			if !s.L2Connected || s.Generation != seq {
				return false
			}
		}
		return true
	})
}

// sharedSeq returns the shared counter of prefix: the key of the current
// epoch (<prefix>{gen}:<epoch>:seq), or <prefix>{gen}:seq where there is
// no epoch key.
func sharedSeq(rc *redis.Client, prefix string) (uint64, error) {
	name := prefix + "{gen}:seq"
	if e, err := rc.Get(context.Background(), prefix+"{gen}:epoch").Result(); err == nil {
		name = prefix + "{gen}:" + e + ":seq"
	} else if err != redis.Nil {
		return 0, err
	}
	seq, err := rc.Get(context.Background(), name).Uint64()
	if err == redis.Nil {
		return 0, nil
	}
	return seq, err
}
