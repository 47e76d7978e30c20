package main

import (
	"net/url"
	"testing"
	"time"

	remoteapi "github.com/prometheus/client_golang/exp/api/remote"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
)

// TestRemoteWriteMetadata sends metadata through Prometheus' remote-write
// client, 1.0 (the request's metadata field, as Prometheus sends it) and
// 2.0 (per series), and reads it back from /api/v1/metadata in
// Prometheus' shape, with its parameters; then again after a flush and a
// restart.
func TestRemoteWriteMetadata(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir)
	v1 := rwClient(t, s.url, remoteapi.WriteV1MessageType)
	req1 := &prompb.WriteRequest{Metadata: []prompb.MetricMetadata{
		{Type: prompb.MetricMetadata_COUNTER, MetricFamilyName: "md_http_requests_total", Help: "Requests served.", Unit: ""},
		{Type: prompb.MetricMetadata_GAUGE, MetricFamilyName: "md_temperature", Help: "Room temperature.", Unit: "celsius"},
	}}
	raw, err := req1.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store(t, v1, raw); err != nil {
		t.Fatal(err)
	}
	v2 := rwClient(t, s.url, remoteapi.WriteV2MessageType)
	r := newV2Req()
	sample := func(r *v2Req, ts *writev2.TimeSeries) {
		ts.Samples = []writev2.Sample{{Value: 1, Timestamp: ms(time.Minute)}}
	}
	r.series([]string{"__name__", "md_latency_seconds_bucket", "le", "0.5"}, r.meta(model.MetricTypeHistogram, "Latency.", "seconds"), sample)
	r.series([]string{"__name__", "md_latency_seconds_count"}, r.meta(model.MetricTypeHistogram, "Latency.", "seconds"), sample)
	// Another sender's help for the same family: both are kept.
	r.series([]string{"__name__", "md_http_requests_total", "job", "b"}, r.meta(model.MetricTypeCounter, "HTTP requests.", ""), sample)
	// No metadata: nothing is stored for it.
	r.series([]string{"__name__", "md_plain"}, writev2.Metadata{}, sample)
	if _, err := store(t, v2, r.marshal(t)); err != nil {
		t.Fatal(err)
	}

	check := func(s *testServer, when string) {
		t.Helper()
		f := func(params url.Values, want string) {
			t.Helper()
			if got := s.rawQuery("/api/v1/metadata", params); got != want {
				t.Errorf("%s: metadata?%s:\n got %s\nwant %s", when, params.Encode(), got, want)
			}
		}
		f(nil, `{"status":"success","data":{`+
			`"md_http_requests_total":[{"type":"counter","unit":"","help":"HTTP requests."},{"type":"counter","unit":"","help":"Requests served."}],`+
			`"md_latency_seconds":[{"type":"histogram","unit":"seconds","help":"Latency."}],`+
			`"md_temperature":[{"type":"gauge","unit":"celsius","help":"Room temperature."}]}}`)
		f(url.Values{"metric": {"md_temperature"}}, `{"status":"success","data":{"md_temperature":[{"type":"gauge","unit":"celsius","help":"Room temperature."}]}}`)
		f(url.Values{"metric": {"md_nothing"}}, `{"status":"success","data":{}}`)
		f(url.Values{"limit": {"1"}, "limit_per_metric": {"1"}}, `{"status":"success","data":{"md_http_requests_total":[{"type":"counter","unit":"","help":"HTTP requests."}]}}`)
		f(url.Values{"limit": {"0"}}, `{"status":"success","data":{}}`)
	}
	check(s, "written")
	if n := s.metric("", "strata_metadata_families"); n != 3 {
		t.Errorf("strata_metadata_families %v, want 3", n)
	}
	s.flush()
	s.stop()
	s = startServer(t, dir)
	check(s, "after a flush and a restart")
}
