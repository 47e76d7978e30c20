package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// child is the strata binary running as a child, with its log; one
// goroutine waits for it, so that a child that dies is seen at once.
type child struct {
	cmd    *exec.Cmd
	url    string
	logs   *logBuffer
	exited chan struct{} // closed once the process has exited
	err    error         // what Wait returned, set before exited is closed
}

// startLogged runs the binary like startProcess, at log level info, and
// keeps its log.
func startLogged(t *testing.T, bin, dataDir string, args ...string) *child {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"--listen-addr", "127.0.0.1:0", "--data-dir", dataDir, "--log.level", "info",
		"--retention.raw=0", "--retention.5m=0", "--retention.1h=0"}, args...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, logs: &logBuffer{}, exited: make(chan struct{})}
	cmd.Stderr = c.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	urlc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := listenRE.FindStringSubmatch(sc.Text()); m != nil {
				urlc <- m[1]
			}
		}
		c.err = cmd.Wait() // after stdout is drained, as exec requires
		close(c.exited)
	}()
	t.Cleanup(c.kill)
	select {
	case c.url = <-urlc:
		return c
	case <-c.exited:
		t.Fatalf("strata exited at start (%v); log:\n%s", c.err, c.logs.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("strata did not start within 60s; log:\n%s", c.logs.String())
	}
	return nil
}

// kill ends the process with SIGKILL if it still runs.
func (c *child) kill() {
	select {
	case <-c.exited:
	default:
		_ = c.cmd.Process.Kill()
		<-c.exited
	}
}

// exitCode waits for the process to exit and returns its status.
func (c *child) exitCode(t *testing.T, within time.Duration) int {
	t.Helper()
	select {
	case <-c.exited:
	case <-time.After(within):
		t.Fatalf("the process did not exit within %s", within)
	}
	var ee *exec.ExitError
	if errors.As(c.err, &ee) {
		return ee.ExitCode()
	}
	if c.err != nil {
		t.Fatal(c.err)
	}
	return 0
}

// waitRefusing waits until the server no longer accepts connections: it is
// shutting down.
func waitRefusing(t *testing.T, base string) {
	t.Helper()
	addr := strings.TrimPrefix(base, "http://")
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("the server still accepts connections 30s after SIGTERM")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// headSamples reads the head's sample count from /api/v1/status/tsdb.
func headSamples(t *testing.T, base string) int64 {
	t.Helper()
	resp, err := http.Get(base + "/api/v1/status/tsdb")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var env struct{ Data tsdbStatusData }
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
		t.Fatal(err)
	}
	return env.Data.HeadStats.NumSamples
}

// waitGauge polls a gauge on /metrics until it has value want.
func waitGauge(t *testing.T, base, sample string, want float64) {
	t.Helper()
	s := &testServer{t: t, url: base}
	s.waitMetric("", sample, want)
}

// pushUntilRefused runs the writers until the server stops answering.
func pushUntilRefused(ctx context.Context, base string, writers []*crashWriter) *sync.WaitGroup {
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 30 * time.Second}
	for i, w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ctx.Err() == nil && n < 10_000; n++ {
				if !w.push(client, base, (i+n)%2 == 0) {
					return
				}
			}
		}()
	}
	return &wg
}

// TestShutdownGraceful sends SIGTERM to the real binary while writes and
// queries are in flight: the server stops accepting, finishes the requests
// it had (a write and a query whose bodies are still arriving), flushes the
// head and exits 0; after a restart every acknowledged sample is there and
// the write-ahead log replayed no sample.
func TestShutdownGraceful(t *testing.T) {
	bin := strataBinary(t)
	dir := t.TempDir()
	p := startLogged(t, bin, dir)

	writers := make([]*crashWriter, 4)
	for i := range writers {
		writers[i] = &crashWriter{id: i}
	}
	for _, w := range writers { // some data before the signal
		if !w.push(http.DefaultClient, p.url, false) || len(w.acked) == 0 {
			t.Fatal("first push failed")
		}
	}
	heldWrite := holdRequest(t, http.MethodPost, p.url+"/write?precision=s", "text/plain", []byte("inflight,h=a f=1 1700000000\n"))
	heldQuery := holdRequest(t, http.MethodPost, p.url+"/api/v1/query", "application/x-www-form-urlencoded", []byte("query=vector(42)"))
	waitGauge(t, p.url, `strata_limit_in_flight_requests{kind="write"}`, 1)
	waitGauge(t, p.url, `strata_limit_in_flight_requests{kind="query"}`, 1)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	wg := pushUntilRefused(ctx, p.url, writers)
	time.Sleep(200 * time.Millisecond)
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitRefusing(t, p.url)
	// Shutting down, the server still finishes what it had accepted.
	if r := heldWrite.release(t); r.err != nil || r.code != http.StatusNoContent {
		t.Fatalf("in-flight write during shutdown: %+v", r)
	}
	if r := heldQuery.release(t); r.err != nil || r.code != http.StatusOK || !strings.Contains(r.body, `"42"`) {
		t.Fatalf("in-flight query during shutdown: %+v", r)
	}
	wg.Wait()
	if code := p.exitCode(t, 60*time.Second); code != 0 {
		t.Fatalf("exit status %d after SIGTERM, want 0; log:\n%s", code, p.logs.String())
	}
	if !strings.Contains(p.logs.String(), "stopped") {
		t.Fatalf("no clean stop in the log:\n%s", p.logs.String())
	}

	p2 := startLogged(t, bin, dir)
	verify(t, p2.url, writers)
	if n := headSamples(t, p2.url); n != 0 {
		t.Fatalf("the head holds %d samples after a clean restart: the write-ahead log was replayed", n)
	}
	if !strings.Contains(p2.logs.String(), "replayed write-ahead log") || !strings.Contains(p2.logs.String(), " samples=0 ") {
		t.Fatalf("want a replay of 0 samples in the log:\n%s", p2.logs.String())
	}
	q := url.Values{"query": {"inflight_f"}, "time": {"1700000010"}}
	resp, err := http.Get(p2.url + "/api/v1/query?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct{ Data queryData }
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || len(body.Data.Result) != 1 {
		t.Fatalf("the write finished during shutdown is missing: %+v %v", body, err)
	}
	total := 0
	for _, w := range writers {
		total += len(w.acked)
	}
	t.Logf("%d samples acknowledged, all present after the restart", total)
}

// TestShutdownSecondSignal sends SIGTERM while a request holds the
// graceful shutdown open, then SIGTERM again: the process exits at once
// with status 1, and after a restart every acknowledged sample is there
// (replayed from the write-ahead log).
func TestShutdownSecondSignal(t *testing.T) {
	bin := strataBinary(t)
	dir := t.TempDir()
	p := startLogged(t, bin, dir, "--shutdown-timeout", "5m")
	writers := make([]*crashWriter, 2)
	for i := range writers {
		writers[i] = &crashWriter{id: i}
		for range 5 {
			if !writers[i].push(http.DefaultClient, p.url, i == 0) {
				t.Fatal("push failed")
			}
		}
	}
	// Never finished: the graceful shutdown would wait for it for 5m.
	held := holdRequest(t, http.MethodPost, p.url+"/write?precision=s", "text/plain", []byte("never,h=a f=1 1700000000\n"))
	waitGauge(t, p.url, `strata_limit_in_flight_requests{kind="write"}`, 1)

	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitRefusing(t, p.url)
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := p.exitCode(t, 30*time.Second); code != 1 {
		t.Fatalf("exit status %d after a second SIGTERM, want 1; log:\n%s", code, p.logs.String())
	}
	if !strings.Contains(p.logs.String(), "again, exiting at once") {
		t.Fatalf("the second signal was not logged:\n%s", p.logs.String())
	}
	// The client would wait for the rest of its body forever: give up.
	_ = held.pw.CloseWithError(errors.New("abandoned"))
	if r := held.wait(t); r.err == nil && r.code/100 == 2 {
		t.Fatalf("the unfinished write was acknowledged: %+v", r)
	}

	p2 := startLogged(t, bin, dir)
	verify(t, p2.url, writers)
	if n := headSamples(t, p2.url); n == 0 {
		t.Fatalf("nothing replayed into the head; log:\n%s", p2.logs.String())
	}
}
