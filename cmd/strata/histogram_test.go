package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang/snappy"
	jsoniter "github.com/json-iterator/go"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/prompb"
	"github.com/prometheus/prometheus/util/jsonutil"
)

// hxHistogram is the latency histogram written at minute i: a counter.
func hxHistogram(i int64) *histogram.Histogram {
	n := uint64(i)
	return &histogram.Histogram{
		Schema: 3, Count: 3 * n, Sum: float64(i) * 0.125,
		PositiveSpans:   []histogram.Span{{Offset: -8, Length: 2}, {Offset: 4, Length: 1}},
		PositiveBuckets: []int64{int64(n), 0, 0},
	}
}

// TestHistogramsOverHTTP remote-writes three days of a float counter and a
// native histogram series in the same requests, rolls them up, and checks
// over HTTP: both are stored; raw histograms come back in Prometheus' JSON
// shape; a histogram query reads raw data and says so in
// X-Strata-Resolution while the float query reads rollups; cached answers
// equal fresh ones.
func TestHistogramsOverHTTP(t *testing.T) {
	s := startServer(t, "", "--storage.maintenance-interval", "1h", "--downsample.5m-to-1h-after", "48h")
	end := time.Now().UTC().Add(-48 * time.Hour).Truncate(24 * time.Hour)
	start := end.Add(-3 * 24 * time.Hour)
	lbl := func(name string) []prompb.Label {
		return []prompb.Label{{Name: "__name__", Value: name}, {Name: "host", Value: "a"}}
	}
	for day := start; day.Before(end); day = day.Add(24 * time.Hour) {
		req := &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{Labels: lbl("hx_requests_total")}, {Labels: lbl("hx_latency_seconds")}}}
		for ts := day; ts.Before(day.Add(24 * time.Hour)); ts = ts.Add(time.Minute) {
			i := int64(ts.Sub(start) / time.Minute)
			req.Timeseries[0].Samples = append(req.Timeseries[0].Samples, prompb.Sample{Timestamp: ts.UnixMilli(), Value: float64(i)})
			req.Timeseries[1].Histograms = append(req.Timeseries[1].Histograms, prompb.FromIntHistogram(ts.UnixMilli(), hxHistogram(i)))
		}
		raw, err := req.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if code, body := s.post("/api/v1/write", "application/x-protobuf", snappy.Encode(nil, raw)); code != http.StatusNoContent {
			t.Fatalf("remote write: %d %s", code, body)
		}
	}
	s.flush()
	if code, body := s.post("/api/v1/admin/downsample/run", "", nil); code != http.StatusOK || !strings.Contains(body, `"rollupsWritten"`) {
		t.Fatalf("downsample/run: %d %s", code, body)
	}

	get := func(path string, p url.Values) (string, string) {
		t.Helper()
		resp, err := http.Get(s.url + path + "?" + p.Encode())
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("%s %v: %d %s", path, p, resp.StatusCode, b)
		}
		return resp.Header.Get("X-Strata-Resolution"), string(b)
	}
	from, to := start.Add(6*time.Hour), end
	rng := func(q string) url.Values {
		return url.Values{"query": {q}, "start": {itoa64(from.Unix())}, "end": {itoa64(to.Unix())}, "step": {"3600"}}
	}
	if res, _ := get("/api/v1/query_range", rng("rate(hx_requests_total[1h])")); res != "1h" {
		t.Errorf("float counter read from %q, want the 1h rollup", res)
	}
	for _, q := range []string{"histogram_quantile(0.9, rate(hx_latency_seconds[1h]))", "histogram_count(hx_latency_seconds)", "hx_latency_seconds"} {
		p := rng(q)
		p.Set("max_source_resolution", "1h")
		res, body := get("/api/v1/query_range", p)
		if res != "raw" {
			t.Errorf("%s read from %q, want raw", q, res)
		}
		p.Set("max_source_resolution", "raw")
		if _, want := get("/api/v1/query_range", p); body != want {
			t.Errorf("%s: answer with max_source_resolution=1h differs from raw:\n%.300s\n%.300s", q, body, want)
		}
		// Cached (the second time) and fresh answers agree.
		p.Del("max_source_resolution")
		_, first := get("/api/v1/query_range", p)
		_, second := get("/api/v1/query_range", p)
		p.Set("nocache", "1")
		_, fresh := get("/api/v1/query_range", p)
		if first != fresh || second != fresh {
			t.Errorf("%s: cached answers differ from fresh", q)
		}
	}

	// The raw histograms, exactly as Prometheus writes them.
	at := start.Add(25 * time.Hour)
	_, body := get("/api/v1/query", url.Values{"query": {"hx_latency_seconds[2m]"}, "time": {itoa64(at.Unix())}})
	var r struct {
		Data struct {
			ResultType string `json:"resultType"`
			Result     []struct {
				Metric     map[string]string    `json:"metric"`
				Histograms [][2]json.RawMessage `json:"histograms"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatal(err)
	}
	if r.Data.ResultType != "matrix" || len(r.Data.Result) != 1 || len(r.Data.Result[0].Histograms) != 2 {
		t.Fatalf("raw histograms: %s", body)
	}
	for k, h := range r.Data.Result[0].Histograms {
		i := int64(at.Sub(start)/time.Minute) - 1 + int64(k)
		stream := jsoniter.ConfigCompatibleWithStandardLibrary.BorrowStream(nil)
		jsonutil.MarshalHistogram(hxHistogram(i).ToFloat(nil), stream)
		want := string(stream.Buffer())
		jsoniter.ConfigCompatibleWithStandardLibrary.ReturnStream(stream)
		if string(h[1]) != want || string(h[0]) != itoa64(start.Add(time.Duration(i)*time.Minute).Unix()) {
			t.Errorf("histogram %d: %s %s, want %s", i, h[0], h[1], want)
		}
	}
	// The floats of the same requests are there too.
	_, body = get("/api/v1/query", url.Values{"query": {"hx_requests_total"}, "time": {itoa64(at.Unix())}})
	if !strings.Contains(body, `"value":[`+itoa64(at.Unix())+`,"1500"]`) {
		t.Errorf("float counter: %s", body)
	}
}

// TestHistogramLimitsOverHTTP checks over HTTP that the limits on samples
// count a native histogram by its size, as Prometheus' engine does: a
// write of histograms whose count is under limits.max_samples_per_request
// but whose size is over it is refused with 400 and a message that says
// so; a query reading as many histograms as query.max_samples allows
// floats is refused with 422, while the same number of floats is answered.
func TestHistogramLimitsOverHTTP(t *testing.T) {
	const n = 60
	s := startServer(t, "", "--query.max-samples", strconv.Itoa(n), "--limits.max-samples-per-request", strconv.Itoa(4*n))
	t0 := time.Unix(1_700_000_000, 0)
	req := &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
		{Labels: []prompb.Label{{Name: "__name__", Value: "lim_floats"}}},
		{Labels: []prompb.Label{{Name: "__name__", Value: "lim_latency_seconds"}}},
	}}
	for i := range n {
		ts := t0.Add(time.Duration(i) * 10 * time.Second).UnixMilli()
		req.Timeseries[0].Samples = append(req.Timeseries[0].Samples, prompb.Sample{Timestamp: ts, Value: float64(i)})
		req.Timeseries[1].Histograms = append(req.Timeseries[1].Histograms, prompb.FromIntHistogram(ts, hxHistogram(int64(i))))
	}
	write := func(r *prompb.WriteRequest) (int, string) {
		raw, err := r.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		return s.post("/api/v1/write", "application/x-protobuf", snappy.Encode(nil, raw))
	}
	// 2n samples and histograms, but each histogram costs 12.
	if code, body := write(req); code != http.StatusBadRequest || !strings.Contains(body, "too many samples: more than 240 in one request (a native histogram counts as 11") {
		t.Fatalf("write over the limit by size: %d %s", code, body)
	}
	// In requests of 10 histograms (cost 120) they fit.
	for i := 0; i < n; i += 10 {
		part := &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
			{Labels: req.Timeseries[0].Labels, Samples: req.Timeseries[0].Samples[i : i+10]},
			{Labels: req.Timeseries[1].Labels, Histograms: req.Timeseries[1].Histograms[i : i+10]},
		}}
		if code, body := write(part); code != http.StatusNoContent {
			t.Fatalf("write of 10 histograms: %d %s", code, body)
		}
	}
	at := itoa64(t0.Add(n * 10 * time.Second).Unix())
	var d struct {
		Result []struct {
			Values [][2]any `json:"values"`
		} `json:"result"`
	}
	s.get("/api/v1/query", url.Values{"query": {"lim_floats[20m]"}, "time": {at}}, &d)
	if len(d.Result) != 1 || len(d.Result[0].Values) != n {
		t.Fatalf("lim_floats[20m]: %+v", d)
	}
	r, err := http.Get(s.url + "/api/v1/query?" + url.Values{"query": {"lim_latency_seconds[20m]"}, "time": {at}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if r.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(string(body), "too many samples") {
		t.Fatalf("lim_latency_seconds[20m] with query.max_samples %d: %d %s", n, r.StatusCode, body)
	}
}
