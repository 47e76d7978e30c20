package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/sdk/resource"
)

// TestUTF8NamesEndToEnd writes metric and label names with dots (and
// other characters outside Prometheus 2's set) through every format that
// can carry them, and reads them back with the quoted syntax through
// PromQL, the series, labels and label values APIs, remote read, the result
// cache (a late write in a cached window is seen) and federation.
func TestUTF8NamesEndToEnd(t *testing.T) {
	s := startServer(t, "", "--otlp.translation-strategy", "NoUTF8EscapingWithSuffixes")
	// Older than the cache's freshness window, so range answers are cached.
	t0 := time.Now().Add(-3 * time.Hour).Truncate(time.Minute)
	ms := func(d time.Duration) int64 { return t0.Add(d).UnixMilli() }

	// Remote write 1.0.
	rw := &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
		Labels:  []prompb.Label{{Name: "__name__", Value: "http.server.request.duration"}, {Name: "code", Value: "200"}, {Name: "service.name", Value: "api"}},
		Samples: []prompb.Sample{{Timestamp: ms(0), Value: 1}, {Timestamp: ms(time.Minute), Value: 2}, {Timestamp: ms(2 * time.Minute), Value: 3}},
	}}}
	raw, err := rw.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if code, body := s.post("/api/v1/write", "application/x-protobuf", snappy.Encode(nil, raw)); code != http.StatusNoContent {
		t.Fatalf("remote write: %d %s", code, body)
	}
	// JSON import.
	if code, body := s.post("/api/v1/import", "application/json",
		fmt.Appendf(nil, `{"metric":{"__name__":"room.temp","building.floor":"2"},"values":[21.5],"timestamps":[%d]}`, ms(0))); code != http.StatusNoContent {
		t.Fatalf("import: %d %s", code, body)
	}
	// The text exposition format, quoted names.
	if code, body := s.post("/api/v1/import/prometheus", "text/plain",
		fmt.Appendf(nil, "# TYPE \"queue.depth\" gauge\n{\"queue.depth\",\"queue.name\"=\"jobs\"} 4 %d\n", ms(0))); code != http.StatusNoContent {
		t.Fatalf("text import: %d %s", code, body)
	}
	// Line protocol: dots in measurement, field and tag names.
	if code, body := s.post("/write?precision=ms", "text/plain",
		fmt.Appendf(nil, "disk.io,host.name=h1 read.ops=9 %d\n", ms(0))); code != http.StatusNoContent {
		t.Fatalf("line protocol: %d %s", code, body)
	}
	// OTLP with a strategy that keeps dots.
	mp := otlpProvider(t, s, "/api/v1/otlp/v1/metrics", resource.NewSchemaless(attribute.String("service.name", "otel")))
	c, _ := mp.Meter("m").Int64Counter("jobs.done")
	c.Add(context.Background(), 3, metric.WithAttributes(attribute.String("job.kind", "batch")))
	if err := mp.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}

	at := t0.Add(2 * time.Minute)
	s.one(`{"http.server.request.duration", "service.name"="api"}`, at, 3)
	// 1, 2, 3 a minute apart: rate's extrapolation makes 2.5 over the 5m.
	s.one(`sum by ("service.name") (rate({"http.server.request.duration"}[5m]))`, at, 2.5/300)
	s.one(`{"room.temp", "building.floor"="2"}`, t0, 21.5)
	s.one(`{"queue.depth", "queue.name"="jobs"}`, t0, 4)
	s.one(`{"disk.io_read.ops", "host.name"="h1"}`, t0, 9)
	s.one(`{"jobs.done_total", "job.kind"="batch", job="otel"}`, time.Now(), 3)
	// Both spellings of a selector on __name__ select the same.
	s.one(`{__name__="http.server.request.duration", code="200"}`, at, 3)

	// The series, labels and label values APIs.
	var series []map[string]string
	s.get("/api/v1/series", url.Values{"match[]": {`{"http.server.request.duration"}`}, "start": {fmt.Sprint(t0.Unix() - 60)}}, &series)
	if len(series) != 1 || series[0]["service.name"] != "api" || series[0]["__name__"] != "http.server.request.duration" {
		t.Errorf("series: %v", series)
	}
	var names []string
	s.get("/api/v1/labels", url.Values{"match[]": {`{"room.temp"}`}, "start": {fmt.Sprint(t0.Unix() - 60)}}, &names)
	if !slices.Equal(names, []string{"__name__", "building.floor"}) {
		t.Errorf("labels of room.temp: %v", names)
	}
	for _, path := range []string{"/api/v1/label/service.name/values", "/api/v1/label/U__service_2e_name/values"} {
		var vals []string
		s.get(path, url.Values{"start": {fmt.Sprint(t0.Unix() - 60)}}, &vals)
		// OTLP's service.name becomes job, not a label of its own.
		if !slices.Equal(vals, []string{"api"}) {
			t.Errorf("%s: %v", path, vals)
		}
	}
	var metricNames []string
	s.get("/api/v1/label/__name__/values", url.Values{"start": {fmt.Sprint(t0.Unix() - 60)}}, &metricNames)
	for _, n := range []string{"http.server.request.duration", "room.temp", "queue.depth", "disk.io_read.ops", "jobs.done_total"} {
		if !slices.Contains(metricNames, n) {
			t.Errorf("metric names %v lack %s", metricNames, n)
		}
	}

	// Remote read.
	resp := postRemoteRead(t, s.url, &prompb.ReadRequest{Queries: []*prompb.Query{{
		StartTimestampMs: ms(-time.Minute), EndTimestampMs: ms(time.Hour),
		Matchers: []*prompb.LabelMatcher{{Type: prompb.LabelMatcher_EQ, Name: "__name__", Value: "http.server.request.duration"}, {Type: prompb.LabelMatcher_RE, Name: "service.name", Value: "a.*"}},
	}}, AcceptedResponseTypes: []prompb.ReadRequest_ResponseType{prompb.ReadRequest_SAMPLES}})
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	dec, err := snappy.Decode(nil, body)
	if err != nil {
		t.Fatal(err)
	}
	var rr prompb.ReadResponse
	if err := rr.Unmarshal(dec); err != nil {
		t.Fatal(err)
	}
	if ts := rr.Results[0].Timeseries; len(ts) != 1 || len(ts[0].Samples) != 3 || fmt.Sprint(ts[0].Labels) != fmt.Sprint(rw.Timeseries[0].Labels) {
		t.Errorf("remote read: %v", ts)
	}

	// The result cache: a cached window sees a late write at once.
	rng := url.Values{"query": {`sum({"http.server.request.duration"})`}, "start": {fmt.Sprint(t0.Unix())}, "end": {fmt.Sprint(t0.Add(10 * time.Minute).Unix())}, "step": {"60"}}
	if st, _ := s.rangeStatus(rng, nil); st != "miss" {
		t.Errorf("first range query: cache %s", st)
	}
	if st, _ := s.rangeStatus(rng, nil); st != "hit" {
		t.Errorf("second range query: cache %s, want hit", st)
	}
	late := &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
		Labels:  rw.Timeseries[0].Labels,
		Samples: []prompb.Sample{{Timestamp: ms(5 * time.Minute), Value: 50}},
	}}}
	if raw, err = late.Marshal(); err != nil {
		t.Fatal(err)
	}
	if code, body := s.post("/api/v1/write", "application/x-protobuf", snappy.Encode(nil, raw)); code != http.StatusNoContent {
		t.Fatalf("late write: %d %s", code, body)
	}
	if st, body := s.rangeStatus(rng, nil); st == "hit" || !strings.Contains(body, `"50"`) {
		t.Errorf("after a late write into a cached window: cache %s, body %s", st, body)
	}

	// Federation: quoted names for a scraper that allows UTF-8 (Prometheus
	// 3), underscores for the others, as Prometheus answers.
	fed := func(accept string) string {
		req, _ := http.NewRequest(http.MethodGet, s.url+"/federate?"+url.Values{"match[]": {`{"jobs.done_total"}`}}.Encode(), nil)
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		_, body := s.do(req)
		return body
	}
	if got := fed("text/plain;version=0.0.4;escaping=allow-utf-8"); !strings.Contains(got, `{"jobs.done_total",job="otel","job.kind"="batch",instance=""} 3`) {
		t.Errorf("federate allowing UTF-8:\n%s", got)
	}
	if got := fed(""); !strings.Contains(got, `jobs_done_total{job="otel",job_kind="batch",instance=""} 3`) {
		t.Errorf("federate by default:\n%s", got)
	}
}

// TestLegacyNameValidation: ingest.name_validation=legacy keeps Prometheus
// 2's names: a dotted name is refused with 400 naming it, in every format.
func TestLegacyNameValidation(t *testing.T) {
	s := startServer(t, "", "--ingest.name-validation", "legacy")
	now := time.Now().UnixMilli()
	for _, tc := range []struct{ path, ct, body, msg string }{
		{"/api/v1/import", "application/json", fmt.Sprintf(`{"metric":{"__name__":"room.temp"},"values":[1],"timestamps":[%d]}`, now), `invalid metric name \"room.temp\" (ingest.name_validation: legacy)`},
		{"/api/v1/import", "application/json", fmt.Sprintf(`{"metric":{"__name__":"room_temp","building.floor":"2"},"values":[1],"timestamps":[%d]}`, now), `invalid label name \"building.floor\"`},
		{"/write", "text/plain", "disk.io v=1", `invalid metric name \"disk.io_v\"`},
		{"/api/v1/import/prometheus", "text/plain", "{\"queue.depth\"} 4\n", "line 1"},
	} {
		code, body := s.post(tc.path, tc.ct, []byte(tc.body))
		if code != http.StatusBadRequest || !strings.Contains(body, tc.msg) {
			t.Errorf("%s %q: %d %s, want 400 with %q", tc.path, tc.body, code, body, tc.msg)
		}
	}
	if names := s.instant(`count({__name__=~".+"})`, time.Now()); len(names) != 0 {
		t.Errorf("refused writes stored something: %v", names)
	}
}
