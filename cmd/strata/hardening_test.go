package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// logBuffer is a bytes.Buffer safe for a server's log and a test to share.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *logBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *logBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startServerEnv is startServer with an environment and a log destination.
func startServerEnv(t *testing.T, env map[string]string, stderr io.Writer, args ...string) *testServer {
	t.Helper()
	if stderr == nil {
		stderr = io.Discard
	}
	dataDir := t.TempDir()
	all := append([]string{"--listen-addr", "127.0.0.1:0", "--data-dir", dataDir,
		"--retention.raw=0", "--retention.5m=0", "--retention.1h=0"}, args...)
	environ := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	return launch(t, dataDir, environ, stderr, all)
}

// call sends a request with an optional bearer token and returns the
// status, headers and body.
func (s *testServer) call(method, path, token string, body []byte) (int, http.Header, string) {
	s.t.Helper()
	req, err := http.NewRequest(method, s.url+path, bytes.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return s.roundTrip(req)
}

// metric returns the value of one sample on /metrics (-1 when absent).
func (s *testServer) metric(token, sample string) float64 {
	s.t.Helper()
	code, _, body := s.call(http.MethodGet, "/metrics", token, nil)
	if code != http.StatusOK {
		s.t.Fatalf("/metrics: %d %s", code, body)
	}
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, sample+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				s.t.Fatalf("/metrics: %q: %v", line, err)
			}
			return f
		}
	}
	return -1
}

func rejections(limit string) string {
	return `strata_limit_rejections_total{limit="` + limit + `"}`
}

// metricNames returns the metric names the server holds.
func (s *testServer) metricNames(token string) []string {
	s.t.Helper()
	code, _, body := s.call(http.MethodGet, "/api/v1/label/__name__/values", token, nil)
	if code != http.StatusOK {
		s.t.Fatalf("label values: %d %s", code, body)
	}
	var env struct{ Data []string }
	if err := json.Unmarshal([]byte(body), &env); err != nil {
		s.t.Fatal(err)
	}
	return env.Data
}

// waitMetric polls /metrics until sample has value want.
func (s *testServer) waitMetric(token, sample string, want float64) {
	s.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for s.metric(token, sample) != want {
		if time.Now().After(deadline) {
			s.t.Fatalf("%s did not reach %v (now %v)", sample, want, s.metric(token, sample))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestLimitWriteRequests sends one write over each per-request and head
// limit: each gets its status, a message naming the limit and a count on
// /metrics, and none leaves a series behind.
func TestLimitWriteRequests(t *testing.T) {
	s := startServer(t, "", "--limits.max-body-bytes", "4096", "--limits.max-series-per-request", "3",
		"--limits.max-samples-per-request", "10", "--limits.max-labels-per-series", "4",
		"--limits.max-label-name-length", "10", "--limits.max-label-value-length", "20", "--limits.max-series", "5")
	lines := func(format string, n int) []byte {
		var b bytes.Buffer
		for i := range n {
			fmt.Fprintf(&b, format, i)
		}
		return b.Bytes()
	}
	cases := []struct {
		name, limit string
		body        []byte
		code        int
		typ, msg    string
	}{
		{"body size", "limits.max_body_bytes", lines("refused_body{i=\"%d\"} 1\n", 400), 413, "too_large", "the limit is 4096 bytes"},
		{"series per request", "limits.max_series_per_request", lines("refused_series{i=\"%d\"} 1\n", 4), 400, "bad_data", "more than 3"},
		{"samples per request", "limits.max_samples_per_request", lines("refused_samples 1 17000000000%02d\n", 11), 400, "bad_data", "more than 10"},
		{"labels per series", "limits.max_labels_per_series", []byte(`refused_labels{a="1",b="2",c="3",d="4"} 1` + "\n"), 400, "bad_data", "limit is 4"},
		{"label name length", "limits.max_label_name_length", []byte(`refused_name{abcdefghijk="1"} 1` + "\n"), 400, "bad_data", "limit is 10"},
		{"label value length", "limits.max_label_value_length", []byte(`refused_value{a="abcdefghijklmnopqrstu"} 1` + "\n"), 400, "bad_data", "limit is 20"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, body := s.post("/api/v1/import/prometheus", "text/plain", c.body)
			checkError(t, code, body, c.code, c.typ, c.msg)
			if got := s.metric("", rejections(c.limit)); got != 1 {
				t.Fatalf("%s = %v, want 1", rejections(c.limit), got)
			}
		})
	}
	t.Run("series in the head", func(t *testing.T) {
		// In two requests: three series is the per-request limit.
		for _, body := range []string{
			"kept{i=\"0\"} 1 1700000000000\nkept{i=\"1\"} 1 1700000000000\nkept{i=\"2\"} 1 1700000000000\n",
			"kept{i=\"3\"} 1 1700000000000\nkept{i=\"4\"} 1 1700000000000\n",
		} {
			if code, resp := s.post("/api/v1/import/prometheus", "text/plain", []byte(body)); code != http.StatusNoContent {
				t.Fatalf("filling the head: %d %s", code, resp)
			}
		}
		code, body := s.post("/api/v1/import/prometheus", "text/plain", []byte("kept{i=\"0\"} 2 1700000001000\nrefused_head 1 1700000001000\n"))
		checkError(t, code, body, http.StatusTooManyRequests, "unavailable", "limit 5")
		if got := s.metric("", rejections("limits.max_series")); got != 1 {
			t.Fatalf("%s = %v, want 1", rejections("limits.max_series"), got)
		}
		// Existing series still take samples.
		if code, body := s.post("/api/v1/import/prometheus", "text/plain", []byte("kept{i=\"0\"} 3 1700000002000\n")); code != http.StatusNoContent {
			t.Fatalf("write to an existing series at the limit: %d %s", code, body)
		}
	})
	// No refused request left anything: only the five kept series exist,
	// and kept{i="0"} never got the 2 of the refused request.
	if names := s.metricNames(""); len(names) != 1 || names[0] != "kept" {
		t.Fatalf("metric names %v, want [kept]", names)
	}
	var st tsdbStatusData
	s.get("/api/v1/status/tsdb", nil, &st)
	if st.HeadStats.NumSeries != 5 || st.HeadStats.NumSamples != 6 {
		t.Fatalf("head holds %d series and %d samples, want 5 and 6", st.HeadStats.NumSeries, st.HeadStats.NumSamples)
	}
}

// TestLimitQueries checks the query limits answer with the limit's name
// and are counted.
func TestLimitQueries(t *testing.T) {
	s := startServer(t, "", "--query.max-samples", "100", "--query.max-points-per-series", "1000", "--query.max-series", "2")
	var lines bytes.Buffer
	for i := range 500 {
		fmt.Fprintf(&lines, "load,h=a v=1 %d\n", 1_700_000_000+int64(i)*10)
	}
	for h := range 3 {
		fmt.Fprintf(&lines, "wide,h=%d v=1 1700000000\n", h)
	}
	if code, body := s.post("/write?precision=s", "text/plain", lines.Bytes()); code != http.StatusNoContent {
		t.Fatalf("load: %d %s", code, body)
	}
	cases := []struct {
		name, limit, query string
		code               int
		typ, msg           string
	}{
		{"samples", "query.max_samples", "/api/v1/query_range?query=load_v&start=1700000000&end=1700005000&step=10", 422, "execution", "too many samples"},
		{"points", "query.max_points_per_series", "/api/v1/query_range?query=load_v&start=1700000000&end=1700020000&step=10", 400, "bad_data", "1000 points"},
		{"timeout", "query.timeout", "/api/v1/query?query=load_v&timeout=0", 503, "timeout", "timed out"},
		{"series", "query.max_series", "/api/v1/query?query=wide_v&time=1700000000", 422, "execution", "more than the limit of 2 series (query.max_series)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, _, body := s.call(http.MethodGet, c.query, "", nil)
			checkError(t, code, body, c.code, c.typ, c.msg)
			if got := s.metric("", rejections(c.limit)); got != 1 {
				t.Fatalf("%s = %v, want 1", rejections(c.limit), got)
			}
		})
	}
}

// heldRequest is a request whose body is still being sent: the handler
// holds its concurrency slot, blocked reading, until release.
type heldRequest struct {
	pw     *io.PipeWriter
	result chan heldResult
}

type heldResult struct {
	code int
	body string
	err  error
}

func holdRequest(t *testing.T, method, u, contentType string, first []byte) *heldRequest {
	t.Helper()
	pr, pw := io.Pipe()
	req, err := http.NewRequest(method, u, pr)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	h := &heldRequest{pw: pw, result: make(chan heldResult, 1)}
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			h.result <- heldResult{err: err}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		h.result <- heldResult{code: resp.StatusCode, body: string(b)}
	}()
	go func() { _, _ = pw.Write(first) }()
	t.Cleanup(func() { _ = pw.CloseWithError(io.ErrClosedPipe) })
	return h
}

// release finishes the body and returns the answer.
func (h *heldRequest) release(t *testing.T) heldResult {
	t.Helper()
	if err := h.pw.Close(); err != nil {
		t.Fatal(err)
	}
	return h.wait(t)
}

func (h *heldRequest) wait(t *testing.T) heldResult {
	t.Helper()
	select {
	case r := <-h.result:
		return r
	case <-time.After(60 * time.Second):
		t.Fatal("no answer within 60s")
	}
	return heldResult{}
}

// asyncCall sends a request in the background.
func asyncCall(s *testServer, method, path, contentType string, body []byte) chan heldResult {
	out := make(chan heldResult, 1)
	go func() {
		req, _ := http.NewRequest(method, s.url+path, bytes.NewReader(body))
		req.Header.Set("Content-Type", contentType)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			out <- heldResult{err: err}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		out <- heldResult{code: resp.StatusCode, body: string(b)}
	}()
	return out
}

// TestLimitConcurrency holds the only query slot and the only write slot
// with requests whose bodies are still coming, then checks that one more
// request waits in the queue and gets 503 when the queue timeout passes,
// that a request finding the queue full gets 503 at once, that a queued
// request runs once the slot is free, and that refused writes stored
// nothing.
func TestLimitConcurrency(t *testing.T) {
	var logs logBuffer
	s := startServerEnv(t, nil, &logs, "--limits.max-concurrent-queries", "1", "--limits.max-queued-queries", "1",
		"--limits.max-concurrent-writes", "1", "--limits.max-queued-writes", "1", "--limits.queue-timeout", "2s")
	kinds := []struct {
		kind, limit, what   string
		method, path, ctype string
		held, queued, extra []byte // request bodies: holder, queued one, one too many
	}{
		{"query", "limits.max_concurrent_queries", "queries", http.MethodPost, "/api/v1/query", "application/x-www-form-urlencoded",
			[]byte("query=vector(1)"), []byte("query=vector(2)"), []byte("query=vector(3)")},
		{"write", "limits.max_concurrent_writes", "writes", http.MethodPost, "/write?precision=s", "text/plain",
			[]byte("held,h=a f=1 1700000000\n"), []byte("queued,h=a f=1 1700000000\n"), []byte("refused,h=a f=1 1700000000\n")},
	}
	for _, k := range kinds {
		t.Run(k.kind, func(t *testing.T) {
			inFlight := `strata_limit_in_flight_requests{kind="` + k.kind + `"}`
			queued := `strata_limit_queued_requests{kind="` + k.kind + `"}`
			want503 := func(r heldResult, detail string) {
				t.Helper()
				if r.err != nil {
					t.Fatal(r.err)
				}
				checkError(t, r.code, r.body, http.StatusServiceUnavailable, "unavailable",
					fmt.Sprintf("too many concurrent %s (limit 1): %s", k.what, detail))
			}

			// 1. The queued request times out.
			held := holdRequest(t, k.method, s.url+k.path, k.ctype, k.held)
			s.waitMetric("", inFlight, 1)
			waiting := asyncCall(s, k.method, k.path, k.ctype, k.queued)
			s.waitMetric("", queued, 1)
			// 2. The queue is full: refused at once.
			code, hdr, body := s.call(k.method, k.path, "", k.extra)
			if hdr.Get("Retry-After") == "" {
				t.Error("503 without Retry-After")
			}
			want503(heldResult{code: code, body: body}, "1 already waiting")
			want503(<-waiting, "waited 2s for a slot")
			if got := s.metric("", rejections(k.limit)); got != 2 {
				t.Fatalf("%s = %v, want 2", rejections(k.limit), got)
			}

			// 3. A queued request runs once the slot is free.
			waiting = asyncCall(s, k.method, k.path, k.ctype, k.queued)
			s.waitMetric("", queued, 1)
			if r := held.release(t); r.err != nil || r.code/100 != 2 {
				t.Fatalf("held request: %+v", r)
			}
			if r := <-waiting; r.err != nil || r.code/100 != 2 {
				t.Fatalf("queued request after the slot freed: %+v", r)
			}
			s.waitMetric("", inFlight, 0)
		})
	}
	// The refused write stored nothing; the held and the queued one did.
	names := s.metricNames("")
	if strings.Join(names, ",") != "held_f,queued_f" {
		t.Fatalf("metric names %v, want [held_f queued_f]", names)
	}
	// A refusal the client retries is not a server error: the gauges and
	// rejection counters report it, the log does not at ERROR.
	if l := grepLines(logs.String(), "level=ERROR"); l != "" {
		t.Errorf("retryable 503s logged at ERROR:\n%s", l)
	}
}

// tokens used by the auth tests.
const (
	readTok  = "read-0123456789abcdef"
	writeTok = "write-0123456789abcdef"
	adminTok = "admin-0123456789abcdef"
)

// TestAuthRoles checks every auth rule over HTTP: which token each route
// takes, 401 with WWW-Authenticate when there is none, 403 when it is
// wrong, open health and dashboard routes, tokens from the environment and
// from files, and that a refused write leaves no trace and no token is
// ever logged or shown.
func TestAuthRoles(t *testing.T) {
	dir := t.TempDir()
	adminFile := filepath.Join(dir, "admin-token")
	if err := os.WriteFile(adminFile, []byte(adminTok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	logs := &logBuffer{}
	s := startServerEnv(t, map[string]string{"STRATA_AUTH_READ_TOKEN": readTok, "STRATA_AUTH_WRITE_TOKEN": writeTok},
		logs, "--log.level", "debug", "--enable-admin-api", "--auth.admin-token-file", adminFile)

	write := []byte("authed,h=a f=1 1700000000\n")
	cases := []struct {
		name, method, path, token string
		body                      []byte
		code                      int
	}{
		{"healthz open", "GET", "/healthz", "", nil, 200},
		{"readyz open", "GET", "/readyz", "", nil, 200},
		{"dashboard open", "GET", "/", "", nil, 200},
		{"write without token", "POST", "/write?precision=s", "", write, 401},
		{"write with read token", "POST", "/write?precision=s", readTok, write, 403},
		{"write with wrong token", "POST", "/write?precision=s", "nope", write, 403},
		{"remote write without token", "POST", "/api/v1/write", "", nil, 401},
		{"import without token", "POST", "/api/v1/import", "", nil, 401},
		{"write with write token", "POST", "/write?precision=s", writeTok, write, 204},
		{"write with admin token", "POST", "/write?precision=s", adminTok, write, 204},
		{"query without token", "GET", "/api/v1/query?query=1", "", nil, 401},
		{"query with write token", "GET", "/api/v1/query?query=1", writeTok, nil, 403},
		{"query with read token", "GET", "/api/v1/query?query=1", readTok, nil, 200},
		{"query with admin token", "GET", "/api/v1/query?query=1", adminTok, nil, 200},
		{"labels without token", "GET", "/api/v1/labels", "", nil, 401},
		{"remote read without token", "POST", "/api/v1/read", "", nil, 401},
		{"status without token", "GET", "/api/v1/status/tsdb", "", nil, 401},
		{"config without token", "GET", "/api/v1/status/config", "", nil, 401},
		{"metrics without token", "GET", "/metrics", "", nil, 401},
		{"metrics with read token", "GET", "/metrics", readTok, nil, 200},
		{"unknown api route without token", "GET", "/api/v1/nope", "", nil, 404},
		{"admin without token", "POST", "/api/v1/admin/tsdb/flush", "", nil, 401},
		{"admin with read token", "POST", "/api/v1/admin/tsdb/flush", readTok, nil, 403},
		{"admin with write token", "POST", "/api/v1/admin/tsdb/flush", writeTok, nil, 403},
		{"admin with admin token", "POST", "/api/v1/admin/tsdb/flush", adminTok, nil, 204},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, hdr, body := s.call(c.method, c.path, c.token, c.body)
			if code != c.code {
				t.Fatalf("%s %s: %d %s, want %d", c.method, c.path, code, body, c.code)
			}
			switch code {
			case 401:
				if got := hdr.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") {
					t.Fatalf("401 with WWW-Authenticate %q", got)
				}
				checkError(t, code, body, 401, "unauthorized", "token")
			case 403:
				checkError(t, code, body, 403, "forbidden", "invalid token")
			}
		})
	}

	t.Run("basic auth password is the token", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, s.url+"/api/v1/query?query=1", nil)
		req.SetBasicAuth("grafana", readTok)
		if code, body := s.do(req); code != 200 {
			t.Fatalf("basic auth: %d %s", code, body)
		}
		req.SetBasicAuth("grafana", "wrong")
		if code, body := s.do(req); code != 403 {
			t.Fatalf("basic auth with a wrong password: %d %s", code, body)
		}
	})

	// Refused writes left nothing: only the two accepted writes' series.
	names := s.metricNames(readTok)
	if len(names) != 1 || names[0] != "authed_f" {
		t.Fatalf("metric names %v, want [authed_f]", names)
	}
	// Tokens are masked in the configuration the API shows...
	code, _, body := s.call(http.MethodGet, "/api/v1/status/flags", readTok, nil)
	var flags struct{ Data map[string]string }
	if err := json.Unmarshal([]byte(body), &flags); err != nil || code != 200 {
		t.Fatalf("flags: %d %s", code, body)
	}
	for _, k := range []string{"auth.read_token", "auth.write_token", "auth.admin_token_file"} {
		if flags.Data[k] != "<secret>" {
			t.Errorf("flags show %s = %q, want <secret>", k, flags.Data[k])
		}
	}
	// ...and never reach the log, whatever happened to the request.
	for _, tok := range []string{readTok, writeTok, adminTok, "nope"} {
		if strings.Contains(logs.String()+body, tok) {
			t.Fatalf("token %q appears in the log or the config", tok)
		}
	}
}

// TestAuthAdminStillNeedsEnable checks that the admin token does not open
// admin endpoints that are disabled.
func TestAuthAdminStillNeedsEnable(t *testing.T) {
	s := startServerEnv(t, map[string]string{"STRATA_AUTH_ADMIN_TOKEN": adminTok}, nil)
	code, _, body := s.call(http.MethodPost, "/api/v1/admin/tsdb/flush", "", nil)
	checkError(t, code, body, 401, "unauthorized", "admin token")
	code, _, body = s.call(http.MethodPost, "/api/v1/admin/tsdb/flush", adminTok, nil)
	checkError(t, code, body, 403, "unavailable", "--enable-admin-api")
	// Only the admin token is set: reads and writes stay open.
	if code, _, body := s.call(http.MethodPost, "/write", "", []byte("m f=1\n")); code != 204 {
		t.Fatalf("write: %d %s", code, body)
	}
}

// TestAuthConfigErrors checks that bad token settings stop the start.
func TestAuthConfigErrors(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--auth.read-token", "a", "--auth.read-token-file", empty}, "both set"},
		{[]string{"--auth.write-token-file", empty}, "is empty"},
		{[]string{"--auth.admin-token-file", filepath.Join(dir, "missing")}, "auth.admin_token_file"},
		{[]string{"--auth.read-token", "has space"}, "read token"},
		{[]string{"--tls.cert-file", empty}, "tls.cert_file and tls.key_file"},
	}
	for _, c := range cases {
		args := append([]string{"--listen-addr", "127.0.0.1:0", "--data-dir", filepath.Join(dir, "data")}, c.args...)
		err := run(context.Background(), args, io.Discard, io.Discard, func(string) (string, bool) { return "", false }, nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want one containing %q", c.args, err, c.want)
		}
	}
}

// selfSignedCert writes a certificate for 127.0.0.1 and its key.
func selfSignedCert(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "strata-test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// TestHardeningTLS serves HTTPS with a token and checks a verified client,
// a plain-HTTP client and the healthcheck against it.
func TestHardeningTLS(t *testing.T) {
	certFile, keyFile, pool := selfSignedCert(t)
	s := startServerEnv(t, map[string]string{"STRATA_AUTH_READ_TOKEN": readTok}, nil, "--tls.cert-file", certFile, "--tls.key-file", keyFile)
	addr := strings.TrimPrefix(s.url, "http://")
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	req, _ := http.NewRequest(http.MethodGet, "https://"+addr+"/api/v1/query?query=1", nil)
	req.Header.Set("Authorization", "Bearer "+readTok)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.TLS == nil {
		t.Fatalf("https query: %d, TLS %v", resp.StatusCode, resp.TLS != nil)
	}
	if resp, err := http.Get("http://" + addr + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("plain HTTP to the TLS port: %d", resp.StatusCode)
		}
	}
	var out, errOut bytes.Buffer
	env := func(k string) (string, bool) {
		v, ok := map[string]string{"STRATA_LISTEN_ADDR": addr, "STRATA_TLS_CERT_FILE": certFile, "STRATA_TLS_KEY_FILE": keyFile}[k]
		return v, ok
	}
	if rc := healthcheck(nil, &out, &errOut, env); rc != 0 {
		t.Fatalf("healthcheck over TLS: exit %d: %s", rc, errOut.String())
	}
}

// TestHealthcheckURL checks which address the healthcheck dials.
func TestHealthcheckURL(t *testing.T) {
	f := func(addr string, useTLS bool, want string) {
		t.Helper()
		got, err := readyURL(addr, useTLS)
		if err != nil || got != want {
			t.Fatalf("readyURL(%q, %v) = %q, %v; want %q", addr, useTLS, got, err, want)
		}
	}
	f("0.0.0.0:8430", false, "http://127.0.0.1:8430/readyz")
	f(":8430", false, "http://127.0.0.1:8430/readyz")
	f("[::]:8430", true, "https://[::1]:8430/readyz")
	f("10.1.2.3:9000", false, "http://10.1.2.3:9000/readyz")
	if _, err := readyURL("8430", false); err == nil {
		t.Fatal("readyURL accepted an address without a port")
	}
}

// TestHardeningHostileClients sends garbage, truncated, oversized and
// slow-loris requests while four writers push valid data: every valid
// write lands, no hostile request stores anything, every hostile
// connection is closed by the server, and it stays healthy.
func TestHardeningHostileClients(t *testing.T) {
	s := startServer(t, "", "--http.read-header-timeout", "1s", "--http.read-timeout", "3s", "--limits.max-body-bytes", "65536")
	addr := strings.TrimPrefix(s.url, "http://")
	const writers, requests, perRequest = 4, 25, 10

	var wg sync.WaitGroup
	errc := make(chan error, 1000)
	fail := func(format string, args ...any) { errc <- fmt.Errorf(format, args...) }

	// Valid writes.
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Timeout: 60 * time.Second}
			for r := range requests {
				var b bytes.Buffer
				for i := range perRequest {
					fmt.Fprintf(&b, "valid,w=%d f=%d %d\n", w, r*perRequest+i, 1_700_000_000+int64(r*perRequest+i))
				}
				resp, err := client.Post(s.url+"/write?precision=s", "text/plain", &b)
				if err != nil {
					fail("valid write: %v", err)
					return
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusNoContent {
					fail("valid write: status %d", resp.StatusCode)
				}
			}
		}()
	}

	// hostile opens a connection, runs send on it and checks that the
	// server closes it (an answer, if any, must not be a success).
	hostile := func(name string, send func(c net.Conn) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", addr)
			if err != nil {
				fail("%s: dial: %v", name, err)
				return
			}
			defer c.Close()
			// A write error means the server closed the connection.
			_ = send(c)
			_ = c.SetReadDeadline(time.Now().Add(60 * time.Second))
			r := bufio.NewReader(c)
			status, _ := r.ReadString('\n')
			if strings.HasPrefix(status, "HTTP/1.1 2") {
				fail("%s: answered %q", name, status)
			}
			if _, err := io.Copy(io.Discard, r); err != nil {
				if ne, ok := err.(net.Error); ok && ne.Timeout() {
					fail("%s: the server kept the connection open", name)
				}
			}
		}()
	}
	line := "hostile,h=a f=1 1700000000\n"
	for i := range 10 {
		hostile("garbage", func(c net.Conn) error {
			b := make([]byte, 4096)
			_, _ = rand.Read(b)
			_, err := c.Write(append(b, "\r\n\r\n"...))
			return err
		})
		hostile("bad request line", func(c net.Conn) error {
			_, err := fmt.Fprintf(c, "POST /write?%d HTTP/9.9 extra\r\nHost: x\r\n\r\n%s", i, line)
			return err
		})
		hostile("truncated body", func(c net.Conn) error {
			if _, err := fmt.Fprintf(c, "POST /write HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n%s", line); err != nil {
				return err
			}
			return c.(*net.TCPConn).CloseWrite()
		})
		hostile("truncated chunk", func(c net.Conn) error {
			if _, err := fmt.Fprintf(c, "POST /write HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n5\r\nhos", len(line), line); err != nil {
				return err
			}
			return c.(*net.TCPConn).CloseWrite()
		})
		hostile("slow headers", func(c net.Conn) error {
			if _, err := io.WriteString(c, "POST /write HTTP/1.1\r\nHost: x\r\n"); err != nil {
				return err
			}
			for j := 0; j < 200; j++ {
				time.Sleep(100 * time.Millisecond)
				if _, err := fmt.Fprintf(c, "X-Slow-%d: y\r\n", j); err != nil {
					return err
				}
			}
			return nil
		})
		hostile("slow body", func(c net.Conn) error {
			if _, err := fmt.Fprintf(c, "POST /write HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", len(line)); err != nil {
				return err
			}
			for j := range len(line) {
				time.Sleep(500 * time.Millisecond)
				if _, err := c.Write([]byte{line[j]}); err != nil {
					return err
				}
			}
			return nil
		})
	}
	for range 3 {
		hostile("huge body", func(c net.Conn) error {
			if _, err := io.WriteString(c, "POST /write HTTP/1.1\r\nHost: x\r\nContent-Length: 104857600\r\n\r\n"); err != nil {
				return err
			}
			chunk := bytes.Repeat([]byte(line), 1000)
			for range 40 { // 1 MiB of the 100 claimed
				if _, err := c.Write(chunk); err != nil {
					return err
				}
			}
			return nil
		})
		hostile("huge chunked body", func(c net.Conn) error {
			if _, err := io.WriteString(c, "POST /write HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"); err != nil {
				return err
			}
			chunk := bytes.Repeat([]byte(line), 1000)
			for range 40 {
				if _, err := fmt.Fprintf(c, "%x\r\n%s\r\n", len(chunk), chunk); err != nil {
					return err
				}
			}
			return nil
		})
		hostile("gzip bomb", func(c net.Conn) error {
			bomb := gzipped(bytes.Repeat([]byte(line), 100_000)) // 2.7 MB inflated
			if _, err := fmt.Fprintf(c, "POST /write HTTP/1.1\r\nHost: x\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\nConnection: close\r\n\r\n", len(bomb)); err != nil {
				return err
			}
			_, err := c.Write(bomb)
			return err
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	if t.Failed() {
		t.FailNow()
	}

	// Every valid sample is there; nothing hostile is.
	if names := s.metricNames(""); len(names) != 1 || names[0] != "valid_f" {
		t.Fatalf("metric names %v, want [valid_f]", names)
	}
	var d struct {
		Result []struct {
			Value [2]any `json:"value"`
		} `json:"result"`
	}
	s.get("/api/v1/query", url.Values{"query": {"count_over_time(valid_f[1h])"}, "time": {"1700001000"}}, &d)
	if len(d.Result) != writers {
		t.Fatalf("%d writers' series, want %d", len(d.Result), writers)
	}
	for _, r := range d.Result {
		if r.Value[1] != strconv.Itoa(requests*perRequest) {
			t.Fatalf("a writer has %v samples, want %d", r.Value[1], requests*perRequest)
		}
	}
	if code, _, body := s.call(http.MethodGet, "/healthz", "", nil); code != 200 {
		t.Fatalf("healthz after the attack: %d %s", code, body)
	}
	if code, body := s.post("/write", "text/plain", []byte("after f=1\n")); code != 204 {
		t.Fatalf("write after the attack: %d %s", code, body)
	}
}

// TestHardeningSnapshot takes a snapshot, writes more, and restores the
// snapshot into a new data dir: it holds exactly the data written before.
func TestHardeningSnapshot(t *testing.T) {
	s := startServer(t, "")
	t0 := time.Unix(1_700_000_000, 0)
	if code, body := s.post("/write?precision=s", "text/plain", linesFor([]string{"a", "b"}, t0, 30, func(h, i int) float64 { return float64(h*100 + i) })); code != 204 {
		t.Fatalf("write: %d %s", code, body)
	}
	code, _, body := s.call(http.MethodPost, "/api/v1/admin/snapshot", "", nil)
	if code != 200 {
		t.Fatalf("snapshot: %d %s", code, body)
	}
	var resp struct {
		Data struct{ Name, Dir string }
	}
	if err := json.Unmarshal([]byte(body), &resp); err != nil {
		t.Fatal(err)
	}
	if resp.Data.Dir != filepath.Join(s.dataDir, "snapshots", resp.Data.Name) {
		t.Fatalf("snapshot dir %q (name %q), want it under %s/snapshots", resp.Data.Dir, resp.Data.Name, s.dataDir)
	}
	// Written after the snapshot: not in it.
	if code, body := s.post("/write?precision=s", "text/plain", linesFor([]string{"c"}, t0, 30, func(h, i int) float64 { return 1 })); code != 204 {
		t.Fatalf("write: %d %s", code, body)
	}
	// The segments are hard links of the live ones.
	st := s.status()
	if len(st.Segments) == 0 {
		t.Fatal("no segments after the snapshot's flush")
	}
	seg := st.Segments[0].ID
	live, err := os.Stat(filepath.Join(s.dataDir, "segments", seg, "index"))
	if err != nil {
		t.Fatal(err)
	}
	linked, err := os.Stat(filepath.Join(resp.Data.Dir, "segments", seg, "index"))
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(live, linked) {
		t.Fatal("the snapshot's segment file is a copy, not a hard link")
	}

	restored := t.TempDir()
	if err := os.Rename(filepath.Join(resp.Data.Dir, "segments"), filepath.Join(restored, "segments")); err != nil {
		t.Fatal(err)
	}
	r := startServer(t, restored)
	want := s.rawQuery("/api/v1/query", url.Values{"query": {`rs_v{host=~"a|b"}[10m]`}, "time": {"1700000300"}})
	if got := r.rawQuery("/api/v1/query", url.Values{"query": {`rs_v[10m]`}, "time": {"1700000300"}}); got != want {
		t.Fatalf("restored snapshot answers\n%s\nwant\n%s", got, want)
	}
}

// TestHardeningDocsListEveryOption keeps docs/operations.md's option table
// equal to the options table; STRATA_UPDATE_DOCS=1 rewrites it.
func TestHardeningDocsListEveryOption(t *testing.T) {
	const path = "../../docs/operations.md"
	const begin, end = "<!-- options:begin (generated by TestHardeningDocsListEveryOption) -->\n", "<!-- options:end -->\n"
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	i, j := strings.Index(doc, begin), strings.Index(doc, end)
	if i < 0 || j < i {
		t.Fatalf("%s lacks the markers %q and %q", path, begin, end)
	}
	want := optionsMarkdown()
	if got := doc[i+len(begin) : j]; got != want {
		if os.Getenv("STRATA_UPDATE_DOCS") != "" {
			if err := os.WriteFile(path, []byte(doc[:i+len(begin)]+want+doc[j:]), 0o644); err != nil {
				t.Fatal(err)
			}
			return
		}
		t.Fatalf("%s's option table is out of date; run STRATA_UPDATE_DOCS=1 go test ./cmd/strata -run DocsListEveryOption", path)
	}
	for _, o := range options {
		if !strings.Contains(doc, "`"+o.key+"`") {
			t.Errorf("%s does not mention %s", path, o.key)
		}
	}
}

// optionsMarkdown renders the options table.
func optionsMarkdown() string {
	var b strings.Builder
	b.WriteString("| key | flag · environment | default | meaning |\n|---|---|---|---|\n")
	for _, o := range options {
		fmt.Fprintf(&b, "| `%s` | `--%s` · `%s` | %s | %s |\n", o.key, o.flag, envName(o.key), docDefault(o.def), strings.ReplaceAll(o.usage, "|", "\\|"))
	}
	return b.String()
}

func docDefault(def any) string {
	if d, ok := def.(string); ok && d == "" {
		return "(empty)"
	}
	return "`" + formatOption(def) + "`"
}

// TestHealthcheckContainerContract runs the binary as the container image
// does: configured by the environment only, as a non-root user (uid 65532,
// distroless' nonroot, when the test runs as root) on a data dir it owns,
// with `strata healthcheck` as the probe. It listens on loopback only.
func TestHealthcheckContainerContract(t *testing.T) {
	bin := strataBinary(t)
	// A directory every user may enter, holding the binary and /data.
	root, err := os.MkdirTemp("", "strata-image-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(root, "strata")
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(exe, b, 0o755); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(root, "data")
	if err := os.Mkdir(data, 0o755); err != nil {
		t.Fatal(err)
	}
	const nonroot = 65532
	asRoot := os.Geteuid() == 0
	if asRoot {
		if err := os.Chown(data, nonroot, nonroot); err != nil {
			t.Fatal(err)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	env := []string{"STRATA_LISTEN_ADDR=" + addr, "STRATA_DATA_DIR=" + data, "PATH=/usr/bin:/bin"}
	command := func(args ...string) *exec.Cmd {
		cmd := exec.Command(exe, args...)
		cmd.Env = env
		cmd.Dir = "/"
		if asRoot {
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nonroot, Gid: nonroot}}
		}
		return cmd
	}
	probe := func() (int, string) {
		out, err := command("healthcheck").CombinedOutput()
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), string(out)
		} else if err != nil {
			t.Fatal(err)
		}
		return 0, string(out)
	}
	if rc, out := probe(); rc != 1 {
		t.Fatalf("healthcheck with no server: exit %d, want 1: %s", rc, out)
	}

	srv := command()
	var logs logBuffer
	srv.Stdout, srv.Stderr = &logs, &logs
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if srv.ProcessState == nil {
			_ = srv.Process.Kill()
			_ = srv.Wait()
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		rc, out := probe()
		if rc == 0 {
			if !strings.Contains(out, "ready") {
				t.Fatalf("healthcheck output %q", out)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("healthcheck never passed: exit %d: %s\nserver log:\n%s", rc, out, logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	resp, err := http.Post("http://"+addr+"/write", "text/plain", strings.NewReader("container f=1\n"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("write: %d", resp.StatusCode)
	}
	if err := srv.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := srv.Wait(); err != nil {
		t.Fatalf("server exit on SIGTERM: %v\n%s", err, logs.String())
	}
	if rc, _ := probe(); rc != 1 {
		t.Fatalf("healthcheck after stop: exit %d, want 1", rc)
	}
	// Everything the server wrote belongs to the user it ran as.
	err = filepath.WalkDir(data, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if uid := info.Sys().(*syscall.Stat_t).Uid; asRoot && uid != nonroot {
			return fmt.Errorf("%s is owned by uid %d", p, uid)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(data, "segments")); err != nil {
		t.Fatalf("no segments in the data dir after a clean stop: %v", err)
	}
}
