package cache

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// Every test closes its caches; no computation may outlive them.
	goleak.VerifyTestMain(m)
}

// fakeClock is a settable clock for Options.Now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)}
}

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.t
}

func (f *fakeClock) Advance(d time.Duration) {
	f.mu.Lock()
	f.t = f.t.Add(d)
	f.mu.Unlock()
}

// testOptions returns the options tests start from: the smallest fastcache
// (32 MiB), TTL 1m, grace 1m, on clk.
func testOptions(clk *fakeClock) Options {
	o := DefaultOptions()
	o.MaxBytes = 32 << 20
	o.TTL = time.Minute
	o.Grace = time.Minute
	o.Now = clk.Now
	return o
}

// newTestCache returns a cache on clk, closed at the end of the test.
func newTestCache(t testing.TB, clk *fakeClock, mutate ...func(*Options)) *Cache {
	t.Helper()
	o := testOptions(clk)
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

// counter is a ComputeFunc factory that counts its calls.
type counter struct {
	calls atomic.Int64
}

// fn returns a compute that counts its call and returns value, ttl, err.
func (n *counter) fn(value string, ttl time.Duration, err error) ComputeFunc {
	return func(context.Context) ([]byte, time.Duration, error) {
		n.calls.Add(1)
		if err != nil {
			return nil, 0, err
		}
		return []byte(value), ttl, nil
	}
}

// flightWait bounds the waits for the cache's flights below: generous (they
// take milliseconds), so that a cache that never gets there fails its test
// instead of hanging the package's tests.
const flightWait = time.Minute

// waitIdle waits until no computation of c is running.
func waitIdle(t testing.TB, c *Cache) {
	t.Helper()
	for deadline := time.Now().Add(flightWait); ; time.Sleep(time.Millisecond) {
		c.flights.mu.Lock()
		n := len(c.flights.m)
		c.flights.mu.Unlock()
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d computations still running after %v", n, flightWait)
		}
	}
}

// newGate returns a channel for computations to wait on and the function
// that closes it. The channel is closed at the end of the test in any case,
// so that a test that fails while computations wait on it does not hang in
// the cache's Close (a cleanup registered after newTestCache's runs first).
func newGate(t testing.TB) (<-chan struct{}, func()) {
	ch := make(chan struct{})
	open := sync.OnceFunc(func() { close(ch) })
	t.Cleanup(open)
	return ch, open
}

// waitWaiters waits until the flight of key has n waiters.
func waitWaiters(t testing.TB, c *Cache, key string, n int) {
	t.Helper()
	for deadline := time.Now().Add(flightWait); ; time.Sleep(time.Millisecond) {
		c.flights.mu.Lock()
		f := c.flights.m[key]
		got := 0
		if f != nil {
			got = f.waiters
		}
		c.flights.mu.Unlock()
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("flight of %q has %d waiters after %v, want %d", key, got, flightWait, n)
		}
	}
}

// mustGet calls GetOrCompute and fails the test on error.
func mustGet(t testing.TB, c *Cache, key string, tags []string, compute ComputeFunc) (string, Status) {
	t.Helper()
	v, st, err := c.GetOrCompute(context.Background(), []byte(key), tags, compute)
	if err != nil {
		t.Fatalf("GetOrCompute(%q): %v", key, err)
	}
	return string(v), st
}

// expectGet checks what Get returns for key.
func expectGet(t testing.TB, c *Cache, key, want string, wantSt Status) {
	t.Helper()
	v, st := c.Get([]byte(key))
	if st != wantSt || string(v) != want {
		t.Fatalf("Get(%q) = %q, %v; want %q, %v", key, v, st, want, wantSt)
	}
}
