package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/strata-tsdb/strata/buffer/wal"
)

// TestReplayProgress restarts a server on a data dir whose write-ahead log
// holds data (after a graceful stop: the series records a flush re-logs),
// holds the replay at its first segment, and checks what
// a client sees meanwhile: /readyz 503 "replaying n%", /healthz 200,
// /api/v1/status/walreplay in Prometheus' shape, other routes 503 with
// Retry-After, and the log saying how far replay is; then, once replay
// ends, /readyz 200 and walreplay at its last segment.
func TestReplayProgress(t *testing.T) {
	dataDir := t.TempDir()
	s := startServer(t, dataDir)
	var lines strings.Builder
	for i := range 2000 {
		fmt.Fprintf(&lines, "up{namespace=\"ns-%d\",pod=\"pod-%d\"} 1 %d\n", i%7, i, time.Now().UnixMilli())
	}
	if code, body := s.post("/api/v1/import/prometheus", "text/plain", []byte(lines.String())); code/100 != 2 {
		t.Fatalf("write: %d %s", code, body)
	}
	s.stop() // graceful: the log keeps the series records of 2,000 series

	addrc := make(chan string, 1)
	held := make(chan wal.Progress, 1)
	release := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	ctx = context.WithValue(ctx, listenHookKey{}, func(addr string) { addrc <- addr })
	first := true
	ctx = context.WithValue(ctx, replayHookKey{}, func(p wal.Progress) {
		if first && p.Current >= 0 {
			first = false
			held <- p
			<-release
		}
	})
	logs := &logBuffer{}
	done := make(chan error, 1)
	ready := make(chan struct{})
	go func() {
		done <- run(ctx, []string{"--listen-addr", "127.0.0.1:0", "--data-dir", dataDir, "--log.level", "info",
			"--retention.raw=0", "--retention.5m=0", "--retention.1h=0"},
			io.Discard, logs, func(string) (string, bool) { return "", false }, func(string) { close(ready) })
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server exited with %v", err)
		}
	})
	var base string
	select {
	case addr := <-addrc:
		base = "http://" + addr
	case err := <-done:
		t.Fatalf("server did not start: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("server did not listen within 30s")
	}
	var p wal.Progress
	select {
	case p = <-held:
	case <-time.After(60 * time.Second):
		t.Fatal("no replay progress within 60s")
	}
	get := func(path string) (int, http.Header, string) {
		t.Helper()
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(b)
	}
	code, _, body := get("/readyz")
	if code != http.StatusServiceUnavailable || !regexp.MustCompile(`^not ready: replaying \d+%\n$`).MatchString(body) {
		t.Fatalf("/readyz during replay: %d %q", code, body)
	}
	if code, _, body := get("/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz during replay: %d %q", code, body)
	}
	type walReplay struct {
		Status string `json:"status"`
		Data   struct {
			Min, Max, Current *int
		} `json:"data"`
	}
	decode := func(body string) walReplay {
		t.Helper()
		var w walReplay
		if err := json.Unmarshal([]byte(body), &w); err != nil || w.Status != "success" || w.Data.Min == nil || w.Data.Max == nil || w.Data.Current == nil {
			t.Fatalf("walreplay body %q: %v", body, err)
		}
		return w
	}
	code, _, body = get("/api/v1/status/walreplay")
	w := decode(body)
	if code != http.StatusOK || *w.Data.Min != p.First || *w.Data.Max != p.Last || *w.Data.Current != p.Current {
		t.Fatalf("walreplay during replay: %d %s, want min %d max %d current %d", code, body, p.First, p.Last, p.Current)
	}
	if code, h, body := get("/api/v1/query?query=up"); code != http.StatusServiceUnavailable || h.Get("Retry-After") == "" || !strings.Contains(body, "replaying") {
		t.Fatalf("a query during replay: %d %v %q", code, h, body)
	}
	if !strings.Contains(logs.String(), "replaying write-ahead log") {
		t.Fatalf("no progress line in the log:\n%s", logs.String())
	}
	close(release)
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("server stopped: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("not ready within 60s of releasing the replay")
	}
	if code, _, body := get("/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz after replay: %d %q", code, body)
	}
	code, _, body = get("/api/v1/status/walreplay")
	w = decode(body)
	if code != http.StatusOK || *w.Data.Current != *w.Data.Max || *w.Data.Max != p.Last {
		t.Fatalf("walreplay after replay: %d %s", code, body)
	}
	resp, err := http.Get(base + "/api/v1/series?match[]=up")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || strings.Count(string(b), `"pod"`) != 2000 {
		t.Fatalf("series after replay: %d, %d pods: %.300s", resp.StatusCode, strings.Count(string(b), `"pod"`), b)
	}
}
