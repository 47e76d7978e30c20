package ingest

import (
	"errors"
	"math"
	"slices"
	"testing"

	"github.com/golang/snappy"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
)

// v2Request builds a writev2.Request through writev2's own symbols table,
// as Prometheus' sender does.
type v2Request struct {
	st  writev2.SymbolsTable
	req writev2.Request
}

func newV2Request() *v2Request { return &v2Request{st: writev2.NewSymbolTable()} }

// series adds a series with labels kv, metadata md and what add fills in.
func (r *v2Request) series(kv []string, md Metadata, add func(ts *writev2.TimeSeries)) {
	ts := writev2.TimeSeries{LabelsRefs: r.st.SymbolizeLabels(labels.FromStrings(kv...), nil)}
	ts.Metadata.Type = writev2.FromMetadataType(md.Type)
	ts.Metadata.HelpRef = r.st.Symbolize(md.Help)
	ts.Metadata.UnitRef = r.st.Symbolize(md.Unit)
	if add != nil {
		add(&ts)
	}
	r.req.Timeseries = append(r.req.Timeseries, ts)
}

func (r *v2Request) exemplar(kv []string, t int64, v float64) writev2.Exemplar {
	return writev2.Exemplar{LabelsRefs: r.st.SymbolizeLabels(labels.FromStrings(kv...), nil), Timestamp: t, Value: v}
}

func (r *v2Request) body(t testing.TB) []byte {
	t.Helper()
	r.req.Symbols = r.st.Symbols()
	raw, err := r.req.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return snappy.Encode(nil, raw)
}

// referenceBatchV2 builds the batch of an unmarshalled 2.0 request the
// obvious way, through writev2's conversions (ToLabels, ToMetadata,
// ToExemplar, ToIntHistogram, ToFloatHistogram).
func referenceBatchV2(req *writev2.Request, lim Limits) (*Batch, *Rejected, error) {
	b := getBuilder(lim)
	defer b.release()
	var (
		rej Rejected
		sb  = labels.NewScratchBuilder(0)
	)
	for _, ts := range req.Timeseries {
		reject := func(err error) { rej.add(err, len(ts.Samples), len(ts.Histograms), len(ts.Exemplars)) }
		lset, err := ts.ToLabels(&sb, req.Symbols)
		if err != nil {
			reject(err)
			continue
		}
		b.resetLabels()
		lset.Range(func(l labels.Label) { b.addLabel(l.Name, l.Value) })
		b.finishLabels()
		md, err := ts.ToMetadata(req.Symbols)
		if err != nil {
			reject(err)
			continue
		}
		if len(ts.Samples)+len(ts.Histograms)+len(ts.Exemplars) == 0 {
			reject(errors.New("empty"))
			continue
		}
		ref, err := b.seriesRef()
		if err != nil {
			if errors.Is(err, ErrTooManySeries) {
				return nil, nil, err
			}
			reject(err)
			continue
		}
		b.addMetadata(metadataFamily(b.name, md.Type), Metadata{Type: md.Type, Unit: md.Unit, Help: md.Help})
		for _, s := range ts.Samples {
			if err := b.addWithStart(ref, s.Timestamp, s.Value, s.StartTimestamp); err != nil {
				return nil, nil, err
			}
		}
		for _, h := range ts.Histograms {
			if h.IsFloatHistogram() {
				err = b.addHistogram(ref, h.Timestamp, nil, h.ToFloatHistogram())
			} else {
				err = b.addHistogram(ref, h.Timestamp, h.ToIntHistogram(), nil)
			}
			if errors.Is(err, ErrInvalidHistogram) {
				rej.add(err, 0, 1, 0)
				continue
			}
			if err != nil {
				return nil, nil, err
			}
			b.setHistogramStart(h.StartTimestamp)
		}
		for _, e := range ts.Exemplars {
			ex, err := e.ToExemplar(&sb, req.Symbols)
			if err != nil {
				rej.add(err, 0, 0, 1)
				continue
			}
			b.exsb.Reset()
			ex.Labels.Range(func(l labels.Label) {
				if l.Value != "" {
					b.exsb.Add(l.Name, l.Value)
				}
			})
			if err := b.addExemplar(ref, ex.Ts, ex.Value); err != nil {
				if !errors.Is(err, ErrInvalidExemplar) {
					return nil, nil, err
				}
				rej.add(err, 0, 0, 1)
			}
		}
	}
	if rej.Samples+rej.Histograms+rej.Exemplars+len(rej.Errs) == 0 {
		return b.batch(), nil, nil
	}
	return b.batch(), &rej, nil
}

// requireSameBatch asserts got equals want in everything a Batch holds.
func requireSameBatch(t *testing.T, got, want *Batch) {
	t.Helper()
	requireBatch(t, got, want.Series)
	for i := range want.Series {
		g, w := got.Series[i], want.Series[i]
		if !slices.Equal(g.StartTimes, w.StartTimes) || !slices.Equal(g.HistogramStartTimes, w.HistogramStartTimes) {
			t.Errorf("series %s: start times %v %v, want %v %v", w.Labels, g.StartTimes, g.HistogramStartTimes, w.StartTimes, w.HistogramStartTimes)
		}
	}
	if len(got.Exemplars) != len(want.Exemplars) {
		t.Fatalf("exemplars of %d series, want %d: %v, want %v", len(got.Exemplars), len(want.Exemplars), got.Exemplars, want.Exemplars)
	}
	for i, w := range want.Exemplars {
		g := got.Exemplars[i]
		same := labels.Equal(g.Labels, w.Labels) && len(g.Exemplars) == len(w.Exemplars)
		for j := 0; same && j < len(w.Exemplars); j++ {
			a, b := g.Exemplars[j], w.Exemplars[j]
			same = labels.Equal(a.Labels, b.Labels) && a.T == b.T && math.Float64bits(a.V) == math.Float64bits(b.V)
		}
		if !same {
			t.Errorf("exemplars %d: %v, want %v", i, g, w)
		}
	}
	if !slices.Equal(got.Metadata, want.Metadata) {
		t.Errorf("metadata %v, want %v", got.Metadata, want.Metadata)
	}
	if got.DroppedExemplars != want.DroppedExemplars {
		t.Errorf("%d exemplars dropped, want %d", got.DroppedExemplars, want.DroppedExemplars)
	}
}

func sameRejected(a, b *Rejected) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Samples == b.Samples && a.Histograms == b.Histograms && a.Exemplars == b.Exemplars && len(a.Errs)+a.More == len(b.Errs)+b.More
}

// testV2Request is a request with everything remote write 2.0 carries.
func testV2Request() *v2Request {
	r := newV2Request()
	counter := Metadata{Type: model.MetricTypeCounter, Help: "Requests served.", Unit: ""}
	r.series([]string{"__name__", "http_requests_total", "job", "api", "code", "200"}, counter, func(ts *writev2.TimeSeries) {
		ts.Samples = []writev2.Sample{{Value: 5, Timestamp: 2000, StartTimestamp: 1000}, {Value: 7, Timestamp: 3000, StartTimestamp: 1000}}
		ts.Exemplars = []writev2.Exemplar{r.exemplar([]string{"trace_id", "abc123", "span_id", "s1"}, 2500, 1.5)}
	})
	r.series([]string{"__name__", "http_requests_total", "job", "api", "code", "500"}, counter, func(ts *writev2.TimeSeries) {
		ts.Samples = []writev2.Sample{{Value: math.NaN(), Timestamp: 2000}}
	})
	r.series([]string{"__name__", "temperature", "room", "a"}, Metadata{Type: model.MetricTypeGauge, Help: "Room temperature.", Unit: "celsius"}, func(ts *writev2.TimeSeries) {
		ts.Samples = []writev2.Sample{{Value: -3.5, Timestamp: 2000}}
	})
	lat := Metadata{Type: model.MetricTypeHistogram, Help: "Latency.", Unit: "seconds"}
	r.series([]string{"__name__", "latency_seconds", "job", "api"}, lat, func(ts *writev2.TimeSeries) {
		h := &histogram.Histogram{Schema: 1, Count: 5, Sum: 3.5, ZeroThreshold: 0.001, ZeroCount: 1,
			PositiveSpans: []histogram.Span{{Offset: 0, Length: 2}, {Offset: 1, Length: 1}}, PositiveBuckets: []int64{1, 1, -1}}
		fh := &histogram.FloatHistogram{Schema: 0, Count: 2.5, Sum: 1, PositiveSpans: []histogram.Span{{Offset: 1, Length: 1}}, PositiveBuckets: []float64{2.5}}
		ts.Histograms = []writev2.Histogram{writev2.FromIntHistogram(1500, 2000, h), writev2.FromFloatHistogram(0, 3000, fh)}
		ts.Exemplars = []writev2.Exemplar{r.exemplar([]string{"trace_id", "t2"}, 2100, 0.25)}
	})
	// A classic histogram's series share the family's metadata.
	r.series([]string{"__name__", "size_bytes_bucket", "le", "+Inf"}, Metadata{Type: model.MetricTypeHistogram, Help: "Sizes."}, func(ts *writev2.TimeSeries) {
		ts.Samples = []writev2.Sample{{Value: 4, Timestamp: 2000}}
	})
	r.series([]string{"__name__", "size_bytes_count"}, Metadata{Type: model.MetricTypeHistogram, Help: "Sizes."}, func(ts *writev2.TimeSeries) {
		ts.Samples = []writev2.Sample{{Value: 4, Timestamp: 2000}}
	})
	// Exemplars alone, as Prometheus sends them.
	r.series([]string{"__name__", "http_requests_total", "job", "api", "code", "200"}, counter, func(ts *writev2.TimeSeries) {
		ts.Exemplars = []writev2.Exemplar{r.exemplar([]string{"trace_id", "def"}, 2900, 1)}
	})
	return r
}

// TestDecodeRemoteWriteV2 decodes a request with every kind of content and
// compares it with writev2's own decoding, and with the values written.
func TestDecodeRemoteWriteV2(t *testing.T) {
	r := testV2Request()
	body := r.body(t)
	got, rej, err := DecodeRemoteWriteV2(body, DefaultLimits())
	if err != nil || rej != nil {
		t.Fatalf("decode: %v %v", rej, err)
	}
	var req writev2.Request
	if err := req.Unmarshal(mustUnsnappy(t, body)); err != nil {
		t.Fatal(err)
	}
	want, wantRej, err := referenceBatchV2(&req, DefaultLimits())
	if err != nil || wantRej != nil {
		t.Fatalf("reference: %v %v", wantRej, err)
	}
	requireSameBatch(t, got, want)

	// And against the values themselves.
	if n := len(got.Series); n != 6 {
		t.Fatalf("%d series, want 6", n)
	}
	s := got.Series[0]
	if s.Labels.String() != `{__name__="http_requests_total", code="200", job="api"}` || !slices.Equal(s.Samples, []Sample{{2000, 5}, {3000, 7}}) || !slices.Equal(s.StartTimes, []int64{1000, 1000}) {
		t.Errorf("series 0: %v %v %v", s.Labels, s.Samples, s.StartTimes)
	}
	if s := got.Series[1]; s.StartTimes == nil || s.StartTimes[0] != 0 {
		t.Errorf("series without start time: %v", s.StartTimes)
	}
	h := got.Series[3]
	if len(h.Histograms) != 2 || h.Histograms[0].H == nil || h.Histograms[0].H.Count != 5 || h.Histograms[1].FH == nil || h.Histograms[1].FH.Count != 2.5 ||
		!slices.Equal(h.HistogramStartTimes, []int64{1500, 0}) {
		t.Errorf("histograms: %+v %v", h.Histograms, h.HistogramStartTimes)
	}
	if got.NumExemplars() != 3 || len(got.Exemplars) != 2 || got.Exemplars[0].Exemplars[1].Labels.String() != `{trace_id="def"}` ||
		got.Exemplars[0].Exemplars[0].Labels.String() != `{span_id="s1", trace_id="abc123"}` || got.Exemplars[0].Exemplars[0].V != 1.5 {
		t.Errorf("exemplars: %+v", got.Exemplars)
	}
	wantMeta := []FamilyMetadata{
		{"http_requests_total", Metadata{model.MetricTypeCounter, "", "Requests served."}},
		{"temperature", Metadata{model.MetricTypeGauge, "celsius", "Room temperature."}},
		{"latency_seconds", Metadata{model.MetricTypeHistogram, "seconds", "Latency."}},
		{"size_bytes", Metadata{model.MetricTypeHistogram, "", "Sizes."}},
	}
	if !slices.Equal(got.Metadata, wantMeta) {
		t.Errorf("metadata %v, want %v", got.Metadata, wantMeta)
	}
}

func mustUnsnappy(t testing.TB, body []byte) []byte {
	t.Helper()
	raw, err := snappy.Decode(nil, body)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// TestDecodeRemoteWriteV2Partial: what cannot be written is left out,
// counted and named; the rest is kept. Limits and malformed protobuf
// refuse the whole request.
func TestDecodeRemoteWriteV2Partial(t *testing.T) {
	good := func(ts *writev2.TimeSeries) { ts.Samples = []writev2.Sample{{Value: 1, Timestamp: 1}} }
	f := func(name string, build func(r *v2Request), wantSeries int, want Rejected, is error) {
		t.Helper()
		r := newV2Request()
		r.series([]string{"__name__", "ok"}, Metadata{}, good)
		build(r)
		b, rej, err := DecodeRemoteWriteV2(r.body(t), DefaultLimits())
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if rej == nil || rej.Samples != want.Samples || rej.Histograms != want.Histograms || rej.Exemplars != want.Exemplars || !errors.Is(rej, is) {
			t.Fatalf("%s: rejected %+v (%v), want %+v wrapping %v", name, rej, rej, want, is)
		}
		if len(b.Series) != wantSeries || b.Series[0].Labels.Get("__name__") != "ok" {
			t.Fatalf("%s: kept %v", name, b.Series)
		}
	}
	f("bad metric name", func(r *v2Request) {
		r.series([]string{"__name__", "1bad\xff"}, Metadata{}, func(ts *writev2.TimeSeries) {
			ts.Samples = []writev2.Sample{{Value: 1, Timestamp: 1}, {Value: 2, Timestamp: 2}}
		})
	}, 1, Rejected{Samples: 2}, ErrInvalidMetricName)
	f("label ref outside the table", func(r *v2Request) {
		r.series([]string{"__name__", "x"}, Metadata{}, good)
		r.req.Timeseries[1].LabelsRefs[1] = 999
	}, 1, Rejected{Samples: 1}, ErrMalformed)
	f("odd label refs", func(r *v2Request) {
		r.series([]string{"__name__", "x"}, Metadata{}, good)
		r.req.Timeseries[1].LabelsRefs = r.req.Timeseries[1].LabelsRefs[:1]
	}, 1, Rejected{Samples: 1}, ErrMalformed)
	f("empty series", func(r *v2Request) {
		r.series([]string{"__name__", "x"}, Metadata{}, nil)
	}, 1, Rejected{}, ErrEmptySeries)
	f("invalid histogram", func(r *v2Request) {
		r.series([]string{"__name__", "h"}, Metadata{}, func(ts *writev2.TimeSeries) {
			ok := &histogram.Histogram{Schema: 0, Count: 1, PositiveSpans: []histogram.Span{{Length: 1}}, PositiveBuckets: []int64{1}}
			bad := &histogram.Histogram{Schema: 0, Count: 0, PositiveSpans: []histogram.Span{{Length: 1}}, PositiveBuckets: []int64{5}}
			ts.Histograms = []writev2.Histogram{writev2.FromIntHistogram(0, 1, ok), writev2.FromIntHistogram(0, 2, bad)}
		})
	}, 2, Rejected{Histograms: 1}, ErrInvalidHistogram)
	f("exemplar labels too long", func(r *v2Request) {
		r.series([]string{"__name__", "e"}, Metadata{}, func(ts *writev2.TimeSeries) {
			ts.Samples = []writev2.Sample{{Value: 1, Timestamp: 1}}
			long := string(make([]byte, 200))
			ts.Exemplars = []writev2.Exemplar{r.exemplar([]string{"trace_id", "ok"}, 1, 1), r.exemplar([]string{"trace_id", long}, 1, 1)}
		})
	}, 2, Rejected{Exemplars: 1}, ErrInvalidExemplar)

	// The per-request limits refuse everything.
	r := newV2Request()
	for _, n := range []string{"a", "b", "c"} {
		r.series([]string{"__name__", n}, Metadata{}, good)
	}
	if b, rej, err := DecodeRemoteWriteV2(r.body(t), Limits{MaxSeriesPerRequest: 2}); !errors.Is(err, ErrTooManySeries) || b != nil || rej != nil {
		t.Errorf("over the series limit: %v %v %v", b, rej, err)
	}
	if b, _, err := DecodeRemoteWriteV2(snappy.Encode(nil, []byte{0x2a, 0x05, 0x0a}), DefaultLimits()); !errors.Is(err, ErrMalformed) || b != nil {
		t.Errorf("truncated protobuf: %v %v", b, err)
	}
	if b, _, err := DecodeRemoteWriteV2(nil, DefaultLimits()); !errors.Is(err, ErrEmptyBody) || b != nil {
		t.Errorf("empty body: %v %v", b, err)
	}
}

func FuzzDecodeRemoteWriteV2(f *testing.F) {
	f.Add(mustUnsnappy(f, testV2Request().body(f)))
	r := newV2Request()
	r.series([]string{"__name__", "1x", "a", "1"}, Metadata{}, func(ts *writev2.TimeSeries) {
		ts.Samples = []writev2.Sample{{Value: 1, Timestamp: 1}}
		ts.Exemplars = []writev2.Exemplar{{LabelsRefs: []uint32{7, 9}}}
	})
	r.series([]string{"__name__", "y"}, Metadata{Type: model.MetricTypeSummary, Help: "h"}, nil)
	f.Add(mustUnsnappy(f, r.body(f)))
	f.Add([]byte{0x2a, 0x02, 0x0a, 0x00})
	f.Add([]byte{0x22, 0x00, 0x2a, 0x04, 0x0a, 0x02, 0x00, 0x00})
	f.Fuzz(func(t *testing.T, raw []byte) {
		body := snappy.Encode(nil, raw)
		got, rej, err := DecodeRemoteWriteV2(body, fuzzLimits)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || got != nil || rej != nil {
				t.Fatalf("error %v (%T) with batch %v, rejected %v", err, err, got, rej)
			}
		} else {
			checkBatchValid(t, got, fuzzLimits)
		}
		var req writev2.Request
		if req.Unmarshal(raw) != nil {
			return
		}
		want, wantRej, wantErr := referenceBatchV2(&req, fuzzLimits)
		if wantErr != nil {
			if err == nil || !sameSentinel(err, wantErr) {
				t.Fatalf("writev2 path fails with %v, DecodeRemoteWriteV2 with %v", wantErr, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("writev2 path decodes, DecodeRemoteWriteV2 fails: %v", err)
		}
		if !sameRejected(rej, wantRej) {
			t.Fatalf("rejected %+v, want %+v", rej, wantRej)
		}
		requireSameBatch(t, got, want)
	})
}

// TestDropOutOfBounds: samples and histograms outside the window leave,
// with series left empty; start times before the window are forgotten;
// each series with a loss is named once.
func TestDropOutOfBounds(t *testing.T) {
	h := &histogram.Histogram{Count: 1, PositiveSpans: []histogram.Span{{Length: 1}}, PositiveBuckets: []int64{1}}
	b := &Batch{Series: []Series{
		{Labels: ls("__name__", "a"), Samples: []Sample{{5, 1}, {10, 2}, {25, 3}, {15, 4}}, StartTimes: []int64{1, 8, 9, 12}},
		{Labels: ls("__name__", "b"), Samples: []Sample{{30, 1}}},
		{Labels: ls("__name__", "c"), Samples: []Sample{{12, 1}}, Histograms: []HistogramSample{{T: 1, H: h}, {T: 11, H: h}}, HistogramStartTimes: []int64{0, 10}},
	}}
	rej := DropOutOfBounds(b, 10, 20, "the window", nil)
	if rej == nil || rej.Samples != 3 || rej.Histograms != 1 || len(rej.Errs) != 3 || !errors.Is(rej, ErrOutOfBounds) {
		t.Fatalf("rejected %+v", rej)
	}
	if len(b.Series) != 2 {
		t.Fatalf("kept %v", b.Series)
	}
	a, c := b.Series[0], b.Series[1]
	if !slices.Equal(a.Samples, []Sample{{10, 2}, {15, 4}}) || !slices.Equal(a.StartTimes, []int64{0, 12}) {
		t.Errorf("series a: %v %v", a.Samples, a.StartTimes)
	}
	if !slices.Equal(c.Samples, []Sample{{12, 1}}) || len(c.Histograms) != 1 || c.Histograms[0].T != 11 || !slices.Equal(c.HistogramStartTimes, []int64{10}) {
		t.Errorf("series c: %v %v %v", c.Samples, c.Histograms, c.HistogramStartTimes)
	}
	if rej := DropOutOfBounds(b, 10, 20, "the window", nil); rej != nil {
		t.Errorf("nothing to drop, rejected %v", rej)
	}
}
