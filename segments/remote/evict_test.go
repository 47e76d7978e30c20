package remote

import (
	"context"
	"math"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/strata-tsdb/strata/segments"
	"github.com/strata-tsdb/strata/segments/remote/s3test"
)

// TestLocalMaxBytes: with MaxLocalBytes (storage.local.max_bytes), the
// oldest local segments verified in the bucket are deleted locally until
// the local segments fit the bound; a segment not in the bucket stays
// whatever the bound (here the newest, not final, alone over it), and so
// does every segment while the bucket is down; back up, the waiting one
// is uploaded and then deleted locally. What left the disk reads back
// from the bucket, so the local and bucket segments together hold every
// sample written.
func TestLocalMaxBytes(t *testing.T) {
	srv := s3test.Start(t)
	set := newSet(t)
	day := 24 * time.Hour
	var olds []segments.Meta
	for d := range 4 {
		from := t0.Add(time.Duration(d) * day)
		olds = append(olds, writeSegment(t, set, 20, from, from.Add(4*time.Hour)))
	}
	young := writeSegment(t, set, 20, t0.Add(9*day), t0.Add(9*day+time.Hour))
	size := map[string]int64{}
	for _, in := range set.Segments() {
		size[in.Meta.ID] = in.Size
	}
	want, release := acquireAll(t, set)
	release()
	now := t0.Add(9*day + 2*time.Hour)
	// Room for the young segment and one old one, less a byte: the young
	// one (never deleted: not in the bucket) and the newest old one stay.
	bound := size[young.ID] + size[olds[3].ID] + size[olds[2].ID] - 1
	tier := newTier(t, srv, set, "maxb", Options{UploadAfter: 24 * time.Hour, MaxLocalBytes: bound, Now: func() time.Time { return now }})
	mustSync(t, tier)
	if got, want := localIDs(set), sorted(olds[3].ID, young.ID); !slices.Equal(got, want) {
		t.Fatalf("local segments %v, want %v (the oldest verified ones deleted first)", got, want)
	}
	if total := localBytes(set); total > bound {
		t.Fatalf("local segments take %d bytes, bound %d", total, bound)
	}
	// A bound the young segment alone exceeds: every verified one goes,
	// the young one stays.
	tier.opts.MaxLocalBytes = 1
	mustSync(t, tier)
	if got := localIDs(set); !slices.Equal(got, []string{young.ID}) {
		t.Fatalf("local segments %v, want only %s (not in the bucket)", got, young.ID)
	}
	// Bucket down: a segment that became final is not uploaded, so it
	// stays, over the bound.
	late := writeSegment(t, set, 20, t0.Add(5*day), t0.Add(5*day+time.Hour))
	lateSegs, release := set.Acquire(late.MinTime, late.MaxTime)
	for k, v := range samples(t, lateSegs) {
		want[k] = append(want[k], v...)
	}
	release()
	srv.Stop()
	if err := tier.Sync(context.Background()); err == nil {
		t.Fatal("a round with the bucket down succeeded")
	}
	if got := localIDs(set); !slices.Equal(got, sorted(late.ID, young.ID)) {
		t.Fatalf("local segments %v with the bucket down, want %s and %s", got, late.ID, young.ID)
	}
	srv.Restart()
	mustSync(t, tier)
	if got := localIDs(set); !slices.Equal(got, []string{young.ID}) {
		t.Fatalf("local segments %v once the bucket is back, want only %s", got, young.ID)
	}
	if n := counterValue(tier.m.localEvictions); n != 5 {
		t.Fatalf("strata_object_local_evictions_total = %v, want 5", n)
	}
	// Everything reads back: local and bucket segments together.
	local, releaseLocal := set.Acquire(math.MinInt64, math.MaxInt64)
	defer releaseLocal()
	var localMetas []segments.Meta
	for _, s := range local {
		localMetas = append(localMetas, s.Meta())
	}
	remoteSegs, _, releaseRemote, err := tier.Acquire(context.Background(), math.MinInt64, math.MaxInt64, localMetas, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer releaseRemote()
	all := append(slices.Clone(local), remoteSegs...)
	slices.SortFunc(all, func(a, b *segments.Segment) int { return segments.WriteOrder(a.Meta(), b.Meta()) })
	if got := samples(t, all); !reflect.DeepEqual(byTime(got), byTime(want)) {
		t.Fatalf("read back %d series, want %d (or samples differ)", len(got), len(want))
	}
}

// localBytes returns the bytes of set's segments.
func localBytes(set *segments.Set) int64 {
	var n int64
	for _, in := range set.Segments() {
		n += in.Size
	}
	return n
}

// sorted returns ids sorted, as localIDs returns them.
func sorted(ids ...string) []string {
	slices.Sort(ids)
	return ids
}
