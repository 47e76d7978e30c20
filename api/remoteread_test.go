package api

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/golang/snappy"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/prompb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/strata-tsdb/strata/buffer"
	"github.com/strata-tsdb/strata/query"
)

// readTestT0 is the first sample's timestamp (ms) of the read tests' data.
const readTestT0 = int64(1_700_000_000_000)

// readSample is one sample of the read tests' data.
type readSample struct {
	t int64
	v float64
}

// readTestData is what newReadTestServer writes: three hosts of rr_v and one
// of other_v, 300 samples each every 10 s from readTestT0.
func readTestData() map[string][]readSample {
	out := map[string][]readSample{}
	add := func(name, host string, h int) {
		key := fmt.Sprintf(`%s{host="%s"}`, name, host)
		for i := range 300 {
			v := float64(h*1000+i) + 0.25
			if i%7 == 3 {
				v = -v * 1e9 // changes sign and exponent: exercises the XOR encoding
			}
			out[key] = append(out[key], readSample{readTestT0 + int64(i)*10_000, v})
		}
	}
	for h, host := range []string{"a", "b", "c"} {
		add("rr_v", host, h)
	}
	add("other_v", "a", 9)
	return out
}

// newTestAPI builds the API over a new in-memory head with the query
// engine's options eopts and the API's options opts, logging to logger.
func newTestAPI(t testing.TB, logger *slog.Logger, eopts query.Options, opts Options) (*API, *buffer.Head) {
	t.Helper()
	head, err := buffer.NewHead(buffer.Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	q := query.NewQueryable(head, nil)
	eng, err := query.NewEngine(logger, nil, q, eopts)
	if err != nil {
		t.Fatal(err)
	}
	fe, err := query.NewFrontend(eng, nil, query.FrontendOptions{}, nil, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	a, err := New(logger, reg, reg, head, fe, q, opts)
	if err != nil {
		t.Fatal(err)
	}
	return a, head
}

// newReadTestServer serves an API over an in-memory head holding
// readTestData (plus extra line protocol), with maxSamples as the query
// sample limit (0: the default).
func newReadTestServer(t *testing.T, maxSamples int, extra []byte) string {
	t.Helper()
	url, _ := startReadTestServer(t, maxSamples, extra)
	return url
}

// startReadTestServer is newReadTestServer that also returns what the
// API and net/http logged (a handler panic other than http.ErrAbortHandler
// is logged by net/http as "panic serving").
func startReadTestServer(t *testing.T, maxSamples int, extra []byte) (string, *lockedBuffer) {
	t.Helper()
	logs := &lockedBuffer{}
	a, _ := newTestAPI(t, slog.New(slog.NewTextHandler(logs, nil)), query.Options{MaxSamples: maxSamples}, Options{})
	srv := httptest.NewUnstartedServer(a.Handler())
	srv.Config.ErrorLog = log.New(logs, "", 0)
	// As cmd/strata serves: range answers leave in one write.
	srv.Listener = JoinWrites(srv.Listener)
	srv.Config.ConnContext = ConnContext
	srv.Start()
	t.Cleanup(srv.Close)

	var lp bytes.Buffer
	for key, ss := range readTestData() {
		name, host, _ := strings.Cut(key, `{host="`)
		host = strings.TrimSuffix(host, `"}`)
		for _, s := range ss {
			fmt.Fprintf(&lp, "%s,host=%s v=%v %d\n", strings.TrimSuffix(name, "_v"), host, s.v, s.t)
		}
	}
	lp.Write(extra)
	resp, err := http.Post(srv.URL+"/write?precision=ms", "text/plain", &lp)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("write: %d %s", resp.StatusCode, b)
	}
	return srv.URL, logs
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// postRead sends a read request body as Prometheus does.
func postRead(t *testing.T, url string, body []byte) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url+"/api/v1/read", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("Content-Encoding", "snappy")
	req.Header.Set("X-Prometheus-Remote-Read-Version", "0.1.0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func encodeReadRequest(t *testing.T, req *prompb.ReadRequest) []byte {
	t.Helper()
	raw, err := req.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return snappy.Encode(nil, raw)
}

// readResult is the series of one query, by their labels' string.
type readResult map[string][]readSample

func seriesKey(lbls []prompb.Label) string {
	var name string
	var rest []string
	for _, l := range lbls {
		if l.Name == "__name__" {
			name = l.Value
			continue
		}
		rest = append(rest, fmt.Sprintf("%s=%q", l.Name, l.Value))
	}
	return name + "{" + strings.Join(rest, ",") + "}"
}

// decodeSamples decodes a SAMPLES answer.
func decodeSamples(t *testing.T, resp *http.Response) []readResult {
	t.Helper()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if ct, ce := resp.Header.Get("Content-Type"), resp.Header.Get("Content-Encoding"); ct != "application/x-protobuf" || ce != "snappy" {
		t.Fatalf("Content-Type %q, Content-Encoding %q", ct, ce)
	}
	raw, err := snappy.Decode(nil, body)
	if err != nil {
		t.Fatal(err)
	}
	var rr prompb.ReadResponse
	if err := rr.Unmarshal(raw); err != nil {
		t.Fatal(err)
	}
	out := make([]readResult, len(rr.Results))
	for i, res := range rr.Results {
		out[i] = readResult{}
		var prev string
		for _, ts := range res.Timeseries {
			key := seriesKey(ts.Labels)
			if key <= prev {
				t.Fatalf("series %s after %s: not sorted", key, prev)
			}
			prev = key
			for _, s := range ts.Samples {
				out[i][key] = append(out[i][key], readSample{s.Timestamp, s.Value})
			}
		}
	}
	return out
}

// frameReader reads the frames of a streamed answer independently of the
// server's code: uvarint length, big-endian CRC-32C, message.
type frameReader struct{ r *bufio.Reader }

func (f frameReader) next() ([]byte, error) {
	size, err := binary.ReadUvarint(f.r)
	if err != nil {
		return nil, err // io.EOF at a clean end
	}
	var sum uint32
	if err := binary.Read(f.r, binary.BigEndian, &sum); err != nil {
		return nil, err
	}
	msg := make([]byte, size)
	if _, err := io.ReadFull(f.r, msg); err != nil {
		return nil, err
	}
	if got := crc32.Checksum(msg, crc32.MakeTable(crc32.Castagnoli)); got != sum {
		return nil, fmt.Errorf("checksum %x, frame says %x", got, sum)
	}
	return msg, nil
}

// streamStats describes the frames of a streamed answer.
type streamStats struct {
	frames       int
	maxFrameSize int
	seriesFrames map[string]int // frames per series
}

// decodeStreamed decodes a STREAMED_XOR_CHUNKS answer of nq queries,
// decoding chunks with Prometheus' chunkenc and checking each chunk's
// bounds and size. err is the error that ended the stream, if not io.EOF.
func decodeStreamed(t *testing.T, resp *http.Response, nq int) ([]readResult, streamStats, error) {
	t.Helper()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/x-streamed-protobuf; proto=prometheus.ChunkedReadResponse" {
		t.Fatalf("Content-Type %q", ct)
	}
	out := make([]readResult, nq)
	for i := range out {
		out[i] = readResult{}
	}
	st := streamStats{seriesFrames: map[string]int{}}
	fr := frameReader{bufio.NewReader(resp.Body)}
	lastQuery, lastKey := int64(0), ""
	for {
		msg, err := fr.next()
		if errors.Is(err, io.EOF) {
			return out, st, nil
		}
		if err != nil {
			return out, st, err
		}
		st.frames++
		st.maxFrameSize = max(st.maxFrameSize, len(msg))
		var cr prompb.ChunkedReadResponse
		if err := cr.Unmarshal(msg); err != nil {
			t.Fatal(err)
		}
		if cr.QueryIndex < lastQuery || int(cr.QueryIndex) >= nq {
			t.Fatalf("frame of query %d after query %d", cr.QueryIndex, lastQuery)
		}
		if len(cr.ChunkedSeries) != 1 {
			t.Fatalf("%d series in one frame, want 1", len(cr.ChunkedSeries))
		}
		cs := cr.ChunkedSeries[0]
		key := seriesKey(cs.Labels)
		if cr.QueryIndex == lastQuery && key < lastKey {
			t.Fatalf("series %s after %s: not sorted", key, lastKey)
		}
		lastQuery, lastKey = cr.QueryIndex, key
		st.seriesFrames[key]++
		for _, c := range cs.Chunks {
			if c.Type != prompb.Chunk_XOR {
				t.Fatalf("chunk type %v", c.Type)
			}
			chk, err := chunkenc.FromData(chunkenc.EncXOR, c.Data)
			if err != nil {
				t.Fatal(err)
			}
			if n := chk.NumSamples(); n == 0 || n > 120 {
				t.Fatalf("chunk of %d samples", n)
			}
			it := chk.Iterator(nil)
			var first, last int64 = math.MaxInt64, 0
			for it.Next() == chunkenc.ValFloat {
				ts, v := it.At()
				first, last = min(first, ts), ts
				out[cr.QueryIndex][key] = append(out[cr.QueryIndex][key], readSample{ts, v})
			}
			if it.Err() != nil {
				t.Fatal(it.Err())
			}
			if first != c.MinTimeMs || last != c.MaxTimeMs {
				t.Fatalf("chunk says [%d, %d], holds [%d, %d]", c.MinTimeMs, c.MaxTimeMs, first, last)
			}
		}
	}
}

// want returns the test data of the given series in [mint, maxt].
func want(keys []string, mint, maxt int64) readResult {
	all := readTestData()
	out := readResult{}
	for _, k := range keys {
		for _, s := range all[k] {
			if s.t >= mint && s.t <= maxt {
				out[k] = append(out[k], s)
			}
		}
	}
	return out
}

func checkResult(t *testing.T, got, want readResult) {
	t.Helper()
	keys := func(r readResult) []string {
		var ks []string
		for k := range r {
			ks = append(ks, k)
		}
		slices.Sort(ks)
		return ks
	}
	if !slices.Equal(keys(got), keys(want)) {
		t.Fatalf("series %v, want %v", keys(got), keys(want))
	}
	for k, ws := range want {
		gs := got[k]
		if len(gs) != len(ws) {
			t.Fatalf("%s: %d samples, want %d", k, len(gs), len(ws))
		}
		for i := range ws {
			if gs[i].t != ws[i].t || math.Float64bits(gs[i].v) != math.Float64bits(ws[i].v) {
				t.Fatalf("%s sample %d: %v, want %v", k, i, gs[i], ws[i])
			}
		}
	}
}

func matcher(typ prompb.LabelMatcher_Type, name, value string) *prompb.LabelMatcher {
	return &prompb.LabelMatcher{Type: typ, Name: name, Value: value}
}

var (
	streamed = []prompb.ReadRequest_ResponseType{prompb.ReadRequest_STREAMED_XOR_CHUNKS}
	samples  = []prompb.ReadRequest_ResponseType{prompb.ReadRequest_SAMPLES}
)

// TestRemoteReadQueries checks matchers, time ranges and hints with both
// response types.
func TestRemoteReadQueries(t *testing.T) {
	url := newReadTestServer(t, 0, nil)
	end := readTestT0 + 299*10_000
	name := matcher(prompb.LabelMatcher_EQ, "__name__", "rr_v")
	a, b, c := `rr_v{host="a"}`, `rr_v{host="b"}`, `rr_v{host="c"}`
	cases := []struct {
		name       string
		q          *prompb.Query
		want       readResult
		wantFrames map[string]int // streamed: frames per series, when checked
	}{
		{"all of one metric", &prompb.Query{StartTimestampMs: readTestT0, EndTimestampMs: end, Matchers: []*prompb.LabelMatcher{name}},
			want([]string{a, b, c}, readTestT0, end), map[string]int{a: 1, b: 1, c: 1}},
		{"regex", &prompb.Query{StartTimestampMs: 0, EndTimestampMs: math.MaxInt64, Matchers: []*prompb.LabelMatcher{
			matcher(prompb.LabelMatcher_RE, "__name__", "rr_.*|other_v"), matcher(prompb.LabelMatcher_RE, "host", "a|c")}},
			want([]string{a, c, `other_v{host="a"}`}, 0, math.MaxInt64), nil},
		{"negative regex", &prompb.Query{StartTimestampMs: readTestT0, EndTimestampMs: end, Matchers: []*prompb.LabelMatcher{
			name, matcher(prompb.LabelMatcher_NRE, "host", "a|b")}}, want([]string{c}, readTestT0, end), nil},
		{"not equal", &prompb.Query{StartTimestampMs: readTestT0, EndTimestampMs: end, Matchers: []*prompb.LabelMatcher{
			name, matcher(prompb.LabelMatcher_NEQ, "host", "b")}}, want([]string{a, c}, readTestT0, end), nil},
		// Start between two samples, end on one: the end is inclusive.
		{"time range trimmed", &prompb.Query{StartTimestampMs: readTestT0 + 95_000, EndTimestampMs: readTestT0 + 1_500_000, Matchers: []*prompb.LabelMatcher{name}},
			want([]string{a, b, c}, readTestT0+95_000, readTestT0+1_500_000), nil},
		{"hints narrow the range", &prompb.Query{StartTimestampMs: readTestT0, EndTimestampMs: end, Matchers: []*prompb.LabelMatcher{name},
			Hints: &prompb.ReadHints{StartMs: readTestT0 + 600_000, EndMs: readTestT0 + 700_000, StepMs: 60_000, Func: "rate", RangeMs: 300_000, Grouping: []string{"host"}, By: true}},
			want([]string{a, b, c}, readTestT0+600_000, readTestT0+700_000), nil},
		{"hints without a range", &prompb.Query{StartTimestampMs: readTestT0, EndTimestampMs: end, Matchers: []*prompb.LabelMatcher{name},
			Hints: &prompb.ReadHints{StepMs: 60_000, Func: "avg_over_time"}}, want([]string{a, b, c}, readTestT0, end), nil},
		{"no series", &prompb.Query{StartTimestampMs: readTestT0, EndTimestampMs: end, Matchers: []*prompb.LabelMatcher{matcher(prompb.LabelMatcher_EQ, "__name__", "nope")}},
			readResult{}, map[string]int{}},
		{"no samples in range", &prompb.Query{StartTimestampMs: end + 1, EndTimestampMs: end + 1_000_000, Matchers: []*prompb.LabelMatcher{name}},
			readResult{}, map[string]int{}},
		{"start after end", &prompb.Query{StartTimestampMs: end, EndTimestampMs: readTestT0, Matchers: []*prompb.LabelMatcher{name}},
			readResult{}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name+"/samples", func(t *testing.T) {
			body := encodeReadRequest(t, &prompb.ReadRequest{Queries: []*prompb.Query{tc.q}, AcceptedResponseTypes: samples})
			got := decodeSamples(t, postRead(t, url, body))
			if len(got) != 1 {
				t.Fatalf("%d results, want 1", len(got))
			}
			checkResult(t, got[0], tc.want)
		})
		t.Run(tc.name+"/streamed", func(t *testing.T) {
			body := encodeReadRequest(t, &prompb.ReadRequest{Queries: []*prompb.Query{tc.q}, AcceptedResponseTypes: streamed})
			got, st, err := decodeStreamed(t, postRead(t, url, body), 1)
			if err != nil {
				t.Fatal(err)
			}
			checkResult(t, got[0], tc.want)
			if tc.wantFrames != nil && !equalMaps(st.seriesFrames, tc.wantFrames) {
				t.Fatalf("frames per series %v, want %v", st.seriesFrames, tc.wantFrames)
			}
		})
	}
}

func equalMaps(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestRemoteReadSeveralQueries checks that each query's series come back
// under its own index.
func TestRemoteReadSeveralQueries(t *testing.T) {
	url := newReadTestServer(t, 0, nil)
	end := readTestT0 + 299*10_000
	qs := []*prompb.Query{
		{StartTimestampMs: readTestT0, EndTimestampMs: readTestT0 + 500_000, Matchers: []*prompb.LabelMatcher{matcher(prompb.LabelMatcher_EQ, "__name__", "other_v")}},
		{StartTimestampMs: readTestT0, EndTimestampMs: end, Matchers: []*prompb.LabelMatcher{matcher(prompb.LabelMatcher_EQ, "__name__", "nope")}},
		{StartTimestampMs: readTestT0 + 1_000_000, EndTimestampMs: end, Matchers: []*prompb.LabelMatcher{matcher(prompb.LabelMatcher_EQ, "host", "b")}},
	}
	wants := []readResult{
		want([]string{`other_v{host="a"}`}, readTestT0, readTestT0+500_000),
		{},
		want([]string{`rr_v{host="b"}`}, readTestT0+1_000_000, end),
	}
	gotS := decodeSamples(t, postRead(t, url, encodeReadRequest(t, &prompb.ReadRequest{Queries: qs})))
	gotC, _, err := decodeStreamed(t, postRead(t, url, encodeReadRequest(t, &prompb.ReadRequest{Queries: qs, AcceptedResponseTypes: streamed})), len(qs))
	if err != nil {
		t.Fatal(err)
	}
	if len(gotS) != len(qs) {
		t.Fatalf("%d results, want %d", len(gotS), len(qs))
	}
	for i := range qs {
		checkResult(t, gotS[i], wants[i])
		checkResult(t, gotC[i], wants[i])
	}
}

// TestRemoteReadNegotiation checks that the first supported accepted type
// is chosen, and SAMPLES when the client names none.
func TestRemoteReadNegotiation(t *testing.T) {
	url := newReadTestServer(t, 0, nil)
	q := &prompb.Query{StartTimestampMs: readTestT0, EndTimestampMs: readTestT0, Matchers: []*prompb.LabelMatcher{matcher(prompb.LabelMatcher_EQ, "host", "a")}}
	for _, tc := range []struct {
		accepted []prompb.ReadRequest_ResponseType
		ctype    string
	}{
		{nil, "application/x-protobuf"},
		{[]prompb.ReadRequest_ResponseType{42, prompb.ReadRequest_STREAMED_XOR_CHUNKS, prompb.ReadRequest_SAMPLES}, "application/x-streamed-protobuf; proto=prometheus.ChunkedReadResponse"},
		{[]prompb.ReadRequest_ResponseType{prompb.ReadRequest_SAMPLES, prompb.ReadRequest_STREAMED_XOR_CHUNKS}, "application/x-protobuf"},
	} {
		resp := postRead(t, url, encodeReadRequest(t, &prompb.ReadRequest{Queries: []*prompb.Query{q}, AcceptedResponseTypes: tc.accepted}))
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != tc.ctype {
			t.Errorf("accepted %v: %d %q, want 200 %q", tc.accepted, resp.StatusCode, resp.Header.Get("Content-Type"), tc.ctype)
		}
	}
}

// TestRemoteReadFrameSize checks that a long series is split over frames
// of about 1 MiB, and reads back whole.
func TestRemoteReadFrameSize(t *testing.T) {
	const n = 200_000
	var lp bytes.Buffer
	var all []readSample
	x := uint64(1)
	for i := range n {
		x = x*6364136223846793005 + 1442695040888963407 // fixed-seed LCG: values that compress badly
		s := readSample{readTestT0 + int64(i)*1000, float64(x>>11) / (1 << 20)}
		all = append(all, s)
		fmt.Fprintf(&lp, "big,host=z v=%v %d\n", s.v, s.t)
	}
	url := newReadTestServer(t, 0, lp.Bytes())
	q := &prompb.Query{StartTimestampMs: 0, EndTimestampMs: math.MaxInt64, Matchers: []*prompb.LabelMatcher{matcher(prompb.LabelMatcher_EQ, "__name__", "big_v")}}
	got, st, err := decodeStreamed(t, postRead(t, url, encodeReadRequest(t, &prompb.ReadRequest{Queries: []*prompb.Query{q}, AcceptedResponseTypes: streamed})), 1)
	if err != nil {
		t.Fatal(err)
	}
	checkResult(t, got[0], readResult{`big_v{host="z"}`: all})
	if st.frames < 2 {
		t.Fatalf("%d frames, want the series split", st.frames)
	}
	// A frame may pass the limit by one chunk (~1.2 kB here) and the
	// frame's own fields.
	t.Logf("%d frames, the largest %d bytes", st.frames, st.maxFrameSize)
	if st.maxFrameSize > remoteReadMaxBytesInFrame+2048 {
		t.Fatalf("largest frame %d bytes", st.maxFrameSize)
	}
}

type errorBody struct {
	Status    string `json:"status"`
	ErrorType string `json:"errorType"`
	Error     string `json:"error"`
}

// TestRemoteReadErrors checks the answer to each malformed or over-limit
// request.
func TestRemoteReadErrors(t *testing.T) {
	url := newReadTestServer(t, 250, nil) // less than one series
	all := &prompb.Query{StartTimestampMs: 0, EndTimestampMs: math.MaxInt64, Matchers: []*prompb.LabelMatcher{matcher(prompb.LabelMatcher_RE, "__name__", ".+")}}
	req := func(qs ...*prompb.Query) *prompb.ReadRequest { return &prompb.ReadRequest{Queries: qs} }
	enc := func(r *prompb.ReadRequest) []byte { return encodeReadRequest(t, r) }
	cases := []struct {
		name     string
		body     []byte
		code     int
		typ, msg string
	}{
		{"empty body", nil, 400, "bad_data", "empty request body"},
		{"bad snappy", []byte("not snappy at all"), 400, "bad_data", "decode snappy"},
		{"truncated snappy", snappy.Encode(nil, bytes.Repeat([]byte("hello "), 100))[:10], 400, "bad_data", "decode snappy"},
		{"snappy length bomb", []byte{0xff, 0xff, 0xff, 0xff, 0x0f, 0}, 413, "too_large", "request body too large"},
		{"bad protobuf", snappy.Encode(nil, []byte{0xff, 0xff, 0xff}), 400, "bad_data", "decode protobuf"},
		{"no queries", enc(req()), 400, "bad_data", "has no queries"},
		{"no matchers", enc(req(&prompb.Query{EndTimestampMs: 1})), 400, "bad_data", "query 0 has no matchers"},
		{"bad regex", enc(req(all, &prompb.Query{Matchers: []*prompb.LabelMatcher{matcher(prompb.LabelMatcher_RE, "host", "a(")}})), 400, "bad_data", "query 1: invalid matcher host=~\"a(\": error parsing regexp"},
		{"unknown matcher type", enc(req(&prompb.Query{Matchers: []*prompb.LabelMatcher{matcher(7, "host", "a")}})), 400, "bad_data", "unknown matcher type 7"},
		{"unsupported response type", enc(&prompb.ReadRequest{Queries: []*prompb.Query{all}, AcceptedResponseTypes: []prompb.ReadRequest_ResponseType{5}}), 400, "bad_data", "none of the accepted response types"},
		{"too many samples", enc(req(all)), 422, "execution", "more than 250 samples"},
		// The limit is reached before the first frame: the status can still say so.
		{"too many samples streamed", enc(&prompb.ReadRequest{Queries: []*prompb.Query{{StartTimestampMs: 0, EndTimestampMs: math.MaxInt64,
			Matchers: []*prompb.LabelMatcher{matcher(prompb.LabelMatcher_EQ, "__name__", "rr_v")}}}, AcceptedResponseTypes: streamed}), 422, "execution", "more than 250 samples"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp := postRead(t, url, tc.body)
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.code {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.code, b)
			}
			var eb errorBody
			if err := json.Unmarshal(b, &eb); err != nil {
				t.Fatalf("error body is not JSON: %q", b)
			}
			if eb.Status != "error" || eb.ErrorType != tc.typ || !strings.Contains(eb.Error, tc.msg) {
				t.Fatalf("got %+v, want errorType %q and a message containing %q", eb, tc.typ, tc.msg)
			}
		})
	}
}

// TestRemoteReadLimitMidStream checks that a streamed answer that reaches
// the sample limit after its first frame ends in an error the client sees,
// not in a clean end of stream.
//
// Whichever way the client sees the cut, the server must have cut it on
// purpose: it logged the limit and aborted the handler, it did not crash
// (a crash also cuts the connection, but net/http logs "panic serving"),
// and it still answers the next request.
func TestRemoteReadLimitMidStream(t *testing.T) {
	url, logs := startReadTestServer(t, 500, nil) // rr_v{host="a"} (300) fits, host="b" does not
	q := &prompb.Query{StartTimestampMs: 0, EndTimestampMs: math.MaxInt64, Matchers: []*prompb.LabelMatcher{matcher(prompb.LabelMatcher_EQ, "__name__", "rr_v")}}
	body := encodeReadRequest(t, &prompb.ReadRequest{Queries: []*prompb.Query{q}, AcceptedResponseTypes: streamed})
	// The first frame may still sit in the server's buffer when the
	// connection is cut: then the request itself fails.
	resp, err := http.Post(url+"/api/v1/read", "application/x-protobuf", bytes.NewReader(body))
	if err == nil {
		_, _, err = decodeStreamed(t, resp, 1)
		resp.Body.Close()
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("stream ended with %v, want an unexpected EOF", err)
		}
	} else if opErr := (*net.OpError)(nil); errors.As(err, &opErr) && opErr.Op == "dial" {
		t.Fatalf("the request never reached the server: %v", err)
	}
	got := logs.String()
	if !strings.Contains(got, "cutting the connection") || !strings.Contains(got, "more than 500 samples") {
		t.Fatalf("the server did not log cutting the stream at the sample limit; client saw %v; log:\n%s", err, got)
	}
	if strings.Contains(got, "panic serving") {
		t.Fatalf("the handler crashed:\n%s", got)
	}
	// The server goes on serving.
	small := &prompb.Query{StartTimestampMs: 0, EndTimestampMs: math.MaxInt64, Matchers: []*prompb.LabelMatcher{matcher(prompb.LabelMatcher_EQ, "__name__", "other_v")}}
	resp, err = http.Post(url+"/api/v1/read", "application/x-protobuf",
		bytes.NewReader(encodeReadRequest(t, &prompb.ReadRequest{Queries: []*prompb.Query{small}, AcceptedResponseTypes: streamed})))
	if err != nil {
		t.Fatalf("the next request: %v", err)
	}
	defer resp.Body.Close()
	if _, _, err := decodeStreamed(t, resp, 1); err != nil {
		t.Fatalf("the next request's stream: %v", err)
	}
}
