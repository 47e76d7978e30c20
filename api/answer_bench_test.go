package api

import (
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/strata-tsdb/strata/buffer"
	"github.com/strata-tsdb/strata/cache"
	"github.com/strata-tsdb/strata/ingest"
	"github.com/strata-tsdb/strata/internal/cputime"
	"github.com/strata-tsdb/strata/query"
)

// BenchmarkRangeHit serves a stored answer (X-Strata-Cache: hit) of the
// targets-query-warm queries through the API's handler, everything of a
// hit but net/http's reading of the request and the write to the socket:
// Echo's routing and middleware, the parameters, the frontend's analysis
// and key, the read of the stored bytes from the cache, the headers and
// the handing of the answer to the response writer. Data: 200 hosts × 12 h
// of cpu_usage_user at 10 s in an in-memory head. Besides ns/op it
// reports process CPU per hit (what a loaded machine inflates less than
// wall time).
func BenchmarkRangeHit(b *testing.B) {
	h := benchRangeAPI(b).Handler()
	end := time.Now().Truncate(time.Minute).Add(-5 * time.Minute)
	sec := func(t time.Time) string { return strconv.FormatInt(t.Unix(), 10) }
	for _, q := range []struct {
		name   string
		params url.Values
	}{
		{"avg-by-host-11h", url.Values{"query": {"avg by (host) (avg_over_time(cpu_usage_user[1h]))"},
			"start": {sec(end.Add(-11 * time.Hour))}, "end": {sec(end)}, "step": {"3600"}}},
		{"max-host-1h", url.Values{"query": {`max(max_over_time(cpu_usage_user{host="host_7"}[1m]))`},
			"start": {sec(end.Add(-time.Hour))}, "end": {sec(end)}, "step": {"60"}}},
	} {
		b.Run(q.name, func(b *testing.B) {
			// As net/http makes them: a new request and header map each time.
			base := httptest.NewRequest(http.MethodGet, "/api/v1/query_range?"+q.params.Encode(), nil)
			base.Header.Set("User-Agent", "loadtest")
			w := &discardWriter{}
			serve := func() {
				r := *base
				w.reset()
				h.ServeHTTP(w, &r)
				if w.status != http.StatusOK {
					b.Fatalf("status %d", w.status)
				}
			}
			serve() // the miss that caches the extents
			serve() // answered from the extents: the answer is stored
			serve()
			if c := w.header.Get(cacheHeader); c != "hit" {
				b.Fatalf("third answer: cache %q, want hit", c)
			}
			size := w.n
			cpu0, cpuOK := cputime.Process()
			b.ReportAllocs()
			for b.Loop() {
				serve()
			}
			if w.header.Get(cacheHeader) != "hit" || w.n != size {
				b.Fatalf("last answer: cache %q, %d bytes (want a hit of %d)", w.header.Get(cacheHeader), w.n, size)
			}
			if cpu1, ok := cputime.Process(); ok && cpuOK {
				b.ReportMetric(float64((cpu1-cpu0).Nanoseconds())/1000/float64(b.N), "cpu-µs/op")
			}
			b.ReportMetric(float64(size), "answer-bytes")
		})
	}
}

// discardWriter is a ResponseWriter that keeps the status, headers and
// size of the answer, not its bytes.
type discardWriter struct {
	header http.Header
	status int
	n      int
}

func (w *discardWriter) reset() { w.header, w.status, w.n = make(http.Header), 0, 0 }

func (w *discardWriter) Header() http.Header { return w.header }

func (w *discardWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}

func (w *discardWriter) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	w.n += len(p)
	return len(p), nil
}

// benchRangeAPI is the API over an in-memory head holding 200 hosts × 12 h
// of cpu_usage_user at 10 s (a random walk, fixed seed) up to a minute
// ago, with a result cache.
func benchRangeAPI(b *testing.B) *API {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	head, err := buffer.NewHead(buffer.Options{}, nil)
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	rng := rand.New(rand.NewPCG(1, 2))
	bt := &ingest.Batch{}
	for h := range 200 {
		s := ingest.Series{Labels: labels.FromStrings("__name__", "cpu_usage_user", "host", fmt.Sprintf("host_%d", h), "region", "eu-west-1")}
		v := 50.0
		for t := now.Add(-12 * time.Hour); t.Before(now.Add(-time.Minute)); t = t.Add(10 * time.Second) {
			v = min(max(v+rng.NormFloat64(), 0), 100)
			s.Samples = append(s.Samples, ingest.Sample{T: t.UnixMilli(), V: v})
		}
		bt.Series = append(bt.Series, s)
	}
	if err := head.Append(bt); err != nil {
		b.Fatal(err)
	}
	q := query.NewQueryable(head, nil)
	eng, err := query.NewEngine(logger, nil, q, query.Options{})
	if err != nil {
		b.Fatal(err)
	}
	c, err := cache.New(cache.DefaultOptions())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	fe, err := query.NewFrontend(eng, c, query.FrontendOptions{}, nil, nil, 0)
	if err != nil {
		b.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	a, err := New(logger, reg, reg, head, fe, q, DefaultOptions())
	if err != nil {
		b.Fatal(err)
	}
	return a
}
