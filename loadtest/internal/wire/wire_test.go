package wire

import (
	"math"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/influxdata/line-protocol/v2/lineprotocol"
	"github.com/prometheus/prometheus/prompb"

	"github.com/strata-tsdb/strata/loadtest/internal/gen"
)

// testBatches yields a few batches of every family, with values that
// exercise the encodings (large counters, whole and fractional floats).
func testBatches(t *testing.T, f func(b *gen.Batch)) {
	t.Helper()
	g, err := gen.New(gen.Options{Hosts: 5, Seed: 9, ResetProbability: 0.05})
	if err != nil {
		t.Fatal(err)
	}
	s, err := g.Stream(0, 1, gen.Schedule{Start: time.Unix(1_700_000_000, 0), Interval: 10 * time.Second, Steps: 6, BatchSamples: 200})
	if err != nil {
		t.Fatal(err)
	}
	var b gen.Batch
	n := 0
	for s.Next(&b) {
		f(&b)
		n++
	}
	if n < 3 {
		t.Fatalf("only %d batches", n)
	}
}

func TestRemoteWriteDecodesWithPrompb(t *testing.T) {
	enc, _ := NewEncoder(RemoteWrite)
	testBatches(t, func(b *gen.Batch) {
		raw, err := snappy.Decode(nil, enc.Encode(b))
		if err != nil {
			t.Fatal(err)
		}
		var req prompb.WriteRequest
		if err := req.Unmarshal(raw); err != nil {
			t.Fatal(err)
		}
		if len(req.Timeseries) != b.Series() {
			t.Fatalf("%d series, want %d", len(req.Timeseries), b.Series())
		}
		k := 0
		for i, gr := range b.Groups {
			for f := range gr.Family.Fields {
				ts := req.Timeseries[k]
				k++
				want := gr.SeriesLabels(f)
				if len(ts.Labels) != len(want) {
					t.Fatalf("labels %v, want %v", ts.Labels, want)
				}
				for j, l := range ts.Labels {
					if l.Name != want[j].Name || l.Value != want[j].Value {
						t.Fatalf("label %d: %v, want %v", j, l, want[j])
					}
				}
				if len(ts.Samples) != len(b.Times) {
					t.Fatalf("%d samples, want %d", len(ts.Samples), len(b.Times))
				}
				for ti, s := range ts.Samples {
					if s.Timestamp != b.Times[ti] || math.Float64bits(s.Value) != math.Float64bits(b.Value(i, f, ti)) {
						t.Fatalf("sample %d: %v, want %v@%d", ti, s, b.Value(i, f, ti), b.Times[ti])
					}
				}
			}
		}
	})
}

func TestLineProtocolDecodesWithInflux(t *testing.T) {
	enc, _ := NewEncoder(LineProtocol)
	if p := enc.Endpoint().Path; p != "/write?precision=ms" {
		t.Fatalf("path %s", p)
	}
	testBatches(t, func(b *gen.Batch) {
		dec := lineprotocol.NewDecoderWithBytes(enc.Encode(b))
		lines := 0
		for i, gr := range b.Groups {
			for ti, ts := range b.Times {
				if !dec.Next() {
					t.Fatalf("line %d missing: %v", lines, dec.Err())
				}
				lines++
				m, err := dec.Measurement()
				if err != nil || string(m) != gr.Family.Name {
					t.Fatalf("measurement %q, %v", m, err)
				}
				for _, want := range gr.Labels() {
					k, v, err := dec.NextTag()
					if err != nil || string(k) != want.Name || string(v) != want.Value {
						t.Fatalf("tag %s=%s, want %v (%v)", k, v, want, err)
					}
				}
				for f, fld := range gr.Family.Fields {
					k, v, err := dec.NextField()
					if err != nil || string(k) != fld.Name {
						t.Fatalf("field %s, want %s (%v)", k, fld.Name, err)
					}
					want := b.Value(i, f, ti)
					switch v.Kind() {
					case lineprotocol.Int:
						if !fld.Integer || float64(v.IntV()) != want {
							t.Fatalf("%s: int %d, want %v", fld.Name, v.IntV(), want)
						}
					case lineprotocol.Float:
						if fld.Integer || v.FloatV() != want {
							t.Fatalf("%s: float %v, want %v", fld.Name, v.FloatV(), want)
						}
					default:
						t.Fatalf("%s: kind %v", fld.Name, v.Kind())
					}
				}
				tm, err := dec.Time(lineprotocol.Millisecond, time.Time{})
				if err != nil || tm.UnixMilli() != ts {
					t.Fatalf("time %v, want %d (%v)", tm, ts, err)
				}
			}
		}
		if dec.Next() {
			t.Fatal("extra line")
		}
		if want := b.Samples() / 10; lines < want/2 {
			t.Fatalf("%d lines for %d samples", lines, b.Samples())
		}
	})
}

func BenchmarkEncode(b *testing.B) {
	g, _ := gen.New(gen.Options{Hosts: 200, Seed: 1, Families: []string{"cpu"}})
	s, _ := g.Stream(0, 1, gen.Schedule{Start: time.Unix(1_700_000_000, 0), Interval: 10 * time.Second, BatchSamples: 10_000})
	var batch gen.Batch
	s.Next(&batch)
	for _, p := range []Protocol{RemoteWrite, LineProtocol} {
		b.Run(string(p), func(b *testing.B) {
			enc, _ := NewEncoder(p)
			b.ReportAllocs()
			var bytes int
			for b.Loop() {
				bytes = len(enc.Encode(&batch))
			}
			b.ReportMetric(float64(batch.Samples()*b.N)/b.Elapsed().Seconds(), "samples/s")
			b.ReportMetric(float64(bytes)/float64(batch.Samples()), "bytes/sample")
		})
	}
}
