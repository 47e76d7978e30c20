package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
)

// httpAnswer is one HTTP answer, its body decoded when it is JSON.
type httpAnswer struct {
	status int
	body   string
	json   any
}

func fetch(t *testing.T, base, path string, params url.Values) httpAnswer {
	t.Helper()
	u := base + path
	if len(params) > 0 {
		u += "?" + params.Encode()
	}
	resp, err := http.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	a := httpAnswer{status: resp.StatusCode, body: string(b)}
	_ = json.Unmarshal(b, &a.json)
	return a
}

// shape describes a JSON value's structure: objects by their keys, arrays
// by their first element, scalars by type.
func shape(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, e := range x {
			out[k] = shape(e)
		}
		return out
	case []any:
		if len(x) == 0 {
			return []any{}
		}
		return []any{shape(x[0])}
	case string:
		return "string"
	case float64:
		return "number"
	case bool:
		return "bool"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", v)
}

// coversShape reports where got lacks a part of want's shape: every key
// Prometheus answers must be in Strata's httpAnswer with the same shape (Strata
// may httpAnswer more, e.g. fields of Prometheus 3 that 2.42 lacks).
func coversShape(path string, want, got any) []string {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: %v, want an object", path, got)}
		}
		var diffs []string
		for k, wv := range w {
			gv, ok := g[k]
			if !ok {
				diffs = append(diffs, path+"."+k+": missing")
				continue
			}
			diffs = append(diffs, coversShape(path+"."+k, wv, gv)...)
		}
		return diffs
	case []any:
		g, ok := got.([]any)
		if !ok {
			return []string{fmt.Sprintf("%s: %v, want an array", path, got)}
		}
		if len(w) == 0 || len(g) == 0 {
			if len(w) != len(g) {
				return []string{fmt.Sprintf("%s: %d elements, want %d", path, len(g), len(w))}
			}
			return nil
		}
		return coversShape(path+"[0]", w[0], g[0])
	}
	if want != got {
		return []string{fmt.Sprintf("%s: %v, want %v", path, got, want)}
	}
	return nil
}

// TestPrometheusAPIParity writes the same samples to a real Prometheus
// (Debian's 2.42, with its remote-write receiver) and to Strata, calls
// every endpoint of Prometheus' HTTP API on both and compares: status
// codes and error types always; the whole data where both hold the same
// data (queries, series, labels, federation, query formatting); the JSON
// shape where the contents differ by nature (build info, flags).
func TestPrometheusAPIParity(t *testing.T) {
	promPort := freePort(t)
	prom := startPrometheus(t, promPort, "global: {}\n", "--web.enable-remote-write-receiver")
	s := startServer(t, "", "--retention.raw=1d")

	now := time.Now().Truncate(time.Second)
	var req prompb.WriteRequest
	for i, code := range []string{"200", "404", "500"} {
		for _, job := range []string{"api", "web"} {
			ts := prompb.TimeSeries{Labels: []prompb.Label{{Name: "__name__", Value: "parity_requests_total"}, {Name: "code", Value: code}, {Name: "job", Value: job}}}
			for k := 0; k < 20; k++ {
				ts.Samples = append(ts.Samples, prompb.Sample{Timestamp: now.Add(time.Duration(k-19) * 15 * time.Second).UnixMilli(), Value: float64((i + 1) * k * 10)})
			}
			req.Timeseries = append(req.Timeseries, ts)
		}
	}
	req.Timeseries = append(req.Timeseries, prompb.TimeSeries{
		Labels:  []prompb.Label{{Name: "__name__", Value: "parity_temperature"}, {Name: "instance", Value: "lab:9100"}, {Name: "room", Value: "a b\"c"}},
		Samples: []prompb.Sample{{Timestamp: now.Add(-time.Minute).UnixMilli(), Value: 21.5}, {Timestamp: now.UnixMilli(), Value: -3.25e-7}},
	})
	raw, err := req.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	for _, base := range []string{prom, s.url} {
		r, err := http.NewRequest(http.MethodPost, base+"/api/v1/write", bytes.NewReader(snappy.Encode(nil, raw)))
		if err != nil {
			t.Fatal(err)
		}
		r.Header.Set("Content-Type", "application/x-protobuf")
		r.Header.Set("Content-Encoding", "snappy")
		r.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			t.Fatalf("write to %s: %s", base, resp.Status)
		}
	}

	// Queries run 7 s past the newest sample: no sample sits on a range's
	// left edge, where Prometheus 3 (whose semantics Strata has) excludes
	// what 2.42 includes.
	at := strconv.FormatInt(now.Unix()+7, 10)
	start := strconv.FormatInt(now.Add(-5*time.Minute).Unix()+7, 10)
	v := func(kv ...string) url.Values {
		out := url.Values{}
		for i := 0; i < len(kv); i += 2 {
			out.Add(kv[i], kv[i+1])
		}
		return out
	}
	const (
		same            = iota // the whole answer equals Prometheus'
		sameShape              // status and JSON shape
		sameError              // status and errorType
		sameBody               // the raw body (text formats)
		stringMap              // data is an object of strings (flags differ by nature)
		sameStats              // the result equal, stats in Prometheus' shape with the same sample count
		sameCardinality        // status/tsdb: the same rankings (as sets: ties are unordered) and head counts
	)
	cases := []struct {
		path   string
		params url.Values
		mode   int
	}{
		{"/api/v1/query", v("query", "parity_requests_total", "time", at), same},
		{"/api/v1/query", v("query", `sum by (code) (rate(parity_requests_total[2m]))`, "time", at), same},
		{"/api/v1/query", v("query", `parity_temperature`, "time", at), same},
		{"/api/v1/query", v("query", `scalar(vector(1.5))`, "time", at), same},
		{"/api/v1/query", v("query", `"a string"`, "time", at), same},
		{"/api/v1/query", v("query", `parity_requests_total[1m]`, "time", at), same},
		{"/api/v1/query_range", v("query", `parity_requests_total{code="500"}`, "start", start, "end", at, "step", "30"), same},
		{"/api/v1/query_range", v("query", `max by (job) (parity_requests_total) > 100`, "start", start, "end", at, "step", "15"), same},
		{"/api/v1/query", v("query", "parity_requests_total", "time", at, "stats", "true"), sameStats},
		{"/api/v1/query_range", v("query", "sum(rate(parity_requests_total[1m]))", "start", start, "end", at, "step", "30", "stats", "all"), sameStats},
		{"/api/v1/series", v("match[]", "parity_requests_total", "match[]", `{room=~".+"}`), same},
		{"/api/v1/labels", nil, same},
		{"/api/v1/labels", v("match[]", "parity_temperature"), same},
		{"/api/v1/label/code/values", nil, same},
		// One match[] set is answered as storage gives it; two are a union.
		{"/api/v1/label/code/values", v("match[]", `parity_requests_total{code!="200"}`), same},
		{"/api/v1/label/__name__/values", v("match[]", `parity_temperature`, "match[]", `parity_requests_total{code="500"}`), same},
		{"/api/v1/labels", v("match[]", "parity_temperature", "match[]", "parity_requests_total"), same},
		{"/api/v1/label/__name__/values", nil, same},
		{"/api/v1/label/nope/values", nil, same},
		{"/api/v1/format_query", v("query", `sum(rate(parity_requests_total{job="api",code=~"5.."}[5m]))by(code)/ignoring(code)group_left sum(rate(parity_requests_total[5m]))`), same},
		{"/api/v1/format_query", v("query", `foo offset 5m+bar @ 100`), same},
		{"/api/v1/targets", nil, sameShape},
		{"/api/v1/targets/metadata", v("match_target", `{job="x"}`), sameShape},
		{"/api/v1/alertmanagers", nil, sameShape},
		{"/api/v1/alerts", nil, sameShape},
		{"/api/v1/rules", nil, sameShape},
		{"/api/v1/metadata", nil, sameShape},
		{"/api/v1/status/buildinfo", nil, sameShape},
		{"/api/v1/status/config", nil, sameShape},
		{"/api/v1/status/flags", nil, stringMap},
		{"/api/v1/status/tsdb", nil, sameCardinality},

		{"/api/v1/query_exemplars", v("query", "parity_requests_total", "start", start, "end", at), sameShape},
		{"/api/v1/query_exemplars", v("query", "sum("), sameError},
		{"/api/v1/metadata", v("limit", "x"), sameError},
		{"/-/healthy", nil, sameError},
		{"/-/ready", nil, sameError},
		{"/federate", v("match[]", "parity_requests_total", "match[]", "parity_temperature"), sameBody},

		{"/api/v1/query", nil, sameError},
		{"/api/v1/query", v("query", "sum("), sameError},
		{"/api/v1/query", v("query", "up", "time", "yesterday"), sameError},
		{"/api/v1/query", v("query", "up", "timeout", "soon"), sameError},
		{"/api/v1/query_range", v("query", "up", "start", "2", "end", "1", "step", "1"), sameError},
		{"/api/v1/query_range", v("query", "up", "start", "1", "end", "2", "step", "0"), sameError},
		{"/api/v1/query_range", v("query", "up", "start", "1", "end", "2"), sameError},
		{"/api/v1/query_range", v("query", "up", "start", "0", "end", "100000", "step", "1"), sameError},
		{"/api/v1/series", nil, sameError},
		{"/api/v1/series", v("match[]", "{"), sameError},
		{"/api/v1/labels", v("start", "abc"), sameError},
		{"/api/v1/label/code/values", v("end", "abc"), sameError},
		{"/api/v1/format_query", v("query", "sum("), sameError},
		{"/federate", v("match[]", "{"), sameError},
	}
	for _, c := range cases {
		name := c.path + "?" + c.params.Encode()
		want, got := fetch(t, prom, c.path, c.params), fetch(t, s.url, c.path, c.params)
		if got.status != want.status {
			t.Errorf("%s: status %d, Prometheus %d\nStrata: %s\nPrometheus: %s", name, got.status, want.status, got.body, want.body)
			continue
		}
		switch c.mode {
		case same:
			w, g := want.json.(map[string]any), got.json.(map[string]any)
			if w == nil || g == nil {
				t.Errorf("%s: not JSON objects:\nStrata: %s\nPrometheus: %s", name, got.body, want.body)
				continue
			}
			sortData(w["data"])
			sortData(g["data"])
			wb, _ := json.Marshal(w["data"])
			gb, _ := json.Marshal(g["data"])
			if !bytes.Equal(wb, gb) {
				t.Errorf("%s: data differs\nStrata:     %s\nPrometheus: %s", name, gb, wb)
			}
		case sameShape:
			for _, d := range coversShape("", shape(want.json), shape(got.json)) {
				t.Errorf("%s: %s\nStrata: %.300s\nPrometheus: %.300s", name, d, got.body, want.body)
			}
		case sameStats:
			for _, d := range coversShape("", shape(want.json), shape(got.json)) {
				t.Errorf("%s: %s\nStrata: %.600s\nPrometheus: %.600s", name, d, got.body, want.body)
			}
			count := func(a httpAnswer) any {
				data, _ := a.json.(map[string]any)["data"].(map[string]any)
				st, _ := data["stats"].(map[string]any)
				samples, _ := st["samples"].(map[string]any)
				return samples["totalQueryableSamples"]
			}
			if w, g := count(want), count(got); w == nil || w != g {
				t.Errorf("%s: totalQueryableSamples %v, Prometheus %v", name, g, w)
			}
		case sameCardinality:
			data := func(a httpAnswer) map[string]any {
				d, _ := a.json.(map[string]any)["data"].(map[string]any)
				return d
			}
			w, g := data(want), data(got)
			for _, k := range []string{"seriesCountByMetricName", "labelValueCountByLabelName", "memoryInBytesByLabelName", "seriesCountByLabelValuePair"} {
				ws, gs := rankingSet(w[k], true), rankingSet(g[k], true)
				if k == "memoryInBytesByLabelName" {
					// Prometheus 3 counts labels.SizeOfLabels (what Strata
					// reports); 2.42 counted value lengths alone.
					ws, gs = rankingSet(w[k], false), rankingSet(g[k], false)
				}
				if len(ws) == 0 || !slices.Equal(ws, gs) {
					t.Errorf("%s: %s %v, Prometheus %v", name, k, gs, ws)
				}
			}
			wh, _ := w["headStats"].(map[string]any)
			gh, _ := g["headStats"].(map[string]any)
			// chunkCount is Prometheus' alone: Strata's head does not count
			// its chunks (it reports numSamples instead).
			for _, k := range []string{"numSeries", "numLabelPairs", "minTime", "maxTime"} {
				if wh[k] != gh[k] {
					t.Errorf("%s: headStats.%s %v, Prometheus %v", name, k, gh[k], wh[k])
				}
			}
		case stringMap:
			g, _ := got.json.(map[string]any)
			data, _ := g["data"].(map[string]any)
			if len(data) == 0 {
				t.Errorf("%s: no data: %s", name, got.body)
			}
			for k, v := range data {
				if _, ok := v.(string); !ok {
					t.Errorf("%s: %s is %v, want a string", name, k, v)
				}
			}
		case sameError:
			if want.status >= 400 && want.json != nil {
				w, _ := want.json.(map[string]any)
				g, _ := got.json.(map[string]any)
				if w["errorType"] != g["errorType"] || g["status"] != "error" || g["error"] == "" {
					t.Errorf("%s: Strata %s, Prometheus %s", name, got.body, want.body)
				}
			}
		case sameBody:
			if got.body != want.body {
				t.Errorf("%s: body differs\nStrata:\n%s\nPrometheus:\n%s", name, got.body, want.body)
			}
		}
	}
	if t.Failed() {
		return
	}

	// A federated answer is not empty (both being equal could mean nothing).
	fed := fetch(t, s.url, "/federate", v("match[]", "parity_temperature"))
	if want := `parity_temperature{instance="lab:9100",room="a b\"c"} -3.25e-07 ` + strconv.FormatInt(now.UnixMilli(), 10); !strings.Contains(fed.body, want) {
		t.Errorf("federation lacks %q:\n%s", want, fed.body)
	}
}

// rankingSet renders a status/tsdb ranking as sorted "name=value" strings.
func rankingSet(v any, values bool) []string {
	arr, _ := v.([]any)
	var out []string
	for _, e := range arr {
		m, _ := e.(map[string]any)
		if values {
			out = append(out, fmt.Sprintf("%v=%v", m["name"], m["value"]))
		} else {
			out = append(out, fmt.Sprint(m["name"]))
		}
	}
	slices.Sort(out)
	return out
}

// sortData orders the arrays whose order Prometheus leaves unspecified
// (the series of a vector) so answers compare as sets.
func sortData(v any) {
	m, ok := v.(map[string]any)
	if !ok {
		return
	}
	if res, ok := m["result"].([]any); ok {
		sort.SliceStable(res, func(i, j int) bool {
			a, _ := json.Marshal(res[i])
			b, _ := json.Marshal(res[j])
			return string(a) < string(b)
		})
	}
}

// TestGzipAnswers: an answer of some size is gzipped for a client that
// accepts it, and identical once inflated; small answers and remote read
// are left alone.
func TestGzipAnswers(t *testing.T) {
	s := startServer(t, "")
	var lines []string
	for i := 0; i < 300; i++ {
		lines = append(lines, fmt.Sprintf(`gz_metric{i="%d"} %d 1700000000000`, i, i))
	}
	if code, body := s.post("/api/v1/import/prometheus", "text/plain", []byte(strings.Join(lines, "\n")+"\n")); code != http.StatusNoContent {
		t.Fatalf("import: %d %s", code, body)
	}
	get := func(path string, gz bool) (*http.Response, []byte) {
		req, err := http.NewRequest(http.MethodGet, s.url+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if gz {
			req.Header.Set("Accept-Encoding", "gzip")
		}
		resp, err := http.DefaultTransport.RoundTrip(req) // no transparent inflation
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, b
	}
	path := "/api/v1/query?time=1700000000&query=gz_metric"
	plainResp, plain := get(path, false)
	gzResp, packed := get(path, true)
	if plainResp.Header.Get("Content-Encoding") != "" || gzResp.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("Content-Encoding %q without and %q with Accept-Encoding: gzip", plainResp.Header.Get("Content-Encoding"), gzResp.Header.Get("Content-Encoding"))
	}
	zr, err := gzip.NewReader(bytes.NewReader(packed))
	if err != nil {
		t.Fatal(err)
	}
	inflated, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(inflated, plain) || len(plain) < 10_000 || len(packed) > len(plain)/3 {
		t.Errorf("inflated answer equal: %v; %d bytes plain, %d gzipped", bytes.Equal(inflated, plain), len(plain), len(packed))
	}
	if small, _ := get("/api/v1/labels", true); small.Header.Get("Content-Encoding") != "" {
		t.Errorf("a small answer was gzipped")
	}
	// Range answers are gzipped by the handler, and a repeated one is
	// sent from its stored bytes (from the third and fourth on, each
	// encoding stored apart): the same answer, gzipped or not.
	rangePath := "/api/v1/query_range?start=1699994000&end=1700000000&step=60&query=gz_metric"
	var first []byte
	for i := range 6 {
		gz := i%2 == 1
		resp, b := get(rangePath, gz)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Vary") != "Accept-Encoding" {
			t.Fatalf("range answer %d: %d, Vary %q", i, resp.StatusCode, resp.Header.Get("Vary"))
		}
		if gz != (resp.Header.Get("Content-Encoding") == "gzip") {
			t.Fatalf("range answer %d: Content-Encoding %q, gzip asked for: %t", i, resp.Header.Get("Content-Encoding"), gz)
		}
		if gz {
			zr, err := gzip.NewReader(bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			if b, err = io.ReadAll(zr); err != nil {
				t.Fatal(err)
			}
		}
		if i == 0 {
			first = b
			if len(b) < 10_000 || resp.Header.Get("X-Strata-Cache") != "miss" {
				t.Fatalf("first range answer: %d bytes, cache %q", len(b), resp.Header.Get("X-Strata-Cache"))
			}
		} else if !bytes.Equal(b, first) || resp.Header.Get("X-Strata-Cache") != "hit" {
			t.Fatalf("range answer %d (cache %q) differs from the first", i, resp.Header.Get("X-Strata-Cache"))
		}
	}
}

// TestExportImportRoundTrip: /api/v1/export streams what /api/v1/import
// reads back, sample for sample, NaN and infinities included.
func TestExportImportRoundTrip(t *testing.T) {
	src := startServer(t, "")
	body := `{"metric":{"__name__":"ex_a","host":"h1"},"values":[1,2.5,"NaN"],"timestamps":[1700000000000,1700000010000,1700000020000]}
{"metric":{"__name__":"ex_a","host":"h2"},"values":["+Inf","-Inf",-0.125],"timestamps":[1700000000000,1700000010000,1700000020000]}
{"metric":{"__name__":"ex_b"},"values":[42],"timestamps":[1700000030000]}
`
	if code, out := src.post("/api/v1/import", "application/json", []byte(body)); code != http.StatusNoContent {
		t.Fatalf("import: %d %s", code, out)
	}
	exp := fetch(t, src.url, "/api/v1/export", url.Values{"match[]": {`{__name__=~"ex_.*"}`}})
	if exp.status != http.StatusOK {
		t.Fatalf("export: %d %s", exp.status, exp.body)
	}
	got := strings.Split(strings.TrimSpace(exp.body), "\n")
	want := strings.Split(strings.TrimSpace(body), "\n")
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("export:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// A time range cuts samples; the export imports into a second server.
	part := fetch(t, src.url, "/api/v1/export", url.Values{"match[]": {"ex_a"}, "start": {"1700000005"}, "end": {"1700000015"}})
	if n := strings.Count(part.body, "\n"); n != 2 || !strings.Contains(part.body, `"timestamps":[1700000010000]`) {
		t.Errorf("export of [5s, 15s]: %s", part.body)
	}
	dst := startServer(t, "")
	if code, out := dst.post("/api/v1/import", "application/json", []byte(exp.body)); code != http.StatusNoContent {
		t.Fatalf("import the export: %d %s", code, out)
	}
	again := fetch(t, dst.url, "/api/v1/export", url.Values{"match[]": {`{__name__=~"ex_.*"}`}})
	if again.body != exp.body {
		t.Errorf("export after re-import:\n%s\nwant:\n%s", again.body, exp.body)
	}
	if e := fetch(t, src.url, "/api/v1/export", nil); e.status != http.StatusBadRequest {
		t.Errorf("export without match[]: %d %s", e.status, e.body)
	}
}

// TestParseQuery: /api/v1/parse_query answers Prometheus' syntax tree
// (Prometheus 2.42 predates it, so it is checked against the tree's known
// shape here).
func TestParseQuery(t *testing.T) {
	s := startServer(t, "")
	// Prometheus 3's /api/v1/notifications (2.42 has none): no notifications.
	if n := fetch(t, s.url, "/api/v1/notifications", nil); n.status != http.StatusOK || n.body != `{"status":"success","data":[]}` {
		t.Errorf("notifications: %d %s", n.status, n.body)
	}
	a := fetch(t, s.url, "/api/v1/parse_query", url.Values{"query": {`sum by (job) (rate(x{a="b"}[5m]))`}})
	want := `{"status":"success","data":{"expr":{"args":[{"anchored":false,"matchers":[{"name":"a","type":"=","value":"b"},{"name":"__name__","type":"=","value":"x"}],"name":"x","offset":0,"offsetExpr":null,"range":300000,"rangeExpr":null,"smoothed":false,"startOrEnd":null,"timestamp":null,"type":"matrixSelector"}],"func":{"argTypes":["matrix"],"name":"rate","returnType":"vector","variadic":0},"type":"call"},"grouping":["job"],"op":"sum","param":null,"type":"aggregation","without":false}}`
	if a.status != http.StatusOK || a.body != want {
		t.Errorf("parse_query: %d\n%s\nwant\n%s", a.status, a.body, want)
	}
}

// TestTSDBStatusLimit: status/tsdb's rankings hold limit entries (default
// 10, at most 10000, as Prometheus 3 checks).
func TestTSDBStatusLimit(t *testing.T) {
	s := startServer(t, "")
	if code, body := s.post("/api/v1/import/prometheus", "text/plain", []byte("l_a{x=\"1\"} 1 1700000000000\nl_a{x=\"2\"} 1 1700000000000\nl_b 1 1700000000000\n")); code != http.StatusNoContent {
		t.Fatalf("import: %d %s", code, body)
	}
	for _, bad := range []string{"0", "-1", "x", "10001"} {
		if a := fetch(t, s.url, "/api/v1/status/tsdb", url.Values{"limit": {bad}}); a.status != http.StatusBadRequest || !strings.Contains(a.body, `"errorType":"bad_data"`) {
			t.Errorf("limit=%s: %d %s", bad, a.status, a.body)
		}
	}
	var st struct {
		HeadStats struct {
			NumSeries     int `json:"numSeries"`
			NumLabelPairs int `json:"numLabelPairs"`
		} `json:"headStats"`
		ByName []struct {
			Name  string `json:"name"`
			Value int    `json:"value"`
		} `json:"seriesCountByMetricName"`
		Pairs []any `json:"seriesCountByLabelValuePair"`
	}
	s.get("/api/v1/status/tsdb", url.Values{"limit": {"1"}}, &st)
	if st.HeadStats.NumSeries != 3 || st.HeadStats.NumLabelPairs != 4 || len(st.ByName) != 1 || st.ByName[0].Name != "l_a" || st.ByName[0].Value != 2 || len(st.Pairs) != 1 {
		t.Errorf("status/tsdb?limit=1: %+v", st)
	}
}
