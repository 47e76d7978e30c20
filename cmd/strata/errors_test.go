package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
)

type errorBody struct {
	Status    string `json:"status"`
	ErrorType string `json:"errorType"`
	Error     string `json:"error"`
}

func checkError(t *testing.T, code int, body string, wantCode int, wantType, wantMsg string) {
	t.Helper()
	if code != wantCode {
		t.Fatalf("status %d, want %d; body %s", code, wantCode, body)
	}
	var eb errorBody
	if err := json.Unmarshal([]byte(body), &eb); err != nil {
		t.Fatalf("error body is not JSON: %q", body)
	}
	if eb.Status != "error" || eb.ErrorType != wantType || !strings.Contains(eb.Error, wantMsg) {
		t.Fatalf("got %+v, want errorType %q and a message containing %q", eb, wantType, wantMsg)
	}
}

func gzipped(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

// TestWriteErrors sends malformed and over-limit writes to the real server
// and checks each answer, then that nothing of them was stored.
func TestWriteErrors(t *testing.T) {
	s := startServer(t, "", "--limits.max-body-bytes", "4096", "--limits.max-labels-per-series", "5")
	big := bytes.Repeat([]byte("m{a=\"b\"} 1\n"), 1000) // 11 kB > 4 kB
	cases := []struct {
		name, path, ctype string
		body              []byte
		header            map[string]string
		code              int
		typ, msg          string
	}{
		{"empty remote write", "/api/v1/write", "application/x-protobuf", nil, nil, 400, "bad_data", "empty"},
		{"bad snappy", "/api/v1/write", "application/x-protobuf", []byte("not snappy at all"), nil, 400, "bad_data", "snappy"},
		{"bad protobuf", "/api/v1/write", "application/x-protobuf", snappy.Encode(nil, []byte{0xff, 0xff, 0xff}), nil, 400, "bad_data", "proto"},
		{"line protocol bad line 3", "/write", "text/plain", []byte("m,h=a f=1 1\nm,h=a f=2 2\nm,h=a f= 3\n"), nil, 400, "bad_data", "line 3"},
		{"line protocol bad precision", "/write?precision=fortnight", "text/plain", []byte("m f=1 1\n"), nil, 400, "bad_data", "precision"},
		{"line protocol invalid name", "/api/v2/write", "text/plain", []byte("m f=1 1\nbad\xff f=2 2\n"), nil, 400, "bad_data", "line 2"},
		{"json wrong types", "/api/v1/import", "application/json", []byte(`{"metric":{"__name__":"x"},"values":[1],"timestamps":[1]}` + "\n" + `{"metric":{"__name__":"x"},"values":"1","timestamps":[1]}`), nil, 400, "bad_data", "line 2"},
		{"json length mismatch", "/api/v1/import", "application/json", []byte(`{"metric":{"__name__":"x"},"values":[1,2],"timestamps":[1]}`), nil, 400, "bad_data", "line 1"},
		{"json invalid label name", "/api/v1/import", "application/json", []byte(`{"metric":{"__name__":"x","":"y"},"values":[1],"timestamps":[1]}`), nil, 400, "bad_data", `invalid label name "": names must be valid, non-empty UTF-8`},
		{"text invalid", "/api/v1/import/prometheus", "text/plain", []byte("ok 1\nnot valid{{ 2\n"), nil, 400, "bad_data", "line 2"},
		{"text bad timestamp param", "/api/v1/import/prometheus?timestamp=yesterday", "text/plain", []byte("ok 1\n"), nil, 400, "bad_data", "timestamp"},
		{"too many labels", "/api/v1/import/prometheus", "text/plain", []byte(`m{a="1",b="2",c="3",d="4",e="5"} 1` + "\n"), nil, 400, "bad_data", "labels"},
		{"oversize body", "/api/v1/import/prometheus", "text/plain", big, nil, 413, "too_large", "4096"},
		{"oversize after gunzip", "/api/v1/import/prometheus", "text/plain", gzipped(big), map[string]string{"Content-Encoding": "gzip"}, 413, "too_large", "4096"},
		{"oversize after snappy", "/api/v1/write", "application/x-protobuf", snappy.Encode(nil, make([]byte, 8192)), nil, 413, "too_large", "4096"},
		// A message Strata does not decode: 415, never a 2xx that drops it.
		{"remote write unknown message", "/api/v1/write", "application/x-protobuf;proto=io.prometheus.write.v3.Request", snappy.Encode(nil, []byte{0x0a, 0x00}), map[string]string{"Content-Encoding": "snappy", "X-Prometheus-Remote-Write-Version": "3.0.0"}, 415, "bad_data", "io.prometheus.write.v3.Request"},
		{"remote write other encoding", "/api/v1/write", "application/x-protobuf", []byte("x"), map[string]string{"Content-Encoding": "zstd"}, 415, "bad_data", "zstd"},
		{"remote write gzip", "/api/v1/write", "application/x-protobuf", gzipped([]byte("x")), map[string]string{"Content-Encoding": "gzip"}, 415, "bad_data", "gzip"},
		{"remote write other type", "/api/v1/write", "application/json", []byte("{}"), nil, 415, "bad_data", "application/json"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, s.url+c.path, bytes.NewReader(c.body))
			req.Header.Set("Content-Type", c.ctype)
			for k, v := range c.header {
				req.Header.Set(k, v)
			}
			code, body := s.do(req)
			checkError(t, code, body, c.code, c.typ, c.msg)
		})
	}
	// All-or-nothing: the valid lines before the bad ones were not applied.
	var names []string
	s.get("/api/v1/label/__name__/values", nil, &names)
	if len(names) != 0 {
		t.Fatalf("refused requests left series behind: %v", names)
	}
	// And the server still takes good writes.
	if code, body := s.post("/write", "text/plain", []byte("m,h=a f=1\n")); code != http.StatusNoContent {
		t.Fatalf("good write after bad ones: %d %s", code, body)
	}
}

func TestQueryErrors(t *testing.T) {
	s := startServer(t, "", "--query.max-samples", "100")
	var lines bytes.Buffer
	for i := range 500 {
		lines.WriteString("load,h=a v=1 " + strconv.FormatInt(1_700_000_000+int64(i)*10, 10) + "\n")
	}
	if code, body := s.post("/write?precision=s", "text/plain", lines.Bytes()); code != 204 {
		t.Fatalf("load: %d %s", code, body)
	}
	get := func(path string, v url.Values) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, s.url+path+"?"+v.Encode(), nil)
		return s.do(req)
	}
	cases := []struct {
		name     string
		path     string
		params   url.Values
		code     int
		typ, msg string
	}{
		{"parse error", "/api/v1/query", url.Values{"query": {"sum(("}}, 400, "bad_data", "parse error"},
		{"empty query", "/api/v1/query", url.Values{}, 400, "bad_data", "query"},
		{"bad time", "/api/v1/query", url.Values{"query": {"1"}, "time": {"noon"}}, 400, "bad_data", `"time"`},
		{"missing step", "/api/v1/query_range", url.Values{"query": {"1"}, "start": {"0"}, "end": {"10"}}, 400, "bad_data", "step"},
		{"zero step", "/api/v1/query_range", url.Values{"query": {"1"}, "start": {"0"}, "end": {"10"}, "step": {"0"}}, 400, "bad_data", "zero or negative"},
		{"end before start", "/api/v1/query_range", url.Values{"query": {"1"}, "start": {"10"}, "end": {"0"}, "step": {"1"}}, 400, "bad_data", "end timestamp"},
		{"too many points", "/api/v1/query_range", url.Values{"query": {"1"}, "start": {"0"}, "end": {"100000"}, "step": {"1"}}, 400, "bad_data", "11000"},
		{"too many samples", "/api/v1/query_range", url.Values{"query": {"load_v"}, "start": {"1700000000"}, "end": {"1700005000"}, "step": {"10"}}, 422, "execution", "too many samples"},
		{"timeout", "/api/v1/query", url.Values{"query": {"load_v"}, "timeout": {"0"}}, 503, "timeout", "timed out"},
		{"bad label name", "/api/v1/label/%FF/values", url.Values{}, 400, "bad_data", "invalid label name"},
		{"series without match", "/api/v1/series", url.Values{}, 400, "bad_data", "match[]"},
		{"series bad match", "/api/v1/series", url.Values{"match[]": {"{"}}, 400, "bad_data", "match[]"},
		{"unknown route", "/api/v1/nope", url.Values{}, 404, "not_found", "Not Found"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, body := get(c.path, c.params)
			checkError(t, code, body, c.code, c.typ, c.msg)
		})
	}
}

// TestRemoteWriteOneVersions: remote write 1.0 is taken with the proto
// parameter the 2.0 spec names, without it, and without a Content-Type.
func TestRemoteWriteOneVersions(t *testing.T) {
	s := startServer(t, "")
	for i, ct := range []string{"application/x-protobuf;proto=prometheus.WriteRequest", "application/x-protobuf", ""} {
		req := prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
			Labels:  []prompb.Label{{Name: "__name__", Value: "rw1_v"}, {Name: "i", Value: strconv.Itoa(i)}},
			Samples: []prompb.Sample{{Timestamp: 1_700_000_000_000, Value: float64(i)}},
		}}}
		raw, err := req.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		r, _ := http.NewRequest(http.MethodPost, s.url+"/api/v1/write", bytes.NewReader(snappy.Encode(nil, raw)))
		if ct != "" {
			r.Header.Set("Content-Type", ct)
		}
		r.Header.Set("Content-Encoding", "snappy")
		if code, body := s.do(r); code != http.StatusNoContent {
			t.Fatalf("Content-Type %q: %d %s", ct, code, body)
		}
	}
	var d struct {
		Result []any `json:"result"`
	}
	s.get("/api/v1/query", url.Values{"query": {"rw1_v"}, "time": {"1700000000"}}, &d)
	if len(d.Result) != 3 {
		t.Errorf("stored %d of 3 series", len(d.Result))
	}
}
