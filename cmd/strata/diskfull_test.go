package main

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/strata-tsdb/strata/internal/tmpfstest"

	remoteapi "github.com/prometheus/client_golang/exp/api/remote"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/prometheus/prometheus/storage/remote"
)

// fillDisk writes path until the file system is full.
func fillDisk(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := bytes.Repeat([]byte{0xa5}, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("fill disk: %v", err)
			}
			break
		}
	}
	// The last pages are the ones a small write could still take.
	for _, n := range []int{4096, 512, 1} {
		for {
			if _, err := f.Write(buf[:n]); err != nil {
				break
			}
		}
	}
}

// diskLines writes n samples of one series per host, value v, from t0 every 10 s.
func diskLines(hosts int, t0 time.Time, n int, v float64) []byte {
	var b bytes.Buffer
	for h := range hosts {
		for i := range n {
			fmt.Fprintf(&b, "df,host=h%d v=%v %d\n", h, v+float64(i), t0.Add(time.Duration(i)*10*time.Second).Unix())
		}
	}
	return b.Bytes()
}

// TestDiskFull runs the server on a small tmpfs and fills it: writes get
// 503 with Retry-After (never a 4xx a sender would drop), /readyz reports
// the WAL, a flush fails without losing the head, and when space returns
// the WAL heals without a restart. Nothing refused shows up, before or
// after a restart; everything acknowledged does.
func TestDiskFull(t *testing.T) {
	mnt := tmpfstest.Mount(t, 16<<20)
	dataDir := filepath.Join(mnt, "data")
	var logs logBuffer
	args := []string{"--listen-addr", "127.0.0.1:0", "--data-dir", dataDir, "--log.level", "info", "--enable-admin-api",
		"--retention.raw=0", "--retention.5m=0", "--retention.1h=0", "--storage.maintenance-interval", "1h"}
	noEnv := func(string) (string, bool) { return "", false }
	s := launch(t, dataDir, noEnv, &logs, args)

	const hosts, n = 10, 300
	t0 := time.Date(2023, 5, 1, 0, 0, 0, 0, time.UTC)
	push := func(body []byte) (int, http.Header, string) {
		t.Helper()
		return s.call(http.MethodPost, "/write?precision=s", "", body)
	}
	if code, _, body := push(diskLines(hosts, t0, n, 0)); code != http.StatusNoContent {
		t.Fatalf("first push: %d %s", code, body)
	}

	filler := filepath.Join(mnt, "filler")
	fillDisk(t, filler)
	for i := range 3 {
		code, hdr, body := push(diskLines(hosts, t0.Add(time.Hour), n, 1e6))
		if code != http.StatusServiceUnavailable || hdr.Get("Retry-After") == "" || !strings.Contains(body, "no space left on device") {
			t.Fatalf("push %d on a full disk: %d Retry-After=%q %s; want 503 with Retry-After naming the full disk", i, code, hdr.Get("Retry-After"), body)
		}
	}
	// Remote write 2.0 through Prometheus' client: 503, retried, with
	// the written counts at zero, and nothing stored.
	r := newV2Req()
	r.series([]string{"__name__", "df_rw2"}, writev2.Metadata{}, func(r *v2Req, ts *writev2.TimeSeries) {
		ts.Samples = []writev2.Sample{{Value: 1, Timestamp: t0.UnixMilli()}}
	})
	stats, err := store(t, rwClient(t, s.url, remoteapi.WriteV2MessageType), r.marshal(t))
	var rec remote.RecoverableError
	if !errors.As(err, &rec) || !strings.Contains(err.Error(), "503") || !stats.Confirmed || !stats.NoDataWritten() {
		t.Fatalf("remote write 2.0 on a full disk: %+v %v; want a retried 503 confirming nothing written", stats, err)
	}
	if code, _, body := s.call(http.MethodGet, "/readyz", "", nil); code != http.StatusServiceUnavailable || !strings.Contains(body, "write-ahead log cannot write") {
		t.Fatalf("/readyz on a full disk: %d %q", code, body)
	}
	if got := s.metric("", "strata_wal_unwritable"); got != 1 {
		t.Fatalf("strata_wal_unwritable = %v on a full disk, want 1", got)
	}
	if !strings.Contains(logs.String(), "WAL write failed") {
		t.Fatalf("no log line says the WAL failed:\n%s", logs.String())
	}
	// A flush cannot write its segment; the head keeps the data.
	if code, body := s.post("/api/v1/admin/tsdb/flush", "", nil); code < 500 {
		t.Fatalf("flush on a full disk: %d %s, want a 5xx", code, body)
	}
	checkDiskData(t, s, hosts*n, float64(n-1))
	var rw2 struct {
		Result []any `json:"result"`
	}
	s.get("/api/v1/query", url.Values{"query": {"count_over_time(df_rw2[1h])"}, "time": {fmt.Sprint(t0.Add(time.Minute).Unix())}}, &rw2)
	if len(rw2.Result) != 0 {
		t.Fatalf("the refused remote write 2.0 sample was stored: %v", rw2.Result)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	// No restart and no write needed: the WAL retries by itself.
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, _, _ := s.call(http.MethodGet, "/readyz", "", nil)
		if code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz still %d 30s after space returned", code)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := s.metric("", "strata_wal_unwritable"); got != 0 {
		t.Fatalf("strata_wal_unwritable = %v after space returned, want 0", got)
	}
	if code, _, body := push(diskLines(hosts, t0.Add(2*time.Hour), n, 0)); code != http.StatusNoContent {
		t.Fatalf("push after space returned: %d %s", code, body)
	}
	checkDiskData(t, s, 2*hosts*n, float64(n-1))
	s.flush() // The retried flush writes the head out.
	if st := s.status(); len(st.Segments) == 0 {
		t.Fatal("no segment after the retried flush")
	}
	s.stop()

	s = launch(t, dataDir, noEnv, &logs, args)
	checkDiskData(t, s, 2*hosts*n, float64(n-1))
}

// checkDiskData checks that the server holds count samples of df_v and none
// above maxV (the refused writes had values from 1e6).
func checkDiskData(t *testing.T, s *testServer, count int, maxV float64) {
	t.Helper()
	end := time.Date(2023, 5, 2, 0, 0, 0, 0, time.UTC).Unix()
	for q, want := range map[string]float64{
		"sum(count_over_time(df_v[2d]))": float64(count),
		"max(max_over_time(df_v[2d]))":   maxV,
	} {
		var d struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		}
		s.get("/api/v1/query", url.Values{"query": {q}, "time": {strconv.FormatInt(end, 10)}}, &d)
		if len(d.Result) != 1 {
			t.Fatalf("%s: %+v", q, d.Result)
		}
		got, err := strconv.ParseFloat(fmt.Sprint(d.Result[0].Value[1]), 64)
		if err != nil || got != want {
			t.Fatalf("%s = %v (%v), want %v", q, d.Result[0].Value[1], err, want)
		}
	}
}
