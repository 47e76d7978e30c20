package ingest

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
)

func TestDecodeRemoteWrite(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	ts := func(lbls []prompb.Label, samples []prompb.Sample) prompb.TimeSeries {
		return prompb.TimeSeries{Labels: lbls, Samples: samples}
	}
	req := func(series ...prompb.TimeSeries) []byte {
		return encodeRW(t, &prompb.WriteRequest{Timeseries: series})
	}
	lim := DefaultLimits()
	tight := Limits{MaxSeriesPerRequest: 2, MaxSamplesPerRequest: 3, MaxLabelsPerSeries: 2, MaxLabelNameLength: 4, MaxLabelValueLength: 6}

	for _, tc := range []struct {
		name string
		body []byte
		lim  Limits
		want []Series
		err  *wantErr
	}{
		{
			name: "two series",
			body: req(
				ts(pl("__name__", "up", "job", "node", "instance", "a:9100"), ps(1000, 1, 2000, 0)),
				ts(pl("__name__", "http_requests_total", "code", "200"), ps(1000, 10.5, 2000, nan, 3000, inf, 4000, math.Inf(-1))),
			),
			want: []Series{
				series(ls("__name__", "up", "instance", "a:9100", "job", "node"), Sample{1000, 1}, Sample{2000, 0}),
				series(ls("__name__", "http_requests_total", "code", "200"),
					Sample{1000, 10.5}, Sample{2000, nan}, Sample{3000, inf}, Sample{4000, math.Inf(-1)}),
			},
		},
		{
			name: "same series twice is merged, in arrival order, whatever its label order",
			body: req(
				ts(pl("__name__", "up", "job", "a"), ps(1000, 1)),
				ts(pl("__name__", "up", "job", "b"), ps(1000, 2)),
				ts(pl("job", "a", "__name__", "up"), ps(500, 3, 2000, 4)),
			),
			want: []Series{
				series(ls("__name__", "up", "job", "a"), Sample{1000, 1}, Sample{500, 3}, Sample{2000, 4}),
				series(ls("__name__", "up", "job", "b"), Sample{1000, 2}),
			},
		},
		{
			name: "empty label value is dropped",
			body: req(ts(pl("__name__", "up", "job", "", "env", "prod"), ps(1, 1))),
			want: []Series{series(ls("__name__", "up", "env", "prod"), Sample{1, 1})},
		},
		{
			name: "exemplars and metadata ignored, negative timestamps kept",
			body: encodeRW(t, &prompb.WriteRequest{
				Timeseries: []prompb.TimeSeries{{
					Labels:    pl("__name__", "up"),
					Samples:   ps(-5, 1),
					Exemplars: []prompb.Exemplar{{Labels: pl("trace_id", "abc"), Value: 1, Timestamp: 1}},
				}},
				Metadata: []prompb.MetricMetadata{{MetricFamilyName: "up", Help: "h"}},
			}),
			want: []Series{series(ls("__name__", "up"), Sample{-5, 1})},
		},
		{
			name: "series without samples is left out",
			body: req(ts(pl("__name__", "up"), nil), ts(pl("__name__", "down"), ps(1, 1))),
			want: []Series{series(ls("__name__", "down"), Sample{1, 1})},
		},
		{name: "empty request", body: req(), want: []Series{}},
		{
			name: "many labels out of order are sorted",
			body: req(ts(manyLabels(40, true), ps(1, 1))),
			want: []Series{series(labels.FromStrings(pairs(manyLabels(40, false))...), Sample{1, 1})},
		},
		{
			name: "duplicate metric name after a valid series with the same labels",
			body: req(ts(pl("__name__", "up", "a", "1"), ps(1, 1)), ts(pl("__name__", "up", "__name__", "up", "a", "1"), ps(1, 1))),
			err:  &wantErr{is: ErrDuplicateLabel, msg: `duplicate label name "__name__"`},
		},

		{name: "empty body", body: nil, err: &wantErr{is: ErrEmptyBody, msg: "empty body"}},
		{name: "bad snappy", body: []byte("this is not snappy"), err: &wantErr{is: ErrMalformed, msg: "decode snappy"}},
		{name: "corrupt snappy", body: snappy.Encode(nil, []byte("hello hello hello hello"))[:8], err: &wantErr{is: snappy.ErrCorrupt, msg: "decode snappy"}},
		{name: "snappy length bomb", body: []byte{0xff, 0xff, 0xff, 0xff, 0x0f, 0}, err: &wantErr{is: ErrMalformed, msg: "header claims 4294967295 bytes from 6"}},
		{name: "bad protobuf", body: snappy.Encode(nil, []byte{0x0a, 0xff, 0x01, 0x02}), err: &wantErr{is: ErrMalformed, msg: "decode protobuf"}},
		{name: "protobuf garbage", body: snappy.Encode(nil, []byte("definitely not protobuf")), err: &wantErr{is: ErrMalformed, msg: "decode protobuf"}},
		{
			name: "missing metric name",
			body: req(ts(pl("job", "a"), ps(1, 1))),
			err:  &wantErr{is: ErrInvalidMetricName, msg: `missing metric name in series {job="a"}`},
		},
		{
			name: "legacy: invalid metric name",
			lim:  legacyLimits,
			body: req(ts(pl("__name__", "1abc"), ps(1, 1))),
			err:  &wantErr{is: ErrInvalidMetricName, msg: `invalid metric name "1abc"`},
		},
		{
			name: "legacy: invalid label name",
			lim:  legacyLimits,
			body: req(ts(pl("__name__", "up", "1abc", "x"), ps(1, 1))),
			err:  &wantErr{is: ErrInvalidLabelName, msg: `invalid label name "1abc" (ingest.name_validation: legacy) in series up{1abc="x"}`},
		},
		{
			name: "utf8 names",
			body: req(ts(pl("__name__", "http.server.duration", "service.name", "api", "1abc", "x"), ps(1, 1))),
			want: []Series{series(ls("__name__", "http.server.duration", "1abc", "x", "service.name", "api"), Sample{1, 1})},
		},
		{
			name: "utf8: metric name not valid UTF-8",
			body: req(ts(pl("__name__", "a\xffb"), ps(1, 1))),
			err:  &wantErr{is: ErrInvalidMetricName, msg: `invalid metric name "a\xffb": names must be valid, non-empty UTF-8`},
		},
		{
			name: "utf8: label name not valid UTF-8",
			body: req(ts(pl("__name__", "up", "\xc3", "x"), ps(1, 1))),
			err:  &wantErr{is: ErrInvalidLabelName, msg: `invalid label name "\xc3"`},
		},
		{
			name: "duplicate label",
			body: req(ts(pl("__name__", "up", "job", "a", "job", "b"), ps(1, 1))),
			err:  &wantErr{is: ErrDuplicateLabel, msg: `duplicate label name "job"`},
		},
		{
			name: "duplicate metric name",
			body: req(ts(pl("__name__", "up", "__name__", "down"), ps(1, 1))),
			err:  &wantErr{is: ErrDuplicateLabel, msg: `duplicate label name "__name__"`},
		},
		{
			name: "reserved label",
			body: req(ts(pl("__name__", "up", "__tenant", "a"), ps(1, 1))),
			err:  &wantErr{is: ErrReservedLabel, msg: `reserved label name "__tenant"`},
		},
		{
			name: "invalid UTF-8 value",
			body: req(ts(pl("__name__", "up", "job", "a\xffb"), ps(1, 1))),
			err:  &wantErr{is: ErrInvalidLabelValue, msg: `value of label "job" is not valid UTF-8`},
		},
		{
			name: "native histogram stored with the floats",
			body: encodeRW(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
				{Labels: pl("__name__", "up"), Samples: ps(1, 1)},
				{Labels: pl("__name__", "latency"), Histograms: []prompb.Histogram{{Count: &prompb.Histogram_CountInt{CountInt: 1}, ZeroCount: &prompb.Histogram_ZeroCountInt{ZeroCountInt: 1}, Sum: 1, Timestamp: 1}}},
			}}),
			want: []Series{
				series(ls("__name__", "up"), Sample{1, 1}),
				{Labels: ls("__name__", "latency"), Histograms: []HistogramSample{{T: 1, H: &histogram.Histogram{Count: 1, ZeroCount: 1, Sum: 1}}}},
			},
		},
		{
			name: "too many series", lim: tight,
			body: req(ts(pl("__name__", "a"), ps(1, 1)), ts(pl("__name__", "b"), ps(1, 1)), ts(pl("__name__", "c"), ps(1, 1))),
			err:  &wantErr{is: ErrTooManySeries, msg: "too many series: more than 2"},
		},
		{
			name: "too many samples", lim: tight,
			body: req(ts(pl("__name__", "a"), ps(1, 1, 2, 2)), ts(pl("__name__", "b"), ps(1, 1, 2, 2))),
			err:  &wantErr{is: ErrTooManySamples, msg: "too many samples: more than 3"},
		},
		{
			name: "too many labels", lim: tight,
			body: req(ts(pl("__name__", "a", "b", "1", "c", "1"), ps(1, 1))),
			err:  &wantErr{is: ErrTooManyLabels, msg: "too many labels: 3, limit is 2"},
		},
		{
			name: "label name too long", lim: tight,
			body: req(ts(pl("__name__", "a", "abcde", "1"), ps(1, 1))),
			err:  &wantErr{is: ErrLabelTooLong, msg: `label name "abcde" too long: 5 bytes, limit is 4`},
		},
		{
			name: "label value too long", lim: tight,
			body: req(ts(pl("__name__", "a", "b", "1234567"), ps(1, 1))),
			err:  &wantErr{is: ErrLabelTooLong, msg: `value of label "b" too long: 7 bytes, limit is 6`},
		},
		{
			name: "metric name too long", lim: tight,
			body: req(ts(pl("__name__", "abcdefg"), ps(1, 1))),
			err:  &wantErr{is: ErrLabelTooLong, msg: "metric name too long: 7 bytes, limit is 6"},
		},
		{
			name: "within tight limits after merging", lim: tight,
			body: req(ts(pl("__name__", "a", "b", "123456"), ps(1, 1)), ts(pl("__name__", "b"), ps(1, 1)), ts(pl("b", "123456", "__name__", "a"), ps(2, 2))),
			want: []Series{
				series(ls("__name__", "a", "b", "123456"), Sample{1, 1}, Sample{2, 2}),
				series(ls("__name__", "b"), Sample{1, 1}),
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := lim
			if tc.lim != (Limits{}) {
				l = tc.lim
			}
			got, err := DecodeRemoteWrite(tc.body, l)
			checkResult(t, got, err, tc.want, tc.err)
			if err == nil {
				checkBatchValid(t, got, l)
			}
		})
	}
}

// TestDecodeRemoteWriteNoAliasing checks that a batch does not share memory
// with the pooled buffers of later requests.
func TestDecodeRemoteWriteNoAliasing(t *testing.T) {
	first, err := DecodeRemoteWrite(encodeRW(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
		{Labels: pl("__name__", "first", "job", strings.Repeat("a", 100)), Samples: ps(1, 1)},
	}}), DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	for range 10 {
		if _, err := DecodeRemoteWrite(encodeRW(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
			{Labels: pl("__name__", "other", "job", strings.Repeat("b", 100)), Samples: ps(2, 2)},
		}}), DefaultLimits()); err != nil {
			t.Fatal(err)
		}
	}
	requireBatch(t, first, []Series{series(ls("__name__", "first", "job", strings.Repeat("a", 100)), Sample{1, 1})})
}

// TestSnappyRatio checks the bound DecodeRemoteWrite puts on the decoded
// length against the most compressible input there is.
func TestSnappyRatio(t *testing.T) {
	for _, n := range []int{1, 100, 1 << 20, 8 << 20} {
		raw := make([]byte, n)
		enc := snappy.Encode(nil, raw)
		if n > maxSnappyRatio*len(enc) {
			t.Errorf("%d zero bytes compress to %d bytes, over the %dx bound", n, len(enc), maxSnappyRatio)
		}
		// Zeros are not protobuf (field 0 is illegal), but they must get
		// past snappy.
		_, err := DecodeRemoteWrite(enc, DefaultLimits())
		if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "decode protobuf: proto: WriteRequest: illegal tag 0") {
			t.Errorf("%d zero bytes: %v", n, err)
		}
	}
}

// manyLabels returns __name__ plus n labels, in reverse order if reversed.
func manyLabels(n int, reversed bool) []prompb.Label {
	out := pl("__name__", "wide")
	for i := range n {
		out = append(out, prompb.Label{Name: fmt.Sprintf("l%03d", i), Value: strconv.Itoa(i)})
	}
	if reversed {
		slices.Reverse(out)
	}
	return out
}

func pairs(ls []prompb.Label) []string {
	var out []string
	for _, l := range ls {
		out = append(out, l.Name, l.Value)
	}
	return out
}

// An exemplar Prometheus would refuse is left out and counted, and the
// request's samples and valid exemplars are kept, as Prometheus' remote
// write 1.0 handler does.
func TestDecodeRemoteWriteDropsInvalidExemplars(t *testing.T) {
	long := strings.Repeat("x", 130)
	body := encodeRW(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
		{
			Labels:  pl("__name__", "a"),
			Samples: ps(1000, 1),
			Exemplars: []prompb.Exemplar{
				{Labels: pl("1bad", "x"), Value: 1, Timestamp: 1000},
				{Labels: pl("trace_id", "ok1"), Value: 2, Timestamp: 1000},
				{Labels: pl("trace_id", long), Value: 3, Timestamp: 1000},
			},
		},
		{
			Labels:    pl("__name__", "b"),
			Samples:   ps(2000, 2),
			Exemplars: []prompb.Exemplar{{Labels: pl("trace_id", "x", "trace_id", "y"), Value: 4, Timestamp: 2000}},
		},
	}})
	got, err := DecodeRemoteWrite(body, legacyLimits)
	if err != nil {
		t.Fatalf("DecodeRemoteWrite: %v", err)
	}
	requireSameBatch(t, got, &Batch{
		Series: []Series{
			series(ls("__name__", "a"), Sample{1000, 1}),
			series(ls("__name__", "b"), Sample{2000, 2}),
		},
		Exemplars: []SeriesExemplars{{
			Labels:    ls("__name__", "a"),
			Exemplars: []Exemplar{{Labels: ls("trace_id", "ok1"), T: 1000, V: 2}},
		}},
		DroppedExemplars: 3,
	})
}
