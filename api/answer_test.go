package api

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"testing"
)

// TestConcurrentRangeAnswers asks range queries of different answers
// (small and large, plain and gzipped, the cache bypassed so that every
// request encodes its answer) from 8 goroutines at once, and compares
// each answer with the one the same query got alone: range answers are
// encoded into pooled buffers, and one given back while still sent, or
// shared by two requests, would mix answers (run with -race).
func TestConcurrentRangeAnswers(t *testing.T) {
	var extra bytes.Buffer
	for h := range 40 {
		for i := range 300 {
			fmt.Fprintf(&extra, "big,host=h%d,region=r%d v=%v %d\n", h, h%3, float64(h*i)/7, readTestT0+int64(i)*10_000)
		}
	}
	base := newReadTestServer(t, 0, extra.Bytes())
	start, end := strconv.FormatInt(readTestT0/1000, 10), strconv.FormatInt(readTestT0/1000+2990, 10)
	var urls []string
	for _, q := range []string{`big_v`, `big_v{host="h7"}`, `sum by (region) (big_v)`, `avg by (host) (avg_over_time(big_v[5m]))`, `rr_v`, `max(max_over_time(big_v{host="h3"}[1m]))`} {
		for _, step := range []string{"10", "60", "300"} {
			urls = append(urls, base+"/api/v1/query_range?"+url.Values{"query": {q}, "start": {start}, "end": {end}, "step": {step}}.Encode())
		}
	}
	plain := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	gzipped := &http.Client{Transport: &http.Transport{}} // asks for gzip, inflates
	get := func(c *http.Client, u string) ([]byte, error) {
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		req.Header.Set("Cache-Control", "no-cache")
		resp, err := c.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("%s: %d %s", u, resp.StatusCode, b)
		}
		return b, err
	}
	want := make([][]byte, len(urls))
	for i, u := range urls {
		b, err := get(plain, u)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) < 2*gzipMin && i == 0 {
			t.Fatalf("the first answer has %d bytes: too small to be gzipped", len(b))
		}
		want[i] = b
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := plain
			if g%2 == 1 {
				c = gzipped
			}
			for k := range 60 {
				i := (g*7 + k*5) % len(urls)
				b, err := get(c, urls[i])
				if err == nil && !bytes.Equal(b, want[i]) {
					err = fmt.Errorf("%s: answered concurrently\n%.300s\nalone\n%.300s", urls[i], b, want[i])
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
		t.Error(err)
	}
}

// TestRangeAnswerHeaders: a range answer (of 3 series × 300 points, so
// gzipped when the client asks) carries its cache status and resolution,
// Vary: Accept-Encoding, its length, JSON's content type and, gzipped,
// its encoding, each header once.
func TestRangeAnswerHeaders(t *testing.T) {
	base := newReadTestServer(t, 0, nil)
	start := strconv.FormatInt(readTestT0/1000, 10)
	end := strconv.FormatInt(readTestT0/1000+2990, 10)
	u := base + "/api/v1/query_range?" + url.Values{"query": {"rr_v"}, "start": {start}, "end": {end}, "step": {"10"}}.Encode()
	for _, gz := range []bool{false, true} {
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		if gz {
			req.Header.Set("Accept-Encoding", "gzip")
		}
		resp, err := (&http.Client{Transport: &http.Transport{DisableCompression: true}}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("gzip %t: %d %v %s", gz, resp.StatusCode, err, body)
		}
		want := map[string]string{
			"X-Strata-Cache": "bypass", "X-Strata-Resolution": "raw", // the test server has no cache "Vary": "Accept-Encoding",
			"Content-Length": strconv.Itoa(len(body)), "Content-Type": "application/json",
		}
		if gz {
			want["Content-Encoding"] = "gzip"
		}
		for k, v := range want {
			if got := resp.Header.Values(k); len(got) != 1 || got[0] != v {
				t.Errorf("gzip %t: %s %q, want %q once", gz, k, got, v)
			}
		}
		if !gz && resp.Header.Get("Content-Encoding") != "" {
			t.Errorf("plain answer with Content-Encoding %q", resp.Header.Get("Content-Encoding"))
		}
	}
}
