package main

import (
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"

	"github.com/strata-tsdb/strata/internal/cputime"
)

// BenchmarkWarmRangeHTTP answers TARGETS.md's two warm (cached) range
// queries through the real server over loopback, as the targets-query-warm
// preset sends them: `avg by (host) (avg_over_time(x[1h]))` over 11 h at
// 1 h steps (200 series × 12 points) and one host's
// `max_over_time(x{host=…}[1m])` over 1 h at 60 s, on 200 hosts of 10 s
// fractional data. Every query was answered once before, so each is a
// cache hit. The client reads the whole body, plain (as the load
// generator asks: it disables compression) or gzipped (Go's default
// client, which inflates it as it reads); allocations and CPU count client
// and server, which share the process. It reports the process's CPU per
// query (client and server) and the client's p50 and p99.
//
//	go test ./cmd/strata -run '^$' -bench WarmRangeHTTP -benchmem -benchtime 2000x
func BenchmarkWarmRangeHTTP(b *testing.B) {
	s := startServer(b, "")
	now := time.Now().Truncate(time.Second)
	const hosts, step = 200, 10 * time.Second
	from := now.Add(-12 * time.Hour)
	rng := rand.New(rand.NewPCG(1, 2))
	for h := range hosts {
		ts := prompb.TimeSeries{Labels: []prompb.Label{
			{Name: "__name__", Value: "cpu_usage_user"},
			{Name: "arch", Value: "x64"},
			{Name: "datacenter", Value: "eu-west-1a"},
			{Name: "host", Value: "host_" + strconv.Itoa(h)},
			{Name: "os", Value: "Ubuntu16.04LTS"},
			{Name: "rack", Value: strconv.Itoa(h % 100)},
			{Name: "region", Value: "eu-west-1"},
			{Name: "service", Value: strconv.Itoa(h % 20)},
			{Name: "service_environment", Value: "production"},
			{Name: "service_version", Value: "1"},
			{Name: "team", Value: "SF"},
		}}
		v := 50.0
		for t := from; t.Before(now.Add(-time.Minute)); t = t.Add(step) {
			v = min(max(v+rng.NormFloat64(), 0), 100)
			ts.Samples = append(ts.Samples, prompb.Sample{Timestamp: t.UnixMilli(), Value: v})
		}
		raw, err := (&prompb.WriteRequest{Timeseries: []prompb.TimeSeries{ts}}).Marshal()
		if err != nil {
			b.Fatal(err)
		}
		if code, body := s.post("/api/v1/write", "application/x-protobuf", snappy.Encode(nil, raw)); code/100 != 2 {
			b.Fatalf("write: %d %s", code, body)
		}
	}
	end := now.Add(-5 * time.Minute)
	sec := func(t time.Time) string { return strconv.FormatInt(t.Unix(), 10) }
	for _, q := range []struct {
		name     string
		params   url.Values
		min, max int // answer size, to check it is the whole answer
	}{
		{"avg-by-host-11h", url.Values{"query": {"avg by (host) (avg_over_time(cpu_usage_user[1h]))"},
			"start": {sec(end.Add(-11 * time.Hour))}, "end": {sec(end)}, "step": {"3600"}}, 200 * 12 * 20, 200 * 12 * 40},
		{"max-host-1h", url.Values{"query": {`max_over_time(cpu_usage_user{host="host_7"}[1m])`},
			"start": {sec(end.Add(-time.Hour))}, "end": {sec(end)}, "step": {"60"}}, 61 * 20, 61*40 + 400},
	} {
		for _, client := range []struct {
			name string
			c    *http.Client
		}{{"plain", &http.Client{Transport: &http.Transport{DisableCompression: true}}}, {"gzip", http.DefaultClient}} {
			b.Run(q.name+"/"+client.name, func(b *testing.B) {
				u := s.url + "/api/v1/query_range?" + q.params.Encode()
				get := func() (string, int) {
					resp, err := client.c.Get(u)
					if err != nil {
						b.Fatal(err)
					}
					body, err := io.ReadAll(resp.Body)
					resp.Body.Close()
					if err != nil || resp.StatusCode != http.StatusOK {
						b.Fatalf("query: %d %v %s", resp.StatusCode, err, body)
					}
					return resp.Header.Get("X-Strata-Cache"), len(body)
				}
				get() // the miss that fills the cache
				if c, n := get(); c != "hit" || n < q.min || n > q.max {
					b.Fatalf("second answer: cache %q, %d bytes (want a hit of %d to %d bytes)", c, n, q.min, q.max)
				}
				var lat []time.Duration
				cpu0, cpuOK := cputime.Process()
				b.ReportAllocs()
				for b.Loop() {
					t0 := time.Now()
					if c, _ := get(); c != "hit" {
						b.Fatalf("cache %q, want hit", c)
					}
					lat = append(lat, time.Since(t0))
				}
				if cpu1, ok := cputime.Process(); ok && cpuOK {
					b.ReportMetric(float64((cpu1-cpu0).Nanoseconds())/1000/float64(b.N), "cpu-µs/op")
				}
				slices.Sort(lat)
				b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
				b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
			})
		}
	}
}
