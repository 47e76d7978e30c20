package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"
)

// TestRollupsOverHTTP backfills three days that are old enough to roll up,
// runs downsampling and retention through the admin API, and checks that a
// 1 h-step query read from rollups answers what raw data answers, and that
// max_source_resolution is honoured and validated.
func TestRollupsOverHTTP(t *testing.T) {
	s := startServer(t, "", "--storage.maintenance-interval", "1h", "--downsample.5m-to-1h-after", "48h")
	end := time.Now().UTC().Add(-48 * time.Hour).Truncate(24 * time.Hour)
	start := end.Add(-3 * 24 * time.Hour)
	var b bytes.Buffer
	for ts := start; ts.Before(end); ts = ts.Add(time.Minute) {
		for h := range 2 {
			fmt.Fprintf(&b, "ru,host=h%d v=%d %d\n", h, (ts.Unix()/60)%97+int64(h), ts.Unix())
		}
	}
	if code, body := s.post("/write?precision=s", "text/plain", b.Bytes()); code != http.StatusNoContent {
		t.Fatalf("push: %d %s", code, body)
	}
	s.flush()
	var job struct {
		RollupsWritten int `json:"rollupsWritten"`
	}
	code, body := s.post("/api/v1/admin/downsample/run", "", nil)
	if code != http.StatusOK {
		t.Fatalf("downsample/run: %d %s", code, body)
	}
	decodeData(t, body, &job)
	if job.RollupsWritten == 0 {
		t.Fatalf("no rollups written: %s", body)
	}
	res := map[int64]int{}
	var st struct {
		Segments []struct {
			Resolution int64 `json:"resolution"`
		} `json:"segments"`
	}
	s.get("/api/v1/status/tsdb", nil, &st)
	for _, seg := range st.Segments {
		res[seg.Resolution]++
	}
	if res[300000] == 0 || res[3600000] == 0 {
		t.Fatalf("segments by resolution: %v", res)
	}
	if code, body := s.post("/api/v1/admin/retention/run", "", nil); code != http.StatusOK {
		t.Fatalf("retention/run: %d %s", code, body)
	}
	q := url.Values{"query": {"max_over_time(ru_v[1h])"}, "start": {itoa64(start.Add(3 * time.Hour).Unix())}, "end": {itoa64(end.Unix())}, "step": {"3600"}, "nocache": {"1"}}
	answer := func(maxRes, wantRes string) string {
		t.Helper()
		p := url.Values{}
		for k, v := range q {
			p[k] = v
		}
		p.Set("max_source_resolution", maxRes)
		req, _ := http.NewRequest(http.MethodGet, s.url+"/api/v1/query_range?"+p.Encode(), nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || resp.Header.Get("X-Strata-Resolution") != wantRes {
			t.Fatalf("max_source_resolution=%s: %d, read %q, want %q: %s", maxRes, resp.StatusCode, resp.Header.Get("X-Strata-Resolution"), wantRes, b)
		}
		return string(b)
	}
	raw, auto, fiveM := answer("raw", "raw"), answer("auto", "1h"), answer("5m", "5m")
	if raw != auto || raw != fiveM {
		t.Fatalf("rollups and raw data disagree:\nraw  %.300s\nauto %.300s\n5m   %.300s", raw, auto, fiveM)
	}
	req, _ := http.NewRequest(http.MethodGet, s.url+"/api/v1/query_range?"+url.Values{"query": {"ru_v"}, "start": {"0"}, "end": {"1"}, "step": {"1"}, "max_source_resolution": {"2h"}}.Encode(), nil)
	code, body = s.do(req)
	checkError(t, code, body, http.StatusBadRequest, "bad_data", "max_source_resolution")
}
