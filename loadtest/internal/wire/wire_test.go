package wire

import (
	"math"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/influxdata/line-protocol/v2/lineprotocol"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/prompb"

	"github.com/strata-tsdb/strata/loadtest/internal/gen"
)

// testBatches yields a few batches of the families (nil: the default
// ones), with values that exercise the encodings (large counters, whole
// and fractional floats, histograms).
func testBatches(t *testing.T, families []string, f func(b *gen.Batch)) {
	t.Helper()
	g, err := gen.New(gen.Options{Hosts: 5, Seed: 9, ResetProbability: 0.05, Families: families})
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
	hists := 0
	testBatches(t, gen.FamilyNames(), func(b *gen.Batch) {
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
				if gr.Family.HasHistograms() {
					checkHistograms(t, ts, b, i)
					hists += len(ts.Histograms)
					continue
				}
				if len(ts.Samples) != len(b.Times) || len(ts.Histograms) != 0 {
					t.Fatalf("%d samples and %d histograms, want %d samples", len(ts.Samples), len(ts.Histograms), len(b.Times))
				}
				for ti, s := range ts.Samples {
					if s.Timestamp != b.Times[ti] || math.Float64bits(s.Value) != math.Float64bits(b.Value(i, f, ti)) {
						t.Fatalf("sample %d: %v, want %v@%d", ti, s, b.Value(i, f, ti), b.Times[ti])
					}
				}
			}
		}
	})
	if hists == 0 {
		t.Fatal("no histograms encoded")
	}
}

// checkHistograms checks the histograms of the TimeSeries of group i of b,
// decoded by prompb, against what the generator made.
func checkHistograms(t *testing.T, ts prompb.TimeSeries, b *gen.Batch, i int) {
	t.Helper()
	if len(ts.Histograms) != len(b.Times) || len(ts.Samples) != 0 {
		t.Fatalf("%d histograms and %d samples, want %d histograms", len(ts.Histograms), len(ts.Samples), len(b.Times))
	}
	for ti, ph := range ts.Histograms {
		g := b.Hists[b.Offsets[i]+ti]
		want := &histogram.Histogram{Schema: g.Schema, ZeroThreshold: g.ZeroThreshold, Count: g.Count, Sum: g.Sum}
		if len(g.Buckets) > 0 {
			want.PositiveSpans = []histogram.Span{{Offset: g.Offset, Length: uint32(len(g.Buckets))}}
			prev := int64(0)
			for _, c := range g.Buckets {
				want.PositiveBuckets = append(want.PositiveBuckets, int64(c)-prev)
				prev = int64(c)
			}
		}
		if ph.IsFloatHistogram() || ph.Timestamp != b.Times[ti] {
			t.Fatalf("histogram %d: float %v at %d, want an integer histogram at %d", ti, ph.IsFloatHistogram(), ph.Timestamp, b.Times[ti])
		}
		got := ph.ToIntHistogram()
		if err := got.Validate(); err != nil {
			t.Fatalf("histogram %d: %v: %v", ti, got, err)
		}
		if !got.Equals(want) || float64(got.Count) != b.Value(i, 0, ti) {
			t.Fatalf("histogram %d: %v, want %v (count %v)", ti, got, want, b.Value(i, 0, ti))
		}
	}
}

func TestLineProtocolDecodesWithInflux(t *testing.T) {
	enc, _ := NewEncoder(LineProtocol)
	if p := enc.Endpoint().Path; p != "/write?precision=ms" {
		t.Fatalf("path %s", p)
	}
	testBatches(t, nil, func(b *gen.Batch) {
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
