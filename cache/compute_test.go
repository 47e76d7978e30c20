package cache

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestStampedeOneComputation(t *testing.T) {
	clk := newFakeClock()
	c := newTestCache(t, clk)
	const callers = 1000
	var n counter
	gate, open := newGate(t)
	compute := func(context.Context) ([]byte, time.Duration, error) {
		n.calls.Add(1)
		<-gate
		return []byte("result"), 0, nil
	}
	var wg sync.WaitGroup
	statuses := make(chan Status, callers)
	errs := make(chan error, callers)
	for range callers {
		wg.Go(func() {
			v, st, err := c.GetOrCompute(context.Background(), []byte("hot"), []string{"t"}, compute)
			if err == nil && string(v) != "result" {
				err = errors.New("wrong value " + string(v))
			}
			statuses <- st
			errs <- err
		})
	}
	// Release the computation once every caller waits on it.
	waitWaiters(t, c, "hot", callers)
	open()
	wg.Wait()
	close(statuses)
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	count := map[Status]int{}
	for st := range statuses {
		count[st]++
	}
	if got := n.calls.Load(); got != 1 {
		t.Fatalf("%d computations for %d concurrent misses, want 1", got, callers)
	}
	if count[StatusMiss] != 1 || count[StatusShared] != callers-1 {
		t.Errorf("statuses %v, want 1 miss and %d shared", count, callers-1)
	}
	if s := c.Stats(); s.SharedWaits != callers-1 || s.Misses != 1 || s.Computations != 1 {
		t.Errorf("stats: shared %d misses %d computations %d", s.SharedWaits, s.Misses, s.Computations)
	}
}

// Misses that arrive while a flight finishes must not compute again.
func TestStampedeStaggered(t *testing.T) {
	clk := newFakeClock()
	c := newTestCache(t, clk)
	var n counter
	compute := func(context.Context) ([]byte, time.Duration, error) {
		n.calls.Add(1)
		time.Sleep(time.Millisecond)
		return []byte("v"), 0, nil
	}
	var wg sync.WaitGroup
	for range 1000 {
		wg.Go(func() {
			if _, _, err := c.GetOrCompute(context.Background(), []byte("k"), nil, compute); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if got := n.calls.Load(); got != 1 {
		t.Fatalf("%d computations, want 1", got)
	}
}

func TestComputeErrorShared(t *testing.T) {
	clk := newFakeClock()
	c := newTestCache(t, clk)
	boom := errors.New("boom")
	gate, open := newGate(t)
	compute := func(context.Context) ([]byte, time.Duration, error) {
		<-gate
		return nil, 0, boom
	}
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			if _, _, err := c.GetOrCompute(context.Background(), []byte("k"), nil, compute); !errors.Is(err, boom) {
				t.Errorf("err = %v, want boom", err)
			}
		})
	}
	waitWaiters(t, c, "k", 10)
	open()
	wg.Wait()
	expectGet(t, c, "k", "", StatusMiss) // errors are not cached
	if s := c.Stats(); s.ComputeErrors != 1 {
		t.Errorf("compute errors = %d", s.ComputeErrors)
	}
}

func TestComputePanicIsError(t *testing.T) {
	clk := newFakeClock()
	c := newTestCache(t, clk)
	_, _, err := c.GetOrCompute(context.Background(), []byte("k"), nil, func(context.Context) ([]byte, time.Duration, error) {
		panic("bad query")
	})
	if err == nil || !strings.Contains(err.Error(), "bad query") {
		t.Fatalf("err = %v", err)
	}
}

// A caller that gives up returns at once; the computation goes on for the
// others, and is canceled when the last one leaves, which also forgets it:
// a miss that comes while the canceled computation is still returning
// starts afresh instead of joining it.
func TestWaitersLeave(t *testing.T) {
	clk := newFakeClock()
	c := newTestCache(t, clk)
	canceled := make(chan struct{})
	finish, open := newGate(t)
	errAbandoned := errors.New("computation canceled")
	ctxs := make(chan context.Context, 1)
	compute := func(ctx context.Context) ([]byte, time.Duration, error) {
		ctxs <- ctx
		<-ctx.Done()
		close(canceled)
		<-finish
		// Not ctx.Err(): a waiter that gets this error got the canceled
		// computation's result instead of leaving by its own context.
		return nil, 0, errAbandoned
	}
	ctx1, cancel1 := context.WithCancel(context.Background())
	ctx2, cancel2 := context.WithCancel(context.Background())
	errs := make(chan error, 2)
	go func() { _, _, err := c.GetOrCompute(ctx1, []byte("k"), nil, compute); errs <- err }()
	waitWaiters(t, c, "k", 1)
	go func() { _, _, err := c.GetOrCompute(ctx2, []byte("k"), nil, compute); errs <- err }()
	waitWaiters(t, c, "k", 2)

	computing := <-ctxs
	cancel1() // the leader leaves; the follower still waits
	if err := <-errs; !errors.Is(err, context.Canceled) {
		t.Fatalf("leader err = %v", err)
	}
	if computing.Err() != nil {
		t.Fatal("computation canceled while a caller still waits")
	}
	cancel2()
	if err := <-errs; !errors.Is(err, context.Canceled) {
		t.Fatalf("follower err = %v, want its own context's (the computation must run while it waits)", err)
	}
	select {
	case <-canceled: // canceled once nobody waits
	case <-time.After(flightWait):
		t.Fatalf("computation not canceled %v after its last waiter left", flightWait)
	}

	var n counter
	ctx, cancel := context.WithTimeout(context.Background(), flightWait)
	defer cancel()
	v, st, err := c.GetOrCompute(ctx, []byte("k"), nil, n.fn("fresh", 0, nil))
	if err != nil || string(v) != "fresh" || st != StatusMiss {
		t.Fatalf("after abandon: %q, %v, %v; want a new computation", v, st, err)
	}
	open()
	waitIdle(t, c)
}

// Close cancels background refreshes and waits for them (TestMain checks
// with goleak that no goroutine is left).
func TestCloseStopsRefreshes(t *testing.T) {
	clk := newFakeClock()
	c := newTestCache(t, clk)
	var n counter
	mustGet(t, c, "k", nil, n.fn("v", 0, nil))
	clk.Advance(90 * time.Second)

	started := make(chan struct{})
	var sawCancel bool
	refresh := func(ctx context.Context) ([]byte, time.Duration, error) {
		close(started)
		<-ctx.Done()
		sawCancel = true
		return nil, 0, ctx.Err()
	}
	if v, st := mustGet(t, c, "k", nil, refresh); v != "v" || st != StatusStale {
		t.Fatalf("got %q, %v", v, st)
	}
	<-started
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if !sawCancel {
		t.Fatal("Close returned before the refresh ended")
	}
}

func TestRefreshTimeout(t *testing.T) {
	clk := newFakeClock()
	c := newTestCache(t, clk, func(o *Options) { o.RefreshTimeout = time.Millisecond })
	var n counter
	mustGet(t, c, "k", nil, n.fn("v", 0, nil))
	clk.Advance(90 * time.Second)
	refresh := func(ctx context.Context) ([]byte, time.Duration, error) {
		<-ctx.Done()
		return nil, 0, ctx.Err()
	}
	mustGet(t, c, "k", nil, refresh)
	waitIdle(t, c)
	if s := c.Stats(); s.RefreshFailures != 1 {
		t.Fatalf("refresh failures = %d", s.RefreshFailures)
	}
	expectGet(t, c, "k", "v", StatusStale)
}

// TestRefreshWithoutTimeout: RefreshTimeout zero means no bound other than
// Close: a refresh runs with a context that has no deadline, and stores
// its value.
func TestRefreshWithoutTimeout(t *testing.T) {
	clk := newFakeClock()
	c := newTestCache(t, clk, func(o *Options) { o.RefreshTimeout = 0 })
	var n counter
	mustGet(t, c, "k", nil, n.fn("v1", 0, nil))
	clk.Advance(90 * time.Second)
	refresh := func(ctx context.Context) ([]byte, time.Duration, error) {
		if _, ok := ctx.Deadline(); ok || ctx.Err() != nil {
			return nil, 0, fmt.Errorf("refresh context: deadline %v, err %v; want neither", ok, ctx.Err())
		}
		return []byte("v2"), 0, nil
	}
	if v, st := mustGet(t, c, "k", nil, refresh); v != "v1" || st != StatusStale {
		t.Fatalf("stale read = %q, %v", v, st)
	}
	waitIdle(t, c)
	if s := c.Stats(); s.Refreshes != 1 || s.RefreshFailures != 0 {
		t.Fatalf("%d refreshes, %d failed; want 1, 0", s.Refreshes, s.RefreshFailures)
	}
	expectGet(t, c, "k", "v2", StatusHit)
}

// A refresh started by one request keeps the request's values but not its
// cancellation.
func TestRefreshOutlivesRequest(t *testing.T) {
	clk := newFakeClock()
	c := newTestCache(t, clk)
	var n counter
	mustGet(t, c, "k", nil, n.fn("v1", 0, nil))
	clk.Advance(90 * time.Second)
	type ctxKey struct{}
	ctx, cancel := context.WithCancel(context.WithValue(context.Background(), ctxKey{}, "trace-1"))
	gate := make(chan struct{})
	var got any
	refresh := func(rctx context.Context) ([]byte, time.Duration, error) {
		<-gate
		got = rctx.Value(ctxKey{})
		return []byte("v2"), 0, rctx.Err()
	}
	if _, st, err := c.GetOrCompute(ctx, []byte("k"), nil, refresh); err != nil || st != StatusStale {
		t.Fatal(st, err)
	}
	cancel()
	close(gate)
	waitIdle(t, c)
	if got != "trace-1" {
		t.Errorf("refresh context value = %v", got)
	}
	expectGet(t, c, "k", "v2", StatusHit)
}

// TestJoinAfterInvalidate: a lookup made after a tag of its key was bumped
// does not join a computation that started before the bump (its value may
// predate the write behind the bump); it computes afresh. A lookup of an
// untouched key still joins.
func TestJoinAfterInvalidate(t *testing.T) {
	c := newTestCache(t, newFakeClock())
	ctx := context.Background()
	started, release := make(chan struct{}), make(chan struct{})
	first := make(chan Status, 1)
	go func() {
		_, st, err := c.GetOrCompute(ctx, []byte("k"), []string{"t"}, func(context.Context) ([]byte, time.Duration, error) {
			close(started)
			<-release
			return []byte("before"), 0, nil
		})
		if err != nil {
			t.Error(err)
		}
		first <- st
	}()
	<-started
	// A lookup of the same key before any bump shares the flight.
	sharedDone := make(chan []byte, 1)
	go func() {
		v, _, _ := c.GetOrCompute(ctx, []byte("k"), []string{"t"}, func(context.Context) ([]byte, time.Duration, error) {
			return []byte("unexpected"), 0, nil
		})
		sharedDone <- v
	}()
	waitFor(t, 10*time.Second, "second waiter", func() bool {
		c.flights.mu.Lock()
		defer c.flights.mu.Unlock()
		return c.flights.m["k"] != nil && c.flights.m["k"].waiters == 2
	})
	c.Invalidate("t")
	// Joining the old flight would wait for release: bounded, so the
	// defect fails the test instead of hanging it.
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	v, st, err := c.GetOrCompute(lctx, []byte("k"), []string{"t"}, func(context.Context) ([]byte, time.Duration, error) {
		return []byte("after"), 0, nil
	})
	if err != nil {
		close(release)
		t.Fatalf("lookup after Invalidate: %v (%s): it waited for the computation that started before the bump", err, st)
	}
	if string(v) != "after" || st != StatusMiss {
		t.Fatalf("lookup after Invalidate got %q (%s), want a fresh computation", v, st)
	}
	close(release)
	if st := <-first; st != StatusMiss {
		t.Fatalf("first caller: %s", st)
	}
	if v := <-sharedDone; string(v) != "before" {
		t.Fatalf("caller that joined before the bump got %q, want the shared %q", v, "before")
	}
	// The flight that started before the bump stored nothing valid.
	if v, st := c.Get([]byte("k")); string(v) != "after" || st != StatusHit {
		t.Fatalf("cached %q (%s), want the value computed after the bump", v, st)
	}
}

// TestUnrelatedBumpDuringComputation: a bump of a tag that a computation
// does not depend on, made while it runs, changes nothing for it: a miss
// made meanwhile shares it, and its value is stored and served. Both
// where its snapshot is exactly the floor (taken just after a Reset) and
// where its own tag's generation is exactly its snapshot (bumped just
// before).
func TestUnrelatedBumpDuringComputation(t *testing.T) {
	for name, before := range map[string]func(c *Cache){
		"after Reset":        func(c *Cache) { _ = c.Reset() },
		"after its tag bump": func(c *Cache) { _ = c.Invalidate("a") },
	} {
		t.Run(name, func(t *testing.T) {
			c := newTestCache(t, newFakeClock())
			before(c)
			var n counter
			gate, open := newGate(t)
			compute := func(context.Context) ([]byte, time.Duration, error) {
				n.calls.Add(1)
				<-gate
				return []byte("v"), 0, nil
			}
			statuses := make(chan Status, 2)
			get := func() {
				v, st, err := c.GetOrCompute(context.Background(), []byte("k"), []string{"a"}, compute)
				if err != nil || string(v) != "v" {
					t.Errorf("GetOrCompute = %q, %v", v, err)
				}
				statuses <- st
			}
			go get()
			waitWaiters(t, c, "k", 1)
			_ = c.Invalidate("b")
			go get()
			// The second call joins the flight (two waiters) or, wrongly,
			// starts its own computation.
			for deadline := time.Now().Add(flightWait); ; time.Sleep(time.Millisecond) {
				c.flights.mu.Lock()
				f := c.flights.m["k"]
				joined := f != nil && f.waiters == 2
				c.flights.mu.Unlock()
				if joined || n.calls.Load() == 2 || time.Now().After(deadline) {
					break
				}
			}
			open()
			got := map[Status]int{<-statuses: 1}
			got[<-statuses]++
			if n.calls.Load() != 1 || got[StatusMiss] != 1 || got[StatusShared] != 1 {
				t.Fatalf("%d computations, statuses %v; want 1, one miss and one shared", n.calls.Load(), got)
			}
			expectGet(t, c, "k", "v", StatusHit)
		})
	}
}
