package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang/snappy"
	jsoniter "github.com/json-iterator/go"
	remoteapi "github.com/prometheus/client_golang/exp/api/remote"
	config_util "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/prometheus/prometheus/storage/remote"
	"github.com/prometheus/prometheus/util/jsonutil"
)

// rwClient is the remote-write client Prometheus itself runs
// (storage/remote.NewWriteClient), speaking msg to the server at base.
func rwClient(t testing.TB, base string, msg remoteapi.WriteMessageType) remote.WriteClient {
	t.Helper()
	u, err := url.Parse(base + "/api/v1/write")
	if err != nil {
		t.Fatal(err)
	}
	c, err := remote.NewWriteClient("strata-test", &remote.ClientConfig{
		URL: &config_util.URL{URL: u}, Timeout: model.Duration(30 * time.Second), WriteProtoMsg: msg, RetryOnRateLimit: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// store sends a marshalled request through the client, snappy-compressed
// as Prometheus' queue manager does.
func store(t testing.TB, c remote.WriteClient, raw []byte) (remote.WriteResponseStats, error) {
	t.Helper()
	return c.Store(context.Background(), snappy.Encode(nil, raw), 0)
}

// v2Req builds a remote write 2.0 request with writev2's symbols table.
type v2Req struct {
	st  writev2.SymbolsTable
	req writev2.Request
}

func newV2Req() *v2Req { return &v2Req{st: writev2.NewSymbolTable()} }

func (r *v2Req) series(kv []string, md writev2.Metadata, fill func(r *v2Req, ts *writev2.TimeSeries)) {
	ts := writev2.TimeSeries{LabelsRefs: r.st.SymbolizeLabels(labels.FromStrings(kv...), nil), Metadata: md}
	if fill != nil {
		fill(r, &ts)
	}
	r.req.Timeseries = append(r.req.Timeseries, ts)
}

func (r *v2Req) meta(typ model.MetricType, help, unit string) writev2.Metadata {
	return writev2.Metadata{Type: writev2.FromMetadataType(typ), HelpRef: r.st.Symbolize(help), UnitRef: r.st.Symbolize(unit)}
}

func (r *v2Req) exemplar(t int64, v float64, kv ...string) writev2.Exemplar {
	return writev2.Exemplar{LabelsRefs: r.st.SymbolizeLabels(labels.FromStrings(kv...), nil), Timestamp: t, Value: v}
}

func (r *v2Req) marshal(t testing.TB) []byte {
	t.Helper()
	r.req.Symbols = r.st.Symbols()
	raw, err := r.req.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// rangeData is a matrix as the query API returns it, floats and
// histograms, each point as "<ms>:<value>" with the value as the API
// writes it (a histogram as its JSON object).
func (s *testServer) points(q string, at time.Time) map[string][]string {
	s.t.Helper()
	var d struct {
		Result []struct {
			Metric     map[string]string    `json:"metric"`
			Values     [][2]json.RawMessage `json:"values"`
			Histograms [][2]json.RawMessage `json:"histograms"`
		} `json:"result"`
	}
	s.get("/api/v1/query", url.Values{"query": {q}, "time": {fmt.Sprint(at.Unix())}}, &d)
	out := map[string][]string{}
	for _, r := range d.Result {
		k := labels.FromMap(r.Metric).String()
		for _, p := range append(r.Values, r.Histograms...) {
			var sec float64
			if err := json.Unmarshal(p[0], &sec); err != nil {
				s.t.Fatal(err)
			}
			out[k] = append(out[k], fmt.Sprintf("%d:%s", int64(sec*1000+0.5), strings.Trim(string(p[1]), `"`)))
		}
	}
	return out
}

// histJSON is a histogram as the query API writes it.
func histJSON(h *histogram.FloatHistogram) string {
	stream := jsoniter.ConfigCompatibleWithStandardLibrary.BorrowStream(nil)
	defer jsoniter.ConfigCompatibleWithStandardLibrary.ReturnStream(stream)
	jsonutil.MarshalHistogram(h, stream)
	return string(stream.Buffer())
}

func requirePoints(t *testing.T, got map[string][]string, series string, want ...string) {
	t.Helper()
	if !slices.Equal(got[series], want) {
		t.Errorf("%s:\n got %v\nwant %v", series, got[series], want)
	}
}

var rw2Base = time.UnixMilli(1_700_000_040_000).UTC()

func ms(d time.Duration) int64 { return rw2Base.Add(d).UnixMilli() }

// TestRemoteWrite2RealClient sends remote write 2.0 and 1.0 through
// Prometheus' own remote-write client to the real server and reads every
// value back through PromQL: floats, integer and float native histograms,
// and the zero samples of created (start) timestamps where Prometheus 3
// writes them. The 2.0 answers carry the true counts.
func TestRemoteWrite2RealClient(t *testing.T) {
	s := startServer(t, "")
	v2 := rwClient(t, s.url, remoteapi.WriteV2MessageType)
	hist := &histogram.Histogram{Schema: 0, Count: 3, Sum: 4.5, ZeroThreshold: 0.001, ZeroCount: 1,
		PositiveSpans: []histogram.Span{{Offset: 0, Length: 2}}, PositiveBuckets: []int64{1, 0}}
	fhist := &histogram.FloatHistogram{Schema: 2, Count: 2.5, Sum: 10, PositiveSpans: []histogram.Span{{Offset: 3, Length: 1}}, PositiveBuckets: []float64{2.5}}

	r := newV2Req()
	r.series([]string{"__name__", "rw2_requests_total", "job", "api"}, r.meta(model.MetricTypeCounter, "Requests.", ""), func(r *v2Req, ts *writev2.TimeSeries) {
		ts.Samples = []writev2.Sample{{Value: 10, Timestamp: ms(time.Minute), StartTimestamp: ms(0)}, {Value: 25, Timestamp: ms(2 * time.Minute), StartTimestamp: ms(0)}}
	})
	r.series([]string{"__name__", "rw2_temperature", "room", "a"}, r.meta(model.MetricTypeGauge, "Temperature.", "celsius"), func(r *v2Req, ts *writev2.TimeSeries) {
		ts.Samples = []writev2.Sample{{Value: -1.5, Timestamp: ms(time.Minute)}}
	})
	r.series([]string{"__name__", "rw2_latency_seconds", "job", "api"}, r.meta(model.MetricTypeHistogram, "Latency.", "seconds"), func(r *v2Req, ts *writev2.TimeSeries) {
		ts.Histograms = []writev2.Histogram{writev2.FromIntHistogram(ms(0), ms(time.Minute), hist), writev2.FromFloatHistogram(0, ms(2*time.Minute), fhist)}
	})
	stats, err := store(t, v2, r.marshal(t))
	if err != nil {
		t.Fatal(err)
	}
	if !stats.Confirmed || stats.Samples != 3 || stats.Histograms != 2 {
		t.Errorf("2.0 answer: %+v, want confirmed, 3 samples, 2 histograms", stats)
	}
	// The same start time again writes no second zero.
	r = newV2Req()
	r.series([]string{"__name__", "rw2_requests_total", "job", "api"}, r.meta(model.MetricTypeCounter, "Requests.", ""), func(r *v2Req, ts *writev2.TimeSeries) {
		ts.Samples = []writev2.Sample{{Value: 30, Timestamp: ms(3 * time.Minute), StartTimestamp: ms(0)}}
	})
	if stats, err := store(t, v2, r.marshal(t)); err != nil || stats.Samples != 1 {
		t.Fatalf("second 2.0 request: %+v %v", stats, err)
	}

	// Remote write 1.0, same client, 1.0 message.
	v1 := rwClient(t, s.url, remoteapi.WriteV1MessageType)
	req1 := &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
		{Labels: []prompb.Label{{Name: "__name__", Value: "rw1_up"}, {Name: "job", Value: "api"}}, Samples: []prompb.Sample{{Timestamp: ms(time.Minute), Value: 1}}},
		{Labels: []prompb.Label{{Name: "__name__", Value: "rw1_latency_seconds"}}, Histograms: []prompb.Histogram{prompb.FromIntHistogram(ms(time.Minute), hist)}},
	}}
	raw, err := req1.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store(t, v1, raw); err != nil {
		t.Fatal(err)
	}

	got := s.points(`{__name__=~"rw[12]_.+"}[10m]`, rw2Base.Add(5*time.Minute))
	requirePoints(t, got, `{__name__="rw2_requests_total", job="api"}`, fmt.Sprintf("%d:0", ms(0)), fmt.Sprintf("%d:10", ms(time.Minute)), fmt.Sprintf("%d:25", ms(2*time.Minute)), fmt.Sprintf("%d:30", ms(3*time.Minute)))
	requirePoints(t, got, `{__name__="rw2_temperature", room="a"}`, fmt.Sprintf("%d:-1.5", ms(time.Minute)))
	zero := &histogram.FloatHistogram{CounterResetHint: histogram.CounterReset, Schema: 0, ZeroThreshold: 0.001}
	requirePoints(t, got, `{__name__="rw2_latency_seconds", job="api"}`, fmt.Sprintf("%d:%s", ms(0), histJSON(zero)), fmt.Sprintf("%d:%s", ms(time.Minute), histJSON(hist.ToFloat(nil))), fmt.Sprintf("%d:%s", ms(2*time.Minute), histJSON(fhist)))
	requirePoints(t, got, `{__name__="rw1_up", job="api"}`, fmt.Sprintf("%d:1", ms(time.Minute)))
	requirePoints(t, got, `{__name__="rw1_latency_seconds"}`, fmt.Sprintf("%d:%s", ms(time.Minute), histJSON(hist.ToFloat(nil))))
	if len(got) != 5 {
		t.Errorf("%d series, want 5: %v", len(got), got)
	}
}

// TestRemoteWrite2Statuses sends through Prometheus' client every way a
// write can be taken, taken in part or refused, and checks the status
// (through what the client makes of it: done, dropped, retried), the
// written counts, and that exactly the counted samples were stored. The
// table is in docs/operations.md.
func TestRemoteWrite2Statuses(t *testing.T) {
	s := startServer(t, "", "--limits.max-series", "7", "--limits.max-series-per-request", "4", "--limits.max-body-bytes", "65536")
	v2 := rwClient(t, s.url, remoteapi.WriteV2MessageType)
	one := func(name string, v float64) func(r *v2Req) {
		return func(r *v2Req) {
			r.series([]string{"__name__", name}, writev2.Metadata{}, func(r *v2Req, ts *writev2.TimeSeries) {
				ts.Samples = []writev2.Sample{{Value: v, Timestamp: ms(time.Minute)}}
			})
		}
	}
	validHist := &histogram.Histogram{Count: 1, PositiveSpans: []histogram.Span{{Length: 1}}, PositiveBuckets: []int64{1}}
	badHist := &histogram.Histogram{Count: 0, PositiveSpans: []histogram.Span{{Length: 1}}, PositiveBuckets: []int64{4}}
	cases := []struct {
		name        string
		build       []func(r *v2Req)
		raw         []byte // sent instead of the built request when set
		code        int    // 0: success
		recoverable bool
		written     [3]int
		stored      []string // metric names stored afterwards (cumulative)
	}{
		{name: "all written", build: []func(*v2Req){one("st_a", 1), one("st_b", 2)}, written: [3]int{2, 0, 0}, stored: []string{"st_a", "st_b"}},
		{name: "invalid series left out", build: []func(*v2Req){one("st_c", 3), one("bad\xff", 4)}, code: 400, written: [3]int{1, 0, 0}, stored: []string{"st_c"}},
		{name: "invalid histogram left out", build: []func(*v2Req){func(r *v2Req) {
			r.series([]string{"__name__", "st_h"}, writev2.Metadata{}, func(r *v2Req, ts *writev2.TimeSeries) {
				ts.Histograms = []writev2.Histogram{writev2.FromIntHistogram(0, ms(time.Minute), validHist), writev2.FromIntHistogram(0, ms(2*time.Minute), badHist)}
			})
		}}, code: 400, written: [3]int{0, 1, 0}, stored: []string{"st_h"}},
		{name: "invalid exemplar left out", build: []func(*v2Req){func(r *v2Req) {
			r.series([]string{"__name__", "st_e"}, writev2.Metadata{}, func(r *v2Req, ts *writev2.TimeSeries) {
				ts.Samples = []writev2.Sample{{Value: 1, Timestamp: ms(time.Minute)}}
				ts.Exemplars = []writev2.Exemplar{r.exemplar(ms(time.Minute), 1, "trace_id", "ok"), r.exemplar(ms(time.Minute), 2, "trace_id", strings.Repeat("x", 200))}
			})
		}}, code: 400, written: [3]int{1, 0, 1}, stored: []string{"st_e"}},
		{name: "malformed protobuf", raw: []byte{0x2a, 0x09, 0x0a}, code: 400},
		{name: "too many series in one request", build: []func(*v2Req){one("st_1", 1), one("st_2", 1), one("st_3", 1), one("st_4", 1), one("st_5", 1)}, code: 400},
		{name: "sample too far in the future left out", build: []func(*v2Req){one("st_now", 1), func(r *v2Req) {
			r.series([]string{"__name__", "st_future"}, writev2.Metadata{}, func(r *v2Req, ts *writev2.TimeSeries) {
				ts.Samples = []writev2.Sample{{Value: 1, Timestamp: time.Now().Add(time.Hour).UnixMilli()}}
			})
		}}, code: 400, written: [3]int{1, 0, 0}, stored: []string{"st_now"}},
		{name: "head series limit", build: []func(*v2Req){one("st_x", 1), one("st_y", 1)}, code: 429, recoverable: true},
		{name: "body over the limit", raw: make([]byte, 70_000), code: 413},
	}
	var stored []string
	for _, c := range cases {
		raw := c.raw
		if raw == nil {
			r := newV2Req()
			for _, b := range c.build {
				b(r)
			}
			raw = r.marshal(t)
		}
		stats, err := store(t, v2, raw)
		var rec remote.RecoverableError
		switch {
		case c.code == 0 && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.code != 0 && (err == nil || !strings.Contains(err.Error(), fmt.Sprintf("HTTP status %d", c.code))):
			t.Errorf("%s: error %v, want status %d", c.name, err, c.code)
		case c.code != 0 && errors.As(err, &rec) != c.recoverable:
			t.Errorf("%s: recoverable %v, want %v (%v)", c.name, !c.recoverable, c.recoverable, err)
		}
		if got := [3]int{stats.Samples, stats.Histograms, stats.Exemplars}; !stats.Confirmed || got != c.written {
			t.Errorf("%s: written %v (confirmed %v), want %v", c.name, got, stats.Confirmed, c.written)
		}
		stored = append(stored, c.stored...)
		var names []string
		s.get("/api/v1/label/__name__/values", nil, &names)
		slices.Sort(stored)
		if !slices.Equal(names, stored) {
			t.Errorf("after %s: stored %v, want %v", c.name, names, stored)
		}
	}
}

// TestStartTimeZeroInvalidatesCache: the zero sample of a start time days
// before its sample makes the cached answers over the start's day misses,
// like any late sample: through the cache the answer equals the fresh one.
func TestStartTimeZeroInvalidatesCache(t *testing.T) {
	s := startServer(t, "")
	day := time.Now().UTC().Add(-72 * time.Hour).Truncate(24 * time.Hour)
	st := day.Add(6 * time.Hour)
	q := url.Values{"query": {"stz_requests_total"}, "start": {fmt.Sprint(day.Unix())}, "end": {fmt.Sprint(day.Add(12 * time.Hour).Unix())}, "step": {"3600"}}
	before := s.rawQuery("/api/v1/query_range", q) // cached: no data that day
	if !strings.Contains(before, `"result":[]`) {
		t.Fatalf("before: %s", before)
	}
	r := newV2Req()
	r.series([]string{"__name__", "stz_requests_total"}, r.meta(model.MetricTypeCounter, "", ""), func(r *v2Req, ts *writev2.TimeSeries) {
		ts.Samples = []writev2.Sample{{Value: 7, Timestamp: time.Now().Add(-time.Minute).UnixMilli(), StartTimestamp: st.UnixMilli()}}
	})
	if _, err := store(t, rwClient(t, s.url, remoteapi.WriteV2MessageType), r.marshal(t)); err != nil {
		t.Fatal(err)
	}
	cached := s.rawQuery("/api/v1/query_range", q)
	q.Set("nocache", "1")
	fresh := s.rawQuery("/api/v1/query_range", q)
	want := fmt.Sprintf(`[%d,"0"]`, st.Unix())
	if !strings.Contains(fresh, want) || cached != fresh {
		t.Errorf("after a start-time zero at %v:\ncached %s\n fresh %s\n(want a point %s)", st, cached, fresh, want)
	}
}
