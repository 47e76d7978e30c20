package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"

	"github.com/strata-tsdb/strata/ingest"
)

// BenchmarkWriteHTTP2000x1 posts the batch shape Prometheus and an OTel SDK
// send, 2,000 series × 1 sample (50 instances × 40 gauges), to the real
// server as OTLP (protobuf) and as remote write 1.0 carrying the very
// series the OTLP request becomes (target_info included), and reports
// samples/s through decoding, the WAL's fsync and the head. The requests
// cycle through 64 bodies 15 s apart (past 64 iterations, rewrites of the
// same timestamps, alike for both formats). Allocations count the client
// too: it runs in the same process.
//
//	go test ./cmd/strata -run '^$' -bench WriteHTTP2000x1 -benchtime 200x
func BenchmarkWriteHTTP2000x1(b *testing.B) {
	t0 := time.Now().Add(-time.Hour).Truncate(time.Second)
	otlpBody := func(t time.Time) []byte {
		md := pmetric.NewMetrics()
		for inst := range 50 {
			rm := md.ResourceMetrics().AppendEmpty()
			rm.Resource().Attributes().PutStr("service.name", "node")
			rm.Resource().Attributes().PutStr("service.instance.id", fmt.Sprintf("10.0.%d.%d:9100", inst/25, inst%25))
			rm.Resource().Attributes().PutStr("host.name", "host-"+strconv.Itoa(inst))
			ms := rm.ScopeMetrics().AppendEmpty().Metrics()
			for m := range 40 {
				g := ms.AppendEmpty()
				g.SetName(fmt.Sprintf("node.metric.%d", m))
				dp := g.SetEmptyGauge().DataPoints().AppendEmpty()
				dp.SetTimestamp(pcommonTime(t))
				dp.SetDoubleValue(float64(inst*40 + m))
				dp.Attributes().PutStr("cpu", strconv.Itoa(m%8))
				dp.Attributes().PutStr("env", "prod")
			}
		}
		body, err := pmetricotlp.NewExportRequestFromMetrics(md).MarshalProto()
		if err != nil {
			b.Fatal(err)
		}
		return body
	}
	rwBody := func(t time.Time) ([]byte, int) {
		batch, _, err := ingest.DecodeOTLP(context.Background(), otlpBody(t), ingest.OTLPProtobuf, ingest.DefaultOTLPOptions(), ingest.DefaultLimits())
		if err != nil {
			b.Fatal(err)
		}
		req := &prompb.WriteRequest{}
		for _, s := range batch.Series {
			ts := prompb.TimeSeries{}
			s.Labels.Range(func(l labels.Label) { ts.Labels = append(ts.Labels, prompb.Label{Name: l.Name, Value: l.Value}) })
			for _, x := range s.Samples {
				ts.Samples = append(ts.Samples, prompb.Sample{Timestamp: x.T, Value: x.V})
			}
			req.Timeseries = append(req.Timeseries, ts)
		}
		raw, err := req.Marshal()
		if err != nil {
			b.Fatal(err)
		}
		return snappy.Encode(nil, raw), batch.NumSamples()
	}
	for _, f := range []struct {
		name, path, ct string
		body           func(time.Time) ([]byte, int)
		ok             int
	}{
		{"format=rw1", "/api/v1/write", "application/x-protobuf", rwBody, http.StatusNoContent},
		{"format=otlp", "/api/v1/otlp/v1/metrics", ingest.OTLPProtobuf, func(t time.Time) ([]byte, int) {
			body := otlpBody(t)
			_, n := rwBody(t)
			return body, n
		}, http.StatusOK},
	} {
		b.Run(f.name, func(b *testing.B) {
			s := startServer(b, "")
			bodies := make([][]byte, 0, 64)
			n := 0
			for i := range cap(bodies) {
				var body []byte
				body, n = f.body(t0.Add(time.Duration(i) * 15 * time.Second))
				bodies = append(bodies, body)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				resp, err := http.Post(s.url+f.path, f.ct, bytes.NewReader(bodies[i%len(bodies)]))
				if err != nil {
					b.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != f.ok {
					b.Fatalf("status %d", resp.StatusCode)
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "samples/s")
		})
	}
}
