package remote

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
)

// TestRangedOpenAbandoned: the open of a bucket segment (its index read
// by range) is shared by the queries that wait for it and outlives the
// first of them; once every one has given up, it is cancelled: its GET is
// abandoned, and the next query opens the segment again, where before it
// waited for the abandoned open, which went on until its GET timed out.
// Close cancels an open in flight: a query waiting for it fails with the
// context's error, not with the bucket's unavailability a minute later.
func TestRangedOpenAbandoned(t *testing.T) {
	f := newRangedFixture(t, 2000, true, 1<<30)
	one := labels.MustNewMatcher(labels.MatchEqual, "i", "s01900")
	read := func(r *rangedFixture, ctx context.Context) <-chan error {
		ch := make(chan error, 1)
		go func() {
			_, err := r.readEachCtx(ctx, t, []*labels.Matcher{one}, nil)
			ch <- err
		}()
		return ch
	}
	wait := func(ch <-chan error, what string) error {
		t.Helper()
		// Bounded generously, but below the GETs' own timeouts.
		select {
		case err := <-ch:
			return err
		case <-time.After(45 * time.Second):
			t.Fatalf("%s did not return while the open's GET was held", what)
			return nil
		}
	}

	r, proxy := proxiedReader(t, f, "ranged-true")
	proxy.HoldGets("/index")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	first := read(r, ctx)
	waitFor(t, "the open's GET to be held", func() bool { return proxy.Held() >= 1 })
	cancel()
	if err := wait(first, "the cancelled query"); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled query: %v, want context.Canceled", err)
	}
	// A new query opens the segment itself: a second GET is held (it
	// used to wait for the abandoned open, and fail with it once its GET
	// timed out).
	second := read(r, context.Background())
	waitFor(t, "a new open's GET to be held", func() bool { return proxy.Held() >= 2 })
	waitFor(t, "the abandoned open's GET to be given up", func() bool { return proxy.GaveUp() >= 1 })
	proxy.Release()
	if err := wait(second, "the second query"); err != nil {
		t.Fatalf("the query after the abandoned open: %v", err)
	}
	if got, err := r.read(t, one); err != nil || !reflect.DeepEqual(got, f.wantOf("s01900")) {
		t.Fatalf("a later query: %v (or it differs)", err)
	}
	checkCacheBlocks(t, r.tier)

	// Close while an open is in flight and a query waits for it.
	r2, proxy2 := proxiedReader(t, f, "ranged-true")
	proxy2.HoldGets("/index")
	waiting := read(r2, context.Background())
	waitFor(t, "the open's GET to be held", func() bool { return proxy2.Held() >= 1 })
	closed := make(chan error, 1)
	go func() { closed <- r2.tier.Close() }()
	if err := wait(waiting, "the query waiting for the open"); !errors.Is(err, context.Canceled) || errors.Is(err, ErrUnavailable) {
		t.Fatalf("the query waiting for an open when the tier closed: %v, want context.Canceled", err)
	}
	if err := wait(closed, "Close"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the open's GET to be given up when the tier closed", func() bool { return proxy2.GaveUp() >= 1 })
}
