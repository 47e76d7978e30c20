package target

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Flavour says what kind of server a target is.
type Flavour string

const (
	// Strata exposes /api/v1/status/tsdb, /metrics with strata_* figures,
	// the flush endpoint and the X-Strata-Cache header.
	Strata Flavour = "strata"
	// Prometheus is a Prometheus server run with
	// --web.enable-remote-write-receiver; it takes remote write only.
	Prometheus Flavour = "prometheus"
	// Generic is any server with the Prometheus write and query API; only
	// process_resident_memory_bytes is read from its /metrics.
	Generic Flavour = "generic"
)

// ParseFlavour checks s.
func ParseFlavour(s string) (Flavour, error) {
	switch f := Flavour(s); f {
	case Strata, Prometheus, Generic:
		return f, nil
	}
	return "", fmt.Errorf("unknown flavour %q: want strata, prometheus or generic", s)
}

// Options configures a Target.
type Options struct {
	// URL is the server's base URL, e.g. http://127.0.0.1:8430.
	URL string
	// Flavour is the kind of server.
	Flavour Flavour
	// DataDir, when set, is the server's data directory on this machine;
	// snapshots then measure it on disk.
	DataDir string
	// Timeout bounds each request; zero means 60 s.
	Timeout time.Duration
	// AllowRemote lets URL name a host that is not the loopback interface.
	// Off by default, so that a typo does not load someone else's server.
	AllowRemote bool
	// Conns is the number of connections kept open; zero means 16.
	Conns int
}

// Target sends requests to one server. It is safe for concurrent use.
type Target struct {
	base    *url.URL
	flavour Flavour
	dataDir string
	client  *http.Client
}

// New checks o and returns a target.
func New(o Options) (*Target, error) {
	u, err := url.Parse(strings.TrimSuffix(o.URL, "/"))
	if err != nil {
		return nil, fmt.Errorf("parse target URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("target URL %q: want http://host:port", o.URL)
	}
	if !o.AllowRemote && !IsLoopback(u.Hostname()) {
		return nil, fmt.Errorf("target %s is not on this machine (127.0.0.0/8, ::1, localhost); pass --allow-remote to load it anyway", u.Host)
	}
	if _, err := ParseFlavour(string(o.Flavour)); err != nil {
		return nil, err
	}
	if o.Timeout == 0 {
		o.Timeout = time.Minute
	}
	if o.Conns == 0 {
		o.Conns = 16
	}
	tr := &http.Transport{
		Proxy:               nil, // never through a proxy: the target is local
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConns:        o.Conns,
		MaxIdleConnsPerHost: o.Conns,
		IdleConnTimeout:     30 * time.Second,
		DisableCompression:  true,
	}
	return &Target{base: u, flavour: o.Flavour, dataDir: o.DataDir, client: &http.Client{Transport: tr, Timeout: o.Timeout}}, nil
}

// IsLoopback reports whether host is localhost or a loopback address.
func IsLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// URL returns the base URL.
func (t *Target) URL() string { return t.base.String() }

// Flavour returns the kind of server.
func (t *Target) Flavour() Flavour { return t.flavour }

// Close releases idle connections.
func (t *Target) Close() { t.client.CloseIdleConnections() }

// Outcome is what became of one request.
type Outcome struct {
	// Status is the HTTP status, 0 when no answer came.
	Status int
	// Err is set when no answer came (connection refused, timeout).
	Err error
	// Body is the start of the answer when it was not a success, for the
	// report.
	Body string
	// Start is when the request was sent, and Latency runs from then to
	// reading the last byte of the answer.
	Start   time.Time
	Latency time.Duration
}

// OK reports a 2xx answer that could be read (and, for queries, decoded).
func (o Outcome) OK() bool { return o.Err == nil && o.Status >= 200 && o.Status < 300 }

// Cause names the failure for error counts: the status code, or
// "transport" when no answer came. Empty for a success.
func (o Outcome) Cause() string {
	var bad errBadAnswer
	switch {
	case o.OK():
		return ""
	case errors.As(o.Err, &bad):
		return "bad-answer"
	case o.Err != nil:
		return "transport"
	}
	return fmt.Sprint(o.Status)
}

// Message describes the failure.
func (o Outcome) Message() string {
	if o.Err != nil {
		return o.Err.Error()
	}
	return strings.TrimSpace(o.Body)
}

// Write posts body to path (with its query string) with the headers.
func (t *Target) Write(ctx context.Context, path string, header map[string]string, body []byte) Outcome {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.base.String()+path, bytes.NewReader(body))
	if err != nil {
		return Outcome{Err: err}
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	out, _ := t.do(req, nil)
	return out
}

// bodyBufs holds the buffers answers are read into: reading an answer into
// a buffer grown as it goes allocated about three times its size, and the
// collections that caused (and their assists, paid while reading) were
// counted in the latency of the requests they fell on.
var bodyBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// do sends req and reads the whole answer. On success the body is handed to
// keep (when not nil) before it is released.
func (t *Target) do(req *http.Request, keep func([]byte)) (Outcome, http.Header) {
	start := time.Now()
	resp, err := t.client.Do(req)
	if err != nil {
		return Outcome{Err: err, Start: start, Latency: time.Since(start)}, nil
	}
	defer resp.Body.Close()
	buf := bodyBufs.Get().(*bytes.Buffer)
	defer bodyBufs.Put(buf)
	buf.Reset()
	if n := resp.ContentLength; n > 0 && n <= 64<<20 {
		buf.Grow(int(n) + bytes.MinRead) // ReadFrom wants room to see the end
	}
	_, err = buf.ReadFrom(resp.Body)
	out := Outcome{Status: resp.StatusCode, Start: start, Latency: time.Since(start)}
	if err != nil {
		out.Err = fmt.Errorf("read answer: %w", err)
		return out, resp.Header
	}
	if !out.OK() {
		b := buf.Bytes()
		out.Body = string(b[:min(len(b), 512)])
	} else if keep != nil {
		keep(buf.Bytes())
	}
	return out, resp.Header
}

// get fetches path and returns the body of a 2xx answer.
func (t *Target) get(ctx context.Context, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.base.String()+path, nil)
	if err != nil {
		return nil, err
	}
	var body []byte
	out, _ := t.do(req, func(b []byte) { body = bytes.Clone(b) })
	if !out.OK() {
		return nil, fmt.Errorf("GET %s: %s %s", path, out.Cause(), out.Message())
	}
	return body, nil
}

// Flush asks the server to write its in-memory data to disk, then to run
// the compactions that are due (blocks of days that are over become day
// segments), so that disk figures are those of data at rest. Only Strata
// can; for other flavours it returns ErrUnsupported.
func (t *Target) Flush(ctx context.Context) error {
	if t.flavour != Strata {
		return fmt.Errorf("flush %s: %w", t.flavour, errors.ErrUnsupported)
	}
	for _, step := range []struct{ what, path string }{
		{"flush", "/api/v1/admin/tsdb/flush"},
		{"compaction", "/api/v1/admin/compaction/run"},
	} {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.base.String()+step.path, nil)
		if err != nil {
			return err
		}
		if out, _ := t.do(req, nil); !out.OK() {
			return fmt.Errorf("%s: %s %s", step.what, out.Cause(), out.Message())
		}
	}
	return nil
}

// Ready waits until the server answers its health endpoint, or ctx ends.
func (t *Target) Ready(ctx context.Context) error {
	path := "/-/ready"
	switch t.flavour {
	case Strata:
		path = "/readyz"
	case Generic:
		return nil // no known health endpoint
	}
	for {
		_, err := t.get(ctx, path)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for %s: %w (last: %v)", t.base, ctx.Err(), err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
