package cache

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

// TestGetOrExtend checks GetOrExtend as its comment describes it, for one
// caller: a miss extends nothing (old is nil) and stores; an accepted hit
// is served without extending; a hit that is not accepted is extended
// from the cached value and the result stored; and a call whose extensions
// are never enough gives up after a bounded number of them, with the last
// value.
func TestGetOrExtend(t *testing.T) {
	c := newTestCache(t, newFakeClock())
	ctx := context.Background()
	key, tags := []byte("k"), []string{"t"}
	var olds []string
	extend := func(_ context.Context, old []byte) ([]byte, time.Duration, error) {
		if len(olds) == 10 {
			return nil, 0, errors.New("extended 10 times for one call: GetOrExtend does not give up")
		}
		olds = append(olds, string(old))
		return append([]byte(string(old)), 'x'), 0, nil
	}
	atLeast := func(n int) func([]byte) bool { return func(v []byte) bool { return len(v) >= n } }
	call := func(accept func([]byte) bool, want string, wantSt Status, wantRan bool) {
		t.Helper()
		olds = olds[:0]
		v, st, ran, err := c.GetOrExtend(ctx, key, tags, accept, extend)
		if err != nil || string(v) != want || st != wantSt || ran != wantRan {
			t.Fatalf("GetOrExtend = %q, %v, ran %v, %v; want %q, %v, ran %v", v, st, ran, err, want, wantSt, wantRan)
		}
	}
	call(atLeast(1), "x", StatusMiss, true)
	if len(olds) != 1 || olds[0] != "" {
		t.Fatalf("a miss extended from %q, want one extension from nothing", olds)
	}
	call(atLeast(1), "x", StatusHit, false)
	if len(olds) != 0 {
		t.Fatalf("an accepted hit extended from %q", olds)
	}
	call(atLeast(2), "xx", StatusMiss, true)
	if len(olds) != 1 || olds[0] != "x" {
		t.Fatalf("a hit not accepted extended from %q, want from the cached x", olds)
	}
	expectGet(t, c, "k", "xx", StatusHit)
	// Never enough: a few extensions, then the last one is returned.
	olds = olds[:0]
	v, _, ran, err := c.GetOrExtend(ctx, key, tags, func([]byte) bool { return false }, extend)
	if err != nil || !ran || string(v) != "xxxxxx" {
		t.Fatalf("never accepted: %q, ran %v, %v; want xxxxxx, ran", v, ran, err)
	}
	// One caller: its first computation, two more, each stored, then one
	// alone, not stored.
	if want := []string{"xx", "xxx", "xxxx", "xxxxx"}; !slices.Equal(olds, want) {
		t.Fatalf("never accepted: extended from %q, want %q", olds, want)
	}
	expectGet(t, c, "k", "xxxxx", StatusHit)
}
