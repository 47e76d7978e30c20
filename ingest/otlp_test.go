package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/otlptranslator"
	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/storage/remote"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
)

// otlpTestMetrics returns one resource with a metric of every OTLP type,
// dotted names, units, attributes, an exemplar and a data point with no
// recorded value, all at t.
func otlpTestMetrics(t time.Time) pmetric.Metrics {
	ts := pcommon.NewTimestampFromTime(t)
	start := pcommon.NewTimestampFromTime(t.Add(-time.Hour))
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	ra := rm.Resource().Attributes()
	ra.PutStr("service.name", "api")
	ra.PutStr("service.namespace", "shop")
	ra.PutStr("service.instance.id", "i-1")
	ra.PutStr("host.name", "h1")
	ra.PutStr("deployment.environment", "prod")
	sm := rm.ScopeMetrics().AppendEmpty()
	sm.Scope().SetName("my.lib")
	sm.Scope().SetVersion("1.0")
	ms := sm.Metrics()

	g := ms.AppendEmpty()
	g.SetName("process.memory.usage")
	g.SetUnit("By")
	g.SetDescription("Memory in use.")
	dp := g.SetEmptyGauge().DataPoints().AppendEmpty()
	dp.SetTimestamp(ts)
	dp.SetIntValue(1024)
	dp.Attributes().PutStr("memory.type", "heap")
	dp = g.Gauge().DataPoints().AppendEmpty()
	dp.SetTimestamp(ts)
	dp.SetDoubleValue(3.5)
	dp.Attributes().PutStr("memory.type", "stack")
	dp = g.Gauge().DataPoints().AppendEmpty()
	dp.SetTimestamp(ts)
	dp.SetFlags(pmetric.DefaultDataPointFlags.WithNoRecordedValue(true))
	dp.Attributes().PutStr("memory.type", "gone")

	c := ms.AppendEmpty()
	c.SetName("http.server.requests")
	c.SetUnit("{request}")
	sum := c.SetEmptySum()
	sum.SetIsMonotonic(true)
	sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	dp = sum.DataPoints().AppendEmpty()
	dp.SetStartTimestamp(start)
	dp.SetTimestamp(ts)
	dp.SetIntValue(7)
	dp.Attributes().PutStr("http.method", "GET")
	ex := dp.Exemplars().AppendEmpty()
	ex.SetTimestamp(ts)
	ex.SetIntValue(1)
	ex.SetTraceID(pcommon.TraceID{16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1})

	u := ms.AppendEmpty()
	u.SetName("queue.size")
	u.SetUnit("1")
	usum := u.SetEmptySum()
	usum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	dp = usum.DataPoints().AppendEmpty()
	dp.SetTimestamp(ts)
	dp.SetIntValue(-3)

	h := ms.AppendEmpty()
	h.SetName("http.server.request.duration")
	h.SetUnit("s")
	hist := h.SetEmptyHistogram()
	hist.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	hdp := hist.DataPoints().AppendEmpty()
	hdp.SetStartTimestamp(start)
	hdp.SetTimestamp(ts)
	hdp.ExplicitBounds().FromRaw([]float64{0.1, 0.5, 1})
	hdp.BucketCounts().FromRaw([]uint64{1, 2, 3, 4})
	hdp.SetCount(10)
	hdp.SetSum(10.5)
	hdp.Attributes().PutStr("http.route", "/a")
	ex = hdp.Exemplars().AppendEmpty()
	ex.SetTimestamp(ts)
	ex.SetDoubleValue(0.3)
	ex.SetTraceID(pcommon.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
	ex.SetSpanID(pcommon.SpanID{1, 2, 3, 4, 5, 6, 7, 8})
	ex.FilteredAttributes().PutStr("user", "u1")

	e := ms.AppendEmpty()
	e.SetName("rpc.latency")
	e.SetUnit("ms")
	eh := e.SetEmptyExponentialHistogram()
	eh.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	edp := eh.DataPoints().AppendEmpty()
	edp.SetStartTimestamp(start)
	edp.SetTimestamp(ts)
	edp.SetScale(2)
	edp.SetZeroCount(1)
	edp.Positive().SetOffset(1)
	edp.Positive().BucketCounts().FromRaw([]uint64{1, 2, 3})
	edp.Negative().SetOffset(-1)
	edp.Negative().BucketCounts().FromRaw([]uint64{1})
	edp.SetCount(8)
	edp.SetSum(12.25)

	s := ms.AppendEmpty()
	s.SetName("gc.pause")
	s.SetUnit("s")
	sdp := s.SetEmptySummary().DataPoints().AppendEmpty()
	sdp.SetTimestamp(ts)
	sdp.SetCount(4)
	sdp.SetSum(0.5)
	q := sdp.QuantileValues().AppendEmpty()
	q.SetQuantile(0.5)
	q.SetValue(0.01)
	q = sdp.QuantileValues().AppendEmpty()
	q.SetQuantile(0.99)
	q.SetValue(0.2)
	return md
}

// addDeltaSum appends a monotonic delta sum of n data points to md's first
// scope.
func addDeltaSum(md pmetric.Metrics, name string, t time.Time, n int) {
	m := md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().AppendEmpty()
	m.SetName(name)
	s := m.SetEmptySum()
	s.SetIsMonotonic(true)
	s.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
	for i := range n {
		dp := s.DataPoints().AppendEmpty()
		dp.SetTimestamp(pcommon.NewTimestampFromTime(t))
		dp.SetIntValue(int64(i + 1))
		dp.Attributes().PutInt("i", int64(i))
	}
}

func marshalOTLP(t testing.TB, md pmetric.Metrics, contentType string) []byte {
	t.Helper()
	req := pmetricotlp.NewExportRequestFromMetrics(md)
	var (
		b   []byte
		err error
	)
	if contentType == OTLPJSON {
		b, err = req.MarshalJSON()
	} else {
		b, err = req.MarshalProto()
	}
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// captured is one sample an appender received, rendered for comparison.
type captured struct {
	lset string
	t    int64
	val  string
}

func renderSample(ls labels.Labels, t int64, v float64, h *histogram.Histogram, fh *histogram.FloatHistogram) captured {
	val := fmt.Sprintf("%x", math.Float64bits(v))
	switch {
	case h != nil:
		val = fmt.Sprintf("h%d %s cv%v", h.Schema, h.String(), h.CustomValues)
	case fh != nil:
		val = fmt.Sprintf("fh%d %s cv%v", fh.Schema, fh.String(), fh.CustomValues)
	}
	return captured{lset: ls.String(), t: t, val: val}
}

// captureAppendable is a storage.AppendableV2 that records what Prometheus'
// own OTLP handler appends: samples, exemplars (rendered as samples of the
// series with the exemplar's labels in val) and each family's metadata.
type captureAppendable struct {
	got, exemplars []captured
	meta           map[string]Metadata
}

func (c *captureAppendable) AppenderV2(context.Context) storage.AppenderV2 { return captureAppender{c} }

type captureAppender struct{ c *captureAppendable }

func (a captureAppender) Append(_ storage.SeriesRef, ls labels.Labels, _, t int64, v float64, h *histogram.Histogram, fh *histogram.FloatHistogram, opts storage.AOptions) (storage.SeriesRef, error) {
	a.c.got = append(a.c.got, renderSample(ls, t, v, h, fh))
	for _, e := range opts.Exemplars {
		a.c.exemplars = append(a.c.exemplars, renderExemplar(ls, e.Labels, e.Ts, e.Value))
	}
	md := Metadata{Type: opts.Metadata.Type, Unit: opts.Metadata.Unit, Help: opts.Metadata.Help}
	if !md.IsEmpty() {
		if a.c.meta == nil {
			a.c.meta = map[string]Metadata{}
		}
		a.c.meta[opts.MetricFamilyName] = md
	}
	return 1, nil
}

func renderExemplar(series, lset labels.Labels, t int64, v float64) captured {
	return captured{lset: series.String(), t: t, val: fmt.Sprintf("%s %x", lset, math.Float64bits(v))}
}
func (captureAppender) Commit() error   { return nil }
func (captureAppender) Rollback() error { return nil }

// prometheusOTLP runs body through Prometheus' OTLP write handler under cfg
// and returns what it appended, sorted, and its status.
func prometheusOTLP(t *testing.T, body []byte, contentType string, cfg config.OTLPConfig, lookback time.Duration) (*captureAppendable, int) {
	t.Helper()
	app := &captureAppendable{}
	h := remote.NewOTLPWriteHandler(slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry(), app,
		func() config.Config { return config.Config{OTLPConfig: cfg} }, remote.OTLPOptions{LookbackDelta: lookback})
	req := httptest.NewRequest(http.MethodPost, "/api/v1/otlp/v1/metrics", bytes.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	sortCaptured(app.got)
	sortCaptured(app.exemplars)
	return app, rec.Code
}

func sortCaptured(s []captured) {
	slices.SortFunc(s, func(a, b captured) int {
		if c := strings.Compare(a.lset, b.lset); c != 0 {
			return c
		}
		if a.t != b.t {
			return int(a.t - b.t)
		}
		return strings.Compare(a.val, b.val)
	})
}

func batchCaptured(b *Batch) []captured {
	var out []captured
	for _, s := range b.Series {
		for _, x := range s.Samples {
			out = append(out, renderSample(s.Labels, x.T, x.V, nil, nil))
		}
		for _, x := range s.Histograms {
			out = append(out, renderSample(s.Labels, x.T, 0, x.H, x.FH))
		}
	}
	sortCaptured(out)
	return out
}

// TestDecodeOTLPMatchesPrometheus converts the same requests with
// DecodeOTLP and with Prometheus' own OTLP write handler under each
// translation setting, and requires the same series and samples: names,
// units and suffixes, target_info, promoted attributes, classic and
// custom-bucket histograms, exponential histograms, summaries, stale
// markers.
func TestDecodeOTLPMatchesPrometheus(t *testing.T) {
	now := time.Now().Truncate(time.Millisecond)
	for _, tc := range []struct {
		name string
		opts OTLPOptions
	}{
		{"default", DefaultOTLPOptions()},
		{"without suffixes", OTLPOptions{TranslationStrategy: string(otlptranslator.UnderscoreEscapingWithoutSuffixes)}},
		{"utf8 with suffixes", OTLPOptions{TranslationStrategy: string(otlptranslator.NoUTF8EscapingWithSuffixes), PromoteResourceAttributes: []string{"host.name"}}},
		{"no translation", OTLPOptions{TranslationStrategy: string(otlptranslator.NoTranslation), PromoteScopeMetadata: true}},
		{"promote attributes", OTLPOptions{PromoteResourceAttributes: []string{"host.name", "deployment.environment"}}},
		{"promote all", OTLPOptions{PromoteAllResourceAttributes: true, IgnoreResourceAttributes: []string{"host.name"}, KeepIdentifyingResourceAttributes: true}},
		{"nhcb and scope", OTLPOptions{ConvertHistogramsToNHCB: true, PromoteScopeMetadata: true, LookbackDelta: time.Minute}},
	} {
		for _, ct := range []string{OTLPProtobuf, OTLPJSON} {
			t.Run(tc.name+" "+ct, func(t *testing.T) {
				md := otlpTestMetrics(now)
				body := marshalOTLP(t, md, ct)
				cfg := config.DefaultOTLPConfig
				cfg.TranslationStrategy = tc.opts.strategy()
				cfg.PromoteResourceAttributes = tc.opts.PromoteResourceAttributes
				cfg.PromoteAllResourceAttributes = tc.opts.PromoteAllResourceAttributes
				cfg.IgnoreResourceAttributes = tc.opts.IgnoreResourceAttributes
				cfg.KeepIdentifyingResourceAttributes = tc.opts.KeepIdentifyingResourceAttributes
				cfg.ConvertHistogramsToNHCB = tc.opts.ConvertHistogramsToNHCB
				cfg.PromoteScopeMetadata = tc.opts.PromoteScopeMetadata
				prom, code := prometheusOTLP(t, body, ct, cfg, tc.opts.LookbackDelta)
				want := prom.got
				if code != http.StatusOK || len(want) == 0 || len(prom.exemplars) == 0 || len(prom.meta) == 0 {
					t.Fatalf("Prometheus' handler answered %d with %d samples, %d exemplars, %d families' metadata", code, len(want), len(prom.exemplars), len(prom.meta))
				}
				b, res, err := DecodeOTLP(context.Background(), body, ct, tc.opts, DefaultLimits())
				if err != nil {
					t.Fatal(err)
				}
				if res.Rejected != 0 {
					t.Errorf("rejected %d data points: %s", res.Rejected, res.Message)
				}
				checkBatchValid(t, b, DefaultLimits())
				got := batchCaptured(b)
				if !slices.Equal(got, want) {
					t.Errorf("got %d samples, Prometheus stores %d:\n got: %v\nwant: %v", len(got), len(want), got, want)
				}
				var gotEx []captured
				for _, se := range b.Exemplars {
					for _, e := range se.Exemplars {
						gotEx = append(gotEx, renderExemplar(se.Labels, e.Labels, e.T, e.V))
					}
				}
				sortCaptured(gotEx)
				if !slices.Equal(gotEx, prom.exemplars) {
					t.Errorf("exemplars\n got: %v\nwant: %v", gotEx, prom.exemplars)
				}
				gotMeta := map[string]Metadata{}
				for _, m := range b.Metadata {
					gotMeta[m.Family] = m.Metadata
				}
				if !maps.Equal(gotMeta, prom.meta) {
					t.Errorf("metadata\n got: %v\nwant: %v", gotMeta, prom.meta)
				}
			})
		}
	}
}

// TestDecodeOTLPNames pins a few names Prometheus 3 gives OTLP metrics, so
// that the differential test above cannot pass on two empty results.
func TestDecodeOTLPNames(t *testing.T) {
	now := time.Now().Truncate(time.Millisecond)
	b, _, err := DecodeOTLP(context.Background(), marshalOTLP(t, otlpTestMetrics(now), OTLPProtobuf), OTLPProtobuf, DefaultOTLPOptions(), DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, s := range b.Series {
		names[s.Labels.Get(labels.MetricName)] = true
	}
	for _, n := range []string{"process_memory_usage_bytes", "http_server_requests_total", "queue_size", "http_server_request_duration_seconds_bucket",
		"http_server_request_duration_seconds_sum", "rpc_latency_milliseconds", "gc_pause_seconds", "gc_pause_seconds_count", "target_info"} {
		if !names[n] {
			t.Errorf("no series named %s in %v", n, names)
		}
	}
	for _, s := range b.Series {
		if s.Labels.Get(labels.MetricName) == "http_server_requests_total" {
			if got := s.Labels.String(); got != `{__name__="http_server_requests_total", http_method="GET", instance="i-1", job="shop/api"}` {
				t.Errorf("counter labels %s", got)
			}
			if len(s.Samples) != 1 || s.Samples[0] != (Sample{T: now.UnixMilli(), V: 7}) {
				t.Errorf("counter samples %v", s.Samples)
			}
		}
	}
}

// TestDecodeOTLPDelta: delta sums are refused data point by data point,
// never stored; the rest of the request is kept; a request of nothing but
// deltas is refused whole.
func TestDecodeOTLPDelta(t *testing.T) {
	now := time.Now().Truncate(time.Millisecond)
	md := otlpTestMetrics(now)
	addDeltaSum(md, "jobs.done", now, 3)
	b, res, err := DecodeOTLP(context.Background(), marshalOTLP(t, md, OTLPProtobuf), OTLPProtobuf, DefaultOTLPOptions(), DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	if res.Rejected != 3 || !strings.Contains(res.Message, `"jobs.done" (delta Sum)`) || !strings.Contains(res.Message, "cumulative") {
		t.Errorf("result %+v, want 3 rejected data points of jobs.done", res)
	}
	for _, s := range b.Series {
		if strings.HasPrefix(s.Labels.Get(labels.MetricName), "jobs_done") {
			t.Errorf("delta series stored: %s", s.Labels)
		}
	}
	if len(b.Series) < 10 {
		t.Errorf("the cumulative part of the request was not kept: %d series", len(b.Series))
	}

	only := pmetric.NewMetrics()
	only.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty()
	addDeltaSum(only, "jobs.done", now, 2)
	b, res, err = DecodeOTLP(context.Background(), marshalOTLP(t, only, OTLPProtobuf), OTLPProtobuf, DefaultOTLPOptions(), DefaultLimits())
	if b != nil || !errors.Is(err, ErrUnsupported) || res.Rejected != 2 || !strings.Contains(err.Error(), "only cumulative temporality is stored") {
		t.Errorf("all-delta request: batch %v, result %+v, error %v", b, res, err)
	}
}

// TestDecodeOTLPErrors: what can never be stored fails the whole request
// with an *Error naming the problem.
func TestDecodeOTLPErrors(t *testing.T) {
	now := time.Now().Truncate(time.Millisecond)
	good := marshalOTLP(t, otlpTestMetrics(now), OTLPProtobuf)
	f := func(body []byte, ct string, lim Limits, is error, msg string) {
		t.Helper()
		b, _, err := DecodeOTLP(context.Background(), body, ct, DefaultOTLPOptions(), lim)
		checkResult(t, b, err, nil, &wantErr{is: is, msg: msg})
	}
	f(nil, OTLPProtobuf, DefaultLimits(), ErrEmptyBody, "empty body")
	f([]byte("\xff\xff\xff"), OTLPProtobuf, DefaultLimits(), ErrMalformed, "decode OTLP protobuf")
	f([]byte(`{"resourceMetrics":[{`), OTLPJSON, DefaultLimits(), ErrMalformed, "decode OTLP JSON")
	f(good, "text/plain", DefaultLimits(), ErrUnsupported, "unsupported OTLP content type")
	f(good, OTLPProtobuf, Limits{MaxSeriesPerRequest: 3}, ErrTooManySeries, "too many series")
	f(good, OTLPProtobuf, Limits{MaxSamplesPerRequest: 2}, ErrTooManySamples, "too many samples")
	f(good, OTLPProtobuf, Limits{MaxLabelsPerSeries: 3}, ErrTooManyLabels, "too many labels")
	empty := pmetric.NewMetrics()
	empty.ResourceMetrics().AppendEmpty()
	f(marshalOTLP(t, empty, OTLPProtobuf), OTLPProtobuf, DefaultLimits(), ErrEmptyBody, "no data point")
}

// FuzzDecodeOTLP feeds arbitrary bodies, as protobuf and as JSON, to
// DecodeOTLP: it must never panic, return a batch and an error together,
// or a batch with a series that fails validation.
func FuzzDecodeOTLP(f *testing.F) {
	now := time.Unix(1_700_000_000, 0)
	md := otlpTestMetrics(now)
	addDeltaSum(md, "d", now, 1)
	f.Add(marshalOTLP(f, md, OTLPProtobuf), false)
	f.Add(marshalOTLP(f, otlpTestMetrics(now), OTLPJSON), true)
	f.Add([]byte{}, false)
	f.Add([]byte(`{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"x","gauge":{"dataPoints":[{"asDouble":1,"timeUnixNano":"1"}]}}]}]}]}`), true)
	lim := fuzzLimits
	f.Fuzz(func(t *testing.T, body []byte, asJSON bool) {
		ct := OTLPProtobuf
		if asJSON {
			ct = OTLPJSON
		}
		b, res, err := DecodeOTLP(context.Background(), body, ct, DefaultOTLPOptions(), lim)
		if res.Rejected < 0 || (res.Rejected > 0) != (res.Message != "") {
			t.Fatalf("inconsistent result %+v", res)
		}
		if !checkDecoded(t, b, err) {
			return
		}
		checkBatchValid(t, b, lim)
	})
}

// TestDecodeOTLPExemplarsAndMetadata: exemplars and each family's type,
// unit and help go into the batch; an exemplar Prometheus would refuse (a
// label without a name) is dropped and counted, and its data point kept.
func TestDecodeOTLPExemplarsAndMetadata(t *testing.T) {
	now := time.Now().Truncate(time.Millisecond)
	md := otlpTestMetrics(now)
	c := md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(1).Sum().DataPoints().At(0)
	ex := c.Exemplars().AppendEmpty()
	ex.SetTimestamp(pcommon.NewTimestampFromTime(now))
	ex.SetDoubleValue(2)
	ex.FilteredAttributes().PutStr("", "a label without a name")
	b, res, err := DecodeOTLP(context.Background(), marshalOTLP(t, md, OTLPProtobuf), OTLPProtobuf, DefaultOTLPOptions(), DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	if res.DroppedExemplars != 1 {
		t.Errorf("dropped exemplars %d, want 1", res.DroppedExemplars)
	}
	ids := map[string]string{}
	for _, se := range b.Exemplars {
		for _, e := range se.Exemplars {
			ids[se.Labels.Get(labels.MetricName)] = e.Labels.Get("trace_id")
		}
	}
	if want := map[string]string{"http_server_requests_total": "100f0e0d0c0b0a090807060504030201", "http_server_request_duration_seconds_bucket": "0102030405060708090a0b0c0d0e0f10"}; !maps.Equal(ids, want) {
		t.Errorf("exemplars' trace IDs by series %v, want %v", ids, want)
	}
	meta := map[string]Metadata{}
	for _, m := range b.Metadata {
		meta[m.Family] = m.Metadata
	}
	if got := meta["process_memory_usage_bytes"]; got != (Metadata{Type: "gauge", Unit: "bytes", Help: "Memory in use."}) {
		t.Errorf("metadata of process_memory_usage_bytes %+v", got)
	}
	if got := meta["http_server_request_duration_seconds"]; got.Type != "histogram" || got.Unit != "seconds" {
		t.Errorf("metadata of http_server_request_duration_seconds %+v", got)
	}
}
