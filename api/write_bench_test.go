package api

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"testing"

	"github.com/golang/snappy"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"

	"github.com/strata-tsdb/strata/buffer"
	"github.com/strata-tsdb/strata/internal/cputime"
	"github.com/strata-tsdb/strata/query"
	"github.com/strata-tsdb/strata/segments"
)

// rwShape returns the remote write body of 2,000 series × 1 sample at ts
// (the batch Prometheus sends at its default max_samples_per_send), as 1.0
// or as 2.0 with the metadata 2.0 carries for every series.
func rwShape(b *testing.B, v2 bool, ts int64) []byte {
	var (
		req1 prompb.WriteRequest
		req2 writev2.Request
		st   = writev2.NewSymbolTable()
	)
	for i := range 2000 {
		lset := labels.FromStrings(
			"__name__", fmt.Sprintf("node_metric_%d_total", i%40),
			"cpu", strconv.Itoa(i%8),
			"env", "prod",
			"instance", fmt.Sprintf("10.0.%d.%d:9100", i/250, i%250),
			"job", "node",
			"region", []string{"eu-west-1", "us-east-1", "ap-south-1"}[i%3],
		)
		v := float64(i) * 1.5
		if v2 {
			req2.Timeseries = append(req2.Timeseries, writev2.TimeSeries{
				LabelsRefs: st.SymbolizeLabels(lset, nil),
				Samples:    []writev2.Sample{{Value: v, Timestamp: ts}},
				Metadata:   writev2.Metadata{Type: writev2.Metadata_METRIC_TYPE_COUNTER, HelpRef: st.Symbolize("A node metric.")},
			})
			continue
		}
		var pl []prompb.Label
		lset.Range(func(l labels.Label) { pl = append(pl, prompb.Label{Name: l.Name, Value: l.Value}) })
		req1.Timeseries = append(req1.Timeseries, prompb.TimeSeries{Labels: pl, Samples: []prompb.Sample{{Timestamp: ts, Value: v}}})
	}
	var (
		raw []byte
		err error
	)
	if v2 {
		req2.Symbols = st.Symbols()
		raw, err = req2.Marshal()
	} else {
		raw, err = req1.Marshal()
	}
	if err != nil {
		b.Fatal(err)
	}
	return snappy.Encode(nil, raw)
}

// BenchmarkRemoteWriteVersions serves remote write 1.0 and 2.0 requests of
// 2,000 series × 1 sample through the API's handler: decoding, validation,
// append, answer. "head" appends to an in-memory head without a
// write-ahead log; "wal" to a store whose log fsyncs every request before
// the answer (the server's default). Each request carries the next
// timestamp of the same series, as a Prometheus sends.
func BenchmarkRemoteWriteVersions(b *testing.B) {
	for _, durable := range []bool{false, true} {
		for _, v2 := range []bool{false, true} {
			name, ctype := "v1", "application/x-protobuf;proto=prometheus.WriteRequest"
			if v2 {
				name, ctype = "v2", "application/x-protobuf;proto=io.prometheus.write.v2.Request"
			}
			mode := "head"
			if durable {
				mode = "wal"
			}
			b.Run(mode+"/"+name, func(b *testing.B) {
				h := benchWriteAPI(b, durable).Handler()
				b.ReportAllocs()
				for i := 0; i < b.N; i++ {
					b.StopTimer()
					body := rwShape(b, v2, 1_700_000_000_000+int64(i)*15_000)
					req := httptest.NewRequest(http.MethodPost, "/api/v1/write", bytes.NewReader(body))
					req.Header.Set("Content-Type", ctype)
					req.Header.Set("Content-Encoding", "snappy")
					rec := httptest.NewRecorder()
					b.StartTimer()
					h.ServeHTTP(rec, req)
					if rec.Code != http.StatusNoContent {
						b.Fatalf("%d %s", rec.Code, rec.Body)
					}
				}
				b.ReportMetric(float64(2000*b.N)/b.Elapsed().Seconds(), "samples/s")
			})
		}
	}
}

// benchWriteAPI is the API over an in-memory head, or over a store with a
// write-ahead log in a temporary directory.
func benchWriteAPI(b *testing.B, durable bool) *API {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if !durable {
		a, _ := newTestAPI(b, logger, query.Options{}, DefaultOptions())
		return a
	}
	dir := b.TempDir()
	set, err := segments.OpenSet(logger, filepath.Join(dir, "segments"))
	if err != nil {
		b.Fatal(err)
	}
	st, err := buffer.OpenStore(logger, dir, buffer.DefaultStoreOptions(), set, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = st.Close(context.Background())
		_ = set.Close()
	})
	q := query.NewQueryable(st.Head(), nil)
	eng, err := query.NewEngine(logger, nil, q, query.Options{})
	if err != nil {
		b.Fatal(err)
	}
	fe, err := query.NewFrontend(eng, nil, query.FrontendOptions{}, nil, nil, 0)
	if err != nil {
		b.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	a, err := New(logger, reg, reg, st, fe, q, DefaultOptions())
	if err != nil {
		b.Fatal(err)
	}
	return a
}

// BenchmarkRemoteWritePromShape serves the targets-rw-prom shape through
// the API's handler, as the server runs it: 4 writers at once, each
// sending requests of its own 2,000 series × 1 sample (8,000 series),
// every request the next timestamp of its writer's series, into a store
// whose log fsyncs before each answer. The bodies are made before the
// timer starts. Besides ns/op (one request), it reports process CPU per
// sample (what a loaded machine inflates less than wall time) and heap
// allocations per series.
func BenchmarkRemoteWritePromShape(b *testing.B) {
	const writers = 4
	h := benchWriteAPI(b, true).Handler()
	per := (b.N + writers - 1) / writers
	bodies := make([][][]byte, writers)
	for w := range bodies {
		bodies[w] = make([][]byte, per)
		for i := range per {
			bodies[w][i] = promShapeBody(b, w, 1_700_000_000_000+int64(i)*10_000)
		}
	}
	var ms0, ms1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms0)
	cpu0, cpuOK := cputime.Process()
	b.ReportAllocs()
	b.ResetTimer()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for _, body := range bodies[w] {
				req := httptest.NewRequest(http.MethodPost, "/api/v1/write", bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/x-protobuf;proto=prometheus.WriteRequest")
				req.Header.Set("Content-Encoding", "snappy")
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != http.StatusNoContent {
					b.Errorf("%d %s", rec.Code, rec.Body)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	runtime.ReadMemStats(&ms1)
	samples := float64(writers * per * 2000)
	b.ReportMetric(samples/b.Elapsed().Seconds(), "samples/s")
	b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/samples, "allocs/series")
	if cpu1, ok := cputime.Process(); ok && cpuOK {
		b.ReportMetric(float64((cpu1-cpu0).Nanoseconds())/samples, "cpu-ns/sample")
	}
}

// promShapeBody is the remote write 1.0 body writer w sends at ts: 2,000
// series of a node exporter fleet (6 labels), one sample each, labels in
// the order Prometheus sends them (sorted).
func promShapeBody(b *testing.B, w int, ts int64) []byte {
	var req prompb.WriteRequest
	for i := range 2000 {
		lset := labels.FromStrings(
			"__name__", fmt.Sprintf("node_metric_%d_total", i%40),
			"cpu", strconv.Itoa(i%8),
			"env", "prod",
			"instance", fmt.Sprintf("10.%d.%d.%d:9100", w, i/250, i%250),
			"job", "node",
			"region", []string{"eu-west-1", "us-east-1", "ap-south-1"}[i%3],
		)
		var pl []prompb.Label
		lset.Range(func(l labels.Label) { pl = append(pl, prompb.Label{Name: l.Name, Value: l.Value}) })
		req.Timeseries = append(req.Timeseries, prompb.TimeSeries{Labels: pl, Samples: []prompb.Sample{{Timestamp: ts, Value: float64(ts/10_000%1000) + float64(i)}}})
	}
	raw, err := req.Marshal()
	if err != nil {
		b.Fatal(err)
	}
	return snappy.Encode(nil, raw)
}
