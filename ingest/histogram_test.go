package ingest

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/prompb"
)

// testHistograms returns valid native histograms covering what remote
// write 1.0 can carry: integer and float counts, every exponential schema
// from -4 to 8, the custom-bucket schema -53 with its custom values, each
// counter-reset hint, zero buckets and positive and negative spans with
// gaps.
func testHistograms() []prompb.Histogram {
	var out []prompb.Histogram
	ts := int64(1_700_000_000_000)
	for schema := int32(-4); schema <= 8; schema++ {
		h := &histogram.Histogram{
			CounterResetHint: histogram.CounterResetHint(int(schema+4) % 4),
			Schema:           schema,
			ZeroThreshold:    0.001,
			ZeroCount:        2,
			Count:            2 + 1 + 3 + 2 + 4 + 1,
			Sum:              float64(schema) * 1.5,
			PositiveSpans:    []histogram.Span{{Offset: -2, Length: 2}, {Offset: 3, Length: 1}},
			PositiveBuckets:  []int64{1, 2, -1}, // counts 1, 3, 2
			NegativeSpans:    []histogram.Span{{Offset: 1, Length: 1}, {Offset: 0, Length: 1}},
			NegativeBuckets:  []int64{4, -3}, // counts 4, 1
		}
		out = append(out, prompb.FromIntHistogram(ts, h))
		fh := h.ToFloat(nil)
		fh.Sum = -fh.Sum
		fh.PositiveBuckets[1] = 2.5
		fh.Count -= 0.5
		out = append(out, prompb.FromFloatHistogram(ts+1, fh))
		ts += 1000
	}
	cb := &histogram.Histogram{
		Schema:          histogram.CustomBucketsSchema,
		Count:           6,
		Sum:             12.5,
		PositiveSpans:   []histogram.Span{{Offset: 0, Length: 2}, {Offset: 1, Length: 1}},
		PositiveBuckets: []int64{1, 1, 2}, // counts 1, 2, 4... checked below
		CustomValues:    []float64{0.1, 0.5, 1, 5},
	}
	cb.Count = 1 + 2 + 4
	out = append(out, prompb.FromIntHistogram(ts, cb))
	out = append(out, prompb.FromFloatHistogram(ts+1, cb.ToFloat(nil)))
	// An empty histogram, NaN sum and a gauge hint.
	out = append(out, prompb.FromIntHistogram(ts+2, &histogram.Histogram{CounterResetHint: histogram.GaugeType, Sum: math.NaN()}))
	out = append(out, prompb.FromFloatHistogram(ts+3, &histogram.FloatHistogram{Schema: 3, Sum: math.NaN(), Count: 1}))
	return out
}

func testHistogramSeries() []prompb.TimeSeries {
	return []prompb.TimeSeries{
		{Labels: pl("__name__", "latency_seconds", "job", "a"), Histograms: testHistograms()},
		{Labels: pl("__name__", "mixed", "job", "a"), Samples: ps(1, 1, 2, 2), Histograms: testHistograms()[:2]},
		{Labels: pl("__name__", "floats_only"), Samples: ps(5, 5)},
	}
}

// TestDecodeRemoteWriteHistograms checks the hand-written decoder against
// prompb's Unmarshal and conversions on every kind of histogram, and that a
// request mixing floats and histograms keeps both.
func TestDecodeRemoteWriteHistograms(t *testing.T) {
	for _, h := range testHistograms() {
		var err error
		if h.IsFloatHistogram() {
			err = h.ToFloatHistogram().Validate()
		} else {
			err = h.ToIntHistogram().Validate()
		}
		if err != nil {
			t.Fatalf("test histogram %v is invalid: %v", h, err)
		}
	}
	req := &prompb.WriteRequest{Timeseries: testHistogramSeries()}
	body := encodeRW(t, req)
	got, err := DecodeRemoteWrite(body, DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	want, err := referenceBatch(req, DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	requireBatch(t, got, want.Series)
	checkAgainstPrompb(t, body, DefaultLimits(), got, nil)
	if n := got.NumHistograms(); n != len(testHistograms())+2 {
		t.Errorf("NumHistograms = %d", n)
	}
	mixed := got.Series[1]
	if len(mixed.Samples) != 2 || len(mixed.Histograms) != 2 || mixed.Histograms[0].H == nil || mixed.Histograms[1].FH == nil {
		t.Errorf("mixed series: %d floats, %d histograms", len(mixed.Samples), len(mixed.Histograms))
	}
	// Spot checks that do not depend on prompb's conversion.
	first := got.Series[0].Histograms[0]
	if first.T != 1_700_000_000_000 || first.H.Schema != -4 || first.H.ZeroCount != 2 || first.H.PositiveBuckets[1] != 2 ||
		first.H.NegativeSpans[1].Length != 1 || first.H.CounterResetHint != histogram.UnknownCounterReset {
		t.Errorf("first histogram decoded as %d %#v", first.T, first.H)
	}
	last := got.Series[0].Histograms[len(got.Series[0].Histograms)-1]
	if last.FH == nil || last.FH.Schema != 3 || !math.IsNaN(last.FH.Sum) {
		t.Errorf("last histogram decoded as %#v", last.FH)
	}
}

// TestDecodeRemoteWriteHistogramEncodings feeds hand-built protobuf: the
// repeated fields unpacked, oneofs set twice, and an unknown field, which
// prompb accepts and so must the decoder.
func TestDecodeRemoteWriteHistogramEncodings(t *testing.T) {
	var h []byte
	h = appendTagVarint(h, 1, 5)                    // count_int
	h = appendTagFixed(h, 2, math.Float64bits(7))   // count_float wins
	h = appendTagFixed(h, 3, math.Float64bits(2.5)) // sum
	h = appendTagVarint(h, 4, 2*3)                  // schema 3 (zigzag)
	h = appendTagFixed(h, 7, math.Float64bits(1))   // zero_count_float
	span := appendTagVarint(appendTagVarint(nil, 1, 1), 2, 2)
	h = appendTagBytes(h, 11, span)                // positive span {-1, 2}
	h = appendTagFixed(h, 13, math.Float64bits(4)) // positive_counts unpacked
	h = appendTagFixed(h, 13, math.Float64bits(2))
	h = appendTagVarint(h, 99, 1)       // unknown field
	h = appendTagVarint(h, 15, 1000)    // timestamp
	h = appendTagVarint(h, 14, 2)       // reset hint NO
	h = appendTagBytes(h, 9, []byte{2}) // negative_deltas packed, ignored by a float histogram
	h = appendTagVarint(h, 12, 3)       // positive_deltas unpacked, ignored too
	ts := appendTagBytes(nil, 1, appendTagBytes(appendTagBytes(nil, 1, []byte("__name__")), 2, []byte("h")))
	ts = appendTagBytes(ts, 4, h)
	raw := appendTagBytes(nil, 1, ts)
	body := snappy.Encode(nil, raw)
	got, err := DecodeRemoteWrite(body, DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	checkAgainstPrompb(t, body, DefaultLimits(), got, err)
	fh := got.Series[0].Histograms[0].FH
	if fh == nil || fh.Count != 7 || fh.ZeroCount != 1 || fh.Schema != 3 || len(fh.PositiveBuckets) != 2 || fh.CounterResetHint != histogram.NotCounterReset {
		t.Fatalf("decoded %#v", fh)
	}
}

// TestDecodeRemoteWriteHistogramErrors checks what a histogram can make a
// request fail with.
func TestDecodeRemoteWriteHistogramErrors(t *testing.T) {
	one := func(h prompb.Histogram) []byte {
		return encodeRW(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
			{Labels: pl("__name__", "up"), Samples: ps(1, 1)},
			{Labels: pl("__name__", "latency"), Histograms: []prompb.Histogram{h}},
		}})
	}
	for _, tc := range []struct {
		name string
		body []byte
		lim  Limits
		err  *wantErr
	}{
		{"unknown schema", one(prompb.Histogram{Schema: -5, Timestamp: 7}), DefaultLimits(),
			&wantErr{is: ErrInvalidHistogram, msg: "invalid native histogram at 7: histogram has an invalid schema"}},
		{"count below buckets", one(prompb.FromIntHistogram(1, &histogram.Histogram{Count: 1, PositiveSpans: []histogram.Span{{Length: 1}}, PositiveBuckets: []int64{3}})), DefaultLimits(),
			&wantErr{is: ErrInvalidHistogram, msg: "in series latency"}},
		{"spans and buckets disagree", one(prompb.FromFloatHistogram(1, &histogram.FloatHistogram{Count: 1, PositiveSpans: []histogram.Span{{Length: 2}}, PositiveBuckets: []float64{1}})), DefaultLimits(),
			&wantErr{is: ErrInvalidHistogram, msg: "spans need 2 buckets, have 1 buckets"}},
		{"custom values on an exponential schema", one(prompb.FromIntHistogram(1, &histogram.Histogram{CustomValues: []float64{1}})), DefaultLimits(),
			&wantErr{is: ErrInvalidHistogram, msg: "custom"}},
		{"histograms count as samples", one(prompb.FromIntHistogram(1, &histogram.Histogram{})), Limits{MaxSamplesPerRequest: 1},
			&wantErr{is: ErrTooManySamples, msg: "too many samples: more than 1"}},
		{"truncated packed counts", encodeRawHistogram(appendTagBytes(nil, 13, []byte{1, 2, 3})), DefaultLimits(),
			&wantErr{is: ErrMalformed, msg: "unexpected EOF"}},
		{"wrong wire type", encodeRawHistogram(appendTagFixed(nil, 4, 1)), DefaultLimits(),
			&wantErr{is: ErrMalformed, msg: "wrong wireType = 1 for field Schema"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeRemoteWrite(tc.body, tc.lim)
			checkResult(t, got, err, nil, tc.err)
		})
	}
}

// TestDecodeRemoteWriteHistogramSchemaReduction checks that a schema finer
// than 8 is reduced to 8, as Prometheus' receiver does.
func TestDecodeRemoteWriteHistogramSchemaReduction(t *testing.T) {
	h := &histogram.Histogram{Schema: 10, Count: 3, Sum: 1, PositiveSpans: []histogram.Span{{Offset: 0, Length: 4}}, PositiveBuckets: []int64{1, -1, 1, 0}}
	got, err := DecodeRemoteWrite(encodeRW(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
		{Labels: pl("__name__", "h"), Histograms: []prompb.Histogram{prompb.FromIntHistogram(1, h)}},
	}}), DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	d := got.Series[0].Histograms[0].H
	want := h.Copy()
	if err := want.ReduceResolution(8); err != nil {
		t.Fatal(err)
	}
	if d.Schema != 8 || !d.Equals(want) {
		t.Fatalf("got %v, want %v", d, want)
	}
}

func encodeRawHistogram(h []byte) []byte {
	ts := appendTagBytes(nil, 1, appendTagBytes(appendTagBytes(nil, 1, []byte("__name__")), 2, []byte("h")))
	ts = appendTagBytes(ts, 4, h)
	return snappy.Encode(nil, appendTagBytes(nil, 1, ts))
}

func appendTagVarint(b []byte, field int, v uint64) []byte {
	b = appendUvarint(b, uint64(field)<<3)
	return appendUvarint(b, v)
}

func appendTagFixed(b []byte, field int, v uint64) []byte {
	b = appendUvarint(b, uint64(field)<<3|1)
	for i := 0; i < 8; i++ {
		b = append(b, byte(v>>(8*i)))
	}
	return b
}

func appendTagBytes(b []byte, field int, v []byte) []byte {
	b = appendUvarint(b, uint64(field)<<3|2)
	b = appendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

func appendUvarint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

// TestHistogramCost checks HistogramCost against the size Prometheus'
// engine gives a histogram (promql.HPoint.size: (FloatHistogram.Size()+8)/16).
func TestHistogramCost(t *testing.T) {
	for i, h := range testHistograms() {
		fh := h.ToFloatHistogram()
		want := (fh.Size() + 8) / 16
		if h.IsFloatHistogram() {
			if got := HistogramCost(nil, fh); got != want {
				t.Errorf("float histogram %d: cost %d, want %d", i, got, want)
			}
			continue
		}
		if got := HistogramCost(h.ToIntHistogram(), nil); got != want {
			t.Errorf("histogram %d: cost %d, want %d", i, got, want)
		}
	}
	if got := HistogramCost(nil, &histogram.FloatHistogram{}); got != 11 {
		t.Errorf("empty histogram: cost %d, want 11", got)
	}
}

// TestHistogramsCountBySize checks that MaxSamplesPerRequest counts a
// native histogram by its size: a request of floats and histograms whose
// cost is exactly the limit is accepted, one under it is refused, although
// it holds far fewer samples and histograms than the limit.
func TestHistogramsCountBySize(t *testing.T) {
	h := &histogram.Histogram{Schema: 3, Count: 40, Sum: 2,
		PositiveSpans:   []histogram.Span{{Offset: -4, Length: 10}, {Offset: 3, Length: 10}},
		PositiveBuckets: []int64{2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
	}
	req := &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{Labels: pl("__name__", "floats"), Samples: ps(1, 1, 2, 2, 3, 3)}}}
	cost := 3
	for s := range 4 {
		ts := prompb.TimeSeries{Labels: pl("__name__", "latency", "s", strconv.Itoa(s))}
		for i := range 5 {
			ts.Histograms = append(ts.Histograms, prompb.FromIntHistogram(int64(i*1000), h))
			cost += (h.ToFloat(nil).Size() + 8) / 16
		}
		req.Timeseries = append(req.Timeseries, ts)
	}
	if n := 3 + 4*5; cost < 5*n {
		t.Fatalf("the request costs %d for %d samples: too cheap to tell size from count", cost, n)
	}
	body := encodeRW(t, req)
	lim := DefaultLimits()
	lim.MaxSamplesPerRequest = cost
	b, err := DecodeRemoteWrite(body, lim)
	if err != nil {
		t.Fatalf("limit %d = the request's cost: %v", cost, err)
	}
	if b.NumHistograms() != 20 {
		t.Fatalf("%d histograms", b.NumHistograms())
	}
	lim.MaxSamplesPerRequest = cost - 1
	_, err = DecodeRemoteWrite(body, lim)
	if !errors.Is(err, ErrTooManySamples) || !strings.Contains(err.Error(), "a native histogram counts as 11 plus one per 2 buckets or spans") {
		t.Fatalf("limit %d, one under the request's cost: %v", cost-1, err)
	}
	checkAgainstPrompb(t, body, lim, nil, err)
}
