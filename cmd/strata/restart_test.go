package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"testing"
	"time"
)

// rawQuery returns the raw body of a GET, failing the test on a non-200.
func (s *testServer) rawQuery(path string, params url.Values) string {
	s.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.url+path+"?"+params.Encode(), nil)
	code, body := s.do(req)
	if code != http.StatusOK {
		s.t.Fatalf("GET %s?%s: %d %s", path, params.Encode(), code, body)
	}
	return body
}

type tsdbStatusData struct {
	HeadStats struct {
		NumSeries  int64 `json:"numSeries"`
		NumSamples int64 `json:"numSamples"`
	} `json:"headStats"`
	Segments []struct {
		ID         string `json:"id"`
		MinTime    int64  `json:"minTime"`
		MaxTime    int64  `json:"maxTime"`
		Samples    int64  `json:"samples"`
		Level      int    `json:"level"`
		Resolution int64  `json:"resolution"`
	} `json:"segments"`
	BytesPerSample float64 `json:"bytesPerSample"`
}

func (s *testServer) status() tsdbStatusData {
	s.t.Helper()
	var st tsdbStatusData
	s.get("/api/v1/status/tsdb", nil, &st)
	return st
}

// rawSegments returns the status with rollup segments left out.
func (s *testServer) rawSegments() tsdbStatusData {
	s.t.Helper()
	st := s.status()
	raw := st.Segments[:0]
	for _, seg := range st.Segments {
		if seg.Resolution == 0 {
			raw = append(raw, seg)
		}
	}
	st.Segments = raw
	return st
}

func (s *testServer) flush() {
	s.t.Helper()
	if code, body := s.post("/api/v1/admin/tsdb/flush", "", nil); code != http.StatusNoContent {
		s.t.Fatalf("flush: %d %s", code, body)
	}
}

// linesFor writes one gauge per host from t0 every 10 s for n samples.
func linesFor(hosts []string, t0 time.Time, n int, value func(h, i int) float64) []byte {
	var b bytes.Buffer
	for hi, h := range hosts {
		for i := range n {
			fmt.Fprintf(&b, "rs,host=%s v=%v %d\n", h, value(hi, i), t0.Add(time.Duration(i)*10*time.Second).Unix())
		}
	}
	return b.Bytes()
}

// TestRestartKeepsAnswers writes data that ends up in several segments
// (two blocks, one of them backfilled after its flush) and in the head,
// then checks that a set of queries answers byte for byte the same after a
// restart, and again after compaction merged the backfilled block.
func TestRestartKeepsAnswers(t *testing.T) {
	dir := t.TempDir()
	blockA := time.Unix(1_700_000_000, 0).UTC().Truncate(2 * time.Hour)
	blockB := blockA.Add(2 * time.Hour)
	blockC := blockB.Add(2 * time.Hour)
	hosts := []string{"a", "b", "c"}
	// No automatic flushes or compactions in the first run.
	s := startServer(t, dir, "--storage.maintenance-interval", "1h")
	push := func(body []byte) {
		t.Helper()
		if code, resp := s.post("/write?precision=s", "text/plain", body); code != http.StatusNoContent {
			t.Fatalf("push: %d %s", code, resp)
		}
	}
	push(linesFor(hosts, blockA, 720, func(h, i int) float64 { return float64(h*1000 + i) }))
	push(linesFor(hosts, blockB, 720, func(h, i int) float64 { return float64(h*1000+i) + 0.5 }))
	s.flush()
	// Backfill: rewrite every 5th sample of block A and add samples between.
	var late bytes.Buffer
	for i := 0; i < 720; i += 5 {
		ts := blockA.Add(time.Duration(i) * 10 * time.Second)
		fmt.Fprintf(&late, "rs,host=a v=%d %d\n", -i, ts.Unix())
		fmt.Fprintf(&late, "rs,host=a v=%d %d\n", 7, ts.Add(5*time.Second).Unix())
	}
	push(late.Bytes())
	s.flush()
	push(linesFor(hosts, blockC, 100, func(h, i int) float64 { return float64(h + i) })) // stays in the head

	st := s.status()
	if len(st.Segments) != 3 || st.HeadStats.NumSamples == 0 {
		t.Fatalf("want 3 segments (A, B, A again) and data in the head, got %d segments, %d head samples", len(st.Segments), st.HeadStats.NumSamples)
	}
	end := blockC.Add(100 * 10 * time.Second)
	queries := []url.Values{
		{"query": {`rs_v{host="a"}[7h]`}, "time": {fmt.Sprint(end.Unix())}}, // every raw sample
		{"query": {`rs_v[7h]`}, "time": {fmt.Sprint(end.Unix())}},
		{"query": {`sum by (host) (rate(rs_v[5m]))`}, "start": {fmt.Sprint(blockA.Unix())}, "end": {fmt.Sprint(end.Unix())}, "step": {"60"}},
		{"query": {`max_over_time(rs_v[30m])`}, "start": {fmt.Sprint(blockA.Unix())}, "end": {fmt.Sprint(end.Unix())}, "step": {"300"}},
	}
	answers := func(s *testServer) []string {
		var out []string
		for _, q := range queries {
			path := "/api/v1/query"
			if q.Has("step") {
				path = "/api/v1/query_range"
			}
			out = append(out, s.rawQuery(path, q))
		}
		out = append(out, s.rawQuery("/api/v1/series", url.Values{"match[]": {"rs_v"}}))
		out = append(out, s.rawQuery("/api/v1/label/host/values", nil))
		return out
	}
	before := answers(s)
	// The backfill won: host a's block A holds -i at every 5th sample.
	if !bytes.Contains([]byte(before[0]), []byte(`"-5"`)) || !bytes.Contains([]byte(before[0]), []byte(`"7"`)) {
		t.Fatalf("backfilled samples missing from %.300s", before[0])
	}
	s.stop()

	// Restart with compaction on; answers must not change, before or after
	// the two segments of block A become one.
	s = startServer(t, dir, "--storage.maintenance-interval", "50ms")
	after := answers(s)
	for i := range before {
		if before[i] != after[i] {
			t.Fatalf("answer %d changed across the restart:\nbefore %.400s\nafter  %.400s", i, before[i], after[i])
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		st := s.rawSegments()
		perBlock := map[int64]int{}
		for _, seg := range st.Segments {
			perBlock[seg.MinTime/(2*3600*1000)]++
		}
		if len(st.Segments) > 0 && len(perBlock) == len(st.Segments) {
			break // one segment per block
		}
		if time.Now().After(deadline) {
			t.Fatalf("segments were not compacted: %+v", st.Segments)
		}
		time.Sleep(50 * time.Millisecond)
	}
	compacted := answers(s)
	for i := range before {
		if before[i] != compacted[i] {
			t.Fatalf("answer %d changed after compaction:\nbefore %.400s\nafter  %.400s", i, before[i], compacted[i])
		}
	}
}

// envInt returns the integer in the environment variable name, or def
// when it is not set; a value that is not an integer fails the test.
func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		t.Fatalf("%s=%q: %v", name, v, err)
	}
	return n
}

func itoa64(i int64) string { return fmt.Sprint(i) }

// decodeData decodes a success envelope's data.
func decodeData(t *testing.T, body string, data any) {
	t.Helper()
	var env struct {
		Status string          `json:"status"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal([]byte(body), &env); err != nil || env.Status != "success" {
		t.Fatalf("bad envelope %q: %v", body, err)
	}
	if err := json.Unmarshal(env.Data, data); err != nil {
		t.Fatalf("decode %s: %v", env.Data, err)
	}
}
