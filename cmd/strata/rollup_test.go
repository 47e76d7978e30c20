package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
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

// TestRollupLateWriteOverHTTP writes a late sample into a day that is
// rolled up, and deletes part of another, and checks through the real
// server that queries reading 5m and 1h rollups see each change at once
// and agree with raw data, that the result cache answers what a fresh
// evaluation does, and that nothing changes once the downsampler has
// rebuilt the days.
func TestRollupLateWriteOverHTTP(t *testing.T) {
	s := startServer(t, "", "--storage.maintenance-interval", "1h", "--downsample.5m-to-1h-after", "48h")
	end := time.Now().UTC().Add(-48 * time.Hour).Truncate(24 * time.Hour)
	start := end.Add(-3 * 24 * time.Hour)
	push := func(body []byte) {
		t.Helper()
		if code, resp := s.post("/write?precision=s", "text/plain", body); code != http.StatusNoContent {
			t.Fatalf("push: %d %s", code, resp)
		}
	}
	var b bytes.Buffer
	for ts := start; ts.Before(end); ts = ts.Add(time.Minute) {
		for h := range 2 {
			fmt.Fprintf(&b, "lw,host=h%d v=%d %d\n", h, (ts.Unix()/60)%97+int64(h), ts.Unix())
		}
	}
	push(b.Bytes())
	s.flush()
	downsample := func() {
		t.Helper()
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
	}
	downsample()

	from, to := start.Add(24*time.Hour), end.Add(-time.Hour)
	type view struct {
		query, step, res string
	}
	views := []view{
		{"max_over_time(lw_v[5m])", "300", "5m"},
		{"max_over_time(lw_v[1h])", "3600", "1h"},
		{"max_over_time(lw_v[5m])", "60", "raw"},
	}
	// answer returns what the server answers for v through the cache
	// (twice: the second answer must be a hit and the same) and checks it
	// equals a fresh evaluation and, for rollups, the raw answer.
	answer := func(v view) string {
		t.Helper()
		p := url.Values{"query": {v.query}, "start": {itoa64(from.Unix())}, "end": {itoa64(to.Unix())}, "step": {v.step}}
		get := func(p url.Values) (string, string, string) {
			t.Helper()
			req, _ := http.NewRequest(http.MethodGet, s.url+"/api/v1/query_range?"+p.Encode(), nil)
			code, h, body := s.roundTrip(req)
			if code != http.StatusOK {
				t.Fatalf("%s: %d %s", p.Encode(), code, body)
			}
			return h.Get("X-Strata-Cache"), h.Get("X-Strata-Resolution"), body
		}
		_, res, first := get(p)
		if res != v.res {
			t.Fatalf("%s at step %s read %s, want %s", v.query, v.step, res, v.res)
		}
		if status, _, second := get(p); status != "hit" || second != first {
			t.Fatalf("%s at step %s: second answer %q and different (%v):\n%.300s\n%.300s", v.query, v.step, status, second != first, first, second)
		}
		p.Set("nocache", "1")
		if _, _, fresh := get(p); fresh != first {
			i := 0
			for i < len(first) && i < len(fresh) && first[i] == fresh[i] {
				i++
			}
			t.Fatalf("%s at step %s: cached answer differs from a fresh one at byte %d:\n%.300s\n%.300s", v.query, v.step, i, first[max(0, i-100):], fresh[max(0, i-100):])
		}
		p.Set("max_source_resolution", "raw")
		if _, _, raw := get(p); raw != first {
			t.Fatalf("%s at step %s: %s rollups and raw data disagree:\n%.300s\n%.300s", v.query, v.step, v.res, first, raw)
		}
		return first
	}
	answers := func() []string {
		var out []string
		for _, v := range views {
			out = append(out, answer(v))
		}
		return out
	}
	same := func(what string, a, b []string) {
		t.Helper()
		for i := range a {
			if a[i] != b[i] {
				t.Fatalf("%s: %s at step %s changed:\n%.300s\n%.300s", what, views[i].query, views[i].step, a[i], b[i])
			}
		}
	}
	before := answers()

	late := start.Add(36*time.Hour + 7*time.Second)
	push([]byte(fmt.Sprintf("lw,host=h0 v=999999 %d\n", late.Unix())))
	withLate := answers()
	for i, a := range withLate {
		if a == before[i] || !strings.Contains(a, `"999999"`) {
			t.Fatalf("%s at step %s does not see the late 999999 at once:\n%.300s", views[i].query, views[i].step, a)
		}
	}
	s.flush()
	same("late sample flushed", withLate, answers())
	downsample()
	same("days rebuilt after the late sample", withLate, answers())

	delFrom := start.Add(2*24*time.Hour + 5*time.Hour + 150*time.Second)
	code, body := s.post("/api/v1/admin/tsdb/delete_series?"+url.Values{
		"match[]": {`lw_v{host="h1"}`}, "start": {itoa64(delFrom.Unix())}, "end": {itoa64(delFrom.Add(97 * time.Minute).Unix())},
	}.Encode(), "", nil)
	if code != http.StatusNoContent {
		t.Fatalf("delete: %d %s", code, body)
	}
	deleted := answers()
	for i, a := range deleted {
		if a == withLate[i] {
			t.Fatalf("%s at step %s: the delete changed nothing", views[i].query, views[i].step)
		}
	}
	downsample()
	same("days rebuilt after the delete", deleted, answers())
}
