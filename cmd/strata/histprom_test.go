package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/util/teststorage"
)

// histTarget is a scrape target served by client_golang: a native
// histogram of latencies (positive buckets and the zero bucket), a native
// histogram of signed offsets (negative and positive buckets), a classic
// histogram and a counter vector. Each scrape first records a batch of
// observations that depends only on the scrape's number, so every scrape
// shows new buckets being filled.
type histTarget struct {
	mtx     sync.Mutex // serializes scrapes, guards scrapes
	scrapes int        // guarded by mtx
	latency prometheus.Histogram
	offset  prometheus.Histogram
	size    prometheus.Histogram
	reqs    *prometheus.CounterVec
	handler http.Handler
}

func newHistTarget() *histTarget {
	reg := prometheus.NewRegistry()
	h := &histTarget{
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "st_latency_seconds", Help: "Request latency.",
			NativeHistogramBucketFactor:  1.1, // schema 3
			NativeHistogramZeroThreshold: 1e-4,
		}),
		offset: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "st_offset_seconds", Help: "Clock offset, signed.",
			NativeHistogramBucketFactor: 1.5, // schema 1
		}),
		size: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "st_size_bytes", Help: "Response size, classic buckets only.",
			Buckets: prometheus.ExponentialBuckets(100, 4, 6),
		}),
		reqs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "st_requests_total", Help: "Requests."}, []string{"code"}),
	}
	reg.MustRegister(h.latency, h.offset, h.size, h.reqs)
	inner := promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	h.handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.mtx.Lock()
		defer h.mtx.Unlock()
		h.observeLocked()
		inner.ServeHTTP(w, r)
	})
	return h
}

// observeLocked records scrape number h.scrapes' batch.
func (h *histTarget) observeLocked() {
	k := h.scrapes
	h.scrapes++
	for j := range 25 {
		x := float64((k*31+j*17)%97) / 97 // in [0, 1)
		if j%9 == 0 {
			h.latency.Observe(0) // the zero bucket
		} else {
			h.latency.Observe(0.001 * math.Pow(2000, x)) // 1 ms … 2 s, many buckets
		}
		h.offset.Observe((x - 0.5) * float64(1+k%4))
		h.size.Observe(50 * math.Pow(500, x))
	}
	h.reqs.WithLabelValues("200").Add(float64(20 + k%7))
	if k%3 == 0 {
		h.reqs.WithLabelValues("500").Inc()
	}
}

// TestNativeHistogramsFromPrometheus has a real Prometheus (Debian's 2.42,
// with native histograms enabled) scrape a client_golang target over the
// protobuf exposition format and remote-write it to Strata with
// send_native_histograms. Prometheus' own API is the oracle: the raw
// histograms and floats, and histogram_count/sum/quantile, rate and
// classic-histogram queries over the whole range answer the same through
// Strata as through Prometheus, and Prometheus counted no failed sample or
// histogram.
func TestNativeHistogramsFromPrometheus(t *testing.T) {
	s := startServer(t, "")
	target := newHistTarget()
	srv := httptest.NewServer(target.handler) // 127.0.0.1
	t.Cleanup(srv.Close)
	promPort := freePort(t)
	prom := startPrometheus(t, promPort, fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1m
scrape_configs:
  - job_name: target
    static_configs:
      - targets: [%q]
remote_write:
  - url: %s/api/v1/write
    send_native_histograms: true
    queue_config:
      batch_send_deadline: 1s
`, strings.TrimPrefix(srv.URL, "http://"), s.url), "--enable-feature=native-histograms")
	t.Logf("testing against Prometheus %s", prometheusVersion(t, prom))
	promAPI := &testServer{t: t, url: prom}

	// Let Prometheus scrape for a while: 20 scrapes at 1 s.
	deadline := time.Now().Add(3 * time.Minute)
	for {
		target.mtx.Lock()
		n := target.scrapes
		target.mtx.Unlock()
		if n >= 20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Prometheus scraped the target %d times in 3 minutes, want 20", n)
		}
		time.Sleep(200 * time.Millisecond)
	}

	// The range compared ends before now; wait until Prometheus has
	// ingested past it and Strata holds, for every series, a sample newer
	// than its end, so both hold the same samples inside it.
	end := time.Now().Add(-2 * time.Second)
	// Prometheus commits a scrape's series together: one of them tells.
	// Its remote write sends series in parallel shards: wait for each.
	waitNewer(t, promAPI, `up{job="target"}`, end)
	var series []map[string]string
	promAPI.get("/api/v1/series", url.Values{"match[]": {`{job="target"}`}}, &series)
	if len(series) < 15 {
		t.Fatalf("Prometheus holds %d series of the target: %v", len(series), series)
	}
	for _, ls := range series {
		var m []string
		for k, v := range ls {
			m = append(m, fmt.Sprintf("%s=%q", k, v))
		}
		slices.Sort(m)
		waitNewer(t, s, "{"+strings.Join(m, ",")+"}", end)
	}
	// Scrape timestamps carry milliseconds: choose evaluation times whose
	// millisecond part no sample has, so no sample lies on the edge of a
	// range, where Prometheus 2 (closed) and 3 (left-open) differ.
	start := promFirstSample(t, promAPI, "st_latency_seconds", end)
	evalStart := start.Truncate(time.Second).Add(freeMillis(t, promAPI, end) + 2*time.Second)
	evalEnd := end.Truncate(time.Second).Add(evalStart.Sub(evalStart.Truncate(time.Second)))
	if evalEnd.After(end) {
		evalEnd = evalEnd.Add(-time.Second)
	}
	t.Logf("comparing %s … %s", evalStart.Format(time.RFC3339Nano), evalEnd.Format(time.RFC3339Nano))

	at := strconv.FormatFloat(float64(evalEnd.UnixMilli())/1000, 'f', 3, 64)
	rangeParams := func(q string) url.Values {
		return url.Values{"query": {q}, "start": {strconv.FormatFloat(float64(evalStart.UnixMilli())/1000, 'f', 3, 64)}, "end": {at}, "step": {"1"}}
	}
	later := func(p url.Values, sec int) url.Values { // p starting sec seconds later
		p.Set("start", strconv.FormatFloat(float64(evalStart.Add(time.Duration(sec)*time.Second).UnixMilli())/1000, 'f', 3, 64))
		return p
	}
	window := fmt.Sprintf("[%ds]", int(evalEnd.Sub(evalStart)/time.Second)+1)
	// Where Prometheus 3 answers differently from 2.42 by design, the
	// oracle is the PromQL engine Strata links (Prometheus 3's), run here
	// over the raw samples Prometheus 2.42 stored, read from it through
	// remote read.
	oracle := newEngineOracle(t, prom, evalStart.Add(-10*time.Minute), evalEnd)
	for _, q := range []struct {
		path   string
		params url.Values
		points int // at least this many values or histograms in the answer
		// engine3 says why 2.42 answers differently, and that the
		// answer is compared with Prometheus 3's engine instead.
		engine3 string
	}{
		// The raw samples, bit for bit.
		{"/api/v1/query", url.Values{"query": {"st_latency_seconds" + window}, "time": {at}}, 15, ""},
		{"/api/v1/query", url.Values{"query": {"st_offset_seconds" + window}, "time": {at}}, 15, ""},
		{"/api/v1/query", url.Values{"query": {"st_requests_total" + window}, "time": {at}}, 30, ""},
		{"/api/v1/query", url.Values{"query": {"st_size_bytes_bucket" + window}, "time": {at}}, 100, ""},
		{"/api/v1/query_range", rangeParams("st_latency_seconds"), 15, ""},
		// Functions of native histograms.
		{"/api/v1/query_range", rangeParams("histogram_count(st_latency_seconds)"), 15, ""},
		{"/api/v1/query_range", rangeParams("histogram_sum(st_latency_seconds)"), 15, ""},
		{"/api/v1/query_range", rangeParams("histogram_count(rate(st_latency_seconds[1m]))"), 10, ""},
		{"/api/v1/query_range", rangeParams("histogram_sum(rate(st_offset_seconds[1m]))"), 10, ""},
		{"/api/v1/query_range", rangeParams("rate(st_latency_seconds[1m])"), 10, ""},
		{"/api/v1/query_range", rangeParams("sum(rate(st_offset_seconds[30s]))"), 10, ""},
		{"/api/v1/query_range", rangeParams("histogram_quantile(0.9, rate(st_latency_seconds[1m]))"), 10, quantileChange},
		{"/api/v1/query_range", rangeParams("histogram_quantile(0.5, st_offset_seconds)"), 15, quantileChange},
		{"/api/v1/query_range", rangeParams("histogram_fraction(0, 0.1, st_offset_seconds)"), 15, quantileChange},
		// The classic histogram and the counters.
		{"/api/v1/query_range", rangeParams("histogram_quantile(0.9, sum by (le) (rate(st_size_bytes_bucket[1m])))"), 10, rateChange},
		{"/api/v1/query_range", rangeParams("sum by (code) (rate(st_requests_total[1m]))"), 20, rateChange},
		{"/api/v1/query_range", rangeParams("sum by (code) (rate(st_requests_total[5s]))"), 20, rateChange},
		// Where every window lies past the counters' first sample, rate
		// has not changed: Prometheus 2.42 itself is the oracle.
		{"/api/v1/query_range", later(rangeParams("sum by (code) (rate(st_requests_total[5s]))"), 7), 12, ""},
		{"/api/v1/query_range", later(rangeParams("histogram_count(rate(st_latency_seconds[5s]))"), 7), 6, ""},
	} {
		expr := q.params.Get("query")
		got := s.rawData(q.path, q.params)
		want := promAPI.rawData(q.path, q.params)
		if n := countPoints(want); n < q.points {
			t.Fatalf("%s: Prometheus answers only %d points, want at least %d: %.500s", expr, n, q.points, want)
		}
		if q.engine3 == "" {
			if !sameJSONResult(t, got, want) {
				t.Errorf("%s: Strata and Prometheus differ\nstrata:     %.2000s\nprometheus: %.2000s", expr, got, want)
			}
			continue
		}
		if sameJSONResult(t, got, want) {
			t.Logf("%s: Strata answers as Prometheus 2.42 although %s", expr, q.engine3)
		}
		want = oracle.rangeQuery(expr, evalStart, evalEnd, time.Second)
		if n := countPoints(want); n < q.points {
			t.Fatalf("%s: the engine over Prometheus' data answers only %d points, want at least %d: %.500s", expr, n, q.points, want)
		}
		if !sameJSONResult(t, got, want) {
			t.Errorf("%s: Strata and Prometheus 3's engine over Prometheus' data differ\nstrata: %.2000s\nengine: %.2000s", expr, got, want)
		}
	}

	// Prometheus sent histograms and nothing failed.
	metrics := promAPI.rawQuery("/metrics", nil)
	for name, wantPositive := range map[string]bool{
		"prometheus_remote_storage_samples_failed_total":    false,
		"prometheus_remote_storage_histograms_failed_total": false,
		"prometheus_remote_storage_samples_total":           true,
		"prometheus_remote_storage_histograms_total":        true,
	} {
		v, ok := metricValue(metrics, name)
		if !ok {
			t.Errorf("Prometheus does not expose %s", name)
		} else if (v > 0) != wantPositive {
			t.Errorf("Prometheus: %s = %v", name, v)
		}
	}
	if refused := s.rawQuery("/metrics", nil); strings.Contains(refused, `strata_ingest_rejected_requests_total{format="remote_write"`) {
		t.Errorf("Strata refused some of Prometheus' remote writes:\n%s", grepLines(refused, "strata_ingest_rejected_requests_total"))
	}
}

// Why Prometheus 3, whose PromQL Strata runs, answers some queries
// differently from Prometheus 2.42.
const (
	quantileChange = "Prometheus 3 interpolates within an exponential bucket exponentially, 2.42 linearly"
	rateChange     = "Prometheus 3 caps the extrapolation of rate at the counter's zero point after, not before, limiting it to half a scrape interval"
)

// engineOracle is Prometheus 3's PromQL engine, configured as Strata's,
// over a copy of the samples a real Prometheus holds.
type engineOracle struct {
	t      *testing.T
	db     *teststorage.TestStorage
	engine *promql.Engine
}

// newEngineOracle copies the samples of job "target" between from and to
// out of the Prometheus at base, through its remote read (streamed chunks,
// which carry histogram chunks as they are).
func newEngineOracle(t *testing.T, base string, from, to time.Time) *engineOracle {
	t.Helper()
	resp := postRemoteRead(t, base, &prompb.ReadRequest{
		Queries: []*prompb.Query{{StartTimestampMs: from.UnixMilli(), EndTimestampMs: to.UnixMilli(), Matchers: []*prompb.LabelMatcher{
			{Type: prompb.LabelMatcher_EQ, Name: "job", Value: "target"},
		}}},
		AcceptedResponseTypes: []prompb.ReadRequest_ResponseType{prompb.ReadRequest_STREAMED_XOR_CHUNKS},
	})
	defer resp.Body.Close()
	o := &engineOracle{t: t, db: teststorage.New(t)}
	app := o.db.Appender(context.Background())
	var floats, hists int
	readChunkedFrames(t, resp.Body, func(cr *prompb.ChunkedReadResponse) {
		for _, cs := range cr.ChunkedSeries {
			b := labels.NewScratchBuilder(len(cs.Labels))
			for _, l := range cs.Labels {
				b.Add(l.Name, l.Value)
			}
			b.Sort()
			lset := b.Labels()
			for _, c := range cs.Chunks {
				chk, err := chunkenc.FromData(chunkenc.Encoding(c.Type), c.Data)
				if err != nil {
					t.Fatalf("chunk of %s: %v", lset, err)
				}
				it := chk.Iterator(nil)
				for vt := it.Next(); vt != chunkenc.ValNone; vt = it.Next() {
					switch vt {
					case chunkenc.ValFloat:
						ts, v := it.At()
						_, err = app.Append(0, lset, ts, v)
						floats++
					case chunkenc.ValHistogram:
						ts, h := it.AtHistogram(nil)
						_, err = app.AppendHistogram(0, lset, ts, h, nil)
						hists++
					case chunkenc.ValFloatHistogram:
						ts, fh := it.AtFloatHistogram(nil)
						_, err = app.AppendHistogram(0, lset, ts, nil, fh)
						hists++
					}
					if err != nil {
						t.Fatalf("copy %s: %v", lset, err)
					}
				}
				if it.Err() != nil {
					t.Fatal(it.Err())
				}
			}
		}
	})
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	if floats == 0 || hists == 0 {
		t.Fatalf("remote read from Prometheus: %d float samples and %d histograms", floats, hists)
	}
	t.Logf("the oracle holds %d float samples and %d histograms read from Prometheus", floats, hists)
	o.engine = promql.NewEngine(promql.EngineOpts{
		MaxSamples: 50_000_000, Timeout: time.Minute, LookbackDelta: 5 * time.Minute,
		EnableAtModifier: true, EnableNegativeOffset: true,
		Parser: parser.NewParser(parser.Options{}),
	})
	t.Cleanup(func() { _ = o.engine.Close() })
	return o
}

// rangeQuery answers a range query whose result is floats in the data
// shape of the Prometheus API.
func (o *engineOracle) rangeQuery(expr string, start, end time.Time, step time.Duration) string {
	o.t.Helper()
	q, err := o.engine.NewRangeQuery(context.Background(), o.db, nil, expr, start, end, step)
	if err != nil {
		o.t.Fatalf("%s: %v", expr, err)
	}
	defer q.Close()
	res := q.Exec(context.Background())
	if res.Err != nil {
		o.t.Fatalf("%s: %v", expr, res.Err)
	}
	m, err := res.Matrix()
	if err != nil {
		o.t.Fatalf("%s: %v", expr, err)
	}
	type series struct {
		Metric map[string]string `json:"metric"`
		Values [][2]any          `json:"values"`
	}
	out := struct {
		ResultType string   `json:"resultType"`
		Result     []series `json:"result"`
	}{ResultType: "matrix", Result: []series{}}
	for _, sr := range m {
		if len(sr.Histograms) > 0 {
			o.t.Fatalf("%s: the oracle compares floats only", expr)
		}
		ser := series{Metric: sr.Metric.Map()}
		for _, p := range sr.Floats {
			ser.Values = append(ser.Values, [2]any{float64(p.T) / 1000, strconv.FormatFloat(p.F, 'f', -1, 64)})
		}
		out.Result = append(out.Result, ser)
	}
	b, err := json.Marshal(out)
	if err != nil {
		o.t.Fatal(err)
	}
	return string(b)
}

// waitNewer waits until api holds a sample of sel newer than t0.
func waitNewer(t *testing.T, api *testServer, sel string, t0 time.Time) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		var d struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		}
		api.get("/api/v1/query", url.Values{"query": {"timestamp(" + sel + ")"}}, &d)
		if len(d.Result) == 1 {
			if ts, err := strconv.ParseFloat(fmt.Sprint(d.Result[0].Value[1]), 64); err == nil && ts > float64(t0.UnixMilli())/1000 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no sample of %s newer than %s within 90s", api.url, sel, t0.Format(time.RFC3339Nano))
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// promSampleTimes returns the timestamps (ms) of sel's samples up to end.
func promSampleTimes(t *testing.T, api *testServer, sel string, end time.Time) []int64 {
	t.Helper()
	var d struct {
		Result []struct {
			Values     [][2]any `json:"values"`
			Histograms [][2]any `json:"histograms"`
		} `json:"result"`
	}
	api.get("/api/v1/query", url.Values{"query": {sel + "[10m]"}, "time": {strconv.FormatFloat(float64(end.UnixMilli())/1000, 'f', 3, 64)}}, &d)
	var out []int64
	for _, r := range d.Result {
		for _, v := range append(r.Values, r.Histograms...) {
			out = append(out, int64(math.Round(v[0].(float64)*1000)))
		}
	}
	if len(out) == 0 {
		t.Fatalf("%s: no samples of %s", api.url, sel)
	}
	slices.Sort(out)
	return out
}

func promFirstSample(t *testing.T, api *testServer, sel string, end time.Time) time.Time {
	t.Helper()
	return time.UnixMilli(promSampleTimes(t, api, sel, end)[0])
}

// freeMillis returns a millisecond offset within the second that no
// scraped sample's timestamp has (the scrapes of all series share theirs).
func freeMillis(t *testing.T, api *testServer, end time.Time) time.Duration {
	t.Helper()
	used := map[int64]bool{}
	for _, sel := range []string{"st_latency_seconds", `st_requests_total{code="200"}`} {
		for _, ts := range promSampleTimes(t, api, sel, end) {
			used[ts%1000] = true
		}
	}
	for ms := int64(500); ms < 1500; ms++ {
		if !used[ms%1000] && !used[(ms+999)%1000] && !used[(ms+1)%1000] {
			return time.Duration(ms%1000) * time.Millisecond
		}
	}
	t.Fatal("every millisecond of the second has a sample")
	return 0
}

// rawData answers the data of a successful Prometheus API answer, as JSON.
func (s *testServer) rawData(path string, params url.Values) string {
	s.t.Helper()
	var d json.RawMessage
	s.get(path, params, &d)
	return string(d)
}

// countPoints counts the values and histograms in a query answer's data.
func countPoints(data string) int {
	var d struct {
		Result []struct {
			Value      []any   `json:"value"`
			Histogram  []any   `json:"histogram"`
			Values     [][]any `json:"values"`
			Histograms [][]any `json:"histograms"`
		} `json:"result"`
	}
	if json.Unmarshal([]byte(data), &d) != nil {
		return 0
	}
	n := 0
	for _, r := range d.Result {
		n += len(r.Values) + len(r.Histograms)
		if r.Value != nil || r.Histogram != nil {
			n++
		}
	}
	return n
}

// sameJSONResult compares two query answers' data as JSON values, the
// result's series in any order.
func sameJSONResult(t *testing.T, a, b string) bool {
	t.Helper()
	norm := func(s string) any {
		var d struct {
			ResultType string            `json:"resultType"`
			Result     []json.RawMessage `json:"result"`
		}
		if err := json.Unmarshal([]byte(s), &d); err != nil {
			t.Fatalf("decode %.200s: %v", s, err)
		}
		var series []any
		var keys []string
		for _, r := range d.Result {
			var v any
			if err := json.Unmarshal(r, &v); err != nil {
				t.Fatal(err)
			}
			series = append(series, v)
			m, _ := json.Marshal(v.(map[string]any)["metric"])
			keys = append(keys, string(m))
		}
		idx := make([]int, len(series))
		for i := range idx {
			idx[i] = i
		}
		slices.SortFunc(idx, func(i, j int) int { return strings.Compare(keys[i], keys[j]) })
		sorted := make([]any, len(series))
		for i, k := range idx {
			sorted[i] = series[k]
		}
		return []any{d.ResultType, sorted}
	}
	return reflect.DeepEqual(norm(a), norm(b))
}

// metricValue sums the samples of a metric (all label sets) in a text
// exposition.
func metricValue(exposition, name string) (float64, bool) {
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `(\{[^}]*\})? (\S+)$`)
	var sum float64
	found := false
	for _, m := range re.FindAllStringSubmatch(exposition, -1) {
		v, err := strconv.ParseFloat(m[2], 64)
		if err != nil {
			continue
		}
		sum += v
		found = true
	}
	return sum, found
}
