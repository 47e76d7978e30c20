package remote

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/strata-tsdb/strata/segments"
	"github.com/strata-tsdb/strata/segments/remote/s3test"
	"github.com/strata-tsdb/strata/segments/segmentstest"
)

// visible reads every sample of what tier.Acquire returns for a reader
// (no local segments), its tombstones applied, by series.
func visible(t *testing.T, tier *Tier) map[string][][2]float64 {
	t.Helper()
	out, err := readVisible(tier)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// acquirer is what a Tier and a Group share: Acquire.
type acquirer interface {
	Acquire(ctx context.Context, mint, maxt int64, local []segments.Meta, want func(segments.Meta) bool) ([]*segments.Segment, segments.TombstoneView, func(), error)
}

// readVisible reads every sample a shows, its tombstones applied.
func readVisible(a acquirer) (map[string][][2]float64, error) {
	segs, ts, release, err := a.Acquire(context.Background(), math.MinInt64, math.MaxInt64, nil, nil)
	if err != nil {
		return nil, err
	}
	defer release()
	return visibleSamples(segs, ts)
}

// readWhile syncs and reads r until stop is closed, handing each read to
// check; the first error ends it and is sent on the channel it returns,
// which is closed when the reader ends.
func readWhile(r *Tier, stop <-chan struct{}, check func(map[string][][2]float64) error) <-chan error {
	errs := make(chan error, 1)
	go func() {
		defer close(errs)
		for {
			select {
			case <-stop:
				return
			default:
			}
			err := r.Sync(context.Background())
			var got map[string][][2]float64
			if err == nil {
				got, err = readVisible(r)
			}
			if err == nil {
				err = check(got)
			}
			if err != nil {
				errs <- err
				return
			}
		}
	}()
	return errs
}

func visibleSamples(segs []*segments.Segment, ts segments.TombstoneView) (map[string][][2]float64, error) {
	// Of equal timestamps, the sample of the segment later in write
	// order, as queries merge them.
	segs = slices.Clone(segs)
	slices.SortFunc(segs, func(a, b *segments.Segment) int { return segments.WriteOrder(a.Meta(), b.Meta()) })
	byTs := map[string]map[int64]float64{}
	for _, s := range segs {
		it, err := s.Select()
		if err != nil {
			return nil, err
		}
		for it.Next() {
			lset := it.Labels()
			for _, cm := range it.Chunks() {
				c, err := s.ReadChunk(cm.Ref)
				if err != nil {
					return nil, err
				}
				ci := segments.NewDeletedIterator(c.Iterator(nil), segments.DeletedRanges(ts[s.Meta().ID], lset))
				for ci.Next() != chunkenc.ValNone {
					at, v := ci.At()
					if byTs[lset.String()] == nil {
						byTs[lset.String()] = map[int64]float64{}
					}
					byTs[lset.String()][at] = v
				}
			}
		}
		if err := it.Err(); err != nil {
			return nil, err
		}
	}
	out := map[string][][2]float64{}
	for k, m := range byTs {
		for at, v := range m {
			out[k] = append(out[k], [2]float64{float64(at), v})
		}
		slices.SortFunc(out[k], func(a, b [2]float64) int { return int(a[0] - b[0]) })
	}
	return out, nil
}

// without returns samples less those of series lset in [mint, maxt].
func without(samples map[string][][2]float64, lset string, mint, maxt int64) map[string][][2]float64 {
	out := map[string][][2]float64{}
	for k, v := range samples {
		for _, s := range v {
			if k == lset && int64(s[0]) >= mint && int64(s[0]) <= maxt {
				continue
			}
			out[k] = append(out[k], s)
		}
	}
	return out
}

type invalidation struct {
	names      []string
	mint, maxt int64
}

type invalidations struct {
	mtx sync.Mutex
	got []invalidation
}

func (i *invalidations) record(names []string, mint, maxt int64) {
	i.mtx.Lock()
	i.got = append(i.got, invalidation{slices.Clone(names), mint, maxt})
	i.mtx.Unlock()
}

func (i *invalidations) take() []invalidation {
	i.mtx.Lock()
	defer i.mtx.Unlock()
	out := i.got
	i.got = nil
	return out
}

func mustSync(t *testing.T, tier *Tier) {
	t.Helper()
	if err := tier.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestTombstonesReachReaders: a delete on the writer becomes one verified
// tombstone object naming the segments it hides data of, in the bucket
// and still on disk; a reader lists it, hides the samples, invalidates
// the metric's answers over the days concerned (once), hides them in the
// segment uploaded after the delete too, and keeps hiding them after a
// restart, before and after it lists the bucket again. The writer's
// restart does not upload it again.
func TestTombstonesReachReaders(t *testing.T) {
	srv := s3test.Start(t)
	set := newSet(t)
	a := writeSegment(t, set, 5, t0, t0.Add(2*time.Hour))
	b := writeSegment(t, set, 5, t0.Add(30*time.Hour), t0.Add(32*time.Hour))
	now := t0.Add(31 * time.Hour) // a is final, b is not
	wdir := t.TempDir()
	wopts := Options{UploadAfter: 24 * time.Hour, Now: func() time.Time { return now }, Dir: wdir}
	w := newTier(t, srv, set, "tw", wopts)
	mustSync(t, w)
	all, release := acquireAll(t, set)
	release()

	rdir := t.TempDir()
	var inv invalidations
	newReader := func() *Tier {
		r := newTier(t, srv, newSet(t), "tw", Options{Reader: true, Dir: rdir})
		r.OnNewSegments(inv.record)
		return r
	}
	r := newReader()
	mustSync(t, r)
	inv.take()
	aOnly := map[string][][2]float64{}
	for k, v := range all {
		for _, s := range v {
			if int64(s[0]) <= a.MaxTime {
				aOnly[k] = append(aOnly[k], s)
			}
		}
	}
	if got := visible(t, r); !reflect.DeepEqual(got, aOnly) {
		t.Fatalf("the reader reads %d series before the delete, want %d", len(got), len(aOnly))
	}

	series := `{__name__="m", i="aa"}`
	ms := []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "i", "aa")}
	mint, maxt := t0.Add(time.Hour).UnixMilli(), t0.Add(31*time.Hour).UnixMilli()
	if _, err := set.AddTombstone(ms, mint, maxt); err != nil {
		t.Fatal(err)
	}
	if err := w.AddTombstone(ms, []string{"m"}, mint, maxt); err != nil {
		t.Fatal(err)
	}
	mustSync(t, r)
	if got := visible(t, r); !reflect.DeepEqual(got, aOnly) {
		t.Fatal("the reader hides samples before the tombstone is uploaded")
	}
	mustSync(t, w)
	keys := srv.Keys("tw/" + tombstonesPrefix)
	if len(keys) != 1 {
		t.Fatalf("tombstone objects %v, want one", keys)
	}
	var obj tombObject
	if err := json.Unmarshal(srv.Get(t, keys[0]), &obj); err != nil {
		t.Fatal(err)
	}
	if want := []string{a.ID, b.ID}; !slices.Equal(obj.Segments, want) || obj.MinTime != mint || obj.MaxTime != maxt ||
		!slices.Equal(obj.Names, []string{"m"}) || len(obj.Matchers) != 1 {
		t.Fatalf("tombstone object %+v, want segments %v and the delete's range", obj, want)
	}
	mustSync(t, r)
	if got, want := visible(t, r), without(aOnly, series, mint, maxt); !reflect.DeepEqual(got, want) {
		t.Fatalf("the reader does not hide the deleted samples:\n%v\nwant\n%v", got[series], want[series])
	}
	if got := inv.take(); !reflect.DeepEqual(got, []invalidation{{[]string{"m"}, mint, a.MaxTime}}) {
		t.Fatalf("invalidations %+v, want the metric over the delete's range within segment %s", got, a.ID)
	}

	// b, on disk at the delete, is uploaded later: hidden at once.
	now = t0.Add(60 * time.Hour)
	mustSync(t, w)
	mustSync(t, r)
	want := without(all, series, mint, maxt)
	if got := visible(t, r); !reflect.DeepEqual(got, want) {
		t.Fatalf("the reader does not hide the deleted samples of the later segment:\n%v\nwant\n%v", got[series], want[series])
	}
	inv.take()

	// A reader restarted hides them before it lists and does not
	// invalidate again.
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	r = newReader()
	if got := visible(t, r); !reflect.DeepEqual(got, want) {
		t.Fatal("a restarted reader shows deleted samples before it lists the bucket")
	}
	mustSync(t, r)
	if got := visible(t, r); !reflect.DeepEqual(got, want) {
		t.Fatal("a restarted reader shows deleted samples")
	}
	if got := inv.take(); len(got) != 0 {
		t.Fatalf("a restarted reader invalidated %+v again", got)
	}

	// A restarted writer has nothing to send; one that lost its state
	// adopts the bucket's tombstone.
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	w = newTier(t, srv, set, "tw", wopts)
	mustSync(t, w)
	if n := counterValue(w.m.tombstonesUploaded); n != 0 {
		t.Fatalf("a restarted writer uploaded %v tombstones again", n)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	lost := wopts
	lost.Dir = t.TempDir()
	w = newTier(t, srv, set, "tw", lost)
	mustSync(t, w)
	if ts := w.tombstonesOf([]string{a.ID}); len(ts[a.ID]) != 1 {
		t.Fatalf("a writer without its state knows tombstones %v of %s, want the bucket's", ts, a.ID)
	}
	if got := srv.Keys("tw/" + tombstonesPrefix); !slices.Equal(got, keys) {
		t.Fatalf("tombstones in the bucket %v, want %v", got, keys)
	}
}

// recordingBucket is the real bucket, with the keys of the puts and
// deletes it carries recorded in order.
type recordingBucket struct {
	Bucket
	mtx sync.Mutex
	ops []string
}

func (b *recordingBucket) Put(ctx context.Context, key string, r io.Reader, size int64, md5 []byte) error {
	err := b.Bucket.Put(ctx, key, r, size, md5)
	b.record("put " + key)
	return err
}

func (b *recordingBucket) Delete(ctx context.Context, key string) error {
	err := b.Bucket.Delete(ctx, key)
	b.record("delete " + key)
	return err
}

func (b *recordingBucket) record(op string) {
	b.mtx.Lock()
	b.ops = append(b.ops, op)
	b.mtx.Unlock()
}

func (b *recordingBucket) index(op string) int {
	b.mtx.Lock()
	defer b.mtx.Unlock()
	return slices.Index(b.ops, op)
}

// TestBucketRewriteAppliesTombstones: a delete of data only the bucket
// holds is applied there: the segment is rewritten without the deleted
// samples, the rewrite uploaded (meta.json last) before the original's
// meta.json is deleted, and the tombstone deleted after that. A reader
// listing and reading all the while, concurrently, reads exactly the data
// less the deleted samples every time: never a gap, a duplicate or a
// deleted sample. A segment whose data is all deleted is rewritten as an
// empty segment that keeps its sources, and retention takes a rewrite and
// its tombstones like any segment. The originals leave the bucket
// DeleteDelay after, once the reader has listed the rewrites (with no delay a reader that
// listed them before may fail reading them: TestBucketDeleteDelay).
func TestBucketRewriteAppliesTombstones(t *testing.T) {
	srv := s3test.Start(t)
	srv.SetEnv(t)
	set := newSet(t)
	a := writeSegment(t, set, 5, t0, t0.Add(6*time.Hour))
	gone := writeSegment(t, set, 1, t0.Add(24*time.Hour), t0.Add(25*time.Hour))
	all, release := acquireAll(t, set)
	release()
	now := t0.Add(10 * 24 * time.Hour)
	minTime := int64(math.MinInt64)
	s3, err := OpenS3(srv.URL("rw"))
	if err != nil {
		t.Fatal(err)
	}
	rec := &recordingBucket{Bucket: s3}
	const delay = 10 * time.Minute // rounds run in this goroutine: now moves between them
	w, err := New(nil, rec, set, Options{Dir: t.TempDir(), UploadAfter: 24 * time.Hour, Keep: 48 * time.Hour,
		Now: func() time.Time { return now }, MinTime: func(int64) int64 { return minTime }, DeleteDelay: delay}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Close() })
	mustSync(t, w)
	if got := localIDs(set); len(got) != 0 {
		t.Fatalf("local segments %v, want all evicted", got)
	}

	r := newTier(t, srv, newSet(t), "rw", Options{Reader: true})
	mustSync(t, r)
	if got := visible(t, r); !reflect.DeepEqual(got, all) {
		t.Fatal("the reader does not read what was written")
	}
	series := `{__name__="m", i="ba"}`
	ms := []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "i", "ba")}
	mint, maxt := t0.Add(time.Hour).UnixMilli(), t0.Add(2*time.Hour).UnixMilli()
	want := without(all, series, mint, maxt)
	// i="aa" is the only series of gone: all its data is deleted.
	goneSeries := `{__name__="m", i="aa"}`
	goneMs := []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "i", "aa")}
	want = without(want, goneSeries, gone.MinTime, gone.MaxTime)

	// The reader reads concurrently with everything that follows; once
	// it has seen the delete, every read must be want.
	stop := make(chan struct{})
	var (
		seenMtx sync.Mutex
		seen    bool
		reads   int
	)
	readerErr := readWhile(r, stop, func(got map[string][][2]float64) error {
		seenMtx.Lock()
		defer seenMtx.Unlock()
		reads++
		if reflect.DeepEqual(got, want) {
			seen = true
		} else if seen || !reflect.DeepEqual(got, without(all, series, mint, maxt)) && !reflect.DeepEqual(got, all) {
			return fmt.Errorf("read %d: the reader reads %d series, not the data before or after the deletes", reads, len(got))
		}
		return nil
	})

	if err := w.AddTombstone(ms, []string{"m"}, mint, maxt); err != nil {
		t.Fatal(err)
	}
	if err := w.AddTombstone(goneMs, []string{"m"}, gone.MinTime, gone.MaxTime); err != nil {
		t.Fatal(err)
	}
	// The writer's own reads hide it at once.
	if got := visible(t, w); !reflect.DeepEqual(got, want) {
		t.Fatal("the writer's reads of the bucket do not hide the deleted samples")
	}
	mustSync(t, w)
	waitFor(t, "the reader reads the data less the deleted samples", func() bool {
		seenMtx.Lock()
		defer seenMtx.Unlock()
		return seen
	})
	rewritten := func(metas []segments.Meta) bool {
		return slices.ContainsFunc(metas, func(m segments.Meta) bool { return m.ID != a.ID && m.ID != gone.ID })
	}
	if !rewritten(w.Metas()) {
		t.Fatal("the writer's round did not rewrite the segment")
	}
	waitFor(t, "the reader lists the rewrite", func() bool { return rewritten(r.Metas()) })
	now = now.Add(delay)
	mustSync(t, w) // the originals go
	seenMtx.Lock()
	n := reads
	seenMtx.Unlock()
	waitFor(t, "the reader reads a few more times", func() bool {
		seenMtx.Lock()
		defer seenMtx.Unlock()
		return reads > n+3
	})
	close(stop)
	if err := <-readerErr; err != nil {
		t.Fatal(err)
	}

	// The catalog holds the rewrite of a, and the rewrite of gone: an
	// empty segment over its time that keeps its sources (so that a
	// rollup built from them finds its raw data complete).
	cat := w.Metas()
	slices.SortFunc(cat, func(x, y segments.Meta) int { return cmp.Compare(x.MinTime, y.MinTime) })
	if len(cat) != 2 || cat[0].ID == a.ID || cat[0].Compaction.Level != a.Compaction.Level+1 ||
		!slices.Equal(cat[0].Compaction.Sources, a.Compaction.Sources) || cat[0].NumSamples != a.NumSamples-61 {
		t.Fatalf("bucket catalog %+v, want a rewrite of %s with 61 samples fewer, and an empty rewrite of %s", cat, a.ID, gone.ID)
	}
	if e := cat[1]; e.ID == gone.ID || e.NumSeries != 0 || e.Compaction.Level != gone.Compaction.Level+1 ||
		!slices.Equal(e.Compaction.Sources, gone.Compaction.Sources) || e.MinTime != gone.MinTime || e.MaxTime != gone.MaxTime {
		t.Fatalf("bucket catalog %+v, want an empty rewrite of %s over its time, with its sources", cat, gone.ID)
	}
	rewrite, empty := cat[0].ID, cat[1].ID
	if got := srv.Keys("rw/" + segmentsPrefix); slices.ContainsFunc(got, func(k string) bool {
		return !strings.HasPrefix(k, "rw/"+segmentPrefix(rewrite)) && !strings.HasPrefix(k, "rw/"+segmentPrefix(empty))
	}) {
		t.Fatalf("the bucket holds %v, want only segments %s and %s", got, rewrite, empty)
	}
	if got := srv.Keys("rw/" + tombstonesPrefix); len(got) != 0 {
		t.Fatalf("tombstones %v still in the bucket once their segments left", got)
	}
	// The order that keeps readers whole: the rewrite is all there before
	// the original goes, and the tombstone goes last.
	putRewrite, delOrig := rec.index("put "+metaKey(rewrite)), rec.index("delete "+metaKey(a.ID))
	var delTomb int
	for _, op := range rec.ops {
		if strings.HasPrefix(op, "delete "+tombstonesPrefix) {
			delTomb = max(delTomb, rec.index(op))
		}
	}
	if putRewrite < 0 || delOrig < putRewrite || delTomb < delOrig {
		t.Fatalf("put of the rewrite's meta.json at %d, delete of the original's at %d, of the tombstones at %d", putRewrite, delOrig, delTomb)
	}
	if got := visible(t, r); !reflect.DeepEqual(got, want) {
		t.Fatal("the reader's last read differs")
	}
	if n := counterValue(w.m.bucketRewrites); n != 2 {
		t.Fatalf("%v bucket rewrites counted, want 2", n)
	}
	entries, err := os.ReadDir(filepath.Join(w.opts.Dir, rewriteDir))
	if err != nil || len(entries) != 0 {
		t.Fatalf("rewrite directory holds %d entries (%v)", len(entries), err)
	}

	// Retention: the rewrites expire like any segment.
	minTime = t0.Add(26 * time.Hour).UnixMilli()
	mustSync(t, w)
	if got := srv.Keys("rw/"); slices.ContainsFunc(got, func(k string) bool { return !strings.HasSuffix(k, writerInfoKey) }) {
		t.Fatalf("the bucket holds %v past retention", got)
	}
}

// writeSamples writes a raw segment holding, for each value of label i,
// a series of metric m with a sample at each of its timestamps, valued v.
func writeSamples(t *testing.T, set *segments.Set, series map[string][]time.Time, v float64) segments.Meta {
	t.Helper()
	var data []segments.SeriesData
	for i, tss := range series {
		c := chunkenc.NewXORChunk()
		app, _ := c.Appender()
		for _, ts := range tss {
			app.Append(0, ts.UnixMilli(), v)
		}
		data = append(data, segments.SeriesData{Labels: labels.FromStrings("__name__", "m", "i", i),
			Chunks: []segments.ChunkMeta{{Kind: segments.KindRaw, Chunk: c}}})
	}
	return segmentstest.Publish(t, set, segments.Meta{}, data)
}

func minutes(from, to time.Time, offset time.Duration) []time.Time {
	var out []time.Time
	for ts := from.Add(offset); ts.Before(to); ts = ts.Add(time.Minute) {
		out = append(out, ts)
	}
	return out
}

// TestReplicaDedupPerSeries: of an HA pair, replica a (preferred) has a
// gap of an hour in one series inside its segment, misses a second
// series for all of it, and has a 3-minute gap (under the threshold) in a
// third; replica b has every series whole. A reader of both answers each
// series from a where a has samples, from b in a's hour-long gap and for
// the series only b holds, and not from b in the short gap; a reader that
// does not deduplicate answers both copies.
func TestReplicaDedupPerSeries(t *testing.T) {
	srv := s3test.Start(t)
	from, to := t0, t0.Add(6*time.Hour)
	gapFrom, gapTo := t0.Add(2*time.Hour), t0.Add(3*time.Hour)
	short := t0.Add(4 * time.Hour)
	full := minutes(from, to, 0)
	var gappy, shortGap []time.Time
	for _, ts := range full {
		if ts.Before(gapFrom) || !ts.Before(gapTo) {
			gappy = append(gappy, ts)
		}
		if ts.Before(short) || !ts.Before(short.Add(3*time.Minute)) {
			shortGap = append(shortGap, ts)
		}
	}
	now := t0.Add(10 * 24 * time.Hour)
	write := func(prefix, replica string, series map[string][]time.Time, v float64) {
		set := newSet(t)
		writeSamples(t, set, series, v)
		w := newTier(t, srv, set, prefix, Options{UploadAfter: time.Hour, Now: func() time.Time { return now },
			ExternalLabels: map[string]string{"replica": replica, "cluster": "x"}})
		mustSync(t, w)
	}
	write("dd-a", "a", map[string][]time.Time{"gap": gappy, "whole": full, "short": shortGap}, 1)
	b := minutes(from, to, 30*time.Second)
	write("dd-b", "b", map[string][]time.Time{"gap": b, "whole": b, "short": b, "only-b": b}, 2)

	reader := func(replicaLabel string) *Group {
		var tiers []*Tier
		for _, p := range []string{"dd-a", "dd-b"} {
			r := newTier(t, srv, newSet(t), p, Options{Reader: true})
			mustSync(t, r)
			tiers = append(tiers, r)
		}
		return NewGroup(tiers, replicaLabel)
	}
	read := func(g *Group) map[string][][2]float64 {
		out, err := readVisible(g)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	samplesOf := func(tss []time.Time, v float64) [][2]float64 {
		var out [][2]float64
		for _, ts := range tss {
			out = append(out, [2]float64{float64(ts.UnixMilli()), v})
		}
		return out
	}
	var fill []time.Time // b's samples in a's hour-long gap
	for _, ts := range b {
		// Not those within a minute (a's interval) of a's samples.
		if ts.After(gapFrom) && ts.Before(gapTo.Add(-time.Minute)) {
			fill = append(fill, ts)
		}
	}
	gapWant := append(samplesOf(gappy, 1), samplesOf(fill, 2)...)
	slices.SortFunc(gapWant, func(x, y [2]float64) int { return int(x[0] - y[0]) })
	want := map[string][][2]float64{
		`{__name__="m", i="gap"}`:    gapWant,
		`{__name__="m", i="whole"}`:  samplesOf(full, 1),
		`{__name__="m", i="short"}`:  samplesOf(shortGap, 1),
		`{__name__="m", i="only-b"}`: samplesOf(b, 2),
	}
	check := func(got map[string][][2]float64) error {
		for k, w := range want {
			if !reflect.DeepEqual(got[k], w) {
				return fmt.Errorf("%s: %d samples, want %d", k, len(got[k]), len(w))
			}
		}
		if len(got) != len(want) {
			return fmt.Errorf("%d series, want %d", len(got), len(want))
		}
		return nil
	}
	// Concurrent queries, the first ones computing what b's segment
	// hides, the later ones taking it from the memo.
	dedup := reader("replica")
	errs := make(chan error, 8)
	for range 8 {
		go func() {
			got, err := readVisible(dedup)
			if err == nil {
				err = check(got)
			}
			errs <- err
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if err := check(read(dedup)); err != nil {
		t.Fatal(err)
	}
	if got := read(reader("")); len(got[`{__name__="m", i="whole"}`]) != 2*len(full) {
		t.Fatalf("without deduplication: %d samples of a whole series, want both copies (%d)", len(got[`{__name__="m", i="whole"}`]), 2*len(full))
	}
}

// TestBucketMergesSmallSegments: late samples of a day whose segment left
// the disk are uploaded as segments of their own; the writer merges the
// day's bucket-only segments into one (of equal timestamps, the later
// write's sample kept; a delete of one input applied), uploads it before
// the inputs leave (DeleteDelay after, once the reader has listed the
// merge), and leaves alone a day a local segment touches. A reader
// listing and reading all the while reads exactly the data every time.
func TestBucketMergesSmallSegments(t *testing.T) {
	srv := s3test.Start(t)
	srv.SetEnv(t)
	set := newSet(t)
	day := 24 * time.Hour
	first := writeSamples(t, set, map[string][]time.Time{"x": minutes(t0, t0.Add(6*time.Hour), 0), "y": minutes(t0, t0.Add(6*time.Hour), 0)}, 1)
	late := writeSamples(t, set, map[string][]time.Time{"x": minutes(t0.Add(time.Hour), t0.Add(2*time.Hour), 0)}, 2) // rewrites x's 1h..2h
	later := writeSamples(t, set, map[string][]time.Time{"z": minutes(t0.Add(3*time.Hour), t0.Add(4*time.Hour), 0)}, 3)
	other := writeSamples(t, set, map[string][]time.Time{"x": minutes(t0.Add(day), t0.Add(day+time.Hour), 0)}, 1)
	other2 := writeSamples(t, set, map[string][]time.Time{"y": minutes(t0.Add(day), t0.Add(day+time.Hour), 0)}, 1)
	now := t0.Add(10 * day)
	dayMs := day.Milliseconds()
	s3, err := OpenS3(srv.URL("mg"))
	if err != nil {
		t.Fatal(err)
	}
	rec := &recordingBucket{Bucket: s3}
	const delay = 10 * time.Minute // rounds run in this goroutine: now moves between them
	// Day 1 keeps a local copy of other2 (keep by size: only the oldest go).
	w, err := New(nil, rec, set, Options{Dir: t.TempDir(), Ranges: []int64{time.Hour.Milliseconds(), dayMs}, UploadAfter: time.Hour,
		Interval: time.Hour, Now: func() time.Time { return now }, DeleteDelay: delay}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Close() })
	all, release := acquireAll(t, set)
	release()
	// Of x in 1h..2h the later write's samples (2) are kept.
	want := map[string][][2]float64{}
	for k, v := range all {
		byTs := map[float64]float64{}
		for _, s := range v {
			byTs[s[0]] = max(byTs[s[0]], s[1]) // the later writes have the greater values
		}
		for ts, val := range byTs {
			want[k] = append(want[k], [2]float64{ts, val})
		}
		slices.SortFunc(want[k], func(a, b [2]float64) int { return int(a[0] - b[0]) })
	}
	// Upload everything, then evict day 0 only: day 1 keeps its local
	// copies, so it is not merged.
	w.opts.Keep = 0
	mustSync(t, w)
	w.opts.Exclusive(func() {
		for _, m := range []segments.Meta{first, late, later} {
			if !set.Evict(m.ID) {
				t.Errorf("segment %s not evicted", m.ID)
			}
		}
	})
	// A delete of some of z, of data only the bucket holds now: the
	// reader may list before the tombstone is uploaded, and then reads
	// it all; afterwards, never.
	zMs := []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "i", "z")}
	if err := w.AddTombstone(zMs, []string{"m"}, t0.Add(3*time.Hour).UnixMilli(), t0.Add(3*time.Hour+30*time.Minute).UnixMilli()); err != nil {
		t.Fatal(err)
	}
	before := want
	want = without(want, `{__name__="m", i="z"}`, t0.Add(3*time.Hour).UnixMilli(), t0.Add(3*time.Hour+30*time.Minute).UnixMilli())
	r := newTier(t, srv, newSet(t), "mg", Options{Reader: true})
	check := func(got, want map[string][][2]float64) error {
		for _, k := range []string{`{__name__="m", i="x"}`, `{__name__="m", i="y"}`, `{__name__="m", i="z"}`} {
			var g, wt [][2]float64
			for _, s := range got[k] {
				if int64(s[0]) < t0.Add(day).UnixMilli() {
					g = append(g, s)
				}
			}
			for _, s := range want[k] {
				if int64(s[0]) < t0.Add(day).UnixMilli() {
					wt = append(wt, s)
				}
			}
			if !reflect.DeepEqual(g, wt) {
				return fmt.Errorf("%s on day 0: %d samples, want %d", k, len(g), len(wt))
			}
		}
		return nil
	}
	stop := make(chan struct{})
	var seen atomic.Bool
	readerErr := readWhile(r, stop, func(got map[string][][2]float64) error {
		err := check(got, want)
		if err == nil {
			seen.Store(true)
		} else if !seen.Load() {
			err = check(got, before)
		}
		return err
	})
	mustSync(t, w)
	mustSync(t, w)
	for deadline := time.Now().Add(60 * time.Second); !seen.Load(); time.Sleep(20 * time.Millisecond) {
		select {
		case err := <-readerErr:
			t.Fatalf("the reader: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("timed out waiting for the reader to read the delete")
		}
	}
	// The merge and its 3 inputs, day 1's 2: the inputs wait for the delay.
	waitFor(t, "the reader lists the merged segment", func() bool { return len(r.Metas()) == 6 })
	now = now.Add(delay)
	mustSync(t, w)
	waitFor(t, "the reader lists the merged segment alone", func() bool { return len(r.Metas()) == 3 })
	close(stop)
	if err := <-readerErr; err != nil {
		t.Fatal(err)
	}
	cat := w.Metas()
	slices.SortFunc(cat, func(a, b segments.Meta) int { return int(a.MinTime - b.MinTime) })
	if len(cat) != 3 || slices.ContainsFunc([]string{first.ID, late.ID, later.ID}, func(id string) bool { return cat[0].ID == id }) ||
		len(cat[0].Compaction.Sources) != 3 || cat[1].ID == cat[2].ID {
		t.Fatalf("bucket catalog %+v, want day 0 merged into one segment of 3 sources and day 1's two", cat)
	}
	if got := srv.Keys("mg/" + tombstonesPrefix); len(got) != 0 {
		t.Fatalf("tombstones %v left once the merge applied them", got)
	}
	putMerged, delFirst := rec.index("put "+metaKey(cat[0].ID)), rec.index("delete "+metaKey(first.ID))
	if putMerged < 0 || delFirst < putMerged {
		t.Fatalf("put of the merged meta.json at %d, delete of an input's at %d", putMerged, delFirst)
	}
	if n := counterValue(w.m.bucketMerges); n != 1 {
		t.Fatalf("%v merges, want 1", n)
	}
	_ = other
	_ = other2
}
