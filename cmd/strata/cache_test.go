package main

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"
)

// rangeStatus runs a range query and returns its X-Strata-Cache header and
// body.
func (s *testServer) rangeStatus(params url.Values, header map[string]string) (string, string) {
	s.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.url+"/api/v1/query_range?"+params.Encode(), nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		s.t.Fatalf("query_range: %d %s", resp.StatusCode, b)
	}
	return resp.Header.Get("X-Strata-Cache"), string(b)
}

// TestCacheOverHTTP checks the cache statuses a client sees, the bypass
// switches, that a late write is seen at once, the admin endpoints, and
// that the cache survives a restart.
func TestCacheOverHTTP(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir)
	t0 := time.Unix(1_700_000_000, 0).UTC().Truncate(time.Hour)
	push := func(s *testServer, body []byte) {
		t.Helper()
		if code, resp := s.post("/write?precision=s", "text/plain", body); code != http.StatusNoContent {
			t.Fatalf("push: %d %s", code, resp)
		}
	}
	push(s, linesFor([]string{"a", "b"}, t0, 360, func(h, i int) float64 { return float64(h*1000 + i) }))
	q := url.Values{"query": {`sum by (host) (rs_v)`}, "start": {itoa64(t0.Unix())}, "end": {itoa64(t0.Add(time.Hour).Unix())}, "step": {"60"}}
	expect := func(s *testServer, want string, header map[string]string, params url.Values) string {
		t.Helper()
		got, body := s.rangeStatus(params, header)
		if got != want {
			t.Fatalf("X-Strata-Cache %q, want %q", got, want)
		}
		return body
	}
	first := expect(s, "miss", nil, q)
	if second := expect(s, "hit", nil, q); second != first {
		t.Fatalf("hit differs from miss:\n%s\n%s", first, second)
	}
	nocache := url.Values{}
	for k, v := range q {
		nocache[k] = v
	}
	nocache.Set("nocache", "1")
	if b := expect(s, "bypass", nil, nocache); b != first {
		t.Fatal("bypass answer differs")
	}
	expect(s, "bypass", map[string]string{"Cache-Control": "no-cache"}, q)

	// A late write changes the answer at once.
	push(s, []byte("rs,host=a v=1000000 "+itoa64(t0.Add(30*time.Minute).Unix())+"\n"))
	after := expect(s, "miss", nil, q)
	if after == first {
		t.Fatal("a late write did not change the cached answer")
	}
	expect(s, "hit", nil, q)

	// Admin: a tag and a whole reset.
	if code, body := s.post("/api/v1/admin/cache/invalidate?tag="+url.QueryEscape("m:rs_v:"+t0.Format(time.DateOnly)), "", nil); code != http.StatusNoContent {
		t.Fatalf("invalidate: %d %s", code, body)
	}
	expect(s, "miss", nil, q)
	req, _ := http.NewRequest(http.MethodDelete, s.url+"/api/v1/admin/cache", nil)
	if code, body := s.do(req); code != http.StatusNoContent {
		t.Fatalf("reset: %d %s", code, body)
	}
	expect(s, "miss", nil, q)
	if code, body := s.post("/api/v1/admin/cache/invalidate?"+url.Values{"match[]": {"rs_v"}, "start": {itoa64(t0.Unix())}, "end": {itoa64(t0.Add(time.Hour).Unix())}}.Encode(), "", nil); code != http.StatusNoContent {
		t.Fatalf("invalidate by match: %d %s", code, body)
	}
	expect(s, "miss", nil, q)

	var st map[string]any
	s.get("/api/v1/status/cache", nil, &st)
	for _, k := range []string{"hits", "misses", "invalidations", "entries", "hitRatio"} {
		if _, ok := st[k]; !ok {
			t.Fatalf("status/cache lacks %q: %v", k, st)
		}
	}
	if st["hits"].(float64) < 2 {
		t.Fatalf("status/cache counts %v hits", st["hits"])
	}

	// Saved on shutdown, loaded on start: the first query after a restart
	// is a hit, and equal to the answer before.
	s.stop()
	s = startServer(t, dir)
	if b := expect(s, "hit", nil, q); b != after {
		t.Fatal("answer after restart differs")
	}
}

// TestWarmQueriesAfterRestart configures a dashboard query to keep warm:
// after a restart the warmer computes it, so the first user request for
// it is answered from the cache (all but the freshest minute).
func TestWarmQueriesAfterRestart(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir)
	now := time.Now().UTC()
	var lines []byte
	for ts := now.Add(-2 * time.Hour); ts.Before(now); ts = ts.Add(time.Minute) {
		lines = append(lines, []byte("wq,host=a v=1 "+itoa64(ts.Unix())+"\n")...)
	}
	if code, body := s.post("/write?precision=s", "text/plain", lines); code != http.StatusNoContent {
		t.Fatalf("push: %d %s", code, body)
	}
	s.stop()
	s = startServer(t, dir, "--cache.warm-queries", "1h:1m:sum(wq_v)", "--cache.max-bytes", "33554432")
	deadline := time.Now().Add(20 * time.Second)
	for {
		var st map[string]any
		s.get("/api/v1/status/cache", nil, &st)
		if c, _ := st["computations"].(float64); c >= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the warmer computed nothing: %v", st)
		}
		time.Sleep(20 * time.Millisecond)
	}
	end := time.Now().UTC().Truncate(time.Minute)
	got, _ := s.rangeStatus(url.Values{"query": {"sum(wq_v)"}, "start": {itoa64(end.Add(-time.Hour).Unix())}, "end": {itoa64(end.Unix())}, "step": {"60"}}, nil)
	if got != "partial" && got != "hit" {
		t.Fatalf("first request after a warm restart: %s, want partial or hit", got)
	}
}

// TestStoredAnswersConcurrent: stored answers of several sizes (small ones,
// and one spread over several parts of the cache), asked for concurrently
// over HTTP, with and without gzip, are each byte for byte the answer
// computed without the cache (they are read into buffers reused from one
// request to another).
func TestStoredAnswersConcurrent(t *testing.T) {
	s := startServer(t, "")
	t0 := time.Unix(1_700_000_000, 0).UTC().Truncate(time.Hour)
	hosts := make([]string, 120)
	for i := range hosts {
		hosts[i] = fmt.Sprintf("host-%03d", i)
	}
	if code, resp := s.post("/write?precision=s", "text/plain", linesFor(hosts, t0, 360, func(h, i int) float64 { return float64(h*1000+i) / 7 })); code != http.StatusNoContent {
		t.Fatalf("push: %d %s", code, resp)
	}
	window := func(q string, step int) url.Values {
		return url.Values{"query": {q}, "start": {itoa64(t0.Unix())}, "end": {itoa64(t0.Add(time.Hour).Unix())}, "step": {fmt.Sprint(step)}}
	}
	queries := []url.Values{
		window(`rs_v`, 10), // about 700 KB
		window(`max_over_time(rs_v{host="host-007"}[1m])`, 60),
		window(`sum(rs_v)`, 30),
		window(`avg by (host) (rs_v)`, 300),
		window(`rs_v{host=~"host-00."}`, 20),
	}
	clients := []*http.Client{{Transport: &http.Transport{DisableCompression: true}}, {}} // plain, gzip
	fetch := func(c *http.Client, q url.Values) (string, string, error) {
		resp, err := c.Get(s.url + "/api/v1/query_range?" + q.Encode())
		if err != nil {
			return "", "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("%d %s", resp.StatusCode, b)
		}
		return resp.Header.Get("X-Strata-Cache"), string(b), err
	}
	want := make([]string, len(queries))
	for i, q := range queries {
		fresh := url.Values{"nocache": {"1"}}
		for k, v := range q {
			fresh[k] = v
		}
		var err error
		if _, want[i], err = fetch(clients[0], fresh); err != nil {
			t.Fatal(err)
		}
		for _, c := range clients {
			for range 3 { // a miss, a hit of extents (stored then), a stored hit
				if _, _, err := fetch(c, q); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if len(want[0]) < 256<<10 {
		t.Fatalf("the largest answer has %d bytes: too small to span parts", len(want[0]))
	}
	errs := make(chan error, 8)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range 60 {
				i := (g + k*3) % len(queries)
				st, body, err := fetch(clients[(g+k)%2], queries[i])
				if err == nil && (st != "hit" || body != want[i]) {
					err = fmt.Errorf("%s: answer %q of %d bytes differs from the fresh one (%d bytes)", queries[i].Get("query"), st, len(body), len(want[i]))
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}
