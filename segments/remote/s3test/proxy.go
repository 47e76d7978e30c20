package s3test

import (
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// Proxy forwards HTTP requests to a Server and can hold back those a
// predicate picks (an upload that never finishes), until the test ends or
// the client gives up.
type Proxy struct {
	ln   net.Listener
	srv  *http.Server
	stop chan struct{}

	mu      sync.Mutex
	hold    func(*http.Request) bool // guarded by mu
	held    int                      // requests held so far; guarded by mu
	gaveUp  int                      // held requests their clients gave up; guarded by mu
	forward bool                     // Release forwards the held requests (HoldGets); guarded by mu
	release chan struct{}            // closed by Release; guarded by mu
}

// NewProxy listens on 127.0.0.1 and forwards to s until the test ends.
func NewProxy(t testing.TB, s *Server) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	target := &url.URL{Scheme: "http", Host: s.Addr()}
	rp := httputil.NewSingleHostReverseProxy(target)
	p := &Proxy{ln: ln, stop: make(chan struct{}), release: make(chan struct{})}
	// The client signs the Host header it sends (the proxy's): keep it.
	p.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		hold := p.hold != nil && p.hold(r)
		if hold {
			p.held++
		}
		release, forward := p.release, p.forward
		p.mu.Unlock()
		if hold {
			select {
			case <-r.Context().Done():
				p.mu.Lock()
				p.gaveUp++
				p.mu.Unlock()
			case <-p.stop:
			case <-release:
				if forward {
					rp.ServeHTTP(w, r)
					return
				}
			}
			http.Error(w, "held back by the test proxy", http.StatusServiceUnavailable)
			return
		}
		rp.ServeHTTP(w, r)
	})}
	go func() { _ = p.srv.Serve(ln) }()
	t.Cleanup(func() {
		close(p.stop)
		_ = p.srv.Close()
	})
	return p
}

// HoldPuts holds back every PUT whose path ends with suffix.
func (p *Proxy) HoldPuts(suffix string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.hold = func(r *http.Request) bool { return r.Method == http.MethodPut && strings.HasSuffix(r.URL.Path, suffix) }
	p.forward = false
}

// HoldGets holds back every GET whose path ends with suffix; Release
// forwards them (a slow bucket, not a failing one).
func (p *Proxy) HoldGets(suffix string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.hold = func(r *http.Request) bool { return r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, suffix) }
	p.forward = true
}

// GaveUp returns how many held requests their clients abandoned (closed
// the connection) while held.
func (p *Proxy) GaveUp() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.gaveUp
}

// Release stops holding requests back: those held so far are refused
// (503, which clients retry), later ones are forwarded.
func (p *Proxy) Release() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.hold = nil
	close(p.release)
	p.release = make(chan struct{})
}

// Held returns how many requests were held back so far.
func (p *Proxy) Held() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.held
}

// URL is the storage.object.url of prefix in the test bucket, through the
// proxy.
func (p *Proxy) URL(prefix string) string {
	return "s3://" + Bucket + "/" + prefix + "?endpoint=http://" + p.ln.Addr().String() + "&region=us-east-1"
}
