package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
)

// testServer is a real Strata server on 127.0.0.1 with a temporary data dir.
type testServer struct {
	t       testing.TB
	url     string
	dataDir string
	cancel  context.CancelFunc
	done    chan error
}

// startServer runs the server as main would, with args added to a random
// port and a temporary data dir, and stops it when the test ends.
func startServer(t testing.TB, dataDir string, args ...string) *testServer {
	t.Helper()
	if dataDir == "" {
		dataDir = t.TempDir()
	}
	all := append([]string{"--listen-addr", "127.0.0.1:0", "--data-dir", dataDir, "--log.level", "warn", "--enable-admin-api",
		// The tests write fixed timestamps from 2023: keep them.
		"--retention.raw=0", "--retention.5m=0", "--retention.1h=0"}, args...)
	return launch(t, dataDir, func(string) (string, bool) { return "", false }, io.Discard, all)
}

// launch runs the server in this process with the arguments all and the
// environment environ, logging to stderr, waits until it listens and stops
// it when the test ends.
func launch(t testing.TB, dataDir string, environ func(string) (string, bool), stderr io.Writer, all []string) *testServer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &testServer{t: t, dataDir: dataDir, cancel: cancel, done: make(chan error, 1)}
	addrc := make(chan string, 1)
	go func() {
		s.done <- run(ctx, all, io.Discard, stderr, environ, func(addr string) { addrc <- addr })
	}()
	select {
	case addr := <-addrc:
		s.url = "http://" + addr
	case err := <-s.done:
		t.Fatalf("server did not start: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("server did not start within 30s")
	}
	t.Cleanup(s.stop)
	return s
}

// stop shuts the server down and waits for it; calling it twice is fine.
func (s *testServer) stop() {
	if s.cancel == nil {
		return
	}
	s.cancel()
	s.cancel = nil
	select {
	case err := <-s.done:
		if err != nil {
			s.t.Errorf("server exited with %v", err)
		}
	case <-time.After(30 * time.Second):
		s.t.Error("server did not stop within 30s")
	}
}

func (s *testServer) post(path, contentType string, body []byte) (int, string) {
	s.t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.url+path, bytes.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	return s.do(req)
}

func (s *testServer) do(req *http.Request) (int, string) {
	s.t.Helper()
	code, _, body := s.roundTrip(req)
	return code, body
}

// roundTrip sends req and returns the status, headers and body.
func (s *testServer) roundTrip(req *http.Request) (int, http.Header, string) {
	s.t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

// get sends a GET and decodes a successful Prometheus API response's data.
func (s *testServer) get(path string, params url.Values, data any) {
	s.t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.url+path+"?"+params.Encode(), nil)
	if err != nil {
		s.t.Fatal(err)
	}
	code, body := s.do(req)
	if code != http.StatusOK {
		s.t.Fatalf("GET %s?%s: %d %s", path, params.Encode(), code, body)
	}
	var env struct {
		Status string          `json:"status"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal([]byte(body), &env); err != nil || env.Status != "success" {
		s.t.Fatalf("GET %s: bad envelope %q: %v", path, body, err)
	}
	if err := json.Unmarshal(env.Data, data); err != nil {
		s.t.Fatalf("GET %s: decode data %s: %v", path, env.Data, err)
	}
}

type matrixSeries struct {
	Metric map[string]string `json:"metric"`
	Values [][2]any          `json:"values"`
}

type queryData struct {
	ResultType string         `json:"resultType"`
	Result     []matrixSeries `json:"result"`
}

// point is one sample as the API returns it, parsed back.
type point struct {
	T int64 // ms
	V float64
}

func (m matrixSeries) points(t testing.TB) []point {
	t.Helper()
	out := make([]point, 0, len(m.Values))
	for _, v := range m.Values {
		ts, ok := v[0].(float64)
		s, ok2 := v[1].(string)
		if !ok || !ok2 {
			t.Fatalf("malformed point %v", v)
		}
		f, err := parseAPIFloat(s)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, point{T: int64(math.Round(ts * 1000)), V: f})
	}
	return out
}

func parseAPIFloat(s string) (float64, error) {
	var f float64
	_, err := fmt.Sscan(s, &f)
	if s == "NaN" {
		return math.NaN(), nil
	}
	return f, err
}

func (s *testServer) queryRange(q string, start, end time.Time, step time.Duration) []matrixSeries {
	s.t.Helper()
	var d queryData
	s.get("/api/v1/query_range", url.Values{
		"query": {q}, "start": {fmt.Sprint(start.Unix())}, "end": {fmt.Sprint(end.Unix())}, "step": {step.String()},
	}, &d)
	if d.ResultType != "matrix" {
		s.t.Fatalf("%s: resultType %q", q, d.ResultType)
	}
	slices.SortFunc(d.Result, func(a, b matrixSeries) int { return strings.Compare(fmt.Sprint(a.Metric), fmt.Sprint(b.Metric)) })
	return d.Result
}

// The e2e data set: three hosts of a gauge and a counter, 60 samples each at
// 10 s from t0, pushed in two requests per format: the second one carries
// older timestamps (out of order) and rewrites some earlier samples
// (duplicate timestamps, last write wins).
var (
	e2eHosts = []string{"h1", "h2", "h3"}
	e2eT0    = time.Unix(1_700_000_000, 0).UTC()
)

const e2eN = 60

type e2eSample struct {
	host   string
	metric string // "cpu" or "requests_total"
	t      time.Time
	v      float64
}

// e2eRequests returns the two requests' samples and the value that must be
// read back for each host and step.
func e2eRequests() (first, second []e2eSample, want map[string][]float64) {
	want = map[string][]float64{}
	for hi, h := range e2eHosts {
		gauge := make([]float64, e2eN)
		for i := range e2eN {
			ts := e2eT0.Add(time.Duration(i) * 10 * time.Second)
			v := float64(hi*100+i) + 0.25
			gauge[i] = v
			c := e2eSample{host: h, metric: "requests_total", t: ts, v: float64(i * 10)}
			g := e2eSample{host: h, metric: "cpu", t: ts, v: v}
			if i >= 20 && i < 40 {
				// Arrives after later samples: out of order.
				second = append(second, c, g)
			} else {
				first = append(first, c, g)
			}
			if i%7 == 0 {
				// First written wrong, then rewritten: the rewrite wins.
				first = append(first, e2eSample{host: h, metric: "cpu", t: ts, v: -1})
				second = append(second, g)
			}
		}
		want["cpu/"+h] = gauge
	}
	return first, second, want
}

func remoteWriteBody(t testing.TB, format string, ss []e2eSample) []byte {
	if t == nil {
		t = panicTB{}
	}
	req := &prompb.WriteRequest{}
	for _, s := range ss {
		req.Timeseries = append(req.Timeseries, prompb.TimeSeries{
			Labels: []prompb.Label{
				{Name: "__name__", Value: "e2e_" + s.metric},
				{Name: "fmt", Value: format},
				{Name: "host", Value: s.host},
			},
			Samples: []prompb.Sample{{Timestamp: s.t.UnixMilli(), Value: s.v}},
		})
	}
	b, err := req.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return snappy.Encode(nil, b)
}

func lineProtocolBody(format string, ss []e2eSample) []byte {
	var b bytes.Buffer
	for _, s := range ss {
		fmt.Fprintf(&b, "e2e,fmt=%s,host=%s %s=%v %d\n", format, s.host, s.metric, s.v, s.t.UnixNano())
	}
	return b.Bytes()
}

func jsonLinesBody(format string, ss []e2eSample) []byte {
	var b bytes.Buffer
	for _, s := range ss {
		fmt.Fprintf(&b, `{"metric":{"__name__":"e2e_%s","fmt":%q,"host":%q},"values":[%v],"timestamps":[%d]}`+"\n",
			s.metric, format, s.host, s.v, s.t.UnixMilli())
	}
	return b.Bytes()
}

func promTextBody(format string, ss []e2eSample) []byte {
	var b bytes.Buffer
	for _, s := range ss {
		fmt.Fprintf(&b, "e2e_%s{fmt=%q,host=%q} %v %d\n", s.metric, format, s.host, s.v, s.t.UnixMilli())
	}
	return b.Bytes()
}

func TestEndToEndAllFormats(t *testing.T) {
	s := startServer(t, "")
	first, second, want := e2eRequests()
	push := func(format string, ss []e2eSample) {
		t.Helper()
		var code int
		var body string
		switch format {
		case "rw":
			code, body = s.post("/api/v1/write", "application/x-protobuf", remoteWriteBody(t, format, ss))
		case "influx":
			code, body = s.post("/write?precision=ns", "text/plain", lineProtocolBody(format, ss))
		case "json":
			code, body = s.post("/api/v1/import", "application/json", jsonLinesBody(format, ss))
		case "text":
			code, body = s.post("/api/v1/import/prometheus", "text/plain; version=0.0.4", promTextBody(format, ss))
		}
		if code != http.StatusNoContent {
			t.Fatalf("push %s: %d %s", format, code, body)
		}
	}
	formats := []string{"rw", "influx", "json", "text"}
	for _, f := range formats {
		push(f, first)
		push(f, second)
	}
	start, end := e2eT0, e2eT0.Add((e2eN-1)*10*time.Second)

	t.Run("query_range values", func(t *testing.T) {
		for _, f := range formats {
			res := s.queryRange(fmt.Sprintf(`e2e_cpu{fmt=%q}`, f), start, end, 10*time.Second)
			if len(res) != len(e2eHosts) {
				t.Fatalf("%s: got %d series, want %d", f, len(res), len(e2eHosts))
			}
			for i, ser := range res {
				h := e2eHosts[i]
				wantMetric := map[string]string{"__name__": "e2e_cpu", "fmt": f, "host": h}
				if fmt.Sprint(ser.Metric) != fmt.Sprint(wantMetric) {
					t.Fatalf("%s: metric %v, want %v", f, ser.Metric, wantMetric)
				}
				pts := ser.points(t)
				if len(pts) != e2eN {
					t.Fatalf("%s/%s: %d points, want %d", f, h, len(pts), e2eN)
				}
				for j, p := range pts {
					wt := start.Add(time.Duration(j) * 10 * time.Second).UnixMilli()
					if p.T != wt || p.V != want["cpu/"+h][j] {
						t.Fatalf("%s/%s point %d: got %v, want {%d %v}", f, h, j, p, wt, want["cpu/"+h][j])
					}
				}
			}
		}
	})

	t.Run("regex matcher", func(t *testing.T) {
		res := s.queryRange(`e2e_cpu{host=~"h[12]",fmt=~"rw|json"}`, start, end, time.Minute)
		var got []string
		for _, r := range res {
			got = append(got, r.Metric["fmt"]+"/"+r.Metric["host"])
		}
		if w := []string{"json/h1", "json/h2", "rw/h1", "rw/h2"}; !slices.Equal(got, w) {
			t.Fatalf("got %v, want %v", got, w)
		}
	})

	t.Run("rate", func(t *testing.T) {
		// The counter grows by 10 every 10 s: a rate of exactly 1/s.
		for _, f := range formats {
			res := s.queryRange(fmt.Sprintf(`rate(e2e_requests_total{fmt=%q}[1m])`, f), start.Add(time.Minute), end, 30*time.Second)
			if len(res) != len(e2eHosts) {
				t.Fatalf("%s: %d series", f, len(res))
			}
			for _, r := range res {
				if _, ok := r.Metric["__name__"]; ok {
					t.Fatalf("rate kept the metric name: %v", r.Metric)
				}
				for _, p := range r.points(t) {
					if p.V != 1 {
						t.Fatalf("%s %v: rate %v at %d, want 1", f, r.Metric, p.V, p.T)
					}
				}
			}
		}
	})

	t.Run("sum by", func(t *testing.T) {
		res := s.queryRange(`sum by (host) (e2e_cpu)`, start, end, 10*time.Second)
		if len(res) != len(e2eHosts) {
			t.Fatalf("%d series", len(res))
		}
		for i, r := range res {
			h := e2eHosts[i]
			if fmt.Sprint(r.Metric) != fmt.Sprint(map[string]string{"host": h}) {
				t.Fatalf("metric %v", r.Metric)
			}
			for j, p := range r.points(t) {
				if w := 4 * want["cpu/"+h][j]; p.V != w {
					t.Fatalf("%s step %d: sum %v, want %v", h, j, p.V, w)
				}
			}
		}
	})

	t.Run("avg_over_time", func(t *testing.T) {
		for _, f := range formats {
			res := s.queryRange(fmt.Sprintf(`avg_over_time(e2e_cpu{fmt=%q}[1m])`, f), start, end, 10*time.Second)
			for i, r := range res {
				h := e2eHosts[i]
				for j, p := range r.points(t) {
					// (t-1m, t] holds up to six samples.
					sum, n := 0.0, 0
					for k := max(0, j-5); k <= j; k++ {
						sum += want["cpu/"+h][k]
						n++
					}
					if w := sum / float64(n); math.Abs(p.V-w) > 1e-9*math.Abs(w) {
						t.Fatalf("%s/%s step %d: avg %v, want %v", f, h, j, p.V, w)
					}
				}
			}
		}
	})

	t.Run("series", func(t *testing.T) {
		var got []map[string]string
		s.get("/api/v1/series", url.Values{"match[]": {`e2e_requests_total{fmt="influx"}`, `e2e_cpu{host="h3",fmt="text"}`}}, &got)
		var keys []string
		for _, m := range got {
			keys = append(keys, fmt.Sprint(m))
		}
		want := []string{
			fmt.Sprint(map[string]string{"__name__": "e2e_cpu", "fmt": "text", "host": "h3"}),
			fmt.Sprint(map[string]string{"__name__": "e2e_requests_total", "fmt": "influx", "host": "h1"}),
			fmt.Sprint(map[string]string{"__name__": "e2e_requests_total", "fmt": "influx", "host": "h2"}),
			fmt.Sprint(map[string]string{"__name__": "e2e_requests_total", "fmt": "influx", "host": "h3"}),
		}
		if !slices.Equal(keys, want) {
			t.Fatalf("series: got %v\nwant %v", keys, want)
		}
	})

	t.Run("labels", func(t *testing.T) {
		var names []string
		s.get("/api/v1/labels", nil, &names)
		if w := []string{"__name__", "fmt", "host"}; !slices.Equal(names, w) {
			t.Fatalf("labels: got %v, want %v", names, w)
		}
		var vals []string
		s.get("/api/v1/label/fmt/values", nil, &vals)
		if !slices.Equal(vals, []string{"influx", "json", "rw", "text"}) {
			t.Fatalf("fmt values: %v", vals)
		}
		s.get("/api/v1/label/__name__/values", url.Values{"match[]": {`{host="h1"}`}}, &vals)
		if !slices.Equal(vals, []string{"e2e_cpu", "e2e_requests_total"}) {
			t.Fatalf("__name__ values: %v", vals)
		}
	})
}

// panicTB lets helpers that take a testing.TB run off the test goroutine.
type panicTB struct{ testing.TB }

func (panicTB) Fatal(args ...any) { panic(fmt.Sprint(args...)) }
