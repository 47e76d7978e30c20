package wal

import (
	"errors"
	"math"
	"testing"

	"github.com/prometheus/prometheus/model/histogram"
)

// TestHistogramFieldLimitsRoundTrip checks that histograms records carry
// every value their fields can hold: span offsets and schemas at both ends
// of int32, span lengths at the top of uint32, large bucket deltas; and a
// float histogram last in the record, its last bucket the record's last
// eight bytes.
func TestHistogramFieldLimitsRoundTrip(t *testing.T) {
	spans := []histogram.Span{{Offset: math.MinInt32, Length: math.MaxUint32}, {Offset: math.MaxInt32, Length: 1}}
	in := []RefHistogramSample{
		{Ref: 1, T: 1, H: &histogram.Histogram{Schema: math.MinInt32, PositiveSpans: spans, NegativeSpans: spans,
			PositiveBuckets: []int64{math.MinInt64, 1 << 40}, NegativeBuckets: []int64{math.MaxInt64}}},
		{Ref: 2, T: 2, H: &histogram.Histogram{Schema: math.MaxInt32}},
		{Ref: 3, T: 3, FH: &histogram.FloatHistogram{Schema: 2, PositiveSpans: spans, NegativeSpans: spans,
			PositiveBuckets: []float64{1}, NegativeBuckets: []float64{0.25, math.MaxFloat64}}},
	}
	rec := EncodeHistograms(nil, in)
	got, err := DecodeHistograms(rec, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !equalHistograms(got, in) {
		t.Fatalf("decoded %v, want %v", got, in)
	}
	if got[0].H.Schema != math.MinInt32 || got[0].H.PositiveSpans[0] != spans[0] || got[2].FH.NegativeBuckets[1] != math.MaxFloat64 {
		t.Fatalf("decoded %v", got)
	}
}

// TestTruncatedHistogramsRefused checks that no truncation of a record
// ending in multi-byte bucket deltas decodes: a varint cut short is
// damage, not a zero.
func TestTruncatedHistogramsRefused(t *testing.T) {
	in := []RefHistogramSample{{Ref: 7, T: 1000, H: &histogram.Histogram{
		Count: 1 << 20, PositiveSpans: []histogram.Span{{Length: 3}}, PositiveBuckets: []int64{1 << 18, 1 << 19, -(1 << 18)},
		NegativeSpans: []histogram.Span{{Offset: 1, Length: 2}}, NegativeBuckets: []int64{1 << 30, 1 << 30},
	}}}
	rec := EncodeHistograms(nil, in)
	for n := range len(rec) {
		if got, err := DecodeHistograms(rec[:n], nil); !errors.Is(err, ErrInvalidRecord) || len(got) != 0 {
			t.Fatalf("truncated to %d of %d bytes: %v, %v", n, len(rec), got, err)
		}
	}
}

// TestReadFloatHistogram checks the encoding the query cache uses for
// float histograms: it reads back what AppendFloatHistogram wrote and
// returns the bytes after it, and refuses every truncation.
func TestReadFloatHistogram(t *testing.T) {
	h := testRefHistograms()[1].FH
	b := AppendFloatHistogram(nil, h)
	n := len(b)
	b = append(b, "rest"...)
	got, rest, err := ReadFloatHistogram(b)
	if err != nil {
		t.Fatal(err)
	}
	if string(rest) != "rest" || string(AppendFloatHistogram(nil, got)) != string(b[:n]) {
		t.Fatalf("read %v and %q, want %v and \"rest\"", got, rest, h)
	}
	for i := range n {
		if got, _, err := ReadFloatHistogram(b[:i]); !errors.Is(err, ErrInvalidRecord) || got != nil {
			t.Fatalf("truncated to %d of %d bytes: %v, %v", i, n, got, err)
		}
	}
}

// TestUnknownHistogramKindRefused checks that a histogram whose kind byte
// is neither integer (0) nor float (1) is damage, not a sample without a
// histogram, also where the bytes after it read as a valid histogram.
func TestUnknownHistogramKindRefused(t *testing.T) {
	// Large enough for the bound on the count to let a second one in.
	h := &histogram.Histogram{Count: 1, PositiveSpans: []histogram.Span{{Length: 60}}, PositiveBuckets: make([]int64, 60)}
	enc := EncodeHistograms(nil, []RefHistogramSample{{Ref: 1, T: 2, H: h}})
	// Two histograms: ref delta 1, t delta 2 and kind 2, then enc's.
	rec := append([]byte{RecordHistograms, 2, 2, 4, 2}, enc[2:]...)
	if got, err := DecodeHistograms(rec, nil); !errors.Is(err, ErrInvalidRecord) || len(got) != 0 {
		t.Fatalf("kind 2 decoded: %v, %v", got, err)
	}
	rec[4] = 0 // kind 0: the first is read as an integer histogram
	if _, err := DecodeHistograms(rec, nil); !errors.Is(err, ErrInvalidRecord) {
		t.Fatalf("a kind 0 without its histogram decoded: %v", err)
	}
}
