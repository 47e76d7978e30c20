package remote

import (
	"context"
	"math"
	"os"
	"testing"
	"time"

	"github.com/strata-tsdb/strata/segments"
	"github.com/strata-tsdb/strata/segments/remote/s3test"
)

// benchSegment writes one segment of series x a day of 1-minute samples.
func benchSegment(b *testing.B, set *segments.Set, series int) segments.Meta {
	b.Helper()
	return writeSegment(b, set, series, t0, t0.Add(24*time.Hour-time.Minute))
}

// BenchmarkUpload uploads one segment of 2,000 series x a day of 1-minute
// samples per iteration into a fresh prefix of a versitygw on loopback,
// verified; it reports MB/s of segment bytes.
func BenchmarkUpload(b *testing.B) {
	srv := s3test.Start(b)
	os.Setenv("AWS_ACCESS_KEY_ID", s3test.AccessKey)
	os.Setenv("AWS_SECRET_ACCESS_KEY", s3test.SecretKey)
	set := newBenchSet(b)
	m := benchSegment(b, set, 2000)
	size := set.Segments()[0].Size
	bucket, err := OpenS3(srv.URL("bench"))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(size)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// A new ID per iteration: nothing is skipped as already there.
		if _, err := upload(context.Background(), bucket, set.Dir()+"/"+m.ID, m.ID+"-"+string(rune('a'+i%26))+time.Now().Format("150405.000000"), nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(size), "segment-bytes")
}

// BenchmarkColdRead reads every sample of a bucket-only segment (2,000
// series x a day of 1-minute samples): cold fetches it into an emptied
// cache first, warm finds it cached.
func BenchmarkColdRead(b *testing.B) {
	srv := s3test.Start(b)
	os.Setenv("AWS_ACCESS_KEY_ID", s3test.AccessKey)
	os.Setenv("AWS_SECRET_ACCESS_KEY", s3test.SecretKey)
	set := newBenchSet(b)
	benchSegment(b, set, 2000)
	bucket, err := OpenS3(srv.URL("read"))
	if err != nil {
		b.Fatal(err)
	}
	now := t0.Add(30 * 24 * time.Hour)
	tier, err := New(nil, bucket, set, Options{Dir: b.TempDir(), UploadAfter: time.Hour, Keep: time.Hour, Now: func() time.Time { return now }}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer tier.Close()
	if err := tier.Sync(context.Background()); err != nil {
		b.Fatal(err)
	}
	if len(set.Segments()) != 0 {
		b.Fatal("segment not evicted")
	}
	read := func(b *testing.B) {
		segs, _, release, err := tier.Acquire(context.Background(), math.MinInt64, math.MaxInt64, nil, nil)
		if err != nil || len(segs) != 1 {
			b.Fatal(len(segs), err)
		}
		wholeRead(b, segs[0], nil)
		release()
	}
	b.Run("cold", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			for _, m := range tier.Metas() {
				tier.cache.forget(m.ID)
			}
			read(b)
		}
	})
	b.Run("warm", func(b *testing.B) {
		read(b)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			read(b)
		}
	})
}

func newBenchSet(b *testing.B) *segments.Set {
	set, err := segments.OpenSet(nil, b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { set.Close() })
	return set
}

// BenchmarkReplicaCover computes what an earlier replica's day segment
// hides of a later replica's (2,000 series x a day of 1-minute samples
// each, local segments: the reads of the bucket aside), which the first
// query over the later replica's segment pays (dedup.go). It reports the
// series and samples per second of the earlier replica read.
func BenchmarkReplicaCover(b *testing.B) {
	const series = 2000
	a, later := newBenchSet(b), newBenchSet(b)
	benchSegment(b, a, series)
	benchSegment(b, later, series)
	as, releaseA := a.Acquire(math.MinInt64, math.MaxInt64)
	defer releaseA()
	bs, releaseB := later.Acquire(math.MinInt64, math.MaxInt64)
	defer releaseB()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		sr, err := coverOf(context.Background(), bs[0], as)
		if err != nil {
			b.Fatal(err)
		}
		if len(sr) != series {
			b.Fatalf("%d series covered, want %d", len(sr), series)
		}
	}
	sec := b.Elapsed().Seconds() / float64(b.N)
	b.ReportMetric(series/sec, "series/s")
	b.ReportMetric(series*24*60/sec, "samples/s")
}
