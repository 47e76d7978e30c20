package main

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/sdk/resource"
)

// TestOTLPNativeCustomBuckets: with otlp.convert_histograms_to_nhcb an
// explicit-bucket histogram from the SDK is one native histogram series
// with custom buckets (no _bucket/_sum/_count series), and
// histogram_quantile reads its buckets.
func TestOTLPNativeCustomBuckets(t *testing.T) {
	s := startServer(t, "", "--otlp.convert-histograms-to-nhcb")
	mp := otlpProvider(t, s, "/api/v1/otlp/v1/metrics", resource.NewSchemaless(attribute.String("service.name", "nhcb")))
	h, _ := mp.Meter("m").Float64Histogram("http.server.request.duration", metric.WithUnit("s"), metric.WithExplicitBucketBoundaries(0.1, 0.5, 1))
	for _, v := range []float64{0.05, 0.3, 0.7, 2} {
		h.Record(context.Background(), v)
	}
	if err := mp.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	at := time.Now()
	s.one(`histogram_count(http_server_request_duration_seconds{job="nhcb"})`, at, 4)
	s.one(`histogram_sum(http_server_request_duration_seconds{job="nhcb"})`, at, 3.05)
	// The median, the 2nd of 4 observations, is at the top of (0.1, 0.5].
	s.one(`histogram_quantile(0.5, http_server_request_duration_seconds{job="nhcb"})`, at, 0.5)
	if got := s.instant(`{__name__=~"http_server_request_duration_seconds_(bucket|sum|count)"}`, at); len(got) != 0 {
		t.Errorf("classic series stored next to the native histogram: %v", got)
	}
}

// TestOTLPSummary: an OTLP summary (the SDK makes none; the Collector
// forwards them) becomes Prometheus' quantile, _sum and _count series.
func TestOTLPSummary(t *testing.T) {
	s := startServer(t, "")
	now := time.Now()
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "sum")
	m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName("gc.pause")
	m.SetUnit("s")
	dp := m.SetEmptySummary().DataPoints().AppendEmpty()
	dp.SetTimestamp(pcommonTime(now))
	dp.SetCount(4)
	dp.SetSum(0.5)
	for q, v := range map[float64]float64{0.5: 0.01, 0.99: 0.2} {
		qv := dp.QuantileValues().AppendEmpty()
		qv.SetQuantile(q)
		qv.SetValue(v)
	}
	body, err := pmetricotlp.NewExportRequestFromMetrics(md).MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	if code, _, answer := s.callCT(http.MethodPost, "/api/v1/otlp/v1/metrics", "application/x-protobuf", body); code != http.StatusOK {
		t.Fatalf("summary: %d %q", code, answer)
	}
	s.one(`gc_pause_seconds{job="sum", quantile="0.5"}`, now, 0.01)
	s.one(`gc_pause_seconds{job="sum", quantile="0.99"}`, now, 0.2)
	s.one(`gc_pause_seconds_sum{job="sum"}`, now, 0.5)
	s.one(`gc_pause_seconds_count{job="sum"}`, now, 4)
}

// TestOTLPLimitStatuses: the limits answer OTLP senders with the statuses
// the OTel exporters act on: 429 with Retry-After for the head's series
// limit (retried), 413 for a body over the limit (dropped), each with a
// google.rpc.Status in the request's encoding; nothing of a refused
// request is stored.
func TestOTLPLimitStatuses(t *testing.T) {
	s := startServer(t, "", "--limits.max-series", "3", "--limits.max-body-bytes", "4096")
	now := time.Now()
	post := func(body []byte, ct string) (int, http.Header, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, s.url+"/api/v1/otlp/v1/metrics", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", ct)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		msg, err := decodeRPCStatus(resp)
		if err != nil && resp.StatusCode != http.StatusOK {
			t.Fatal(err)
		}
		return resp.StatusCode, resp.Header, msg
	}
	code, hdr, msg := post(manySeriesJSON(t, now, 4), "application/json")
	if code != http.StatusTooManyRequests || hdr.Get("Retry-After") == "" || !strings.Contains(msg, "too many series in the head") {
		t.Errorf("over the head's series limit: %d Retry-After %q %q, want 429 with Retry-After", code, hdr.Get("Retry-After"), msg)
	}
	big := manySeriesJSON(t, now, 200)
	code, _, msg = post(big, "application/json")
	if code != http.StatusRequestEntityTooLarge || !strings.Contains(msg, "4096") {
		t.Errorf("body of %d bytes over 4096: %d %q, want 413", len(big), code, msg)
	}
	if got := s.instant(`many`, now); len(got) != 0 {
		t.Errorf("refused requests stored series: %v", got)
	}
	// The limit leaves room for what fits.
	if code, _, msg := post(manySeriesJSON(t, now, 3), "application/json"); code != http.StatusOK {
		t.Errorf("3 series under a limit of 3: %d %q", code, msg)
	}
}
