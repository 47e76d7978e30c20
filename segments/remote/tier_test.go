package remote

import (
	"context"
	"encoding/hex"
	"errors"
	"maps"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/strata-tsdb/strata/segments"
	"github.com/strata-tsdb/strata/segments/remote/s3test"
)

// TestUploadFinalSegments: a final segment lands in the bucket byte for
// byte, meta.json included; one that is not final stays local only; a
// second round sends nothing again.
func TestUploadFinalSegments(t *testing.T) {
	srv := s3test.Start(t)
	set := newSet(t)
	old := writeSegment(t, set, 20, t0, t0.Add(2*time.Hour))
	young := writeSegment(t, set, 20, t0.Add(47*time.Hour), t0.Add(48*time.Hour))
	now := t0.Add(49 * time.Hour)
	tier := newTier(t, srv, set, "up", Options{UploadAfter: 24 * time.Hour, Now: func() time.Time { return now }})
	if err := tier.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := localFiles(t, set.Dir()+"/"+old.ID)
	got := bucketFiles(t, srv, "up", old.ID)
	// Beside the segment's files, its metric names for readers.
	if names := string(got[namesName]); names != `["m"]` {
		t.Fatalf("names.json holds %q, want [\"m\"]", names)
	}
	delete(got, namesName)
	if !maps.EqualFunc(want, got, func(a, b []byte) bool { return string(a) == string(b) }) {
		t.Fatalf("bucket holds %v, local segment %v", slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)))
	}
	if _, ok := got[metaName]; !ok {
		t.Fatal("no meta.json in the bucket")
	}
	// The bucket reports the MD5 the upload is verified against.
	oi, err := tier.bucket.Stat(context.Background(), objectKey(old.ID, "index"))
	if err != nil || oi.ETag != hex.EncodeToString(md5sum(want["index"])) || oi.Size != int64(len(want["index"])) {
		t.Fatalf("stat index: %+v, %v; want the MD5 of the local file as ETag", oi, err)
	}
	if keys := srv.Keys("up/" + segmentPrefix(young.ID)); len(keys) != 0 {
		t.Fatalf("a segment that is not final was uploaded: %v", keys)
	}
	if st := tier.Status(); !st.BucketUp || st.Queued != 0 || st.BucketSegments != 1 {
		t.Fatalf("status %+v", st)
	}
	sent := counterValue(tier.m.uploadedBytes)
	if err := tier.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if again := counterValue(tier.m.uploadedBytes); again != sent {
		t.Fatalf("second round sent %v more bytes", again-sent)
	}
}

// TestUploadCompletesHalfUpload: what an interrupted upload left (data
// objects without meta.json, one of them truncated) is invisible to a
// reader listing the bucket, and the next upload completes it.
func TestUploadCompletesHalfUpload(t *testing.T) {
	srv := s3test.Start(t)
	set := newSet(t)
	m := writeSegment(t, set, 50, t0, t0.Add(2*time.Hour))
	now := t0.Add(49 * time.Hour)
	tier := newTier(t, srv, set, "half", Options{UploadAfter: time.Hour, Now: func() time.Time { return now }})
	// A half upload: the index whole, the chunks file cut short.
	files := localFiles(t, set.Dir()+"/"+m.ID)
	ctx := context.Background()
	put := func(rel string, b []byte) {
		t.Helper()
		sum := md5sum(b)
		if err := tier.bucket.Put(ctx, objectKey(m.ID, rel), strings.NewReader(string(b)), int64(len(b)), sum); err != nil {
			t.Fatal(err)
		}
	}
	put("index", files["index"])
	put("chunks/000001", files["chunks/000001"][:10])
	cat, err := listCatalog(ctx, tier.bucket)
	if err != nil {
		t.Fatal(err)
	}
	if len(cat) != 0 {
		t.Fatalf("a half-uploaded segment is visible: %v", cat)
	}
	if err := tier.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	got := bucketFiles(t, srv, "half", m.ID)
	delete(got, namesName)
	if !maps.EqualFunc(files, got, func(a, b []byte) bool { return string(a) == string(b) }) {
		t.Fatal("the bucket does not hold the segment after the upload completed")
	}
	if cat, err = listCatalog(ctx, tier.bucket); err != nil || len(cat) != 1 {
		t.Fatalf("catalog %v, %v", cat, err)
	}
}

// TestEvictedSegmentsReadFromBucket: segments verified in the bucket and
// past Keep leave the local disk; the bucket's copies read back the same
// samples, through a cache that stays within its bound once released.
func TestEvictedSegmentsReadFromBucket(t *testing.T) {
	srv := s3test.Start(t)
	set := newSet(t)
	var metas []segments.Meta
	for d := range 3 {
		from := t0.Add(time.Duration(d) * 24 * time.Hour)
		metas = append(metas, writeSegment(t, set, 30, from, from.Add(6*time.Hour)))
	}
	young := writeSegment(t, set, 30, t0.Add(10*24*time.Hour), t0.Add(10*24*time.Hour+time.Hour))
	want, release := acquireAll(t, set)
	release()
	now := t0.Add(10*24*time.Hour + 2*time.Hour)
	tier := newTier(t, srv, set, "evict", Options{
		UploadAfter: 24 * time.Hour, Keep: 48 * time.Hour, CacheMaxBytes: 1, Now: func() time.Time { return now },
	})
	if err := tier.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := localIDs(set); !slices.Equal(got, []string{young.ID}) {
		t.Fatalf("local segments %v, want only %s", got, young.ID)
	}
	local, releaseLocal := set.Acquire(math.MinInt64, math.MaxInt64)
	var localMetas []segments.Meta
	for _, s := range local {
		localMetas = append(localMetas, s.Meta())
	}
	remoteSegs, _, releaseRemote, err := tier.Acquire(context.Background(), math.MinInt64, math.MaxInt64, localMetas, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(remoteSegs) != len(metas) {
		t.Fatalf("%d segments from the bucket, want %d", len(remoteSegs), len(metas))
	}
	all := append(local, remoteSegs...)
	slices.SortFunc(all, func(a, b *segments.Segment) int { return segments.WriteOrder(a.Meta(), b.Meta()) })
	got := samples(t, all)
	releaseLocal()
	releaseRemote()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("read back %d series, want %d (or samples differ)", len(got), len(want))
	}
	if b := tier.cache.bytes(); b > 1 {
		t.Fatalf("cache holds %d bytes after release, bound 1", b)
	}
	// Read again, concurrently: each fetch happens once per acquire burst,
	// and every reader gets the same data.
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			segs, _, rel, err := tier.Acquire(context.Background(), math.MinInt64, math.MaxInt64, localMetas, nil)
			if err == nil {
				if len(segs) != len(metas) {
					err = errors.New("wrong number of segments")
				}
				rel()
			}
			errs <- err
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// TestBucketDownAndBack: with the bucket down a round fails, the final
// segments wait (counted), nothing is deleted locally, and reads of
// bucket-only segments fail naming the bucket; back up, the next round
// uploads and evicts.
func TestBucketDownAndBack(t *testing.T) {
	srv := s3test.Start(t)
	set := newSet(t)
	first := writeSegment(t, set, 10, t0, t0.Add(time.Hour))
	now := t0.Add(5 * 24 * time.Hour)
	tier := newTier(t, srv, set, "down", Options{UploadAfter: time.Hour, Keep: 24 * time.Hour, Now: func() time.Time { return now }})
	ctx := context.Background()
	if err := tier.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	second := writeSegment(t, set, 10, t0.Add(24*time.Hour), t0.Add(25*time.Hour))
	srv.Stop()
	err := tier.Sync(ctx)
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), tier.bucket.Name()) {
		t.Fatalf("round with the bucket down: %v", err)
	}
	if st := tier.Status(); st.BucketUp || st.Queued != 1 || st.LastError == "" {
		t.Fatalf("status %+v", st)
	}
	if got := localIDs(set); !slices.Equal(got, []string{second.ID}) {
		t.Fatalf("local segments %v, want %s (not uploaded, so kept)", got, second.ID)
	}
	_, _, _, err = tier.Acquire(ctx, math.MinInt64, math.MaxInt64, nil, nil)
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), first.ID) {
		t.Fatalf("read of a bucket-only segment with the bucket down: %v", err)
	}
	srv.Restart()
	if err := tier.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if st := tier.Status(); !st.BucketUp || st.Queued != 0 || st.BucketSegments != 2 {
		t.Fatalf("status %+v", st)
	}
	if got := localIDs(set); len(got) != 0 {
		t.Fatalf("local segments %v after the bucket came back", got)
	}
	segs, _, release, err := tier.Acquire(ctx, math.MinInt64, math.MaxInt64, nil, nil)
	if err != nil || len(segs) != 2 {
		t.Fatalf("%d segments, %v", len(segs), err)
	}
	release()
}

// TestReplacedAndExpiredLeaveBucket: a segment replaced locally by a
// compaction output is deleted from the bucket once the output is there
// (meta.json first), and a segment past retention is deleted too.
func TestReplacedAndExpiredLeaveBucket(t *testing.T) {
	srv := s3test.Start(t)
	set := newSet(t)
	a := writeSegment(t, set, 5, t0, t0.Add(time.Hour))
	b := writeSegment(t, set, 5, t0.Add(2*time.Hour), t0.Add(3*time.Hour))
	now := t0.Add(10 * 24 * time.Hour)
	minTime := int64(math.MinInt64)
	tier := newTier(t, srv, set, "gc", Options{UploadAfter: time.Hour, Now: func() time.Time { return now },
		MinTime: func(int64) int64 { return minTime }})
	ctx := context.Background()
	if err := tier.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	// Compact a and b into one segment.
	c, err := segments.NewCompactor(nil, set, segments.CompactOptions{Ranges: []int64{(24 * time.Hour).Milliseconds()}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := c.Compact(ctx); err != nil || n != 1 {
		t.Fatalf("compactions %d, %v", n, err)
	}
	merged := localIDs(set)[0]
	if err := tier.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{a.ID, b.ID} {
		if keys := srv.Keys("gc/" + segmentPrefix(id)); len(keys) != 0 {
			t.Fatalf("replaced segment %s still in the bucket: %v", id, keys)
		}
	}
	if keys := srv.Keys("gc/" + segmentPrefix(merged)); len(keys) == 0 {
		t.Fatal("compacted segment not uploaded")
	}
	minTime = t0.Add(24 * time.Hour).UnixMilli()
	if err := tier.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if keys := srv.Keys("gc/"); len(keys) != 0 {
		t.Fatalf("bucket holds %v past retention", keys)
	}
}

// TestSweepAbandonedUploads: objects without meta.json of a segment the
// set no longer holds (a crash midway, then a compaction replaced it) are
// deleted once the newest is older than AbandonedAfter; a half upload of a
// segment still on disk is completed instead (or, not final, left for
// when it is), a whole segment stays, a
// reader deletes nothing, and with the bucket down and back the sweep
// happens once it answers.
func TestSweepAbandonedUploads(t *testing.T) {
	srv := s3test.Start(t)
	set := newSet(t)
	pending := writeSegment(t, set, 10, t0, t0.Add(2*time.Hour))
	young := writeSegment(t, set, 10, t0.Add(47*time.Hour), t0.Add(48*time.Hour)) // not final
	files := localFiles(t, set.Dir()+"/"+pending.ID)
	ctx := context.Background()
	now := t0.Add(49 * time.Hour)
	opts := Options{UploadAfter: 24 * time.Hour, Now: func() time.Time { return now }, AbandonedAfter: 2 * time.Second}
	reader := newTier(t, srv, newSet(t), "sw", Options{Reader: true, AbandonedAfter: time.Millisecond})
	tier := newTier(t, srv, set, "sw", opts)
	put := func(id, rel string, b []byte) {
		t.Helper()
		if err := tier.bucket.Put(ctx, objectKey(id, rel), strings.NewReader(string(b)), int64(len(b)), md5sum(b)); err != nil {
			t.Fatal(err)
		}
	}
	// A half upload of a segment gone from the disk, and one of the
	// pending segment (its chunks file missing).
	const gone = "01GONE0000000000000000000"
	put(gone, "index", files["index"])
	put(gone, "chunks/000001", files["chunks/000001"])
	put(pending.ID, "index", files["index"])
	put(young.ID, "index", files["index"]) // a stand-in: only its presence counts
	if err := reader.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	// Young: kept by the first round, which uploads the pending segment.
	if err := tier.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if keys := srv.Keys("sw/" + segmentPrefix(gone)); len(keys) != 2 {
		t.Fatalf("a young half upload was touched: %v", keys)
	}
	time.Sleep(2500 * time.Millisecond) // past AbandonedAfter by the bucket's clock
	if err := reader.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if keys := srv.Keys("sw/" + segmentPrefix(gone)); len(keys) != 2 {
		t.Fatalf("a reader deleted objects: %v", keys)
	}
	srv.Stop()
	if err := tier.Sync(ctx); err == nil {
		t.Fatal("a round with the bucket down succeeded")
	}
	srv.Restart()
	if err := tier.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if keys := srv.Keys("sw/" + segmentPrefix(gone)); len(keys) != 0 {
		t.Fatalf("the abandoned half upload is still there: %v", keys)
	}
	if keys := srv.Keys("sw/" + segmentPrefix(young.ID)); len(keys) != 1 {
		t.Fatalf("the half upload of a segment still on disk was deleted: %v", keys)
	}
	got := bucketFiles(t, srv, "sw", pending.ID)
	delete(got, namesName)
	if !maps.EqualFunc(files, got, func(a, b []byte) bool { return string(a) == string(b) }) {
		t.Fatal("the pending segment's upload was not completed whole")
	}
	if n := counterValue(tier.m.abandonedDeletes); n != 1 {
		t.Fatalf("strata_object_abandoned_uploads_deleted_total = %v, want 1", n)
	}
}
