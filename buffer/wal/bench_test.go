package wal

import (
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strata-tsdb/strata/internal/cputime"
)

const benchSamplesPerRecord = 10_000

// benchSamples returns a realistic samples record body: one scrape of n
// series (refs base..base+n-1, one timestamp), half counters, half gauges.
func benchSamples(rng *rand.Rand, base uint64, t int64, n int) []RefSample {
	s := make([]RefSample, n)
	for i := range s {
		v := float64(rng.IntN(1_000_000)) // counter-like
		if i%2 == 1 {
			v = rng.Float64() * 100 // gauge-like
		}
		s[i] = RefSample{Ref: base + uint64(i), T: t, V: v}
	}
	return s
}

// BenchmarkLogSyncAlways measures group commit: each op is one Log of a
// record of 10,000 samples, issued by a fixed number of writers.
func BenchmarkLogSyncAlways(b *testing.B) {
	for _, writers := range []int{4, 16} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			m := NewMetrics(nil)
			w := newTestWAL(b, Options{Metrics: m})
			recs := make([][]byte, writers)
			rng := rand.New(rand.NewPCG(1, 2))
			for i := range recs {
				recs[i] = EncodeSamples(nil, benchSamples(rng, uint64(i*benchSamplesPerRecord), 1_700_000_000_000, benchSamplesPerRecord))
			}
			b.ReportAllocs()
			b.SetBytes(int64(len(recs[0])))
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			start := time.Now()
			for g := range writers {
				wg.Go(func() {
					for next.Add(1) <= int64(b.N) {
						if err := w.Log(recs[g]); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(b.N)*benchSamplesPerRecord/elapsed.Seconds(), "samples/s")
			b.ReportMetric(counterValue(b, m.Fsyncs)/float64(b.N), "fsyncs/op")
		})
	}
}

// BenchmarkReplay measures replaying and decoding a WAL of 1.2M samples
// (120 records of 10,000), as the head does on start.
func BenchmarkReplay(b *testing.B) {
	const records = 120
	dir := b.TempDir()
	w, err := Open(nil, dir, Options{SegmentSize: 16 << 20, SyncMode: SyncInterval})
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	var rec []byte
	for i := range records {
		s := benchSamples(rng, 0, 1_700_000_000_000+int64(i)*15_000, benchSamplesPerRecord)
		rec = EncodeSamples(rec[:0], s)
		if err := w.Log(rec); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(w.Size())
	var samples []RefSample
	n := 0
	start := time.Now()
	for b.Loop() {
		n = 0
		err := Replay(nil, dir, 0, func(rec []byte) error {
			var err error
			samples, err = DecodeSamples(rec, samples[:0])
			n += len(samples)
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	if n != records*benchSamplesPerRecord {
		b.Fatalf("replayed %d samples, want %d", n, records*benchSamplesPerRecord)
	}
	b.ReportMetric(float64(b.N)*float64(n)/time.Since(start).Seconds(), "samples/s")
	b.ReportMetric(float64(w.Size())/float64(n), "bytes/sample")
}

// BenchmarkAppendFrame measures framing a samples record as the head
// logs it for a request of targets-rw-prom's shape (2,000 series, one
// sample each, consecutive refs, one timestamp; CPU percentages at full
// precision, two in ten of them 0): snappy compression and checksum. It
// reports the CPU time and framed bytes per sample.
func BenchmarkAppendFrame(b *testing.B) {
	const n = 2000
	rng := rand.New(rand.NewPCG(3, 4))
	s := make([]RefSample, n)
	for i := range s {
		s[i] = RefSample{Ref: 5000 + uint64(i), T: 1_700_000_000_000}
		if i%10 < 8 {
			s[i].V = rng.Float64() * 100
		}
	}
	rec := EncodeSamples(nil, s)
	var dst []byte
	b.ReportAllocs()
	cpu0, cpuOK := cputime.Process()
	for b.Loop() {
		dst = appendFrame(dst[:0], rec)
	}
	if cpu1, ok := cputime.Process(); ok && cpuOK {
		b.ReportMetric(float64((cpu1-cpu0).Nanoseconds())/float64(b.N*n), "cpu-ns/sample")
	}
	b.ReportMetric(float64(len(dst))/n, "bytes/sample")
}

// BenchmarkLogExpect measures what announcing calls (Expect) does to
// group commit when writers spend CPU time before each Log, as a write
// request decodes its body: 4 writers, each op one call of a 2,000-sample
// record after about a millisecond of work (checksums over 256 KiB, a
// decoded request's size). With "announced" each writer calls Expect
// before its work and Done once its records are queued. It reports fsyncs
// and calls per commit, and the process's CPU time per op. Run it with TMPDIR on a real disk: where an fsync
// costs nothing (tmpfs), a commit waits about nothing.
func BenchmarkLogExpect(b *testing.B) {
	for _, announced := range []bool{false, true} {
		b.Run(fmt.Sprintf("announced=%v", announced), func(b *testing.B) {
			const writers = 4
			m := NewMetrics(nil)
			w := newTestWAL(b, Options{Metrics: m})
			rng := rand.New(rand.NewPCG(1, 2))
			rec := EncodeSamples(nil, benchSamples(rng, 0, 1_700_000_000_000, 2000))
			body := make([]byte, 256<<10)
			for i := range body {
				body[i] = byte(rng.Uint32())
			}
			var next atomic.Int64
			var sink atomic.Uint32
			var wg sync.WaitGroup
			b.ReportAllocs()
			b.ResetTimer()
			cpu0, cpuOK := cputime.Process()
			for range writers {
				wg.Go(func() {
					for next.Add(1) <= int64(b.N) {
						var x Expected
						if announced {
							x = w.Expect()
						}
						for range 32 { // the decoding
							sink.Add(crc32.Checksum(body, castagnoli))
						}
						p := w.Enqueue(rec)
						x.Done()
						if err := p.Wait(); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			if cpu1, ok := cputime.Process(); ok && cpuOK {
				b.ReportMetric(float64((cpu1-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
			}
			b.ReportMetric(counterValue(b, m.Fsyncs)/float64(b.N), "fsyncs/op")
			b.ReportMetric(float64(b.N)/float64(histogramCount(b, m.CommitSize)), "calls/commit")
		})
	}
}
