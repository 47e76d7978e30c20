package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"
	"go.opentelemetry.io/otel/trace"
	statuspb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// instant runs an instant query at t and returns each series' value by its
// labels as the API renders them (a map printed by fmt).
func (s *testServer) instant(q string, at time.Time) map[string]float64 {
	s.t.Helper()
	var d struct {
		ResultType string `json:"resultType"`
		Result     []struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"`
		} `json:"result"`
	}
	s.get("/api/v1/query", url.Values{"query": {q}, "time": {fmt.Sprintf("%.3f", float64(at.UnixMilli())/1000)}}, &d)
	if d.ResultType != "vector" {
		s.t.Fatalf("%s: resultType %q", q, d.ResultType)
	}
	out := map[string]float64{}
	for _, r := range d.Result {
		str, _ := r.Value[1].(string)
		v, err := parseAPIFloat(str)
		if err != nil {
			s.t.Fatalf("%s: value %v: %v", q, r.Value, err)
		}
		out[fmt.Sprint(r.Metric)] = v
	}
	return out
}

// one runs q at t and requires exactly one series with value want.
func (s *testServer) one(q string, at time.Time, want float64) {
	s.t.Helper()
	got := s.instant(q, at)
	if len(got) != 1 {
		s.t.Errorf("%s: %d series %v, want one of value %g", q, len(got), got, want)
		return
	}
	for k, v := range got {
		if v != want {
			s.t.Errorf("%s: %s = %g, want %g", q, k, v, want)
		}
	}
}

// otlpProvider is a meter provider exporting with the OpenTelemetry Go
// SDK's OTLP/HTTP exporter to path on s, on ForceFlush only.
func otlpProvider(t *testing.T, s *testServer, path string, res *resource.Resource, opts ...otlpmetrichttp.Option) *sdkmetric.MeterProvider {
	t.Helper()
	exp, err := otlpmetrichttp.New(context.Background(), append([]otlpmetrichttp.Option{
		otlpmetrichttp.WithEndpointURL(s.url + path),
		otlpmetrichttp.WithCompression(otlpmetrichttp.GzipCompression),
		otlpmetrichttp.WithRetry(otlpmetrichttp.RetryConfig{Enabled: false}),
	}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	mp := sdkmetric.NewMeterProvider(
		sdkmetric.WithResource(res),
		sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp, sdkmetric.WithInterval(time.Hour))),
		sdkmetric.WithView(sdkmetric.NewView(sdkmetric.Instrument{Name: "rpc.latency"},
			sdkmetric.Stream{Aggregation: sdkmetric.AggregationBase2ExponentialHistogram{MaxSize: 160, MaxScale: 20}})),
	)
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	return mp
}

// TestOTLPExporterEndToEnd sends counters, up-down counters, gauges,
// explicit and exponential histograms with resource attributes and dotted
// names through the OpenTelemetry Go SDK's otlpmetrichttp exporter (gzip,
// protobuf) to the real server, and reads every value back through PromQL
// under the names Prometheus 3 gives them.
func TestOTLPExporterEndToEnd(t *testing.T) {
	s := startServer(t, "", "--otlp.promote-resource-attributes", "host.name, deployment.environment")
	res := resource.NewSchemaless(
		attribute.String("service.name", "checkout"),
		attribute.String("service.namespace", "shop"),
		attribute.String("service.instance.id", "pod-1"),
		attribute.String("host.name", "h1"),
		attribute.String("deployment.environment", "prod"),
		attribute.String("cloud.region", "eu-1"),
	)
	for _, path := range []string{"/api/v1/otlp/v1/metrics", "/opentelemetry/v1/metrics"} {
		t.Run(path, func(t *testing.T) {
			mp := otlpProvider(t, s, path, res)
			ctx := context.Background()
			m := mp.Meter("shop.checkout", metric.WithInstrumentationVersion("1.2.3"))
			// The alias path writes to another scope's series: tell them apart
			// by a data point attribute.
			route := attribute.String("path", path)

			requests, _ := m.Float64Counter("http.server.requests", metric.WithUnit("{request}"), metric.WithDescription("Requests served."))
			requests.Add(ctx, 3, metric.WithAttributes(route, attribute.String("http.request.method", "GET")))
			requests.Add(ctx, 2, metric.WithAttributes(route, attribute.String("http.request.method", "GET")))
			requests.Add(ctx, 5, metric.WithAttributes(route, attribute.String("http.request.method", "POST")))
			queue, _ := m.Int64UpDownCounter("queue.length", metric.WithUnit("{item}"))
			queue.Add(ctx, 10, metric.WithAttributes(route))
			queue.Add(ctx, -3, metric.WithAttributes(route))
			temp, _ := m.Float64Gauge("room.temperature", metric.WithUnit("Cel"))
			temp.Record(ctx, 21.5, metric.WithAttributes(route))
			dur, _ := m.Float64Histogram("http.server.request.duration", metric.WithUnit("s"), metric.WithExplicitBucketBoundaries(0.1, 0.5, 1))
			for _, v := range []float64{0.05, 0.3, 0.7, 2} {
				dur.Record(ctx, v, metric.WithAttributes(route))
			}
			lat, _ := m.Float64Histogram("rpc.latency", metric.WithUnit("ms"))
			for _, v := range []float64{1, 2, 4, 8} {
				lat.Record(ctx, v, metric.WithAttributes(route))
			}
			if err := mp.ForceFlush(ctx); err != nil {
				t.Fatalf("export: %v", err)
			}
			at := time.Now()
			sel := func(name, more string) string {
				return fmt.Sprintf(`%s{path=%q, job="shop/checkout", instance="pod-1", host_name="h1", deployment_environment="prod"%s}`, name, path, more)
			}
			s.one(sel("http_server_requests_total", `, http_request_method="GET"`), at, 5)
			s.one(sel("http_server_requests_total", `, http_request_method="POST"`), at, 5)
			s.one(sel("queue_length", ""), at, 7)
			s.one(sel("room_temperature_celsius", ""), at, 21.5)
			for le, want := range map[string]float64{"0.1": 1, "0.5": 2, "1": 3, "+Inf": 4} {
				s.one(sel("http_server_request_duration_seconds_bucket", `, le="`+le+`"`), at, want)
			}
			s.one(sel("http_server_request_duration_seconds_sum", ""), at, 3.05)
			s.one(sel("http_server_request_duration_seconds_count", ""), at, 4)
			s.one("histogram_count("+sel("rpc_latency_milliseconds", "")+")", at, 4)
			s.one("histogram_sum("+sel("rpc_latency_milliseconds", "")+")", at, 15)
			// 1, 2, 4 and 8 fall in buckets of their own: the median is in
			// (2, 4].
			if q := s.instant("histogram_quantile(0.5, "+sel("rpc_latency_milliseconds", "")+")", at); len(q) != 1 {
				t.Errorf("histogram_quantile: %v", q)
			} else {
				for _, v := range q {
					if v <= 2 || v > 4 {
						t.Errorf("median of 1, 2, 4, 8 ms = %g, want in (2, 4]", v)
					}
				}
			}
			// target_info carries the resource attributes that are not
			// identifying, once per resource.
			s.one(`target_info{job="shop/checkout", instance="pod-1", cloud_region="eu-1", host_name="h1"}`, at, 1)
		})
	}
	// Each family's type, unit and help, as Prometheus' translator gives
	// them, in /api/v1/metadata.
	type meta struct{ Type, Unit, Help string }
	var md map[string][]meta
	s.get("/api/v1/metadata", nil, &md)
	for family, want := range map[string]meta{
		"http_server_requests_total":           {"counter", "", "Requests served."},
		"queue_length":                         {"gauge", "", ""},
		"room_temperature_celsius":             {"gauge", "celsius", ""},
		"http_server_request_duration_seconds": {"histogram", "seconds", ""},
		"rpc_latency_milliseconds":             {"histogram", "milliseconds", ""},
	} {
		if got := md[family]; len(got) != 1 || got[0] != want {
			t.Errorf("metadata of %s: %+v, want [%+v]", family, got, want)
		}
	}
	// Nothing else was made up.
	got := s.instant(`count by (__name__) ({job="shop/checkout"})`, time.Now())
	if len(got) != 8 {
		t.Errorf("metric names stored: %v, want the 7 of the 5 instruments (with _bucket, _sum, _count) and target_info", got)
	}
}

// TestOTLPDeltaTemporality: data points with delta temporality are never
// stored. Alone in a request they are refused with 400 (the exporter does
// not retry and reports the message); next to cumulative ones the request is
// a partial success that counts them, which the exporter reports as an
// error that is not retried.
func TestOTLPDeltaTemporality(t *testing.T) {
	s := startServer(t, "")
	res := resource.NewSchemaless(attribute.String("service.name", "deltas"))
	delta := otlpmetrichttp.WithTemporalitySelector(func(k sdkmetric.InstrumentKind) metricdata.Temporality {
		if k == sdkmetric.InstrumentKindCounter {
			return metricdata.DeltaTemporality
		}
		return metricdata.CumulativeTemporality
	})
	ctx := context.Background()

	mp := otlpProvider(t, s, "/api/v1/otlp/v1/metrics", res, delta)
	c, _ := mp.Meter("m").Int64Counter("jobs.done")
	c.Add(ctx, 4)
	err := mp.ForceFlush(ctx)
	if err == nil || !strings.Contains(err.Error(), "400") || !strings.Contains(err.Error(), "only cumulative temporality is stored") {
		t.Errorf("export of a delta counter: %v, want a 400 naming the temporality", err)
	}

	mp = otlpProvider(t, s, "/api/v1/otlp/v1/metrics", res, delta)
	c, _ = mp.Meter("m").Int64Counter("jobs.done")
	g, _ := mp.Meter("m").Int64UpDownCounter("jobs.running")
	c.Add(ctx, 4, metric.WithAttributes(attribute.Int("shard", 1)))
	c.Add(ctx, 1, metric.WithAttributes(attribute.Int("shard", 2)))
	g.Add(ctx, 3)
	err = mp.ForceFlush(ctx)
	if msg := fmt.Sprint(err); !strings.Contains(msg, "OTLP partial success: 2 data points refused") || !strings.Contains(msg, `"jobs.done" (delta Sum)`) {
		t.Errorf("exporter's report %q, want a partial success with 2 refused data points of jobs.done", msg)
	}
	s.one(`jobs_running{job="deltas"}`, time.Now(), 3)
	if got := s.instant(`{__name__=~"jobs_done.*"}`, time.Now()); len(got) != 0 {
		t.Errorf("delta data points stored: %v", got)
	}
	if v := s.metric("", "strata_ingest_otlp_rejected_data_points_total"); v != 2 {
		t.Errorf("strata_ingest_otlp_rejected_data_points_total = %g, want 2", v)
	}
}

// TestOTLPHTTPAnswers checks the OTLP/HTTP protocol details the SDK does
// not exercise: JSON bodies and answers, the partial-success body, and the
// google.rpc.Status error bodies with statuses the exporters' retry logic
// reads correctly.
func TestOTLPHTTPAnswers(t *testing.T) {
	s := startServer(t, "", "--limits.max-series-per-request", "5")
	now := time.Now()
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "json")
	ms := rm.ScopeMetrics().AppendEmpty().Metrics()
	g := ms.AppendEmpty()
	g.SetName("json.gauge")
	dp := g.SetEmptyGauge().DataPoints().AppendEmpty()
	dp.SetTimestamp(pcommonTime(now))
	dp.SetDoubleValue(2.5)
	d := ms.AppendEmpty()
	d.SetName("json.delta")
	sum := d.SetEmptySum()
	sum.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
	sum.SetIsMonotonic(true)
	dp = sum.DataPoints().AppendEmpty()
	dp.SetTimestamp(pcommonTime(now))
	dp.SetIntValue(1)
	body, err := pmetricotlp.NewExportRequestFromMetrics(md).MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	code, hdr, answer := s.callCT(http.MethodPost, "/api/v1/otlp/v1/metrics", "application/json", body)
	if code != http.StatusOK || hdr.Get("Content-Type") != "application/json" {
		t.Fatalf("JSON request: %d %s %s", code, hdr.Get("Content-Type"), answer)
	}
	resp := pmetricotlp.NewExportResponse()
	if err := resp.UnmarshalJSON([]byte(answer)); err != nil {
		t.Fatalf("answer %q: %v", answer, err)
	}
	if ps := resp.PartialSuccess(); ps.RejectedDataPoints() != 1 || !strings.Contains(ps.ErrorMessage(), "json.delta") {
		t.Errorf("partial success %d %q, want 1 rejected data point of json.delta", ps.RejectedDataPoints(), ps.ErrorMessage())
	}
	s.one(`json_gauge{job="json"}`, now, 2.5)

	// Errors: status and message, in the request's encoding.
	for _, tc := range []struct {
		name, ct, enc string
		body          []byte
		code          int
		msg           string
	}{
		{"unknown content type", "text/plain", "", body, http.StatusUnsupportedMediaType, "Content-Type \"text/plain\" is not supported"},
		{"unknown encoding", "application/json", "zstd", body, http.StatusUnsupportedMediaType, "Content-Encoding \"zstd\""},
		{"bad protobuf", "application/x-protobuf", "", []byte("\xff\xff\xff\xff"), http.StatusBadRequest, "decode OTLP protobuf"},
		{"bad json", "application/json", "", []byte("{"), http.StatusBadRequest, "decode OTLP JSON"},
		{"bad gzip", "application/json", "gzip", body, http.StatusBadRequest, "gzip"},
		{"too many series", "application/json", "", manySeriesJSON(t, now, 6), http.StatusBadRequest, "too many series: more than 5 in one request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPost, s.url+"/api/v1/otlp/v1/metrics", strings.NewReader(string(tc.body)))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", tc.ct)
			if tc.enc != "" {
				req.Header.Set("Content-Encoding", tc.enc)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			st, err := decodeRPCStatus(resp)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.code || !strings.Contains(st, tc.msg) {
				t.Errorf("%d %q, want %d with %q", resp.StatusCode, st, tc.code, tc.msg)
			}
		})
	}
	// The resource has only service.name, so no target_info either.
	if got := s.instant(`{job="json", __name__!="json_gauge"} or many`, now); len(got) != 0 {
		t.Errorf("refused requests stored series: %v", got)
	}
}

func pcommonTime(t time.Time) pcommon.Timestamp { return pcommon.NewTimestampFromTime(t) }

// callCT posts body with a Content-Type and returns the status, headers
// and body.
func (s *testServer) callCT(method, path, contentType string, body []byte) (int, http.Header, string) {
	s.t.Helper()
	req, err := http.NewRequest(method, s.url+path, bytes.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	return s.roundTrip(req)
}

// manySeriesJSON is an OTLP JSON request of n gauge series.
func manySeriesJSON(t *testing.T, at time.Time, n int) []byte {
	md := pmetric.NewMetrics()
	ms := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics()
	g := ms.AppendEmpty()
	g.SetName("many")
	gauge := g.SetEmptyGauge()
	for i := range n {
		dp := gauge.DataPoints().AppendEmpty()
		dp.SetTimestamp(pcommonTime(at))
		dp.SetDoubleValue(1)
		dp.Attributes().PutInt("i", int64(i))
	}
	b, err := pmetricotlp.NewExportRequestFromMetrics(md).MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// decodeRPCStatus reads an OTLP error answer: a google.rpc.Status in the
// encoding its Content-Type names. It returns the message.
func decodeRPCStatus(resp *http.Response) (string, error) {
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	var st statuspb.Status
	switch ct := resp.Header.Get("Content-Type"); ct {
	case "application/json":
		err = protojson.Unmarshal(b, &st)
	case "application/x-protobuf":
		err = proto.Unmarshal(b, &st)
	default:
		return "", fmt.Errorf("error answer of Content-Type %q: %s", ct, b)
	}
	if err != nil {
		return "", fmt.Errorf("decode google.rpc.Status %q: %w", b, err)
	}
	return st.GetMessage(), nil
}

// TestOTLPExemplars: exemplars the OpenTelemetry SDK attaches to counter
// and histogram data points recorded in a sampled span are kept and served
// by /api/v1/query_exemplars with their trace and span IDs and values.
func TestOTLPExemplars(t *testing.T) {
	s := startServer(t, "")
	mp := otlpProvider(t, s, "/api/v1/otlp/v1/metrics", resource.NewSchemaless(attribute.String("service.name", "ex")))
	traceID := trace.TraceID{0x0a, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}
	spanID := trace.SpanID{0x0b, 1, 2, 3, 4, 5, 6, 7}
	ctx := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: traceID, SpanID: spanID, TraceFlags: trace.FlagsSampled,
	}))
	m := mp.Meter("m")
	c, _ := m.Int64Counter("orders.placed")
	c.Add(ctx, 2)
	h, _ := m.Float64Histogram("order.value", metric.WithUnit("s"), metric.WithExplicitBucketBoundaries(1, 10))
	h.Record(ctx, 4.5)
	start := time.Now().Add(-time.Minute)
	if err := mp.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	type exemplar struct {
		Labels map[string]string `json:"labels"`
		Value  string            `json:"value"`
	}
	var got []struct {
		SeriesLabels map[string]string `json:"seriesLabels"`
		Exemplars    []exemplar        `json:"exemplars"`
	}
	s.get("/api/v1/query_exemplars", url.Values{"query": {`orders_placed_total or order_value_seconds_bucket`},
		"start": {fmt.Sprint(start.Unix())}, "end": {fmt.Sprint(time.Now().Add(time.Minute).Unix())}}, &got)
	byName := map[string][]exemplar{}
	for _, se := range got {
		byName[se.SeriesLabels["__name__"]+"/"+se.SeriesLabels["le"]] = se.Exemplars
	}
	wantLabels := map[string]string{"trace_id": traceID.String(), "span_id": spanID.String()}
	for key, value := range map[string]string{"orders_placed_total/": "2", "order_value_seconds_bucket/10": "4.5"} {
		ex := byName[key]
		if len(ex) != 1 || ex[0].Value != value || fmt.Sprint(ex[0].Labels) != fmt.Sprint(wantLabels) {
			t.Errorf("exemplars of %s: %+v, want one of value %s with %v (all: %+v)", key, ex, value, wantLabels, got)
		}
	}
}
