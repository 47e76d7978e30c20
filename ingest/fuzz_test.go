package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/influxdata/line-protocol/v2/lineprotocol"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
)

// fuzzLimits are small enough for the fuzzer to reach every limit.
var fuzzLimits = Limits{MaxSeriesPerRequest: 50, MaxSamplesPerRequest: 200, MaxLabelsPerSeries: 8, MaxLabelNameLength: 32, MaxLabelValueLength: 64}

// checkDecoded asserts the contract every decoder keeps: an *Error and no
// batch, or a batch whose series all validate.
func checkDecoded(t *testing.T, b *Batch, err error) bool {
	t.Helper()
	if err != nil {
		var e *Error
		if !errors.As(err, &e) {
			t.Fatalf("error %v (%T) is not an *Error", err, err)
		}
		if b != nil {
			t.Fatalf("got a batch with error %v", err)
		}
		return false
	}
	checkBatchValid(t, b, fuzzLimits)
	// An empty batch (say, only comments) has nothing to round-trip.
	return len(b.Series) > 0
}

// sortedSeries returns b's series sorted by labels, for comparisons where
// the decoder may order series differently.
func sortedSeries(b *Batch) []Series {
	s := slices.Clone(b.Series)
	slices.SortStableFunc(s, func(a, b Series) int { return labels.Compare(a.Labels, b.Labels) })
	return s
}

func FuzzDecodeRemoteWrite(f *testing.F) {
	valid, _ := (&prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
		{Labels: pl("__name__", "up", "job", "a"), Samples: ps(1, 1, 2, math.NaN())},
		{Labels: pl("job", "a", "__name__", "up"), Samples: ps(3, 3)},
		{Labels: pl("__name__", "x", "e", ""), Samples: ps(-1, math.Inf(1))},
	}}).Marshal()
	bad, _ := (&prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
		{Labels: pl("__name__", "1x", "__y", "a", "a", "1", "a", "2"), Samples: ps(1, 1)},
		{Labels: pl("__name__", "h"), Histograms: []prompb.Histogram{{Sum: 1}}},
	}}).Marshal()
	hists, _ := (&prompb.WriteRequest{Timeseries: testHistogramSeries()}).Marshal()
	badHist, _ := (&prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
		{Labels: pl("__name__", "h"), Histograms: []prompb.Histogram{{Schema: 9, Count: &prompb.Histogram_CountInt{CountInt: 1}}, {Schema: -5}}},
	}}).Marshal()
	withMeta, _ := (&prompb.WriteRequest{
		Timeseries: []prompb.TimeSeries{{Labels: pl("__name__", "c_total"), Samples: ps(1, 1),
			Exemplars: []prompb.Exemplar{{Labels: pl("trace_id", "abc"), Value: 1, Timestamp: 1}, {Labels: pl("span_id", "")}}}},
		Metadata: []prompb.MetricMetadata{{Type: prompb.MetricMetadata_COUNTER, MetricFamilyName: "c_total", Help: "h", Unit: "u"}, {Type: 99, MetricFamilyName: "x"}},
	}).Marshal()
	badExemplar, _ := (&prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{Labels: pl("__name__", "c"), Exemplars: []prompb.Exemplar{{Labels: pl("1x", "y")}}}}}).Marshal()
	for _, raw := range [][]byte{valid, bad, hists, badHist, withMeta, badExemplar, {}, {0x0a, 0xff}, []byte("not protobuf")} {
		f.Add(raw)
		f.Add(snappy.Encode(nil, raw))
	}
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		// data is tried both as the body and as the protobuf inside a
		// valid snappy block, so the fuzzer can explore either layer.
		for _, body := range [][]byte{data, snappy.Encode(nil, data)} {
			b, err := DecodeRemoteWrite(body, fuzzLimits)
			checkAgainstPrompb(t, body, fuzzLimits, b, err)
			if !checkDecoded(t, b, err) {
				continue
			}
			// Round trip: the batch re-encoded decodes to itself.
			req := &prompb.WriteRequest{}
			for _, s := range b.Series {
				ts := prompb.TimeSeries{}
				s.Labels.Range(func(l labels.Label) { ts.Labels = append(ts.Labels, prompb.Label{Name: l.Name, Value: l.Value}) })
				for _, smp := range s.Samples {
					ts.Samples = append(ts.Samples, prompb.Sample{Timestamp: smp.T, Value: smp.V})
				}
				for _, h := range s.Histograms {
					if h.H != nil {
						ts.Histograms = append(ts.Histograms, prompb.FromIntHistogram(h.T, h.H))
					} else {
						ts.Histograms = append(ts.Histograms, prompb.FromFloatHistogram(h.T, h.FH))
					}
				}
				req.Timeseries = append(req.Timeseries, ts)
			}
			again, err := DecodeRemoteWrite(encodeRW(t, req), fuzzLimits)
			if err != nil {
				t.Fatalf("re-encoded batch does not decode: %v", err)
			}
			requireBatch(t, again, b.Series)
		}
	})
}

// checkAgainstPrompb compares DecodeRemoteWrite (under lim)'s result with decoding body
// through prompb's generated Unmarshal: wherever prompb accepts the
// protobuf, the hand-written reader must give the same batch or the same
// validation error. (It may accept more, as it skips exemplars and metadata
// unparsed.)
func checkAgainstPrompb(t *testing.T, body []byte, lim Limits, got *Batch, gotErr error) {
	t.Helper()
	if n, err := snappy.DecodedLen(body); err != nil || n > maxSnappyRatio*len(body) {
		return // refused before decoding; do not allocate what the header claims
	}
	raw, err := snappy.Decode(nil, body)
	if err != nil || len(body) == 0 {
		return
	}
	var req prompb.WriteRequest
	if err := req.Unmarshal(raw); err != nil {
		return
	}
	want, wantErr := referenceBatch(&req, lim)
	if wantErr != nil {
		if gotErr == nil || !sameSentinel(gotErr, wantErr) {
			t.Fatalf("prompb path fails with %v, DecodeRemoteWrite with %v", wantErr, gotErr)
		}
		return
	}
	if gotErr != nil {
		t.Fatalf("prompb path decodes, DecodeRemoteWrite fails: %v", gotErr)
	}
	requireSameBatch(t, got, want)
}

// referenceBatch builds a batch from an unmarshalled request, the obvious
// way.
func referenceBatch(req *prompb.WriteRequest, lim Limits) (*Batch, error) {
	b := getBuilder(lim)
	defer b.release()
	for _, ts := range req.Timeseries {
		b.resetLabels()
		for _, l := range ts.Labels {
			b.addLabel(l.Name, l.Value)
		}
		b.finishLabels()
		ref, err := b.seriesRef()
		if err != nil {
			return nil, err
		}
		for _, s := range ts.Samples {
			if err := b.add(ref, s.Timestamp, s.Value); err != nil {
				return nil, err
			}
		}
		for _, h := range ts.Histograms {
			var err error
			if h.IsFloatHistogram() {
				err = b.addHistogram(ref, h.Timestamp, nil, h.ToFloatHistogram())
			} else {
				err = b.addHistogram(ref, h.Timestamp, h.ToIntHistogram(), nil)
			}
			if err != nil {
				return nil, err
			}
		}
		for _, e := range ts.Exemplars {
			b.exsb.Reset()
			for _, l := range e.Labels {
				if l.Value != "" {
					b.exsb.Add(l.Name, l.Value)
				}
			}
			if err := b.addExemplar(ref, e.Timestamp, e.Value); err != nil {
				if !errors.Is(err, ErrInvalidExemplar) {
					return nil, err
				}
				b.droppedEx++
			}
		}
	}
	for _, m := range req.Metadata {
		typ := model.MetricTypeUnknown
		if _, ok := prompb.MetricMetadata_MetricType_name[int32(m.Type)]; ok {
			typ = model.MetricType(strings.ToLower(m.Type.String()))
		}
		b.addMetadata(m.MetricFamilyName, Metadata{Type: typ, Help: m.Help, Unit: m.Unit})
	}
	out := b.batch()
	out.DroppedExemplars = b.droppedEx
	return out, nil
}

func sameSentinel(a, b error) bool {
	for _, s := range []error{ErrUnsupported, ErrInvalidHistogram, ErrInvalidMetricName, ErrInvalidLabelName, ErrInvalidLabelValue,
		ErrReservedLabel, ErrDuplicateLabel, ErrTooManySeries, ErrTooManySamples, ErrTooManyLabels, ErrLabelTooLong} {
		if errors.Is(a, s) != errors.Is(b, s) {
			return false
		}
	}
	return true
}

var fuzzPrecisions = []string{"", "ns", "n", "us", "u", "ms", "s", "h"}

func FuzzDecodeLineProtocol(f *testing.F) {
	for _, s := range []string{
		`cpu,host=a,region=us\ west usage=1.5,idle=2i,count=3u,ok=true,msg="x" 1700000000000000000`,
		"# c\n\ncpu,host=a v=1\ncpu,host=a v=2 5\r\nmem s=\"multi\nline\"\n",
		"m,b=2,a=1 f=1 1\nm,a=1,b=2 f=2 2",
		"m f=1\nm,host=a\n",
		"1m f=1", "m,1a=x f=1", "m,a=1,a=2 f=1", "m,__x=1 f=1", "m,__name__=x f=1",
		"m f=1 9223372036854775807", "m f=1 -9223372036854775808", "m f=abc", "m f=1 12ab",
		"m " + strings.Repeat("f=1,", 300) + "g=1",
		`a\_ f=1`, `a\_b_c f=1`, `m f\\=1`, "m\x7f f=1", "m f=1\nm\x7f f=2",
	} {
		f.Add([]byte(s), uint8(0))
		f.Add([]byte(s), uint8(6))
	}
	f.Add([]byte("m f=1"), uint8(7))
	f.Fuzz(func(t *testing.T, body []byte, prec uint8) {
		precision := fuzzPrecisions[int(prec)%len(fuzzPrecisions)]
		now := time.UnixMilli(1_700_000_000_000)
		b, err := DecodeLineProtocol(body, precision, now, fuzzLimits)
		if !checkDecoded(t, b, err) {
			return
		}
		// Round trip: write the batch back as line protocol at ms
		// precision, one line per sample, splitting each name at an
		// inner underscore (any split gives the same series name).
		var enc lineprotocol.Encoder
		for _, s := range b.Series {
			name := s.Labels.Get(labels.MetricName)
			i := splitLineName(name)
			if i <= 0 {
				t.Fatalf("series name %q is not <measurement>_<field>", name)
			}
			for _, smp := range s.Samples {
				enc.StartLine(name[:i])
				s.Labels.Range(func(l labels.Label) {
					if l.Name != labels.MetricName {
						enc.AddTag(l.Name, l.Value)
					}
				})
				v, ok := lineprotocol.FloatValue(smp.V)
				if !ok {
					t.Fatalf("decoded a non-finite value %v from line protocol", smp.V)
				}
				enc.AddField(name[i+1:], v)
				enc.EndLine(time.Time{})
				if enc.Err() != nil {
					return // a value the encoder refuses, e.g. a control character
				}
				out := enc.Bytes()
				enc.SetBuffer(append(strconv.AppendInt(append(out[:len(out)-1], ' '), smp.T, 10), '\n'))
			}
		}
		again, err := DecodeLineProtocol(enc.Bytes(), "ms", now, fuzzLimits)
		if err != nil {
			t.Fatalf("re-encoded batch does not decode: %v\n%s", err, enc.Bytes())
		}
		requireBatch(t, again, b.Series)
	})
}

// splitLineName returns the index of the inner underscore that splits a
// line protocol series name into <measurement>_<field>: the first one
// not after a backslash (a measurement ending in one cannot be written),
// else the first one, else 0.
func splitLineName(name string) int {
	first := 0
	for i := 1; i < len(name)-1; i++ {
		if name[i] != '_' {
			continue
		}
		if name[i-1] != '\\' {
			return i
		}
		if first == 0 {
			first = i
		}
	}
	return first
}

func FuzzDecodeJSONLines(f *testing.F) {
	for _, s := range []string{
		`{"metric":{"__name__":"up","job":"a"},"values":[1,"NaN","Inf","-Inf"],"timestamps":[1,2,3,4]}`,
		"\n{\"metric\":{\"__name__\":\"up\",\"e\":\"\"},\"values\":[1],\"timestamps\":[1]}\r\n{\"metric\":{\"__name__\":\"up\"},\"values\":[2],\"timestamps\":[0]}",
		`{"metric":{"__name__":"up"},"values":[null],"timestamps":[1]}`,
		`{"metric":{"__name__":"up"},"values":[1,2],"timestamps":[1]}`,
		`{"metric":{"__name__":"up","a":"1","a":"2"},"values":[1],"timestamps":[1]}`,
		`{"metric":{"__name__":"up","a":1},"values":[1],"timestamps":["1"]}`,
		`[1]`, `{"metric":`, `null`, `{"metric":{"__name__":"up\u0000"},"values":[1e999],"timestamps":[1]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		b, err := DecodeJSONLines(body, fuzzLimits)
		if !checkDecoded(t, b, err) {
			return
		}
		// Round trip: one line per series.
		var buf bytes.Buffer
		for _, s := range b.Series {
			metric := map[string]string{}
			s.Labels.Range(func(l labels.Label) { metric[l.Name] = l.Value })
			values := make([]any, len(s.Samples))
			ts := make([]int64, len(s.Samples))
			for i, smp := range s.Samples {
				ts[i] = smp.T
				switch {
				case math.IsNaN(smp.V):
					values[i] = "NaN"
				case math.IsInf(smp.V, 1):
					values[i] = "+Inf"
				case math.IsInf(smp.V, -1):
					values[i] = "-Inf"
				default:
					values[i] = smp.V
				}
			}
			line, err := json.Marshal(map[string]any{"metric": metric, "values": values, "timestamps": ts})
			if err != nil {
				t.Fatal(err)
			}
			buf.Write(line)
			buf.WriteByte('\n')
		}
		again, err := DecodeJSONLines(buf.Bytes(), fuzzLimits)
		if err != nil {
			t.Fatalf("re-encoded batch does not decode: %v\n%s", err, buf.Bytes())
		}
		requireBatch(t, again, b.Series)
	})
}

func FuzzDecodePromText(f *testing.F) {
	for _, s := range []string{
		exposition,
		"a{x=\"1\"} 1 1000\na{x=\"1\",y=\"\"} 2 2000\n",
		"# TYPE h histogram\nh_bucket{le=\"2.5\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_count 2\n",
		"# TYPE s summary\ns{quantile=\"0.5\"} 1\ns_count 1.5\ns_sum NaN\n",
		"a 1\nb abc\n", "a{__x=\"1\"} 1\n", "a{x=\"1\",x=\"2\"} 1\n", "1abc 1\n", "a 1 1.5\n",
		"{\"a\"} 1\n", "a{\"b\"=\"c\"} 1\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		def := time.UnixMilli(1_700_000_000_000)
		b, err := DecodePromText(body, "text/plain; version=0.0.4", def, fuzzLimits)
		if !checkDecoded(t, b, err) {
			return
		}
		// Round trip: write every sample back as an untyped line with
		// its timestamp, every name quoted inside the braces (names need
		// not be valid unquoted: `"0"0` is metric "0"); series come back
		// in another order.
		var buf strings.Builder
		for _, s := range b.Series {
			for _, smp := range s.Samples {
				buf.WriteString(`{"` + escapeLabelValue(s.Labels.Get(labels.MetricName)) + `"`)
				s.Labels.Range(func(l labels.Label) {
					if l.Name != labels.MetricName {
						buf.WriteString(`,"` + escapeLabelValue(l.Name) + `"="` + escapeLabelValue(l.Value) + `"`)
					}
				})
				buf.WriteString("} " + formatFloat(smp.V) + " " + strconv.FormatInt(smp.T, 10) + "\n")
			}
		}
		again, err := DecodePromText([]byte(buf.String()), "", def, fuzzLimits)
		if err != nil {
			t.Fatalf("re-encoded batch does not decode: %v\n%s", err, buf.String())
		}
		requireBatch(t, &Batch{Series: sortedSeries(again)}, sortedSeries(b))
	})
}

func escapeLabelValue(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s)
}

func formatFloat(v float64) string {
	switch {
	case math.IsNaN(v):
		return "NaN"
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}
