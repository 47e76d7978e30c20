package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"

	"github.com/strata-tsdb/strata/segments/remote/s3test"
)

// haBody is a remote write body of metric name's objSeries series over
// [from, to), a sample every 5 minutes at offset past the grid, valued
// base + minutes since objT0.
func haBody(t testing.TB, name string, from, to time.Time, offset time.Duration, base float64) []byte {
	t.Helper()
	req := &prompb.WriteRequest{}
	for i := range objSeries {
		ts := prompb.TimeSeries{Labels: []prompb.Label{{Name: "__name__", Value: name}, {Name: "i", Value: string(rune('a' + i))}}}
		for at := from.Add(offset); at.Before(to); at = at.Add(5 * time.Minute) {
			ts.Samples = append(ts.Samples, prompb.Sample{Timestamp: at.UnixMilli(), Value: base + float64(at.Sub(objT0)/time.Minute)})
		}
		req.Timeseries = append(req.Timeseries, ts)
	}
	b, err := req.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return snappy.Encode(nil, b)
}

// haInstant returns metric → value of every series of an instant query
// (one line per series, sorted by the API).
func haInstant(t *testing.T, s *testServer, q string, at time.Time) string {
	t.Helper()
	code, body := s.do(mustGet(t, s.url+"/api/v1/query?"+url.Values{"query": {q}, "time": {at.Format(time.RFC3339)}}.Encode()))
	if code != http.StatusOK {
		t.Fatalf("%s: %d %s", q, code, body)
	}
	var env struct {
		Data struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(body), &env); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range env.Data.Result {
		out = append(out, fmt.Sprintf("%s%v=%v", r.Metric["__name__"], r.Metric["i"], r.Value[1]))
	}
	return strings.Join(out, " ")
}

// TestObjectStorageHADedup: three writer processes upload into one
// bucket under their own prefixes: an HA pair (external labels
// replica=a and replica=b, cluster=x) carrying the same series at
// scrape offsets 0 s and 30 s with different values, replica a down for
// day 2, and a shard of other series (cluster=y). A reader merging the
// three prefixes answers one copy of each pair series per time range:
// replica a's where it has data, replica b's on day 2 and in a three-hour
// gap of replica a inside its day 1 segment, and the series only replica
// b holds; the shard's series besides. A reader without deduplication (query.replica_label empty)
// answers both copies, which is what the first must not. With the bucket
// down, the merged reader answers 503; back up, the same again.
func TestObjectStorageHADedup(t *testing.T) {
	bin := strataBinary(t)
	srv := s3test.Start(t)
	srv.SetEnv(t)
	day := 24 * time.Hour
	type writer struct {
		prefix, labels string
		body           []byte
	}
	ws := []writer{
		{"ha-a", "replica=a,cluster=x", nil},
		{"ha-b", "replica=b,cluster=x", nil},
		{"shard-y", "cluster=y", nil},
	}
	var urls []string
	for i, w := range ws {
		p := startProcess(t, bin, t.TempDir(), objArgs(srv.URL(w.prefix), "--enable-admin-api", "--storage.object.upload-after", "1h",
			"--storage.object.external-labels", w.labels)...)
		t.Cleanup(func() { p.kill(t) })
		s := &testServer{t: t, url: p.url}
		var bodies [][]byte
		switch i {
		case 0: // down after 06:00 until 09:00 on day 1, and for day 2
			bodies = [][]byte{haBody(t, "ha_metric", objT0, objT0.Add(day+6*time.Hour+time.Minute), 0, 0), haBody(t, "ha_metric", objT0.Add(day+9*time.Hour), objT0.Add(2*day), 0, 0),
				haBody(t, "ha_metric", objT0.Add(3*day), objT0.Add(4*day), 0, 0)}
		case 1: // and a metric only this replica has
			bodies = [][]byte{haBody(t, "ha_metric", objT0, objT0.Add(4*day), 30*time.Second, 0.5), haBody(t, "ha_only_b", objT0, objT0.Add(4*day), 30*time.Second, 0.5)}
		case 2:
			bodies = [][]byte{haBody(t, "shard_metric", objT0, objT0.Add(4*day), 0, 7)}
		}
		for _, b := range bodies {
			if code, body := s.post("/api/v1/write", "application/x-protobuf", b); code/100 != 2 {
				t.Fatalf("write to %s: %d %s", w.prefix, code, body)
			}
		}
		if code, body := s.post("/api/v1/admin/tsdb/flush", "", nil); code/100 != 2 {
			t.Fatalf("flush %s: %d %s", w.prefix, code, body)
		}
		if code, body := s.post("/api/v1/admin/upload/run", "", nil); code/100 != 2 {
			t.Fatalf("upload %s: %d %s", w.prefix, code, body)
		}
		urls = append(urls, srv.URL(w.prefix))
	}
	reader := func(more ...string) *testServer {
		r := startServer(t, "", objArgs(strings.Join(urls, ","), append([]string{"--role", "reader"}, more...)...)...)
		waitUntil(t, "the reader lists every prefix", func() bool {
			n := 0
			for _, w := range ws {
				n += len(bucketSegments(srv, w.prefix))
			}
			code, body := r.do(mustGet(t, r.url+"/readyz"))
			return code == http.StatusOK && strings.Contains(body, ": up") && gaugeSum(r, "strata_object_bucket_segments") == float64(n)
		})
		return r
	}
	// No segment stays in the read cache: with the bucket down, a query
	// of its data gets a 503.
	r := reader("--storage.object.cache-max-bytes", "1")
	raw := reader("--query.replica-label", "")

	// One copy: 12 samples an hour, as one replica has (at day 1 08:00,
	// replica b's, in replica a's three-hour gap inside its day segment).
	for _, at := range []time.Time{objT0.Add(12 * time.Hour), objT0.Add(day + 6*time.Hour), objT0.Add(day + 8*time.Hour), objT0.Add(2*day + 12*time.Hour), objT0.Add(3*day + 18*time.Hour)} {
		if got := haInstant(t, r, `count(count_over_time(ha_metric[1h]) == 12)`, at); got != "=20" {
			t.Errorf("%v: series with 12 samples in the last hour: %s, want all 20", at, got)
		}
		if at.Sub(objT0)/day == 2 || at.Equal(objT0.Add(day+8*time.Hour)) {
			continue // only replica b has data there
		}
		if got := haInstant(t, raw, `count(count_over_time(ha_metric[1h]) == 12)`, at); got == "=20" {
			t.Errorf("%v: the reader without deduplication answers one copy too: the test shows nothing", at)
		}
	}
	// Replica a's values where it has data, b's on day 2 (a was down).
	for _, c := range []struct {
		at   time.Time
		base float64
	}{{objT0.Add(12 * time.Hour), 0}, {objT0.Add(day + 7*time.Hour), 0.5}, {objT0.Add(day + 10*time.Hour), 0}, {objT0.Add(2*day + 12*time.Hour), 0.5}, {objT0.Add(3*day + 12*time.Hour), 0}} {
		want := fmt.Sprint(float64(c.at.Sub(objT0)/time.Minute) + c.base)
		got := haInstant(t, r, `ha_metric{i="c"}`, c.at.Add(time.Minute))
		if got != "ha_metricc="+want {
			t.Errorf("%v: %s, want ha_metricc=%s", c.at, got, want)
		}
	}
	// A series only replica b holds is answered wherever replica a has data.
	if got := haInstant(t, r, `count(count_over_time(ha_only_b[1h]) == 12)`, objT0.Add(12*time.Hour)); got != "=20" {
		t.Errorf("series only replica b holds: %s, want 20 with 12 samples in the last hour", got)
	}
	if got := haInstant(t, r, `count(shard_metric)`, objT0.Add(36*time.Hour)); got != "=20" {
		t.Errorf("the shard's series: %s", got)
	}

	// Bucket down and back.
	want := objRangeQ(t, r, `sum(count_over_time(ha_metric[1h]))`)
	srv.Stop()
	code, body := r.do(mustGet(t, r.url+"/api/v1/query_range?"+url.Values{"query": {"ha_metric"},
		"start": {objT0.Format(time.RFC3339)}, "end": {objT0.Add(2 * time.Hour).Format(time.RFC3339)}, "step": {"5m"}}.Encode()))
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "s3://strata/") {
		t.Fatalf("with the bucket down: %d %s", code, body)
	}
	srv.Restart()
	waitUntil(t, "the reader answers the same once the bucket is back", func() bool {
		code, got := r.do(mustGet(t, r.url+"/api/v1/query_range?"+url.Values{"query": {`sum(count_over_time(ha_metric[1h]))`},
			"start": {objT0.Format(time.RFC3339)}, "end": {objT0.Add(4 * day).Format(time.RFC3339)}, "step": {"1h"}}.Encode()))
		return code == http.StatusOK && got == want
	})
}

// objRangeQ answers q over the four days at a 1 h step.
func objRangeQ(t *testing.T, s *testServer, q string) string {
	t.Helper()
	code, body := s.do(mustGet(t, s.url+"/api/v1/query_range?"+url.Values{"query": {q},
		"start": {objT0.Format(time.RFC3339)}, "end": {objT0.Add(4 * 24 * time.Hour).Format(time.RFC3339)}, "step": {"1h"}}.Encode()))
	if code != http.StatusOK {
		t.Fatalf("%s: %d %s", q, code, body)
	}
	return body
}

// gaugeSum returns the sum of the samples of metric name in s's
// /metrics, whatever their labels.
func gaugeSum(s *testServer, name string) float64 {
	code, body := s.do(mustGet(s.t, s.url+"/metrics"))
	if code != http.StatusOK {
		s.t.Fatalf("/metrics: %d", code)
	}
	var sum float64
	for _, line := range strings.Split(body, "\n") {
		if rest, ok := strings.CutPrefix(line, name); ok && (strings.HasPrefix(rest, " ") || strings.HasPrefix(rest, "{")) {
			var v float64
			if _, err := fmt.Sscan(rest[strings.LastIndexByte(rest, ' ')+1:], &v); err == nil {
				sum += v
			}
		}
	}
	return sum
}
