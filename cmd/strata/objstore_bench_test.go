package main

import (
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/strata-tsdb/strata/segments/remote/s3test"
)

// BenchmarkObjectStorageColdQuery: range queries over two days that only
// the bucket holds (2,000 series of 5-minute samples, day segments as
// the server compacts them, a versitygw on loopback), through the HTTP
// API with the result cache off, so that every query reads the storage.
// "first" is a query after a restart with the read cache emptied (every
// byte fetched by ranged GETs); "second" asks again (the blocks on local
// disk, and in the OS page cache). one-series reads one series,
// all-series aggregates every series at a 1h step. It reports the GETs and
// bytes fetched per query, and the CPU time of this process (the server
// runs in it; versitygw's is its own) per query, which the machine's load
// inflates less than wall time.
func BenchmarkObjectStorageColdQuery(b *testing.B) {
	srv := s3test.Start(b)
	b.Setenv("AWS_ACCESS_KEY_ID", s3test.AccessKey)
	b.Setenv("AWS_SECRET_ACCESS_KEY", s3test.SecretKey)
	dir := b.TempDir()
	s := startServer(b, dir, objArgs(srv.URL("bq"))...)
	rangedWrite(b, s.url, objT0, objT0.Add(2*24*time.Hour+2*time.Hour))
	if code, body := s.post("/api/v1/admin/tsdb/flush", "", nil); code/100 != 2 {
		b.Fatalf("flush: %d %s", code, body)
	}
	waitDaysSettled(b, s, srv, "bq", 2)
	s.stop()
	restart := func() {
		b.Helper()
		s.stop()
		if err := os.RemoveAll(filepath.Join(dir, "object-storage", "cache")); err != nil {
			b.Fatal(err)
		}
		s = startServer(b, dir, objArgs(srv.URL("bq"), "--storage.local.keep", "1h")...)
		waitUntil(b, "the uploaded days are read from the bucket alone", func() bool {
			return len(localSegmentsBefore(s, objT0.Add(2*24*time.Hour))) == 0 && s.metric("", "strata_object_bucket_up") == 1
		})
	}
	restart()
	for _, q := range []struct {
		name string
		v    url.Values
	}{
		{"one-series", url.Values{"query": {`ranged_metric{i="s0007"}`}, "step": {"7m"}}},
		{"all-series", url.Values{"query": {`avg(avg_over_time(ranged_metric[1h]))`}, "step": {"1h"}}},
	} {
		q.v.Set("start", objT0.Format(time.RFC3339))
		q.v.Set("end", objT0.Add(2*24*time.Hour-time.Minute).Format(time.RFC3339))
		ask := func(b *testing.B) {
			code, body := s.do(mustGet(b, s.url+"/api/v1/query_range?"+q.v.Encode()))
			if code != http.StatusOK || len(body) < 100 {
				b.Fatalf("%s: %d %s", q.name, code, body)
			}
		}
		var gets, fetched, cpu float64
		// measure times f alone: the scrapes of /metrics around it are not.
		measure := func(b *testing.B, f func()) {
			b.StopTimer()
			g0, n0 := s.metric("", "strata_object_read_requests_total"), s.metric("", "strata_object_fetched_bytes_total")
			c0 := processCPU(b)
			b.StartTimer()
			f()
			b.StopTimer()
			cpu += processCPU(b) - c0
			gets += s.metric("", "strata_object_read_requests_total") - g0
			fetched += s.metric("", "strata_object_fetched_bytes_total") - n0
			b.StartTimer()
		}
		report := func(b *testing.B) {
			b.ReportMetric(gets/float64(b.N), "GETs/op")
			b.ReportMetric(fetched/float64(b.N), "fetched-bytes/op")
			b.ReportMetric(cpu*1000/float64(b.N), "cpu-ms/op")
		}
		b.Run(q.name+"/first", func(b *testing.B) {
			gets, fetched, cpu = 0, 0, 0
			for range b.N {
				b.StopTimer()
				restart()
				b.StartTimer()
				measure(b, func() { ask(b) })
			}
			b.StopTimer()
			report(b)
		})
		b.Run(q.name+"/second", func(b *testing.B) {
			ask(b)
			gets, fetched, cpu = 0, 0, 0
			b.ResetTimer()
			for range b.N {
				measure(b, func() { ask(b) })
			}
			b.StopTimer()
			report(b)
		})
	}
}

// processCPU returns the user and system CPU seconds this process spent.
func processCPU(b *testing.B) float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}
