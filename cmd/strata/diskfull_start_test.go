package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strata-tsdb/strata/internal/tmpfstest"
)

// httpCall sends a request to the server at base and returns the status,
// headers and body.
func httpCall(t *testing.T, method, base, path string, body []byte) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, base+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

// waitStatus polls path until it answers want, for a generous while.
func waitStatus(t *testing.T, base, path string, want int) string {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		code, _, body := httpCall(t, http.MethodGet, base, path, nil)
		if code == want {
			return body
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still %d %q after 2 minutes, want %d", path, code, body, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestStartOnFullDisk starts the binary on a data dir whose file system
// is already full, after a kill -9 left samples in segments and in the
// write-ahead log: it must start, replay and serve them, report not ready
// with the reason, refuse writes with 503 and Retry-After, and heal by
// itself when space returns; after a restart everything acknowledged is
// there and nothing refused is.
func TestStartOnFullDisk(t *testing.T) {
	bin := strataBinary(t)
	mnt := tmpfstest.Mount(t, 16<<20)
	dataDir := filepath.Join(mnt, "data")
	args := []string{"--enable-admin-api", "--storage.maintenance-interval", "1h", "--log.level", "info"}
	const perPush = 200
	t0 := int64(1_700_000_000)
	lines := func(k int, v float64) []byte {
		var b bytes.Buffer
		for i := range perPush {
			fmt.Fprintf(&b, "fd,host=a v=%v %d\n", v, t0+int64(k*perPush+i)*10)
		}
		return b.Bytes()
	}
	push := func(p *process, k int, v float64) (int, http.Header, string) {
		return httpCall(t, http.MethodPost, p.url, "/write?precision=s", lines(k, v))
	}
	check := func(p *process, pushes int) {
		t.Helper()
		if got, want := processQuery(t, p.url, "count_over_time(fd_v[1d])"), float64(pushes*perPush); got != want {
			t.Fatalf("samples: %v, want %v", got, want)
		}
		if got := processQuery(t, p.url, "max_over_time(fd_v[1d])"); got != 1 {
			t.Fatalf("max value %v: a refused write was stored", got)
		}
	}

	p := startProcess(t, bin, dataDir, args...)
	if code, _, body := push(p, 0, 1); code != http.StatusNoContent {
		t.Fatalf("push 0: %d %s", code, body)
	}
	if code, _, body := httpCall(t, http.MethodPost, p.url, "/api/v1/admin/tsdb/flush", nil); code != http.StatusOK && code != http.StatusNoContent {
		t.Fatalf("flush: %d %s", code, body)
	}
	if code, _, body := push(p, 1, 1); code != http.StatusNoContent { // In the log only.
		t.Fatalf("push 1: %d %s", code, body)
	}
	p.kill(t)

	filler := filepath.Join(mnt, "filler")
	fillDisk(t, filler)
	p = startProcess(t, bin, dataDir, args...)
	// Replay done, the write-ahead log cannot write: not ready, with why.
	body := waitStatus(t, p.url, "/readyz", http.StatusServiceUnavailable)
	deadline := time.Now().Add(2 * time.Minute)
	for !strings.Contains(body, "write-ahead log cannot write") || !strings.Contains(body, "no space left on device") {
		if time.Now().After(deadline) {
			t.Fatalf("/readyz on a full disk says %q, want the write-ahead log and the full disk named", body)
		}
		time.Sleep(50 * time.Millisecond)
		_, _, body = httpCall(t, http.MethodGet, p.url, "/readyz", nil)
	}
	check(p, 2)
	for k := 2; k < 4; k++ {
		code, hdr, body := push(p, k, 1e6)
		if code != http.StatusServiceUnavailable || hdr.Get("Retry-After") == "" || !strings.Contains(body, "no space left on device") {
			t.Fatalf("push on a full disk after start: %d Retry-After=%q %s; want 503 with Retry-After naming the full disk", code, hdr.Get("Retry-After"), body)
		}
	}
	if got := processMetric(t, p.url, "strata_wal_unwritable"); got != "1" {
		t.Fatalf("strata_wal_unwritable = %q on a full disk, want 1", got)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, p.url, "/readyz", http.StatusOK) // No restart, no write needed.
	if code, _, body := push(p, 2, 1); code != http.StatusNoContent {
		t.Fatalf("push after space returned: %d %s", code, body)
	}
	check(p, 3)
	p.kill(t)

	p = startProcess(t, bin, dataDir, args...)
	waitStatus(t, p.url, "/readyz", http.StatusOK)
	check(p, 3)
	p.kill(t)
}
