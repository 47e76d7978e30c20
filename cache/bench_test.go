package cache

import (
	"context"
	"fmt"
	"math/rand"
	"slices"
	"testing"
	"time"
)

// benchCache fills a 256 MiB cache with 32 MiB of entries of size bytes (at
// most 1,000) under keys shaped like the frontend's, with two tags each, a
// few of them bumped.
func benchCache(b *testing.B, size int) (*Cache, [][]byte) {
	b.Helper()
	c := newTestCache(b, newFakeClock(), func(o *Options) {
		o.MaxBytes = 256 << 20
		o.TTL = time.Hour
		o.Now = time.Now
	})
	value := make([]byte, size)
	rand.New(rand.NewSource(1)).Read(value)
	keys := make([][]byte, min(1000, (32<<20)/size))
	for i := range keys {
		keys[i] = fmt.Appendf(nil, "query_range:sum by (host) (rate(cpu_usage{job=\"node\"}[5m])):60:%d", 1_700_000_000+3600*i)
		tags := []string{"m:cpu_usage:2026-11-20", fmt.Sprint("m:cpu_usage:2026-11-", i%30)}
		if err := c.Set(keys[i], tags, c.Snapshot(), value, 0); err != nil {
			b.Fatal(err)
		}
	}
	c.Invalidate("m:other:2026-11-20") // so the generation check looks tags up
	return c, keys
}

// BenchmarkGet measures a hit: GetAppend into a reused buffer (no
// allocation) and Get (one allocation, the returned value).
func BenchmarkGet(b *testing.B) {
	for _, size := range []int{1 << 10, 256 << 10} {
		b.Run(fmt.Sprintf("GetAppend/%dKiB", size>>10), func(b *testing.B) {
			c, keys := benchCache(b, size)
			dst := make([]byte, 0, size+1024)
			b.ReportAllocs()
			b.SetBytes(int64(size))
			i := 0
			for b.Loop() {
				var st Status
				dst, st = c.GetAppend(dst[:0], keys[i%len(keys)])
				if st != StatusHit || len(dst) != size {
					b.Fatalf("status %v, %d bytes", st, len(dst))
				}
				i++
			}
		})
		b.Run(fmt.Sprintf("Get/%dKiB", size>>10), func(b *testing.B) {
			c, keys := benchCache(b, size)
			b.ReportAllocs()
			b.SetBytes(int64(size))
			i := 0
			for b.Loop() {
				if _, st := c.Get(keys[i%len(keys)]); st != StatusHit {
					b.Fatal(st)
				}
				i++
			}
		})
	}
	b.Run("GetOrCompute/1KiB", func(b *testing.B) {
		c, keys := benchCache(b, 1<<10)
		compute := func(context.Context) ([]byte, time.Duration, error) { panic("miss") }
		ctx := context.Background()
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, st, err := c.GetOrCompute(ctx, keys[i%len(keys)], nil, compute); err != nil || st != StatusHit {
				b.Fatal(st, err)
			}
			i++
		}
	})
	b.Run("GetAppend/1KiB/parallel", func(b *testing.B) {
		c, keys := benchCache(b, 1<<10)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			dst := make([]byte, 0, 4096)
			i := rand.Intn(len(keys))
			for pb.Next() {
				dst, _ = c.GetAppend(dst[:0], keys[i%len(keys)])
				i++
			}
		})
	})
}

// BenchmarkGetLatency times each 1 KiB hit and reports the median and the
// 99th percentile (each sample includes two clock reads, ~40 ns).
func BenchmarkGetLatency(b *testing.B) {
	for _, name := range []string{"GetAppend", "Get"} {
		b.Run(name, func(b *testing.B) {
			c, keys := benchCache(b, 1<<10)
			dst := make([]byte, 0, 4096)
			samples := make([]time.Duration, 0, 1<<20)
			i := 0
			for b.Loop() {
				k := keys[i%len(keys)]
				start := time.Now()
				if name == "Get" {
					dst, _ = c.Get(k)
				} else {
					dst, _ = c.GetAppend(dst[:0], k)
				}
				if len(samples) < cap(samples) {
					samples = append(samples, time.Since(start))
				}
				i++
			}
			slices.Sort(samples)
			b.ReportMetric(float64(samples[len(samples)/2].Nanoseconds()), "p50-ns")
			b.ReportMetric(float64(samples[len(samples)*99/100].Nanoseconds()), "p99-ns")
		})
	}
}

// BenchmarkAlloc is the cost of the allocation Get makes, for comparison.
func BenchmarkAlloc(b *testing.B) {
	b.ReportAllocs()
	var sink []byte
	for b.Loop() {
		sink = make([]byte, 1280)
	}
	_ = sink
}

func BenchmarkSet(b *testing.B) {
	c, keys := benchCache(b, 1<<10)
	value := make([]byte, 1<<10)
	tags := []string{"m:cpu_usage:2026-11-20"}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := c.Set(keys[i%len(keys)], tags, c.Snapshot(), value, 0); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkInvalidate(b *testing.B) {
	c := newTestCache(b, newFakeClock())
	tags := make([]string, 4096)
	for i := range tags {
		tags[i] = fmt.Sprint("m:metric_", i, ":2026-11-20")
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		c.Invalidate(tags[i%len(tags)])
		i++
	}
}
