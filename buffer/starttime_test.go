package buffer

import (
	"slices"
	"testing"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/strata-tsdb/strata/ingest"
)

// TestStartTimeZeros: a start (created) timestamp adds a zero sample where
// Prometheus 3 adds one: once, before the first sample after the start,
// never at or before what the series already holds, never at or after the
// sample itself; the batch given to Append is not changed.
func TestStartTimeZeros(t *testing.T) {
	h := newTestHead(t, DefaultOptions())
	lset := labels.FromStrings("__name__", "c_total")
	m := labels.MustNewMatcher(labels.MatchEqual, "__name__", "c_total")
	smp := func(t int64, v float64) ingest.Sample { return ingest.Sample{T: t, V: v} }
	f := func(samples []ingest.Sample, starts []int64, want []ingest.Sample) {
		t.Helper()
		b := &ingest.Batch{Series: []ingest.Series{{Labels: lset, Samples: slices.Clone(samples), StartTimes: starts}}}
		if err := h.Append(b); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(b.Series[0].Samples, samples) {
			t.Fatalf("Append changed the batch: %v", b.Series[0].Samples)
		}
		if got := readAll(t, h, 0, 1000, m); !slices.Equal(got, want) {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
	// A new counter: zero at its start, once for two samples sharing it.
	f([]ingest.Sample{smp(20, 5), smp(30, 7)}, []int64{10, 10}, []ingest.Sample{smp(10, 0), smp(20, 5), smp(30, 7)})
	// The same start again adds nothing (it is before the newest sample).
	f([]ingest.Sample{smp(40, 9)}, []int64{10}, []ingest.Sample{smp(10, 0), smp(20, 5), smp(30, 7), smp(40, 9)})
	// A reset: a new start after the newest sample.
	f([]ingest.Sample{smp(60, 1)}, []int64{50}, []ingest.Sample{smp(10, 0), smp(20, 5), smp(30, 7), smp(40, 9), smp(50, 0), smp(60, 1)})
	// A start equal to the sample's time, or none, adds nothing.
	f([]ingest.Sample{smp(70, 2), smp(80, 3)}, []int64{70, 0}, []ingest.Sample{smp(10, 0), smp(20, 5), smp(30, 7), smp(40, 9), smp(50, 0), smp(60, 1), smp(70, 2), smp(80, 3)})
	// A start equal to the newest sample adds nothing: a zero there would
	// replace that sample.
	f([]ingest.Sample{smp(90, 4)}, []int64{80}, []ingest.Sample{smp(10, 0), smp(20, 5), smp(30, 7), smp(40, 9), smp(50, 0), smp(60, 1), smp(70, 2), smp(80, 3), smp(90, 4)})
}

// TestHistogramStartTimeZeros: as TestStartTimeZeros, for histograms (a
// batch with histogram start times only): the zero is an empty histogram
// of the sample's schema, zero threshold and custom bounds, marked as a
// counter reset, for integer and float histograms.
func TestHistogramStartTimeZeros(t *testing.T) {
	for _, float := range []bool{false, true} {
		h := newTestHead(t, DefaultOptions())
		lset := labels.FromStrings("__name__", "h")
		sample := func(t int64, count uint64) ingest.HistogramSample {
			hist := &histogram.Histogram{Schema: 1, ZeroThreshold: 0.5, Count: count, Sum: float64(count),
				PositiveSpans: []histogram.Span{{Offset: 0, Length: 1}}, PositiveBuckets: []int64{int64(count)}}
			if float {
				return ingest.HistogramSample{T: t, FH: hist.ToFloat(nil)}
			}
			return ingest.HistogramSample{T: t, H: hist}
		}
		f := func(hs []ingest.HistogramSample, starts []int64, want []int64) {
			t.Helper()
			b := &ingest.Batch{Series: []ingest.Series{{Labels: lset, Histograms: slices.Clone(hs), HistogramStartTimes: starts}}}
			if err := h.Append(b); err != nil {
				t.Fatal(err)
			}
			if len(b.Series[0].Histograms) != len(hs) {
				t.Fatalf("Append changed the batch: %d histograms", len(b.Series[0].Histograms))
			}
			got := readAllSamples(t, h)
			var ts []int64
			for _, s := range got {
				ts = append(ts, s.T)
				count, schema, zt := uint64(0), int32(0), 0.0
				switch {
				case s.H != nil:
					count, schema, zt = s.H.Count, s.H.Schema, s.H.ZeroThreshold
				case s.FH != nil:
					count, schema, zt = uint64(s.FH.Count), s.FH.Schema, s.FH.ZeroThreshold
				default:
					t.Fatalf("float %v: a float sample at %d", float, s.T)
				}
				if (s.H != nil) == float {
					t.Fatalf("float %v: the sample at %d is of the other kind", float, s.T)
				}
				if zero := s.T == 10 || s.T == 70; schema != 1 || zt != 0.5 || (count == 0) != zero {
					t.Fatalf("float %v: at %d count %d schema %d zero threshold %v", float, s.T, count, schema, zt)
				}
			}
			if !slices.Equal(ts, want) {
				t.Fatalf("float %v: histograms at %v, want %v", float, ts, want)
			}
		}
		// A new counter: an empty histogram at its start, once.
		f([]ingest.HistogramSample{sample(20, 5), sample(40, 7)}, []int64{10, 10}, []int64{10, 20, 40})
		// The same start again adds nothing.
		f([]ingest.HistogramSample{sample(60, 9)}, []int64{10}, []int64{10, 20, 40, 60})
		// A reset: a new start after the newest sample.
		f([]ingest.HistogramSample{sample(80, 1)}, []int64{70}, []int64{10, 20, 40, 60, 70, 80})
		// A start equal to the sample's time, or none, adds nothing.
		f([]ingest.HistogramSample{sample(100, 2), sample(120, 3)}, []int64{100, 0}, []int64{10, 20, 40, 60, 70, 80, 100, 120})
		// A start equal to the newest sample adds nothing.
		f([]ingest.HistogramSample{sample(140, 4)}, []int64{120}, []int64{10, 20, 40, 60, 70, 80, 100, 120, 140})
	}
}
