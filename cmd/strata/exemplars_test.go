package main

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	remoteapi "github.com/prometheus/client_golang/exp/api/remote"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
)

// exemplarRequests are a 1.0 and a 2.0 request carrying exemplars as
// Prometheus sends them: 1.0 in their own series entry, 2.0 with the
// samples and on their own.
func exemplarRequests(t *testing.T) (v1, v2 []byte) {
	req1 := &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
		{Labels: []prompb.Label{{Name: "__name__", Value: "ex_requests_total"}, {Name: "job", Value: "a"}}, Samples: []prompb.Sample{{Timestamp: ms(time.Minute), Value: 3}}},
		{Labels: []prompb.Label{{Name: "__name__", Value: "ex_requests_total"}, {Name: "job", Value: "a"}}, Exemplars: []prompb.Exemplar{
			{Labels: []prompb.Label{{Name: "trace_id", Value: "aaaa"}}, Value: 1, Timestamp: ms(time.Minute)},
		}},
	}}
	v1, err := req1.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	r := newV2Req()
	r.series([]string{"__name__", "ex_latency_seconds", "job", "b"}, r.meta(model.MetricTypeGauge, "", ""), func(r *v2Req, ts *writev2.TimeSeries) {
		ts.Samples = []writev2.Sample{{Value: 0.2, Timestamp: ms(2 * time.Minute)}}
		ts.Exemplars = []writev2.Exemplar{r.exemplar(ms(2*time.Minute)+500, 0.25, "trace_id", "bbbb", "span_id", "s1")}
	})
	r.series([]string{"__name__", "ex_requests_total", "job", "a"}, writev2.Metadata{}, func(r *v2Req, ts *writev2.TimeSeries) {
		ts.Exemplars = []writev2.Exemplar{r.exemplar(ms(3*time.Minute), 2, "trace_id", "cccc")}
	})
	return v1, r.marshal(t)
}

// wantExemplars is what /api/v1/query_exemplars answers for
// {__name__=~"ex_.+"} after exemplarRequests.
var wantExemplars = fmt.Sprintf(`{"status":"success","data":[`+
	`{"seriesLabels":{"__name__":"ex_latency_seconds","job":"b"},"exemplars":[{"labels":{"span_id":"s1","trace_id":"bbbb"},"value":"0.25","timestamp":%d.500}]},`+
	`{"seriesLabels":{"__name__":"ex_requests_total","job":"a"},"exemplars":[{"labels":{"trace_id":"aaaa"},"value":"1","timestamp":%d},{"labels":{"trace_id":"cccc"},"value":"2","timestamp":%d}]}]}`,
	ms(2*time.Minute)/1000, ms(time.Minute)/1000, ms(3*time.Minute)/1000)

func exemplarQuery(q string, start, end time.Time) url.Values {
	return url.Values{"query": {q}, "start": {fmt.Sprint(start.Unix())}, "end": {fmt.Sprint(end.Unix())}}
}

// TestRemoteWriteExemplars sends exemplars through Prometheus' remote-write
// client, 1.0 and 2.0, and reads them back from /api/v1/query_exemplars in
// Prometheus' shape with exact values; the 2.0 answer counts them.
func TestRemoteWriteExemplars(t *testing.T) {
	s := startServer(t, "")
	v1raw, v2raw := exemplarRequests(t)
	if _, err := store(t, rwClient(t, s.url, remoteapi.WriteV1MessageType), v1raw); err != nil {
		t.Fatal(err)
	}
	stats, err := store(t, rwClient(t, s.url, remoteapi.WriteV2MessageType), v2raw)
	if err != nil || stats.Exemplars != 2 || stats.Samples != 1 {
		t.Fatalf("2.0 answer: %+v %v, want 1 sample and 2 exemplars", stats, err)
	}
	if n := s.metric("", "strata_exemplars"); n != 3 {
		t.Errorf("strata_exemplars %v, want 3", n)
	}
	q := exemplarQuery(`{__name__=~"ex_.+"}`, rw2Base, rw2Base.Add(time.Hour))
	if got := s.rawQuery("/api/v1/query_exemplars", q); got != wantExemplars {
		t.Errorf("query_exemplars:\n got %s\nwant %s", got, wantExemplars)
	}
	f := func(params url.Values, want string) {
		t.Helper()
		if got := s.rawQuery("/api/v1/query_exemplars", params); got != want {
			t.Errorf("query_exemplars?%s:\n got %s\nwant %s", params.Encode(), got, want)
		}
	}
	// Selectors inside an expression; a time range that holds one.
	f(exemplarQuery(`sum(rate(ex_requests_total{job="a"}[5m]))`, rw2Base.Add(150*time.Second), rw2Base.Add(time.Hour)),
		fmt.Sprintf(`{"status":"success","data":[{"seriesLabels":{"__name__":"ex_requests_total","job":"a"},"exemplars":[{"labels":{"trace_id":"cccc"},"value":"2","timestamp":%d}]}]}`, ms(3*time.Minute)/1000))
	f(exemplarQuery(`ex_nothing`, rw2Base, rw2Base.Add(time.Hour)), `{"status":"success","data":[]}`)
	f(exemplarQuery(`1 + 1`, rw2Base, rw2Base.Add(time.Hour)), `{"status":"success","data":null}`)
}

// TestExemplarSurvivesKill: an exemplar whose write was acknowledged is
// served after the server is killed with SIGKILL and started again.
func TestExemplarSurvivesKill(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := strataBinary(t)
	dir := t.TempDir()
	p := startProcess(t, bin, dir)
	_, v2raw := exemplarRequests(t)
	stats, err := store(t, rwClient(t, p.url, remoteapi.WriteV2MessageType), v2raw)
	if err != nil || stats.Exemplars != 2 {
		t.Fatalf("2.0 answer: %+v %v", stats, err)
	}
	p.kill(t)
	p = startProcess(t, bin, dir)
	defer p.kill(t)
	q := exemplarQuery(`ex_requests_total`, rw2Base, rw2Base.Add(time.Hour))
	want := fmt.Sprintf(`{"status":"success","data":[{"seriesLabels":{"__name__":"ex_requests_total","job":"a"},"exemplars":[{"labels":{"trace_id":"cccc"},"value":"2","timestamp":%d}]}]}`, ms(3*time.Minute)/1000)
	// The server answers 503 while it replays the log: wait for it.
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(p.url + "/api/v1/query_exemplars?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			if string(body) != want {
				t.Fatalf("after kill -9:\n got %s\nwant %s", body, want)
			}
			return
		}
		if resp.StatusCode != http.StatusServiceUnavailable || time.Now().After(deadline) {
			t.Fatalf("after kill -9: %d %s", resp.StatusCode, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestRemoteWriteBadExemplarKeepsSamples: a remote write 1.0 request, sent
// by Prometheus' client, whose exemplars Prometheus would refuse (labels
// over 128 runes, a duplicate label name) is acknowledged; its samples and
// its valid exemplar are stored, the bad ones are counted in
// strata_ingest_exemplars_dropped_total, as Prometheus' write handler
// drops them and keeps the samples.
func TestRemoteWriteBadExemplarKeepsSamples(t *testing.T) {
	s := startServer(t, "")
	lbls := []prompb.Label{{Name: "__name__", Value: "bad_ex_total"}, {Name: "job", Value: "a"}}
	req := &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
		Labels:  lbls,
		Samples: []prompb.Sample{{Timestamp: ms(time.Minute), Value: 7}},
		Exemplars: []prompb.Exemplar{
			{Labels: []prompb.Label{{Name: "trace_id", Value: strings.Repeat("f", 129)}}, Value: 1, Timestamp: ms(time.Minute)},
			{Labels: []prompb.Label{{Name: "trace_id", Value: "good"}}, Value: 2, Timestamp: ms(time.Minute)},
			{Labels: []prompb.Label{{Name: "trace_id", Value: "x"}, {Name: "trace_id", Value: "y"}}, Value: 3, Timestamp: ms(time.Minute)},
		},
	}}}
	raw, err := req.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store(t, rwClient(t, s.url, remoteapi.WriteV1MessageType), raw); err != nil {
		t.Fatalf("1.0 write with bad exemplars: %v, want it acknowledged", err)
	}
	s.one(`bad_ex_total{job="a"}`, rw2Base.Add(time.Minute), 7)
	want := fmt.Sprintf(`{"status":"success","data":[{"seriesLabels":{"__name__":"bad_ex_total","job":"a"},"exemplars":[{"labels":{"trace_id":"good"},"value":"2","timestamp":%d}]}]}`, ms(time.Minute)/1000)
	if got := s.rawQuery("/api/v1/query_exemplars", exemplarQuery(`bad_ex_total`, rw2Base, rw2Base.Add(time.Hour))); got != want {
		t.Errorf("query_exemplars:\n got %s\nwant %s", got, want)
	}
	if n := s.metric("", `strata_ingest_exemplars_dropped_total{format="remote_write",reason="invalid"}`); n != 2 {
		t.Errorf("strata_ingest_exemplars_dropped_total %v, want 2", n)
	}
	if n := s.metric("", `strata_ingest_rejected_requests_total{format="remote_write",reason="bad_data"}`); n > 0 {
		t.Errorf("a request counted as rejected: %v", n)
	}
}

// TestRemoteWriteOutOfOrderExemplars: an exemplar older than its series'
// newest is stored and acknowledged, in 1.0 and 2.0 (counted as written),
// and answers come sorted by time. Prometheus with its default
// out-of-order window of 0 drops such an exemplar (1.0: 204; 2.0: 400, the
// rest written); Strata takes out-of-order samples of any age, as
// Prometheus does with a window that covers them, and keeps the exemplars
// of those samples too. Either way no sample is lost.
func TestRemoteWriteOutOfOrderExemplars(t *testing.T) {
	s := startServer(t, "")
	lbls := []prompb.Label{{Name: "__name__", Value: "ooo_ex_total"}, {Name: "job", Value: "a"}}
	for _, e := range []prompb.Exemplar{
		{Labels: []prompb.Label{{Name: "trace_id", Value: "new"}}, Value: 2, Timestamp: ms(3 * time.Minute)},
		{Labels: []prompb.Label{{Name: "trace_id", Value: "old"}}, Value: 1, Timestamp: ms(time.Minute)},
	} {
		raw, err := (&prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{Labels: lbls,
			Samples: []prompb.Sample{{Timestamp: e.Timestamp, Value: e.Value}}, Exemplars: []prompb.Exemplar{e}}}}).Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := store(t, rwClient(t, s.url, remoteapi.WriteV1MessageType), raw); err != nil {
			t.Fatalf("1.0 write of exemplar %v: %v", e.Labels, err)
		}
	}
	r := newV2Req()
	r.series([]string{"__name__", "ooo_ex_total", "job", "a"}, writev2.Metadata{}, func(r *v2Req, ts *writev2.TimeSeries) {
		ts.Samples = []writev2.Sample{{Value: 1.5, Timestamp: ms(2 * time.Minute)}}
		ts.Exemplars = []writev2.Exemplar{r.exemplar(ms(2*time.Minute), 1.5, "trace_id", "mid")}
	})
	stats, err := store(t, rwClient(t, s.url, remoteapi.WriteV2MessageType), r.marshal(t))
	if err != nil || stats.Exemplars != 1 || stats.Samples != 1 {
		t.Fatalf("2.0 answer: %+v %v, want 1 sample and 1 exemplar written", stats, err)
	}
	ex := func(id, v string, d time.Duration) string {
		return fmt.Sprintf(`{"labels":{"trace_id":"%s"},"value":"%s","timestamp":%d}`, id, v, ms(d)/1000)
	}
	want := `{"status":"success","data":[{"seriesLabels":{"__name__":"ooo_ex_total","job":"a"},"exemplars":[` +
		ex("old", "1", time.Minute) + "," + ex("mid", "1.5", 2*time.Minute) + "," + ex("new", "2", 3*time.Minute) + `]}]}`
	if got := s.rawQuery("/api/v1/query_exemplars", exemplarQuery(`ooo_ex_total`, rw2Base, rw2Base.Add(time.Hour))); got != want {
		t.Errorf("query_exemplars:\n got %s\nwant %s", got, want)
	}
}
