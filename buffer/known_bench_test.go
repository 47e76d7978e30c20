package buffer

import (
	"fmt"
	"strconv"
	"testing"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"

	"github.com/strata-tsdb/strata/ingest"
)

// BenchmarkDecodeRemoteWriteKnown decodes a request of 2,000 series × 1
// sample (Prometheus' shape, node exporter labels) whose series the head
// holds: "plain" without the head's help, "known" with it
// (ingest.DecodeRemoteWriteKnown), "cached" with it and an
// ingest.SeriesCache that remembers them. Decoding only; the append is
// BenchmarkStoreAppend's and the API's BenchmarkRemoteWritePromShape's.
func BenchmarkDecodeRemoteWriteKnown(b *testing.B) {
	req := &prompb.WriteRequest{}
	for i := range 2000 {
		req.Timeseries = append(req.Timeseries, prompb.TimeSeries{
			Labels: []prompb.Label{
				{Name: "__name__", Value: fmt.Sprintf("node_metric_%d_total", i%40)},
				{Name: "cpu", Value: strconv.Itoa(i % 8)},
				{Name: "env", Value: "prod"},
				{Name: "instance", Value: fmt.Sprintf("10.0.%d.%d:9100", i/250, i%250)},
				{Name: "job", Value: "node"},
				{Name: "region", Value: []string{"eu-west-1", "us-east-1", "ap-south-1"}[i%3]},
			},
			Samples: []prompb.Sample{{Timestamp: 1_700_000_000_000, Value: float64(i)}},
		})
	}
	raw, err := req.Marshal()
	if err != nil {
		b.Fatal(err)
	}
	body := snappy.Encode(nil, raw)
	lim := ingest.DefaultLimits()
	h, err := NewHead(Options{}, nil)
	if err != nil {
		b.Fatal(err)
	}
	first, err := ingest.DecodeRemoteWrite(body, lim)
	if err != nil {
		b.Fatal(err)
	}
	if err := h.Append(first); err != nil {
		b.Fatal(err)
	}
	cache := ingest.NewSeriesCache(lim, h, ingest.DefaultSeriesCacheSlots)
	if _, err := cache.DecodeRemoteWrite(body); err != nil { // the series are remembered
		b.Fatal(err)
	}
	for _, name := range []string{"plain", "known", "cached"} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var err error
				switch name {
				case "known":
					_, err = ingest.DecodeRemoteWriteKnown(body, lim, h)
				case "cached":
					_, err = cache.DecodeRemoteWrite(body)
				default:
					_, err = ingest.DecodeRemoteWrite(body, lim)
				}
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*2000), "ns/series")
		})
	}
}
