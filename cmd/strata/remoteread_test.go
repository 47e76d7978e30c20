package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
)

// The remote read data set: a counter-like series per host, 6 h every
// 10 s from rrT0, long before anything a fresh Prometheus holds itself.
var (
	rrHosts = []string{"a", "b", "c"}
	rrT0    = time.Date(2023, 3, 1, 0, 0, 0, 0, time.UTC)
)

const rrN = 6 * 360 // samples per host

func rrValue(h, i int) float64 { return float64(i*(h+1)) + 0.125*float64(i%8) + float64(h)/3 }

// backfillRemoteRead writes the data set into s: the first 4 h flushed into
// segments, the rest left in the head, so reads merge both.
func backfillRemoteRead(t *testing.T, s *testServer) {
	t.Helper()
	push := func(body []byte) {
		t.Helper()
		if code, resp := s.post("/write?precision=s", "text/plain", body); code != http.StatusNoContent {
			t.Fatalf("push: %d %s", code, resp)
		}
	}
	const split = 4 * 360
	push(linesFor(rrHosts, rrT0, split, rrValue))
	s.flush()
	push(linesFor(rrHosts, rrT0.Add(split*10*time.Second), rrN-split, func(h, i int) float64 { return rrValue(h, i+split) }))
}

// readRecorder is a reverse proxy in front of Strata's remote read that
// notes what each request accepted and how it was answered.
type readRecorder struct {
	mtx      sync.Mutex
	accepted [][]prompb.ReadRequest_ResponseType // guarded by mtx
	answered []string                            // Content-Type of each answer; guarded by mtx
}

func newReadRecorder(t *testing.T, target string) (*readRecorder, string) {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rec := &readRecorder{}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.FlushInterval = -1 // pass streamed frames on at once
	rp.ModifyResponse = func(resp *http.Response) error {
		rec.mtx.Lock()
		rec.answered = append(rec.answered, resp.Header.Get("Content-Type"))
		rec.mtx.Unlock()
		return nil
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if raw, err := snappy.Decode(nil, body); err == nil {
			var req prompb.ReadRequest
			if req.Unmarshal(raw) == nil {
				rec.mtx.Lock()
				rec.accepted = append(rec.accepted, req.AcceptedResponseTypes)
				rec.mtx.Unlock()
			}
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return rec, srv.URL
}

// freePort returns a port on 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// syncBuffer collects a child process' output.
type syncBuffer struct {
	mtx sync.Mutex
	b   bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mtx.Lock()
	defer b.mtx.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mtx.Lock()
	defer b.mtx.Unlock()
	return b.b.String()
}

// startPrometheus runs a real Prometheus on 127.0.0.1:port (chosen
// beforehand, for a configuration that names it) with the given
// configuration, waits until it is ready and returns its URL. It is killed
// when the test ends, and after 5 minutes in any case. extra are more flags.
func startPrometheus(t *testing.T, port int, config string, extra ...string) string {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Fatalf("this test needs Prometheus: apt-get install prometheus (.ci/test does): %v", err)
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfg, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	cmd := exec.CommandContext(ctx, bin,
		"--config.file="+cfg,
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--storage.tsdb.retention.time=2h", // Strata's 2023 data is never Prometheus' own
		"--web.listen-address="+addr,
		"--log.level=warn",
	)
	cmd.Args = append(cmd.Args, extra...)
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start %s: %v", bin, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		cancel()
		<-exited
		if t.Failed() {
			t.Logf("prometheus output:\n%s", out.String())
		}
	})
	base := "http://" + addr
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-exited:
			t.Fatalf("prometheus exited before it was ready:\n%s", out.String())
		default:
		}
		resp, err := http.Get(base + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return base
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("prometheus not ready within 60s:\n%s", out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// prometheusVersion reports the version of the Prometheus it runs.
func prometheusVersion(t *testing.T, base string) string {
	t.Helper()
	var info struct {
		Version string `json:"version"`
	}
	(&testServer{t: t, url: base}).get("/api/v1/status/buildinfo", nil, &info)
	return info.Version
}

// sameMatrix compares two range query answers value for value.
func sameMatrix(t *testing.T, what string, got, want []matrixSeries) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d series, want %d", what, len(got), len(want))
	}
	total := 0
	for i := range want {
		if fmt.Sprint(got[i].Metric) != fmt.Sprint(want[i].Metric) {
			t.Fatalf("%s: series %d is %v, want %v", what, i, got[i].Metric, want[i].Metric)
		}
		gp, wp := got[i].points(t), want[i].points(t)
		if len(gp) != len(wp) {
			t.Fatalf("%s %v: %d points, want %d", what, want[i].Metric, len(gp), len(wp))
		}
		for j := range wp {
			if gp[j].T != wp[j].T || math.Float64bits(gp[j].V) != math.Float64bits(wp[j].V) {
				t.Fatalf("%s %v point %d: %v, want %v", what, want[i].Metric, j, gp[j], wp[j])
			}
		}
		total += len(wp)
	}
	if total == 0 {
		t.Fatalf("%s: no points at all", what)
	}
}

// TestRemoteReadFromPrometheus points a real Prometheus at Strata with
// remote_write and remote_read, as docs/scaling.md shows, and checks that
// PromQL through Prometheus answers exactly what Strata answers itself.
func TestRemoteReadFromPrometheus(t *testing.T) {
	s := startServer(t, "")
	backfillRemoteRead(t, s)
	rec, readURL := newReadRecorder(t, s.url)
	// The snippet of docs/scaling.md, with the remote read going through
	// the recorder, and a scrape of Prometheus itself to remote-write.
	promPort := freePort(t)
	prom := startPrometheus(t, promPort, fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1m
scrape_configs:
  - job_name: prometheus
    static_configs:
      - targets: ["127.0.0.1:%d"]
remote_write:
  - url: %s/api/v1/write
remote_read:
  - url: %s/api/v1/read
    read_recent: true
`, promPort, s.url, readURL))
	t.Logf("testing against Prometheus %s", prometheusVersion(t, prom))
	promAPI := &testServer{t: t, url: prom}

	t.Run("query_range through remote read", func(t *testing.T) {
		start, end := rrT0.Add(-10*time.Minute), rrT0.Add(rrN*10*time.Second+10*time.Minute)
		// Evaluation times 5 s off the samples' grid: no sample lies on a
		// range boundary, where Prometheus 2 (closed) and 3 (left-open)
		// differ.
		offStart := start.Add(5 * time.Second)
		for _, q := range []struct {
			expr       string
			start, end time.Time
			step       time.Duration
		}{
			{`rs_v`, start, end, time.Minute},
			{`rs_v{host=~"a|c"}`, start, end, 30 * time.Second},
			{`sum by (host) (rate(rs_v[5m]))`, offStart, end, time.Minute},
			{`max_over_time(rs_v{host!="b"}[17m]) - min_over_time(rs_v{host!="b"}[17m])`, offStart, end, 2 * time.Minute},
			{`count_over_time(rs_v[1h])`, offStart, end, time.Minute},
		} {
			want := s.queryRange(q.expr, q.start, q.end, q.step)
			got := promAPI.queryRange(q.expr, q.start, q.end, q.step)
			sameMatrix(t, q.expr, got, want)
		}
		rec.mtx.Lock()
		defer rec.mtx.Unlock()
		if len(rec.accepted) == 0 {
			t.Fatal("Prometheus sent no remote read request")
		}
		for i, acc := range rec.accepted {
			wantType := "application/x-protobuf" // SAMPLES: nothing accepted, or SAMPLES first
			if len(acc) > 0 && acc[0] == prompb.ReadRequest_STREAMED_XOR_CHUNKS {
				wantType = "application/x-streamed-protobuf; proto=prometheus.ChunkedReadResponse"
			}
			if rec.answered[i] != wantType {
				t.Fatalf("request %d accepted %v, answered %q", i, acc, rec.answered[i])
			}
		}
		t.Logf("Prometheus sent %d remote reads accepting %v; Strata answered %q", len(rec.accepted), rec.accepted[0], rec.answered[0])
	})

	t.Run("remote write from Prometheus", func(t *testing.T) {
		// Prometheus scrapes itself every second and remote-writes it.
		deadline := time.Now().Add(60 * time.Second)
		for {
			var d struct {
				Result []struct {
					Metric map[string]string `json:"metric"`
				} `json:"result"`
			}
			s.get("/api/v1/query", url.Values{"query": {`prometheus_build_info{job="prometheus"}`}}, &d)
			if len(d.Result) == 1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("Prometheus' own metrics did not reach Strata through remote_write within 60s")
			}
			time.Sleep(250 * time.Millisecond)
		}
		if refused := s.rawQuery("/metrics", nil); strings.Contains(refused, `strata_ingest_rejected_requests_total{format="remote_write"`) {
			t.Errorf("Strata refused some of Prometheus' remote writes:\n%s", grepLines(refused, "strata_ingest_rejected_requests_total"))
		}
	})

	t.Run("SAMPLES and STREAMED_XOR_CHUNKS from Go", func(t *testing.T) {
		mint, maxt := rrT0.Add(time.Hour).UnixMilli()+1, rrT0.Add(5*time.Hour).UnixMilli()
		q := &prompb.Query{StartTimestampMs: mint, EndTimestampMs: maxt, Matchers: []*prompb.LabelMatcher{
			{Type: prompb.LabelMatcher_EQ, Name: "__name__", Value: "rs_v"},
			{Type: prompb.LabelMatcher_RE, Name: "host", Value: "a|b"},
		}, Hints: &prompb.ReadHints{StartMs: mint, EndMs: maxt, StepMs: 60_000, Func: "rate", RangeMs: 300_000}}
		want := map[string][]point{}
		for h, host := range rrHosts[:2] {
			key := fmt.Sprintf(`rs_v{host="%s"}`, host)
			for i := range rrN {
				ts := rrT0.Add(time.Duration(i) * 10 * time.Second).UnixMilli()
				if ts >= mint && ts <= maxt {
					want[key] = append(want[key], point{ts, rrValue(h, i)})
				}
			}
		}
		for _, typ := range []prompb.ReadRequest_ResponseType{prompb.ReadRequest_SAMPLES, prompb.ReadRequest_STREAMED_XOR_CHUNKS} {
			got := remoteReadGo(t, s.url, q, typ)
			if len(got) != len(want) {
				t.Fatalf("%v: %d series, want %d", typ, len(got), len(want))
			}
			for key, wp := range want {
				gp := got[key]
				if len(gp) != len(wp) {
					t.Fatalf("%v %s: %d samples, want %d", typ, key, len(gp), len(wp))
				}
				for i := range wp {
					if gp[i] != wp[i] {
						t.Fatalf("%v %s sample %d: %v, want %v", typ, key, i, gp[i], wp[i])
					}
				}
			}
		}
	})
}

func grepLines(s, substr string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// remoteReadGo sends one remote read query with prompb and decodes the
// answer of the given type into samples per series.
func remoteReadGo(t *testing.T, base string, q *prompb.Query, typ prompb.ReadRequest_ResponseType) map[string][]point {
	t.Helper()
	resp := postRemoteRead(t, base, &prompb.ReadRequest{Queries: []*prompb.Query{q}, AcceptedResponseTypes: []prompb.ReadRequest_ResponseType{typ}})
	defer resp.Body.Close()
	out := map[string][]point{}
	key := func(ls []prompb.Label) string {
		var name, host string
		for _, l := range ls {
			switch l.Name {
			case "__name__":
				name = l.Value
			case "host":
				host = l.Value
			}
		}
		return fmt.Sprintf(`%s{host="%s"}`, name, host)
	}
	if typ == prompb.ReadRequest_SAMPLES {
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		dec, err := snappy.Decode(nil, body)
		if err != nil {
			t.Fatal(err)
		}
		var rr prompb.ReadResponse
		if err := rr.Unmarshal(dec); err != nil {
			t.Fatal(err)
		}
		for _, ts := range rr.Results[0].Timeseries {
			for _, s := range ts.Samples {
				out[key(ts.Labels)] = append(out[key(ts.Labels)], point{s.Timestamp, s.Value})
			}
		}
		return out
	}
	readChunkedFrames(t, resp.Body, func(cr *prompb.ChunkedReadResponse) {
		for _, cs := range cr.ChunkedSeries {
			for _, c := range cs.Chunks {
				chk, err := chunkenc.FromData(chunkenc.EncXOR, c.Data)
				if err != nil {
					t.Fatal(err)
				}
				it := chk.Iterator(nil)
				for it.Next() == chunkenc.ValFloat {
					ts, v := it.At()
					out[key(cs.Labels)] = append(out[key(cs.Labels)], point{ts, v})
				}
				if it.Err() != nil {
					t.Fatal(it.Err())
				}
			}
		}
	})
	return out
}

// postRemoteRead sends a remote read request to base and returns the
// successful answer, whose body the caller closes.
func postRemoteRead(t *testing.T, base string, rr *prompb.ReadRequest) *http.Response {
	t.Helper()
	raw, err := rr.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, base+"/api/v1/read", bytes.NewReader(snappy.Encode(nil, raw)))
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
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Fatalf("remote read from %s: %d %s", base, resp.StatusCode, b)
	}
	return resp
}

// readChunkedFrames decodes a STREAMED_XOR_CHUNKS answer (frames of a
// uvarint length, a CRC-32C and a ChunkedReadResponse) and hands each
// message to fn.
func readChunkedFrames(t *testing.T, r io.Reader, fn func(*prompb.ChunkedReadResponse)) {
	t.Helper()
	br := bufio.NewReader(r)
	table := crc32.MakeTable(crc32.Castagnoli)
	for {
		size, err := binary.ReadUvarint(br)
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		var sum uint32
		if err := binary.Read(br, binary.BigEndian, &sum); err != nil {
			t.Fatal(err)
		}
		msg := make([]byte, size)
		if _, err := io.ReadFull(br, msg); err != nil {
			t.Fatal(err)
		}
		if crc32.Checksum(msg, table) != sum {
			t.Fatal("frame checksum mismatch")
		}
		var cr prompb.ChunkedReadResponse
		if err := cr.Unmarshal(msg); err != nil {
			t.Fatal(err)
		}
		fn(&cr)
	}
}
