package remote

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/strata-tsdb/strata/segments"
	"github.com/strata-tsdb/strata/segments/remote/s3test"
)

// proxiedWriter is a writer tier of set whose bucket requests go through
// a proxy that can hold them back.
func proxiedWriter(t *testing.T, srv *s3test.Server, set *segments.Set, prefix string, opts Options) (*Tier, *s3test.Proxy) {
	t.Helper()
	srv.SetEnv(t)
	proxy := s3test.NewProxy(t, srv)
	b, err := OpenS3(proxy.URL(prefix))
	if err != nil {
		t.Fatal(err)
	}
	opts.Dir = t.TempDir()
	opts.RetryMin = 10 * time.Millisecond
	w, err := New(nil, b, set, opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Close() })
	return w, proxy
}

// openAll opens every bucket segment of w (meta.json, index, chunks
// headers and page tables), so that what a round fetches next is chunk
// data.
func openAll(t *testing.T, w *Tier) {
	t.Helper()
	segs, _, release, err := w.Acquire(context.Background(), math.MinInt64, math.MaxInt64, nil, nil)
	if err != nil || len(segs) == 0 {
		t.Fatalf("open the bucket segments: %d (%v)", len(segs), err)
	}
	release()
}

// syncCancelled runs a round of w with a context it cancels once the
// proxy holds one of its GETs, and fails unless the round returns the
// context's error and abandons the GET: the round's reads carry its
// context (Segment.WithContext), so that Close, which cancels it, does
// not wait for a GET to time out (2 minutes a GET before).
func syncCancelled(t *testing.T, w *Tier, proxy *s3test.Proxy) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- w.Sync(ctx) }()
	waitFor(t, "the round's chunk GET to be held", func() bool { return proxy.Held() >= 1 })
	cancel()
	// Bounded generously, but below readTimeout.
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled round: %v, want context.Canceled", err)
		}
	case <-time.After(90 * time.Second):
		t.Fatal("a cancelled round did not return while its GET was held")
	}
	waitFor(t, "the held GET to be abandoned", func() bool { return proxy.GaveUp() >= 1 })
	proxy.Release()
}

// TestBucketRewriteCancelled: a rewrite in the bucket (a delete of data
// only the bucket holds) reads the segment with the round's context:
// cancelled while a GET of its chunks is held back, the round returns at
// once and the GET is abandoned. The next round rewrites the segment.
func TestBucketRewriteCancelled(t *testing.T) {
	srv := s3test.Start(t)
	set := newSet(t)
	writeSegment(t, set, 2000, t0, t0.Add(2*time.Hour))
	now := t0.Add(10 * 24 * time.Hour)
	w, proxy := proxiedWriter(t, srv, set, "rc", Options{UploadAfter: 24 * time.Hour, Keep: 48 * time.Hour,
		Now: func() time.Time { return now }})
	mustSync(t, w)
	if got := localIDs(set); len(got) != 0 {
		t.Fatalf("local segments %v, want all evicted", got)
	}
	openAll(t, w)
	ms := []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "i", "ba")}
	if err := w.AddTombstone(ms, []string{"m"}, t0.UnixMilli(), t0.Add(time.Hour).UnixMilli()); err != nil {
		t.Fatal(err)
	}
	proxy.HoldGets("/chunks/000001")
	syncCancelled(t, w, proxy)
	if n := counterValue(w.m.bucketRewrites); n != 0 {
		t.Fatalf("%v rewrites counted by the cancelled round", n)
	}
	mustSync(t, w)
	if n := counterValue(w.m.bucketRewrites); n != 1 {
		t.Fatalf("%v rewrites once the round ran, want 1", n)
	}
}

// TestBucketMergeCancelled: a merge in the bucket (two segments of a day
// that only the bucket holds) reads its inputs with the round's context:
// cancelled while a GET of their chunks is held back, the round returns
// at once and the GET is abandoned. The next round merges them.
func TestBucketMergeCancelled(t *testing.T) {
	srv := s3test.Start(t)
	set := newSet(t)
	writeSegment(t, set, 1000, t0, t0.Add(2*time.Hour))
	writeSegment(t, set, 1000, t0.Add(3*time.Hour), t0.Add(5*time.Hour))
	now := t0.Add(10 * 24 * time.Hour)
	w, proxy := proxiedWriter(t, srv, set, "mc", Options{Ranges: []int64{time.Hour.Milliseconds(), (24 * time.Hour).Milliseconds()},
		UploadAfter: 24 * time.Hour, Keep: 48 * time.Hour, Now: func() time.Time { return now }})
	mustSync(t, w) // uploads both and evicts them; the next round merges
	if got := localIDs(set); len(got) != 0 {
		t.Fatalf("local segments %v, want all evicted", got)
	}
	openAll(t, w)
	proxy.HoldGets("/chunks/000001")
	syncCancelled(t, w, proxy)
	if n := counterValue(w.m.bucketMerges); n != 0 {
		t.Fatalf("%v merges counted by the cancelled round", n)
	}
	mustSync(t, w)
	if n := counterValue(w.m.bucketMerges); n != 1 {
		t.Fatalf("%v merges once the round ran, want 1", n)
	}
}
