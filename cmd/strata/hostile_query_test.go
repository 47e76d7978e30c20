package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// peakRSS returns the peak resident set size of process pid (VmHWM), in
// bytes.
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skipf("peak RSS needs /proc: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc/<pid>/status")
	return 0
}

// hostileRSSBound is the peak RSS the server must stay under through
// TestHostileQueriesBoundedMemory (docs/operations.md states it): the
// default query.max_select_bytes (128 MiB) of selections, the Go heap's
// headroom over it, and the server's own few tens of MB.
const hostileRSSBound = 512 << 20

// TestHostileQueriesBoundedMemory sends the queries of issue 16 that took
// the machine's memory to the real binary, over 2,000 series: 3,000
// selectors in one instant or range query (which reached 4.7 GB), 3,000
// rate() selectors, and the Explore page's listing of every series over
// all time. The selector-heavy ones must end with a 422 naming
// query.max_select_bytes, the listings must answer, /healthz must answer
// throughout, and the server's peak RSS (VmHWM, from /proc) must stay under
// hostileRSSBound.
func TestHostileQueriesBoundedMemory(t *testing.T) {
	p := startProcess(t, strataBinary(t), t.TempDir())
	defer p.kill(t)
	pid := p.cmd.Process.Pid
	now := time.Now().Truncate(time.Second)
	var body bytes.Buffer
	for i := range 2000 {
		for j := range 10 {
			fmt.Fprintf(&body, "qp,i=%d,job=j%d v=%d %d\n", i, i%7, j, now.Add(-time.Duration(10-j)*time.Minute).Unix())
		}
	}
	resp, err := http.Post(p.url+"/write?precision=s", "text/plain", &body)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("write: %d", resp.StatusCode)
	}
	base := peakRSS(t, pid)

	// /healthz answers throughout.
	var (
		stop      = make(chan struct{})
		wg        sync.WaitGroup
		healthz   atomic.Int64
		unhealthy atomic.Int64
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		client := &http.Client{Timeout: 30 * time.Second}
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			resp, err := client.Get(p.url + "/healthz")
			if err != nil {
				t.Errorf("/healthz: %v", err)
				unhealthy.Add(1)
				continue
			}
			resp.Body.Close()
			healthz.Add(1)
			if resp.StatusCode != http.StatusOK {
				t.Errorf("/healthz: %d", resp.StatusCode)
				unhealthy.Add(1)
			}
		}
	}()

	terms := func(n int, term string) string { return strings.TrimSuffix(strings.Repeat(term+" + ", n), " + ") }
	at := strconv.FormatInt(now.Unix(), 10)
	for _, c := range []struct {
		name, path string
		form       url.Values
		status     int
		want       string
	}{
		{"3000 selectors, instant", "/api/v1/query", url.Values{"query": {terms(3000, "qp_v")}, "time": {at}}, 422, "query.max_select_bytes"},
		{"3000 selectors, range", "/api/v1/query_range", url.Values{"query": {terms(3000, "qp_v")}, "start": {strconv.FormatInt(now.Add(-time.Hour).Unix(), 10)}, "end": {at}, "step": {"60"}}, 422, "query.max_select_bytes"},
		{"3000 rate selectors", "/api/v1/query", url.Values{"query": {terms(3000, "sum(rate(qp_v[10m]))")}, "time": {at}}, 422, "query.max_select_bytes"},
		{"3000 selectors, one series each", "/api/v1/query", url.Values{"query": {terms(3000, `qp_v{i="7"}`)}, "time": {at}}, 200, `"i":"7"`},
		{"every series over all time", "/api/v1/series", url.Values{"match[]": {`{__name__=~".+"}`}}, 200, `"i":"1999"`},
		{"every label", "/api/v1/labels", url.Values{"match[]": {`{__name__=~".+"}`}}, 200, `"job"`},
		{"every value of i", "/api/v1/label/i/values", url.Values{"match[]": {`{__name__=~".+"}`}}, 200, `"1999"`},
	} {
		start := time.Now()
		resp, err := http.Get(p.url + c.path + "?" + c.form.Encode())
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != c.status || !strings.Contains(string(b), c.want) {
			t.Errorf("%s: %d %.300s; want %d with %s", c.name, resp.StatusCode, b, c.status, c.want)
		}
		t.Logf("%s: %d in %v, peak RSS so far %d MiB", c.name, resp.StatusCode, time.Since(start).Round(time.Millisecond), peakRSS(t, pid)>>20)
	}
	close(stop)
	wg.Wait()
	peak := peakRSS(t, pid)
	t.Logf("peak RSS %d MiB after the writes, %d MiB after the queries (bound %d MiB); %d /healthz answers",
		base>>20, peak>>20, hostileRSSBound>>20, healthz.Load())
	if peak > hostileRSSBound {
		t.Errorf("peak RSS %d MiB, over the bound of %d MiB", peak>>20, hostileRSSBound>>20)
	}
	if healthz.Load() == 0 || unhealthy.Load() > 0 {
		t.Errorf("/healthz: %d answers, %d failures", healthz.Load(), unhealthy.Load())
	}
}
