package ingest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// Bench2000x1 is the batch shape Prometheus sends and an OTel SDK exports
// once per interval: 2,000 series of one sample each, from 50 instances of
// 40 metrics, as remote write 1.0 and as OTLP (protobuf) carry them. The
// OTLP body also has one resource per instance with a host.name, which
// makes 50 target_info samples on top of the 2,000 data points.
func Bench2000x1(tb testing.TB) (rw []byte, otlp []byte) {
	rng := rand.New(rand.NewPCG(1, 2))
	t := time.UnixMilli(1_700_000_000_000)
	req := &prompb.WriteRequest{}
	md := pmetric.NewMetrics()
	for inst := range 50 {
		instance := fmt.Sprintf("10.0.%d.%d:9100", inst/25, inst%25)
		rm := md.ResourceMetrics().AppendEmpty()
		rm.Resource().Attributes().PutStr("service.name", "node")
		rm.Resource().Attributes().PutStr("service.instance.id", instance)
		rm.Resource().Attributes().PutStr("host.name", "host-"+strconv.Itoa(inst))
		ms := rm.ScopeMetrics().AppendEmpty().Metrics()
		for m := range 40 {
			v := rng.Float64() * 1e6
			cpu, region := strconv.Itoa(m%8), []string{"eu-west-1", "us-east-1", "ap-south-1"}[inst%3]
			req.Timeseries = append(req.Timeseries, prompb.TimeSeries{
				Labels:  pl("__name__", fmt.Sprintf("node_metric_%d", m), "cpu", cpu, "env", "prod", "instance", instance, "job", "node", "region", region),
				Samples: []prompb.Sample{{Timestamp: t.UnixMilli(), Value: v}},
			})
			g := ms.AppendEmpty()
			g.SetName(fmt.Sprintf("node.metric.%d", m))
			dp := g.SetEmptyGauge().DataPoints().AppendEmpty()
			dp.SetTimestamp(pcommon.NewTimestampFromTime(t))
			dp.SetDoubleValue(v)
			dp.Attributes().PutStr("cpu", cpu)
			dp.Attributes().PutStr("env", "prod")
			dp.Attributes().PutStr("region", region)
		}
	}
	return encodeRW(tb, req), marshalOTLP(tb, md, OTLPProtobuf)
}

// BenchmarkDecode2000x1 decodes the same 2,000 series × 1 sample as remote
// write 1.0 and as OTLP: samples/s counts the samples of the batch (for
// OTLP the 2,000 data points and the 50 target_info samples).
func BenchmarkDecode2000x1(b *testing.B) {
	rw, otlp := Bench2000x1(b)
	lim := DefaultLimits()
	b.Run("format=rw1", func(b *testing.B) {
		b.SetBytes(int64(len(rw)))
		b.ReportAllocs()
		r := startRate()
		n := 0
		for b.Loop() {
			batch, err := DecodeRemoteWrite(rw, lim)
			if err != nil {
				b.Fatal(err)
			}
			n = batch.NumSamples()
		}
		r.report(b, n)
	})
	b.Run("format=otlp", func(b *testing.B) {
		b.SetBytes(int64(len(otlp)))
		b.ReportAllocs()
		r := startRate()
		n := 0
		ctx, opts := context.Background(), DefaultOTLPOptions()
		for b.Loop() {
			batch, _, err := DecodeOTLP(ctx, otlp, OTLPProtobuf, opts, lim)
			if err != nil {
				b.Fatal(err)
			}
			n = batch.NumSamples()
		}
		r.report(b, n)
	})
}
