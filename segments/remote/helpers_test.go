package remote

import (
	"cmp"
	"context"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/strata-tsdb/strata/segments"
	"github.com/strata-tsdb/strata/segments/remote/s3test"
	"github.com/strata-tsdb/strata/segments/segmentstest"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// writeSegment writes a raw segment of n series with a sample every
// minute in [from, to] (value: the series' index plus the minute).
func writeSegment(t testing.TB, set *segments.Set, n int, from, to time.Time) segments.Meta {
	t.Helper()
	var series []segments.SeriesData
	for i := range n {
		c := segmentstest.MinuteChunk(from, to, func(ts time.Time) float64 { return float64(i) + float64(ts.Unix()/60) })
		series = append(series, segments.SeriesData{
			Labels: labels.FromStrings("__name__", "m", "i", string(rune('a'+i%26))+string(rune('a'+i/26))),
			Chunks: []segments.ChunkMeta{{Kind: segments.KindRaw, Chunk: c}},
		})
	}
	return segmentstest.Publish(t, set, segments.Meta{}, series)
}

func newSet(t *testing.T) *segments.Set { return segmentstest.NewSet(t) }

// newTier returns a tier of set in a fresh prefix of srv's bucket.
func newTier(t *testing.T, srv *s3test.Server, set *segments.Set, prefix string, opts Options) *Tier {
	t.Helper()
	srv.SetEnv(t)
	b, err := OpenS3(srv.URL(prefix))
	if err != nil {
		t.Fatal(err)
	}
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	if opts.RetryMin == 0 {
		opts.RetryMin = 10 * time.Millisecond
	}
	tier, err := New(nil, b, set, opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tier.Close() })
	return tier
}

func localIDs(set *segments.Set) []string { return segmentstest.IDs(set) }

// samples reads every sample of segs, by series.
func samples(t testing.TB, segs []*segments.Segment) map[string][][2]float64 {
	t.Helper()
	out := map[string][][2]float64{}
	for _, s := range segs {
		it, err := s.Select()
		if err != nil {
			t.Fatal(err)
		}
		for it.Next() {
			for _, cm := range it.Chunks() {
				c, err := s.ReadChunk(cm.Ref)
				if err != nil {
					t.Fatal(err)
				}
				ci := c.Iterator(nil)
				for ci.Next() != chunkenc.ValNone {
					ts, v := ci.At()
					out[it.Labels().String()] = append(out[it.Labels().String()], [2]float64{float64(ts), v})
				}
			}
		}
		if err := it.Err(); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func acquireAll(t *testing.T, set *segments.Set) (map[string][][2]float64, func()) {
	t.Helper()
	segs, release := set.Acquire(math.MinInt64, math.MaxInt64)
	return samples(t, segs), release
}

// bucketFiles returns the bytes of every object of segment id in srv.
func bucketFiles(t *testing.T, srv *s3test.Server, prefix, id string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	c := srv.Client()
	base := prefix + "/" + segmentPrefix(id)
	for _, k := range srv.Keys(base) {
		o, err := c.GetObject(context.Background(), s3test.Bucket, k, minioGetOpts())
		if err != nil {
			t.Fatal(err)
		}
		b, err := readAllClose(o)
		if err != nil {
			t.Fatal(err)
		}
		out[k[len(base):]] = b
	}
	return out
}

// localFiles returns the bytes of every file of the segment in dir.
func localFiles(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		out[filepath.ToSlash(rel)] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// waitFor polls cond until it holds, for a generous while.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

// byTime sorts each series' samples by time.
func byTime(s map[string][][2]float64) map[string][][2]float64 {
	for _, v := range s {
		slices.SortFunc(v, func(a, b [2]float64) int { return cmp.Compare(a[0], b[0]) })
	}
	return s
}
