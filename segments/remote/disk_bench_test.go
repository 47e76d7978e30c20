package remote

import (
	"context"
	"fmt"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/strata-tsdb/strata/segments"
	"github.com/strata-tsdb/strata/segments/remote/s3test"
)

// BenchmarkLocalDiskKept: what a writer keeps on local disk against the
// size of its data, with storage.local.keep or storage.local.max_bytes.
// The data: 8 day segments of 2,000 series of 1-minute samples
// (compressed, 360-sample chunks, as day compaction writes them), all
// final, on the writer's disk at the start of each iteration (a copy);
// the round timed uploads them all (verified) and deletes the local
// copies the setting lets go. It reports the data's bytes, the local
// segments' bytes left and their share of the data, and the read cache's
// bytes (the rest of the local disk the tier takes) after a query of one
// series over every day and after one of every series (the cache bound
// at one day's bytes); and, through -benchmem's MB/s, the upload
// throughput.
func BenchmarkLocalDiskKept(b *testing.B) {
	const (
		days   = 8
		series = 2000
	)
	day := 24 * time.Hour
	template := b.TempDir()
	set, err := segments.OpenSet(nil, template)
	if err != nil {
		b.Fatal(err)
	}
	for d := range days {
		from := t0.Add(time.Duration(d) * day)
		writeChunkedSegment(b, set, series, 360, from, from.Add(day-time.Minute), true)
	}
	data := localBytes(set)
	if err := set.Close(); err != nil {
		b.Fatal(err)
	}
	srv := s3test.Start(b)
	for _, kv := range srv.Env() {
		k, v, _ := strings.Cut(kv, "=")
		b.Setenv(k, v)
	}
	now := t0.Add(days*day + time.Hour)
	one := []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "i", "s01234")}
	for _, c := range []struct {
		name     string
		keep     time.Duration
		maxBytes int64
	}{
		{"keep=2d", 2 * day, 0},
		{"max_bytes=3days", 0, 3 * data / days},
		{"keep=7d,max_bytes=1.5days", 7 * day, 3 * data / days / 2},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(data)
			var local, cacheOne, cacheAll int64
			for i := range b.N {
				b.StopTimer()
				dir := b.TempDir()
				if err := os.CopyFS(dir, os.DirFS(template)); err != nil {
					b.Fatal(err)
				}
				set, err := segments.OpenSet(nil, dir)
				if err != nil {
					b.Fatal(err)
				}
				bucket, err := OpenS3(srv.URL(fmt.Sprintf("kept-%d-%d", len(c.name), i)))
				if err != nil {
					b.Fatal(err)
				}
				tier, err := New(nil, bucket, set, Options{Dir: b.TempDir(), UploadAfter: time.Hour, Keep: c.keep, MaxLocalBytes: c.maxBytes,
					CacheMaxBytes: data / days, Now: func() time.Time { return now }}, nil)
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				if err := tier.Sync(context.Background()); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if st := tier.Status(); st.BucketSegments != days {
					b.Fatalf("%d segments in the bucket, want %d", st.BucketSegments, days)
				}
				local = localBytes(set)
				cacheOne = readBucketOnly(b, tier, set, one)
				cacheAll = readBucketOnly(b, tier, set, nil)
				if err := tier.Close(); err != nil {
					b.Fatal(err)
				}
				if err := set.Close(); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
			b.ReportMetric(float64(data), "data-bytes")
			b.ReportMetric(float64(local), "local-bytes")
			b.ReportMetric(100*float64(local)/float64(data), "local-%")
			b.ReportMetric(float64(cacheOne), "cache-bytes-one-series")
			b.ReportMetric(float64(cacheAll), "cache-bytes-all-series")
		})
	}
}

// readBucketOnly reads the series matching ms (nil: all) of every segment
// only the bucket holds, and returns the read cache's bytes then.
func readBucketOnly(b *testing.B, tier *Tier, set *segments.Set, ms []*labels.Matcher) int64 {
	b.Helper()
	local, releaseLocal := set.Acquire(math.MinInt64, math.MaxInt64)
	defer releaseLocal()
	var metas []segments.Meta
	for _, s := range local {
		metas = append(metas, s.Meta())
	}
	segs, _, release, err := tier.Acquire(context.Background(), math.MinInt64, math.MaxInt64, metas, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer release()
	for _, s := range segs {
		wholeRead(b, s, ms)
	}
	return tier.cache.bytes()
}
