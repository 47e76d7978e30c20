package remote

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/strata-tsdb/strata/segments"
)

// BenchmarkBucketQuery reads a bucket-only day segment of 2,000 series x a
// day of 1-minute samples (compressed, format version 7, as day
// compaction writes it; and plain, version 6), through a versitygw on
// loopback: one series, or every series, the first time (cold: the read
// cache emptied, the segment closed) and again (warm). It reports the GETs
// and bytes fetched per query, and the CPU time. "whole" is the read
// before ranged GETs: the segment's objects fetched whole into a directory
// and opened from there (cold), or read there again (warm).
func BenchmarkBucketQuery(b *testing.B) {
	for _, compress := range []bool{true, false} {
		f := newRangedFixtureSpan(b, 2000, 24*time.Hour, 0, compress, 1<<30)
		one := []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "i", "s01234")}
		for _, q := range []struct {
			name string
			ms   []*labels.Matcher
		}{{"one-series", one}, {"all-series", nil}} {
			name := fmt.Sprintf("v%d/%s", f.meta.Version, q.name)
			read := func(b *testing.B) {
				if n, err := f.readEach(b, q.ms, nil); err != nil || n == 0 {
					b.Fatal(n, err)
				}
			}
			b.Run(name+"/ranged-cold", func(b *testing.B) {
				defer cpuPerOp(b)()
				g0, n0 := f.bucket.counts()
				for range b.N {
					f.tier.cache.forget(f.meta.ID)
					read(b)
				}
				g1, n1 := f.bucket.counts()
				b.ReportMetric(float64(g1-g0)/float64(b.N), "GETs/op")
				b.ReportMetric(float64(n1-n0)/float64(b.N), "fetched-bytes/op")
				b.ReportMetric(float64(f.size), "segment-bytes")
			})
			b.Run(name+"/ranged-warm", func(b *testing.B) {
				read(b)
				g0, n0 := f.bucket.counts()
				b.ResetTimer()
				defer cpuPerOp(b)()
				for range b.N {
					read(b)
				}
				g1, n1 := f.bucket.counts()
				b.ReportMetric(float64(g1-g0)/float64(b.N), "GETs/op")
				b.ReportMetric(float64(n1-n0)/float64(b.N), "fetched-bytes/op")
			})
			b.Run(name+"/whole-cold", func(b *testing.B) {
				defer cpuPerOp(b)()
				g0, n0 := f.bucket.counts()
				for range b.N {
					seg := wholeFetch(b, f)
					wholeRead(b, seg, q.ms)
					seg.Close()
				}
				g1, n1 := f.bucket.counts()
				b.ReportMetric(float64(g1-g0)/float64(b.N), "GETs/op")
				b.ReportMetric(float64(n1-n0)/float64(b.N), "fetched-bytes/op")
			})
			b.Run(name+"/whole-warm", func(b *testing.B) {
				seg := wholeFetch(b, f)
				defer seg.Close()
				b.ResetTimer()
				defer cpuPerOp(b)()
				for range b.N {
					wholeRead(b, seg, q.ms)
				}
			})
		}
	}
}

// wholeFetch is how the tier fetched a segment before ranged GETs: list
// its objects, GET each whole into a fresh directory, open it.
func wholeFetch(b *testing.B, f *rangedFixture) *segments.Segment {
	ctx := context.Background()
	dir := filepath.Join(b.TempDir(), f.meta.ID)
	var keys []string
	if err := f.bucket.List(ctx, segmentPrefix(f.meta.ID), func(k string) error {
		keys = append(keys, k)
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	for _, k := range keys {
		rel := k[len(segmentPrefix(f.meta.ID)):]
		if rel == namesName {
			continue
		}
		rc, err := f.bucket.Get(ctx, k, 0, -1)
		if err != nil {
			b.Fatal(err)
		}
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			b.Fatal(err)
		}
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	seg, err := segments.OpenWithCache(dir, f.tier.cache.pages) // the set's page cache, as the tier did
	if err != nil {
		b.Fatal(err)
	}
	return seg
}

// wholeRead reads the samples of the series of seg matching ms (all of
// them when ms is empty), failing when there are none.
func wholeRead(b *testing.B, seg *segments.Segment, ms []*labels.Matcher) {
	it, err := seg.Select(ms...)
	if err != nil {
		b.Fatal(err)
	}
	n := 0
	for it.Next() {
		for _, cm := range it.Chunks() {
			c, err := seg.ReadChunk(cm.Ref)
			if err != nil {
				b.Fatal(err)
			}
			ci := c.Iterator(nil)
			for ci.Next() != 0 {
				n++
			}
		}
	}
	if n == 0 {
		b.Fatal("no samples")
	}
}

// cpuPerOp reports the CPU time this process spent per op (user and
// system; versitygw's is its own), which the machine's load does not
// inflate as it does wall time. Call the function it returns at the end.
func cpuPerOp(b *testing.B) func() {
	cpu := func() time.Duration {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			b.Fatal(err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	start := cpu()
	return func() {
		b.ReportMetric(float64((cpu()-start).Microseconds())/1000/float64(b.N), "cpu-ms/op")
	}
}
