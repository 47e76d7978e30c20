package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/strata-tsdb/strata/segments"
	"github.com/strata-tsdb/strata/segments/remote/s3test"
)

// countingBucket passes every call to the real bucket it wraps and counts
// the GETs and the bytes they return.
type countingBucket struct {
	Bucket
	gets, bytes atomic.Int64
}

func (b *countingBucket) Get(ctx context.Context, key string, off, length int64) (io.ReadCloser, error) {
	b.gets.Add(1)
	rc, err := b.Bucket.Get(ctx, key, off, length)
	if err != nil {
		return nil, err
	}
	return &countingReader{rc, &b.bytes}, nil
}

func (b *countingBucket) counts() (int64, int64) { return b.gets.Load(), b.bytes.Load() }

type countingReader struct {
	io.ReadCloser
	n *atomic.Int64
}

func (r *countingReader) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	r.n.Add(int64(n))
	return n, err
}

// writeChunkedSegment writes a raw segment of n series with a sample every
// minute in [from, to], cut into chunks of per samples, compressed
// (format version 7) or not (version 6).
func writeChunkedSegment(t testing.TB, set *segments.Set, n, per int, from, to time.Time, compress bool) segments.Meta {
	t.Helper()
	var series []segments.SeriesData
	for i := range n {
		var chunks []segments.ChunkMeta
		var app chunkenc.Appender
		k := 0
		for ts := from; !ts.After(to); ts = ts.Add(time.Minute) {
			if k%per == 0 {
				c := chunkenc.NewXORChunk()
				app, _ = c.Appender()
				chunks = append(chunks, segments.ChunkMeta{Kind: segments.KindRaw, Chunk: c})
			}
			app.Append(0, ts.UnixMilli(), float64(i%7)*float64(ts.Unix()/60%1000)+float64(k%3))
			k++
		}
		series = append(series, segments.SeriesData{
			Labels: labels.FromStrings("__name__", "m", "i", fmt.Sprintf("s%05d", i)),
			Chunks: chunks,
		})
	}
	meta, err := segments.WriteSeriesWithOptions(set.Dir(), segments.Meta{}, series, segments.WriterOptions{Compress: compress})
	if err != nil {
		t.Fatal(err)
	}
	if err := set.Publish([]segments.Meta{meta}); err != nil {
		t.Fatal(err)
	}
	return meta
}

// rangedFixture is one segment uploaded and evicted, so that only the
// bucket holds it, read through a tier whose bucket counts GETs.
type rangedFixture struct {
	srv    *s3test.Server
	tier   *Tier
	bucket *countingBucket
	meta   segments.Meta
	size   int64                   // bytes of the segment's files
	want   map[string][][2]float64 // what the local copy read, by series
}

func newRangedFixture(t testing.TB, series int, compress bool, cacheMax int64) *rangedFixture {
	return newRangedFixtureSpan(t, series, 12*time.Hour, 0, compress, cacheMax)
}

// newRangedFixtureSpan: series of span at 1-minute steps, in chunks of per
// samples (0: 120 plain, 360 compressed, as flushes and day compactions
// cut them).
func newRangedFixtureSpan(t testing.TB, series int, span time.Duration, per int, compress bool, cacheMax int64) *rangedFixture {
	t.Helper()
	if per == 0 {
		per = map[bool]int{false: 120, true: 360}[compress]
	}
	return newRangedFixtureOf(t, fmt.Sprintf("ranged-%v", compress), cacheMax, func(set *segments.Set) segments.Meta {
		return writeChunkedSegment(t, set, series, per, t0, t0.Add(span-time.Minute), compress)
	})
}

// newRangedFixtureOf: the segment write writes into the set, in prefix.
func newRangedFixtureOf(t testing.TB, prefix string, cacheMax int64, write func(*segments.Set) segments.Meta) *rangedFixture {
	t.Helper()
	srv := s3test.Start(t)
	for _, kv := range srv.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	set, err := segments.OpenSet(nil, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { set.Close() })
	meta := write(set)
	segs, release := set.Acquire(math.MinInt64, math.MaxInt64)
	want := samples(t, segs)
	size := set.Segments()[0].Size
	release()
	b, err := OpenS3(srv.URL(prefix))
	if err != nil {
		t.Fatal(err)
	}
	cb := &countingBucket{Bucket: b}
	now := t0.Add(10 * 24 * time.Hour)
	tier, err := New(nil, cb, set, Options{Dir: t.TempDir(), UploadAfter: time.Hour, Keep: time.Hour, CacheMaxBytes: cacheMax,
		RetryMin: 10 * time.Millisecond, Now: func() time.Time { return now }}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tier.Close() })
	if err := tier.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(set.Segments()) != 0 {
		t.Fatal("segment not evicted")
	}
	return &rangedFixture{srv: srv, tier: tier, bucket: cb, meta: meta, size: size, want: want}
}

// closeSegments closes the open segments (dropping their decompressed
// pages) and keeps their blocks.
func (f *rangedFixture) closeSegments() {
	c := f.tier.cache
	c.mtx.Lock()
	keep := c.openMax
	c.openMax = 0
	c.mtx.Unlock()
	c.shrink()
	c.mtx.Lock()
	c.openMax = keep
	c.mtx.Unlock()
}

// read reads the samples of the series matching ms from the bucket-only
// segment, prefetching their chunks first as a query does.
func (f *rangedFixture) read(t testing.TB, ms ...*labels.Matcher) (map[string][][2]float64, error) {
	t.Helper()
	out := map[string][][2]float64{}
	_, err := f.readEach(t, ms, func(lset string, ts int64, v float64) {
		out[lset] = append(out[lset], [2]float64{float64(ts), v})
	})
	return out, err
}

// readEach calls fn with every sample of the series matching ms, and
// returns how many there were.
func (f *rangedFixture) readEach(t testing.TB, ms []*labels.Matcher, fn func(lset string, ts int64, v float64)) (int, error) {
	t.Helper()
	return f.readEachCtx(context.Background(), t, ms, fn)
}

// readEachCtx is readEach as a query with context ctx reads.
func (f *rangedFixture) readEachCtx(ctx context.Context, t testing.TB, ms []*labels.Matcher, fn func(lset string, ts int64, v float64)) (int, error) {
	segs, _, release, err := f.tier.Acquire(ctx, math.MinInt64, math.MaxInt64, nil, nil)
	if err != nil {
		return 0, err
	}
	defer release()
	if len(segs) != 1 || !segs[0].FromSource() {
		t.Fatalf("%d segments from the bucket, want 1 read by range", len(segs))
	}
	s := segs[0]
	it, err := s.Select(ms...)
	if err != nil {
		return 0, err
	}
	type series struct {
		lset  string
		metas []segments.ChunkMeta
	}
	var all []series
	var refs []segments.ChunkRef
	for it.Next() {
		lset := ""
		if fn != nil {
			lset = it.Labels().String()
		}
		all = append(all, series{lset, it.Chunks()})
		for _, m := range all[len(all)-1].metas {
			refs = append(refs, m.Ref)
		}
	}
	if err := it.Err(); err != nil {
		return 0, err
	}
	if err := s.Prefetch(refs); err != nil {
		return 0, err
	}
	n := 0
	for _, sr := range all {
		for _, m := range sr.metas {
			c, err := s.ReadChunk(m.Ref)
			if err != nil {
				return 0, err
			}
			ci := c.Iterator(nil)
			for ci.Next() != chunkenc.ValNone {
				if n++; fn != nil {
					ts, v := ci.At()
					fn(sr.lset, ts, v)
				}
			}
		}
	}
	return n, nil
}

func (f *rangedFixture) wantOf(names ...string) map[string][][2]float64 {
	out := map[string][][2]float64{}
	for _, n := range names {
		k := labels.FromStrings("__name__", "m", "i", n).String()
		out[k] = f.want[k]
	}
	return out
}

// TestRangedReadFetchesLittle: a bucket-only segment is read by ranged
// GETs. Reading one series of it fetches its meta.json, index, the
// chunks files' headers and page tables and the series' chunks (or their
// pages): a small part of the segment, in a few requests; read again it
// fetches nothing; every series read equals what the local copy read, in
// both the plain and the compressed format.
func TestRangedReadFetchesLittle(t *testing.T) {
	for _, compress := range []bool{false, true} {
		t.Run(fmt.Sprintf("compressed=%v", compress), func(t *testing.T) {
			f := newRangedFixture(t, 2000, compress, 1<<30)
			g0, b0 := f.bucket.counts()
			got, err := f.read(t, labels.MustNewMatcher(labels.MatchEqual, "i", "s01234"))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, f.wantOf("s01234")) {
				t.Fatal("one series read from the bucket differs from the local copy")
			}
			g1, b1 := f.bucket.counts()
			gets, fetched := g1-g0, b1-b0
			t.Logf("one series of a %d-byte segment: %d GETs, %d bytes ", f.size, gets, fetched)
			// meta.json, index, chunks header, page table (compressed),
			// the series' chunks.
			if gets > 5 {
				t.Fatalf("%d GETs for one series", gets)
			}
			if fetched*4 > f.size {
				t.Fatalf("fetched %d bytes of a %d-byte segment for one series", fetched, f.size)
			}
			if _, err := f.read(t, labels.MustNewMatcher(labels.MatchEqual, "i", "s01234")); err != nil {
				t.Fatal(err)
			}
			if g2, b2 := f.bucket.counts(); g2 != g1 || b2 != b1 {
				t.Fatalf("read again: %d more GETs, %d more bytes", g2-g1, b2-b1)
			}
			// Ten series far apart, then all of them: prefetched, their
			// ranges coalesce into few GETs.
			var names []string
			for i := 0; i < 2000; i += 200 {
				names = append(names, fmt.Sprintf("s%05d", i))
			}
			got, err = f.read(t, labels.MustNewMatcher(labels.MatchRegexp, "i", strings.Join(names, "|")))
			if err != nil || !reflect.DeepEqual(got, f.wantOf(names...)) {
				t.Fatalf("ten series: %v (or they differ)", err)
			}
			g3, _ := f.bucket.counts()
			if g3-g1 > 10 {
				t.Fatalf("%d GETs for ten series", g3-g1)
			}
			got, err = f.read(t)
			if err != nil || !reflect.DeepEqual(got, f.want) {
				t.Fatalf("every series: %v (or they differ)", err)
			}
			g4, b4 := f.bucket.counts()
			t.Logf("the whole segment: %d GETs, %d bytes", g4-g0, b4-b0)
			// Gaps between the ranges a read needs are fetched with them
			// (coalesced), cached or not: a little more than the segment.
			if b4-b0 > f.size+f.size/8 {
				t.Fatalf("fetched %d bytes in all for a segment of %d", b4-b0, f.size)
			}
		})
	}
}

// TestRangedCacheBound: with a cache bound far below the segment, reading
// it all keeps the cache's blocks within the bound (evicting), and still
// answers as the local copy.
func TestRangedCacheBound(t *testing.T) {
	const bound = 96 << 10
	f := newRangedFixture(t, 1000, true, bound)
	got, err := f.read(t)
	if err != nil || !reflect.DeepEqual(got, f.want) {
		t.Fatalf("every series: %v (or they differ)", err)
	}
	if b := f.tier.cache.bytes(); b > bound {
		t.Fatalf("cache holds %d bytes, bound %d", b, bound)
	}
	var disk int64
	filepath.WalkDir(filepath.Join(f.tier.opts.Dir, "cache"), func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				disk += fi.Size()
			}
		}
		return nil
	})
	if disk > bound || disk == 0 {
		t.Fatalf("cache directory holds %d bytes, bound %d", disk, bound)
	}
	if n := counterValue(f.tier.m.blockEvictions); n == 0 || f.size < 4*bound {
		t.Fatalf("%v block evictions for a %d-byte segment through a %d-byte cache", n, f.size, bound)
	}
}

// TestRangedDamage: a block damaged in the cache on disk is found by its
// CRC32C, dropped and fetched again, never served; a range damaged in the
// bucket itself is reported as corruption naming the segment; a range read while the bucket is down fails with
// ErrUnavailable naming the bucket, and succeeds once it is back.
func TestRangedDamage(t *testing.T) {
	for _, compress := range []bool{false, true} {
		t.Run(fmt.Sprintf("compressed=%v", compress), func(t *testing.T) {
			f := newRangedFixture(t, 500, compress, 1<<30)
			one := labels.MustNewMatcher(labels.MatchEqual, "i", "s00123")
			if _, err := f.read(t, one); err != nil {
				t.Fatal(err)
			}
			// Damage every cached block of the chunks file on disk.
			c := f.tier.cache.blocks
			n := 0
			filepath.WalkDir(c.dir, func(p string, d fs.DirEntry, err error) error {
				if err == nil && !d.IsDir() && strings.Contains(p, "chunks") {
					b, _ := os.ReadFile(p)
					b[len(b)/3] ^= 0x01
					os.WriteFile(p, b, 0o644)
					n++
				}
				return nil
			})
			if n == 0 {
				t.Fatal("no cached chunks block")
			}
			c.mtx.Lock()
			c.hot = map[blockKey][]byte{}
			c.mtx.Unlock()
			f.closeSegments()
			g0, _ := f.bucket.counts()
			got, err := f.read(t, one)
			if err != nil || !reflect.DeepEqual(got, f.wantOf("s00123")) {
				t.Fatalf("read over damaged cache blocks: %v (or it differs)", err)
			}
			if d := counterValue(f.tier.m.damagedBlocks); d == 0 {
				t.Fatal("no damaged block found")
			}
			if g1, _ := f.bucket.counts(); g1 == g0 {
				t.Fatal("damaged blocks were not fetched again")
			}

			// The bucket down: a range not cached fails naming the bucket.
			other := labels.MustNewMatcher(labels.MatchEqual, "i", "s00400")
			f.srv.Stop()
			_, err = f.read(t, other)
			if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), f.tier.bucket.Name()) {
				t.Fatalf("ranged read with the bucket down: %v", err)
			}
			f.srv.Restart()
			if got, err := f.read(t, other); err != nil || !reflect.DeepEqual(got, f.wantOf("s00400")) {
				t.Fatalf("after the bucket came back: %v (or it differs)", err)
			}

			// Damage in the bucket: every byte of the chunks object's
			// second half flipped, uploaded over it.
			key := f.tier.bucket.(*countingBucket).Bucket.(*S3).prefix + objectKey(f.meta.ID, "chunks/000001")
			obj := f.srv.Get(t, key)
			for i := len(obj) / 2; i < len(obj)-64; i++ {
				obj[i] ^= 0xff
			}
			if _, err := f.srv.Client().PutObject(context.Background(), s3test.Bucket, key, strings.NewReader(string(obj)), int64(len(obj)), minio.PutObjectOptions{}); err != nil {
				t.Fatal(err)
			}
			f.tier.cache.forget(f.meta.ID)
			_, err = f.read(t)
			var ce *segments.CorruptionError
			if !errors.As(err, &ce) || !strings.Contains(err.Error(), f.meta.ID) {
				t.Fatalf("read of a segment damaged in the bucket: %v", err)
			}
		})
	}
}

// TestRangedLazyIndex: the index of a compressed bucket segment is not
// read whole: a one-series query reads its symbols, postings and postings
// table, and the one page of series entries it needs, fewer bytes than the
// index file (held in memory: fewer too); a query of every series fetches
// the pages of their entries together, in few GETs.
func TestRangedLazyIndex(t *testing.T) {
	// 24 chunks per series, as a day of 10 s samples has: the series
	// entries (chunk metas with statistics) are most of the index.
	f := newRangedFixtureSpan(t, 5000, 12*time.Hour, 30, true, 1<<30)
	oi, err := f.tier.bucket.Stat(context.Background(), objectKey(f.meta.ID, "index"))
	if err != nil {
		t.Fatal(err)
	}
	g0, b0 := f.bucket.counts()
	got, err := f.read(t, labels.MustNewMatcher(labels.MatchEqual, "i", "s01234"))
	if err != nil || !reflect.DeepEqual(got, f.wantOf("s01234")) {
		t.Fatalf("one series: %v (or it differs)", err)
	}
	g1, b1 := f.bucket.counts()
	segs, _, release, err := f.tier.Acquire(context.Background(), math.MinInt64, math.MaxInt64, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	held := segs[0].IndexSize()
	release()
	t.Logf("one series of %d: %d GETs, %d bytes; index %d bytes, %d held", f.size, g1-g0, b1-b0, oi.Size, held)
	if b1-b0 >= oi.Size || held >= oi.Size {
		t.Fatalf("fetched %d bytes and holds %d for one series; the index is %d", b1-b0, held, oi.Size)
	}
	got, err = f.read(t)
	if err != nil || !reflect.DeepEqual(got, f.want) {
		t.Fatalf("every series: %v (or they differ)", err)
	}
	g2, b2 := f.bucket.counts()
	t.Logf("then every series: %d GETs, %d bytes", g2-g1, b2-b1)
	if g2-g1 > 8 {
		t.Fatalf("%d GETs to read every series", g2-g1)
	}
}

// TestRangedConcurrentReads: queries reading different series of one
// bucket-only segment at once, through a cache small enough that blocks
// are evicted while they read, all answer as the local copy (run it
// under -race).
func TestRangedConcurrentReads(t *testing.T) {
	for _, compress := range []bool{false, true} {
		t.Run(fmt.Sprintf("compressed=%v", compress), func(t *testing.T) {
			f := newRangedFixture(t, 400, compress, 64<<10)
			errs := make(chan error, 8)
			for g := range 8 {
				go func() {
					var err error
					for i := g; i < 400 && err == nil; i += 37 {
						name := fmt.Sprintf("s%05d", i)
						var got map[string][][2]float64
						if got, err = f.read(t, labels.MustNewMatcher(labels.MatchEqual, "i", name)); err == nil && !reflect.DeepEqual(got, f.wantOf(name)) {
							err = fmt.Errorf("series %s differs", name)
						}
					}
					errs <- err
				}()
			}
			for range 8 {
				if err := <-errs; err != nil {
					t.Fatal(err)
				}
			}
			if b := f.tier.cache.bytes(); b > 64<<10 {
				t.Fatalf("cache holds %d bytes, bound %d", b, 64<<10)
			}
			if counterValue(f.tier.m.blockEvictions) == 0 {
				t.Fatal("no block was evicted: the bound was not exercised")
			}
		})
	}
}

// TestRangedConcurrentMissesFetchOnce: queries that miss the same blocks
// at once wait for one another's GETs instead of making their own: eight
// concurrent cold reads of the same series make no more GETs than one.
func TestRangedConcurrentMissesFetchOnce(t *testing.T) {
	f := newRangedFixture(t, 2000, true, 1<<30)
	var names []string
	for i := 0; i < 2000; i += 190 {
		names = append(names, fmt.Sprintf("s%05d", i))
	}
	m := labels.MustNewMatcher(labels.MatchRegexp, "i", strings.Join(names, "|"))
	readConcurrently := func(n int) int64 {
		g0, _ := f.bucket.counts()
		start := make(chan struct{})
		errs := make(chan error, n)
		for range n {
			go func() {
				<-start
				got, err := f.read(t, m)
				if err == nil && !reflect.DeepEqual(got, f.wantOf(names...)) {
					err = errors.New("the series differ")
				}
				errs <- err
			}()
		}
		close(start)
		for range n {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		g1, _ := f.bucket.counts()
		return g1 - g0
	}
	many := readConcurrently(8)
	f.tier.cache.forget(f.meta.ID)
	one := readConcurrently(1)
	t.Logf("eight concurrent cold reads: %d GETs; one: %d", many, one)
	if many > one {
		t.Fatalf("eight concurrent cold reads made %d GETs, one makes %d", many, one)
	}
}
