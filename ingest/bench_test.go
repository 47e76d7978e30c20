package ingest

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"

	"github.com/strata-tsdb/strata/internal/cputime"
)

// benchRemoteWrite returns a remote write body like one Prometheus sends:
// 2,000 series of 5 samples each (10,000 samples), labels as a node
// exporter fleet has them.
func benchRemoteWrite(b *testing.B) ([]byte, int) {
	rng := rand.New(rand.NewPCG(1, 2))
	req := &prompb.WriteRequest{}
	n := 0
	for i := range 2000 {
		ts := prompb.TimeSeries{Labels: pl(
			"__name__", fmt.Sprintf("node_metric_%d_total", i%40),
			"cpu", strconv.Itoa(i%8),
			"env", "prod",
			"instance", fmt.Sprintf("10.0.%d.%d:9100", i/250, i%250),
			"job", "node",
			"region", []string{"eu-west-1", "us-east-1", "ap-south-1"}[i%3],
		)}
		for j := range 5 {
			ts.Samples = append(ts.Samples, prompb.Sample{Timestamp: 1_700_000_000_000 + int64(j)*15_000, Value: rng.Float64() * 1e6})
			n++
		}
		req.Timeseries = append(req.Timeseries, ts)
	}
	return encodeRW(b, req), n
}

func BenchmarkDecodeRemoteWrite(b *testing.B) {
	body, n := benchRemoteWrite(b)
	lim := DefaultLimits()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	r := startRate()
	for b.Loop() {
		if _, err := DecodeRemoteWrite(body, lim); err != nil {
			b.Fatal(err)
		}
	}
	r.report(b, n)
}

// benchLineProtocol returns 1,000 lines of 10 numeric fields (10,000
// samples) from 100 hosts. With racks, a host's lines carry 7 tag sets and
// nearly every sample starts a new series (7,000 series, as when many agents
// report once); without, each series gets 10 samples (1,000 series), which
// exercises merging.
func benchLineProtocol(racks bool) ([]byte, int) {
	rng := rand.New(rand.NewPCG(1, 2))
	var buf bytes.Buffer
	kinds := []string{"cpu", "mem", "disk", "net", "proc"}
	for i := range 1000 {
		fmt.Fprintf(&buf, "%s,host=server-%03d,region=%s", kinds[i%len(kinds)], i%100, []string{"eu-west", "us-east"}[i%2])
		if racks {
			fmt.Fprintf(&buf, ",rack=r%d", i%7)
		}
		buf.WriteByte(' ')
		for f := range 10 {
			if f > 0 {
				buf.WriteByte(',')
			}
			switch f % 3 {
			case 0:
				fmt.Fprintf(&buf, "field_%d=%g", f, rng.Float64()*100)
			case 1:
				fmt.Fprintf(&buf, "field_%d=%di", f, rng.Int64N(1e9))
			default:
				fmt.Fprintf(&buf, "field_%d=%du", f, rng.Uint64N(1e9))
			}
		}
		fmt.Fprintf(&buf, " %d\n", int64(1_700_000_000_000_000_000)+int64(i)*1e9)
	}
	return buf.Bytes(), 10_000
}

// benchLineProtocolAgents returns a body shaped as the targets-lp preset
// sends: 200 hosts with 6 tags, 5 lines each at successive timestamps
// (a host's lines together), 10 fields a line: 10,000 samples of 2,000
// series.
func benchLineProtocolAgents() ([]byte, int) {
	rng := rand.New(rand.NewPCG(1, 2))
	var buf bytes.Buffer
	for h := range 200 {
		for t := range 5 {
			fmt.Fprintf(&buf, "cpu,datacenter=dc%d,host=host-%04d,os=linux,rack=rack-%02d,region=region-%d,service=svc-%d ", h%3, h, h%40, h%4, h%7)
			for f := range 10 {
				if f > 0 {
					buf.WriteByte(',')
				}
				fmt.Fprintf(&buf, "usage_%d=%g", f, float64(rng.IntN(10000))/100)
			}
			fmt.Fprintf(&buf, " %d\n", int64(1_700_000_000_000)+int64(t)*10_000)
		}
	}
	return buf.Bytes(), 10_000
}

func BenchmarkDecodeLineProtocol(b *testing.B) {
	for _, bc := range []struct {
		name   string
		racks  bool
		agents bool
	}{{"series=7000", true, false}, {"series=1000", false, false}, {"agents", false, true}} {
		b.Run(bc.name, func(b *testing.B) {
			body, n := benchLineProtocol(bc.racks)
			if bc.agents {
				body, n = benchLineProtocolAgents()
			}
			lim := DefaultLimits()
			now := time.Now()
			precision := "ns"
			if bc.agents {
				precision = "ms"
			}
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			r := startRate()
			for b.Loop() {
				if _, err := DecodeLineProtocol(body, precision, now, lim); err != nil {
					b.Fatal(err)
				}
			}
			r.report(b, n)
		})
	}
}

func BenchmarkDecodeJSONLines(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	var buf bytes.Buffer
	for i := range 1000 {
		fmt.Fprintf(&buf, `{"metric":{"__name__":"m_%d","host":"server-%03d","job":"node"},"values":[`, i%10, i%100)
		for j := range 10 {
			if j > 0 {
				buf.WriteByte(',')
			}
			fmt.Fprintf(&buf, "%g", rng.Float64())
		}
		buf.WriteString(`],"timestamps":[`)
		for j := range 10 {
			if j > 0 {
				buf.WriteByte(',')
			}
			fmt.Fprintf(&buf, "%d", 1_700_000_000_000+int64(j)*1000)
		}
		buf.WriteString("]}\n")
	}
	body, lim := buf.Bytes(), DefaultLimits()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	r := startRate()
	for b.Loop() {
		if _, err := DecodeJSONLines(body, lim); err != nil {
			b.Fatal(err)
		}
	}
	r.report(b, 10_000)
}

func BenchmarkDecodePromText(b *testing.B) {
	body, lim, now := []byte(exposition), DefaultLimits(), time.Now()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	r := startRate()
	for b.Loop() {
		if _, err := DecodePromText(body, "", now, lim); err != nil {
			b.Fatal(err)
		}
	}
	r.report(b, 18)
}

// rate reports samples per second of wall time and per second of CPU time
// (user+system, all threads, GC included). On a shared machine the second
// is the steadier figure.
type rate struct{ cpu0 time.Duration }

func startRate() rate { return rate{cpu0: cpuTime()} }

func (r rate) report(b *testing.B, samplesPerOp int) {
	total := float64(samplesPerOp) * float64(b.N)
	b.ReportMetric(total/b.Elapsed().Seconds(), "samples/s")
	if cpu := cpuTime() - r.cpu0; cpu > 0 {
		b.ReportMetric(total/cpu.Seconds(), "samples/cpu-s")
	}
}

func cpuTime() time.Duration {
	d, _ := cputime.Process()
	return d
}

// benchShape returns the bodies of one batch Prometheus sends at its
// default max_samples_per_send: 2,000 series of one sample each, labels as
// a node exporter fleet has them, as remote write 1.0 and as 2.0 (with the
// metadata 2.0 carries for every series).
func benchShape(b *testing.B, ts int64) (v1, v2 []byte) {
	rng := rand.New(rand.NewPCG(1, 2))
	req := &prompb.WriteRequest{}
	r := newV2Request()
	for i := range 2000 {
		kv := []string{
			"__name__", fmt.Sprintf("node_metric_%d_total", i%40),
			"cpu", strconv.Itoa(i % 8),
			"env", "prod",
			"instance", fmt.Sprintf("10.0.%d.%d:9100", i/250, i%250),
			"job", "node",
			"region", []string{"eu-west-1", "us-east-1", "ap-south-1"}[i%3],
		}
		v := rng.Float64() * 1e6
		req.Timeseries = append(req.Timeseries, prompb.TimeSeries{Labels: pl(kv...), Samples: []prompb.Sample{{Timestamp: ts, Value: v}}})
		r.series(kv, Metadata{Type: "counter", Help: "A node metric."}, func(s *writev2.TimeSeries) {
			s.Samples = []writev2.Sample{{Value: v, Timestamp: ts}}
		})
	}
	return encodeRW(b, req), r.body(b)
}

// BenchmarkDecodeRemoteWriteVersions decodes the same 2,000 series × 1
// sample as remote write 1.0 and 2.0.
func BenchmarkDecodeRemoteWriteVersions(b *testing.B) {
	v1, v2 := benchShape(b, 1_700_000_000_000)
	lim := DefaultLimits()
	b.Run("v1", func(b *testing.B) {
		b.SetBytes(int64(len(v1)))
		b.ReportAllocs()
		r := startRate()
		for b.Loop() {
			if _, err := DecodeRemoteWrite(v1, lim); err != nil {
				b.Fatal(err)
			}
		}
		r.report(b, 2000)
	})
	b.Run("v2", func(b *testing.B) {
		b.SetBytes(int64(len(v2)))
		b.ReportAllocs()
		r := startRate()
		for b.Loop() {
			if _, _, err := DecodeRemoteWriteV2(v2, lim); err != nil {
				b.Fatal(err)
			}
		}
		r.report(b, 2000)
	})
}
