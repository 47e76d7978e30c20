package remote

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/strata-tsdb/strata/segments"
	"github.com/strata-tsdb/strata/segments/remote/s3test"
	"github.com/strata-tsdb/strata/segments/segmentstest"
)

// newLabelHeavyFixture is a bucket-only compressed segment of n series of
// an hour each whose labels are most of its index: each has a long
// unique path, so that its symbols and postings table are large.
func newLabelHeavyFixture(t *testing.T, n int) *rangedFixture {
	return newRangedFixtureOf(t, "lazy-postings", 1<<30, func(set *segments.Set) segments.Meta {
		var series []segments.SeriesData
		for i := range n {
			c := segmentstest.MinuteChunk(t0, t0.Add(59*time.Minute), func(ts time.Time) float64 { return float64(i%97) + float64(ts.Minute()) })
			series = append(series, segments.SeriesData{
				Labels: labels.FromStrings("__name__", "m", "i", fmt.Sprintf("s%05d", i),
					"path", fmt.Sprintf("/api/v1/tenants/%08x/objects/%016x", i*7919, uint64(i)*0x9e3779b97f4a7c15)),
				Chunks: []segments.ChunkMeta{{Kind: segments.KindRaw, Chunk: c}},
			})
		}
		meta, err := segments.WriteSeriesWithOptions(set.Dir(), segments.Meta{}, series, segments.WriterOptions{Compress: true})
		if err != nil {
			t.Fatal(err)
		}
		if err := set.Publish([]segments.Meta{meta}); err != nil {
			t.Fatal(err)
		}
		return meta
	})
}

// wantI is what the local copy read of the series whose label i is one
// of names.
func wantI(f *rangedFixture, names ...string) map[string][][2]float64 {
	out := map[string][][2]float64{}
	for k, v := range f.want {
		for _, n := range names {
			if strings.Contains(k, `i="`+n+`"`) {
				out[k] = v
			}
		}
	}
	return out
}

// indexObject returns the bucket key and bytes of f's index, and its
// sections (offset, length of body) from its table of contents.
func indexObject(t *testing.T, f *rangedFixture) (string, []byte, [4][2]uint64) {
	t.Helper()
	key := f.tier.bucket.(*countingBucket).Bucket.(*S3).prefix + objectKey(f.meta.ID, "index")
	b := f.srv.Get(t, key)
	toc := b[len(b)-68:]
	var secs [4][2]uint64
	for i := range secs {
		secs[i] = [2]uint64{binary.BigEndian.Uint64(toc[i*16:]), binary.BigEndian.Uint64(toc[i*16+8:])}
	}
	return key, b, secs
}

// TestRangedLazyPostings: opening a compressed bucket segment does not
// fetch its symbols or postings: the symbols are rebuilt from the postings
// table and checked against the section's CRC32C, and a Select fetches
// only the postings lists of its matchers. One series of a segment whose
// labels are most of its index then fetches few of the blocks of those two
// sections, and every query answers as the local copy.
func TestRangedLazyPostings(t *testing.T) {
	f := newLabelHeavyFixture(t, 20000)
	_, idx, secs := indexObject(t, f)
	sym, post := secs[0], secs[2]
	g0, b0 := f.bucket.counts()
	one := labels.MustNewMatcher(labels.MatchEqual, "i", "s01234")
	got, err := f.read(t, one)
	if err != nil || !reflect.DeepEqual(got, wantI(f, "s01234")) {
		t.Fatalf("one series: %v (or it differs)", err)
	}
	g1, b1 := f.bucket.counts()
	// The blocks of the index that lie inside a section, and those of them
	// cached.
	inside := func(sec [2]uint64) (all, cached int) {
		c := f.tier.cache.blocks
		for i := int64(sec[0]+blockSize-1) / blockSize; (i+1)*blockSize <= int64(sec[0]+sec[1]); i++ {
			all++
			c.mtx.Lock()
			_, ok := c.blocks[blockKey{objectKey(f.meta.ID, "index"), i}]
			c.mtx.Unlock()
			if ok {
				cached++
			}
		}
		return all, cached
	}
	symAll, symCached := inside(sym)
	postAll, postCached := inside(post)
	t.Logf("one series: %d GETs, %d bytes; index %d bytes (symbols %d, postings %d, postings table %d); blocks fetched inside symbols %d of %d, postings %d of %d",
		g1-g0, b1-b0, len(idx), sym[1], post[1], secs[3][1], symCached, symAll, postCached, postAll)
	if symAll < 16 || postAll < 4 {
		t.Fatalf("symbols over %d blocks, postings over %d: too few to show anything", symAll, postAll)
	}
	if symCached*4 > symAll || postCached*4 > postAll {
		t.Fatalf("one series fetched %d of the %d blocks inside the symbols, %d of %d inside the postings", symCached, symAll, postCached, postAll)
	}

	// Other matchers: the metric name (the list of every series), a
	// regex of alternatives, a negative matcher.
	var names []string
	for i := 0; i < 20000; i += 1999 {
		names = append(names, fmt.Sprintf("s%05d", i))
	}
	got, err = f.read(t, labels.MustNewMatcher(labels.MatchEqual, "__name__", "m"),
		labels.MustNewMatcher(labels.MatchRegexp, "i", strings.Join(names, "|")),
		labels.MustNewMatcher(labels.MatchNotEqual, "i", names[0]))
	if err != nil || !reflect.DeepEqual(got, wantI(f, names[1:]...)) {
		t.Fatalf("several matchers: %v (or they differ)", err)
	}
	got, err = f.read(t)
	if err != nil || !reflect.DeepEqual(got, f.want) {
		t.Fatalf("every series: %v (or they differ)", err)
	}
}

// TestRangedLazyPostingsDamage: a postings list read by range has no
// checksum of its own. One damaged in the bucket so that it names another
// series (a list that still decodes) is found, because the series a list
// names must match the matcher it was read for: the read fails as
// corruption naming the segment, and never answers another series.
func TestRangedLazyPostingsDamage(t *testing.T) {
	f := newLabelHeavyFixture(t, 2000)
	key, idx, secs := indexObject(t, f)
	// The postings table: where the lists of i=s00100 and i=s00101 are.
	d := idx[secs[3][0] : secs[3][0]+secs[3][1]]
	str := func() string {
		n, k := binary.Uvarint(d)
		s := string(d[k : k+int(n)])
		d = d[k+int(n):]
		return s
	}
	num := func() uint64 {
		v, k := binary.Uvarint(d)
		d = d[k:]
		return v
	}
	offs := map[string]uint64{}
	for n := num(); n > 0; n-- {
		name, value := str(), str()
		offs[name+"="+value] = num()
	}
	a, b := offs["i=s00100"], offs["i=s00101"]
	if a == 0 || b == 0 || idx[a] != 1 || idx[b] != 1 {
		t.Fatalf("lists at %d and %d, want lists of one series", a, b)
	}
	refA, ka := binary.Uvarint(idx[a+1:])
	refB, kb := binary.Uvarint(idx[b+1:])
	if ka != kb || refA == refB {
		t.Fatalf("refs %d and %d", refA, refB)
	}
	// s00100's list names s00101's series.
	copy(idx[a+1:], idx[b+1:b+1+uint64(kb)])
	if _, err := f.srv.Client().PutObject(context.Background(), s3test.Bucket, key, strings.NewReader(string(idx)), int64(len(idx)), minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	f.tier.cache.forget(f.meta.ID)
	got, err := f.read(t, labels.MustNewMatcher(labels.MatchEqual, "i", "s00100"))
	var ce *segments.CorruptionError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), f.meta.ID) {
		t.Fatalf("read through a damaged postings list: %v, %d series", err, len(got))
	}
	// The other lists are whole.
	if got, err := f.read(t, labels.MustNewMatcher(labels.MatchEqual, "i", "s00101")); err != nil || !reflect.DeepEqual(got, wantI(f, "s00101")) {
		t.Fatalf("another series: %v (or it differs)", err)
	}
}
