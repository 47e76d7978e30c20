package wal

import (
	"errors"
	"math"
	"testing"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
)

func TestSamplesRoundTrip(t *testing.T) {
	f := func(in []RefSample) {
		t.Helper()
		rec := EncodeSamples([]byte("prefix"), in)[len("prefix"):]
		if RecordType(rec) != RecordSamples {
			t.Fatalf("record type %d", RecordType(rec))
		}
		dst := []RefSample{{Ref: 99}}
		got, err := DecodeSamples(rec, dst)
		if err != nil {
			t.Fatal(err)
		}
		if !equalSamples(got[1:], in) || got[0].Ref != 99 {
			t.Fatalf("decoded %v, want %v", got, in)
		}
	}
	f(nil)
	f([]RefSample{{Ref: 1, T: 1, V: 1}})
	f([]RefSample{
		{Ref: math.MaxUint64, T: math.MinInt64, V: math.NaN()},
		{Ref: 0, T: math.MaxInt64, V: math.Inf(-1)},
		{Ref: 5, T: -1, V: math.Float64frombits(0x7ff0000000000001)}, // A NaN with payload (stale marker style).
		{Ref: 5, T: 1_700_000_000_000, V: -0.0},
	})
}

func equalSamples(a, b []RefSample) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Ref != b[i].Ref || a[i].T != b[i].T || math.Float64bits(a[i].V) != math.Float64bits(b[i].V) {
			return false
		}
	}
	return true
}

func TestSeriesRoundTrip(t *testing.T) {
	in := []RefSeries{
		{Ref: 1, Labels: labels.FromStrings("__name__", "up", "job", "node", "instance", "a:9100")},
		{Ref: math.MaxUint64, Labels: labels.EmptyLabels()},
		{Ref: 0, Labels: labels.FromStrings("a", "", "b", "ünïcødé")},
	}
	rec := EncodeSeries(nil, in)
	if RecordType(rec) != RecordSeries {
		t.Fatalf("record type %d", RecordType(rec))
	}
	got, err := DecodeSeries(rec, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !equalSeries(got, in) {
		t.Fatalf("decoded %v, want %v", got, in)
	}
	// The decoded labels must not alias the record.
	clear(rec)
	if !equalSeries(got, in) {
		t.Fatal("decoded labels changed with the record's bytes")
	}
}

func equalSeries(a, b []RefSeries) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Ref != b[i].Ref || !labels.Equal(a[i].Labels, b[i].Labels) {
			return false
		}
	}
	return true
}

func TestDecodeInvalid(t *testing.T) {
	samples := EncodeSamples(nil, []RefSample{{Ref: 1, T: 2, V: 3}, {Ref: 2, T: 2, V: 4}})
	series := EncodeSeries(nil, []RefSeries{{Ref: 1, Labels: labels.FromStrings("a", "1", "b", "2")}})
	unsorted := []byte{RecordSeries, 1, 1, 2, 1, 'b', 0, 1, 'a', 0}
	duplicate := []byte{RecordSeries, 1, 1, 2, 1, 'a', 0, 1, 'a', 0}
	hugeCount := []byte{RecordSamples, 0xff, 0xff, 0xff, 0xff, 0x0f}
	for _, tc := range []struct {
		name string
		rec  []byte
		dec  func([]byte) error
	}{
		{"empty samples", nil, decSamples},
		{"samples as series", samples, decSeries},
		{"series as samples", series, decSamples},
		{"truncated samples", samples[:len(samples)-1], decSamples},
		{"trailing samples", append(samples[:len(samples):len(samples)], 0), decSamples},
		{"huge sample count", hugeCount, decSamples},
		{"truncated series", series[:len(series)-1], decSeries},
		{"trailing series", append(series[:len(series):len(series)], 0), decSeries},
		{"unsorted labels", unsorted, decSeries},
		{"duplicate labels", duplicate, decSeries},
		{"overlong varint", []byte{RecordSamples, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0}, decSamples},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.dec(tc.rec); !errors.Is(err, ErrInvalidRecord) {
				t.Errorf("decode: %v, want ErrInvalidRecord", err)
			}
		})
	}
	if RecordType(nil) != RecordInvalid || RecordType([]byte{9}) != RecordInvalid {
		t.Error("RecordType of garbage is not RecordInvalid")
	}
}

func decSamples(rec []byte) error {
	dst := []RefSample{{Ref: 7}}
	got, err := DecodeSamples(rec, dst)
	if err != nil && (len(got) != 1 || got[0].Ref != 7) {
		return errors.New("dst changed on error")
	}
	return err
}

func decSeries(rec []byte) error {
	_, err := DecodeSeries(rec, nil)
	return err
}

func testRefHistograms() []RefHistogramSample {
	h := &histogram.Histogram{
		CounterResetHint: histogram.CounterReset, Schema: -4, ZeroThreshold: 0.5, ZeroCount: 3, Count: 9, Sum: math.NaN(),
		PositiveSpans: []histogram.Span{{Offset: -3, Length: 2}, {Offset: 5, Length: 1}}, PositiveBuckets: []int64{1, 1, -1},
		NegativeSpans: []histogram.Span{{Offset: 2, Length: 1}}, NegativeBuckets: []int64{2},
	}
	cb := &histogram.Histogram{Schema: histogram.CustomBucketsSchema, Count: 3, Sum: 1,
		PositiveSpans: []histogram.Span{{Length: 2}}, PositiveBuckets: []int64{1, 1}, CustomValues: []float64{1, math.Inf(1)}}
	return []RefHistogramSample{
		{Ref: 1, T: 1000, H: h},
		{Ref: math.MaxUint64, T: math.MinInt64, FH: h.ToFloat(nil)},
		{Ref: 0, T: math.MaxInt64, H: cb},
		{Ref: 5, T: -1, FH: &histogram.FloatHistogram{Schema: 8, CounterResetHint: histogram.GaugeType, Count: 0.5, Sum: -0.0}},
		{Ref: 5, T: 2, H: &histogram.Histogram{}},
	}
}

// equalHistograms compares bit for bit, through the encoding.
func equalHistograms(a, b []RefHistogramSample) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Ref != b[i].Ref || a[i].T != b[i].T || (a[i].H == nil) != (b[i].H == nil) {
			return false
		}
	}
	return string(EncodeHistograms(nil, a)) == string(EncodeHistograms(nil, b))
}

func TestHistogramsRoundTrip(t *testing.T) {
	in := testRefHistograms()
	rec := EncodeHistograms([]byte("prefix"), in)[len("prefix"):]
	if RecordType(rec) != RecordHistograms {
		t.Fatalf("record type %d", RecordType(rec))
	}
	got, err := DecodeHistograms(rec, []RefHistogramSample{{Ref: 99}})
	if err != nil {
		t.Fatal(err)
	}
	if got[0].Ref != 99 || !equalHistograms(got[1:], in) {
		t.Fatalf("decoded %v, want %v", got, in)
	}
	if !got[1].H.Equals(in[0].H) || !got[3].H.Equals(in[2].H) || got[2].FH.Count != in[1].FH.Count {
		t.Fatal("decoded histograms differ")
	}
	// Every truncation fails cleanly, never panics.
	for n := range len(rec) {
		if _, err := DecodeHistograms(rec[:n], nil); !errors.Is(err, ErrInvalidRecord) {
			t.Fatalf("truncated to %d bytes: %v", n, err)
		}
	}
	// A count far beyond the record is refused before allocating.
	huge := []byte{RecordHistograms, 1, 0, 0, 0, 0, 0}
	huge = append(huge, make([]byte, 16)...)
	huge = append(huge, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f)
	if _, err := DecodeHistograms(huge, nil); !errors.Is(err, ErrInvalidRecord) {
		t.Fatalf("huge span count: %v", err)
	}
}
