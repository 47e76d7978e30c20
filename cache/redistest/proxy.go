package redistest

import (
	"bytes"
	"net"
	"sync"
	"testing"
)

// Proxy forwards TCP connections to a redis-server and can hold back what
// the server sends on subscribed (pub/sub) connections: a subscriber that
// receives published messages late, while its other connections are
// served at once.
type Proxy struct {
	t      testing.TB
	ln     net.Listener
	target string

	mu     sync.Mutex
	cond   *sync.Cond
	frozen bool // guarded by mu
	conns  []net.Conn
	wg     sync.WaitGroup
}

// NewProxy listens on 127.0.0.1 and forwards every connection to target
// (host:port), until the test ends.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{t: t, ln: ln, target: target}
	p.cond = sync.NewCond(&p.mu)
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

// URL is the proxy's redis:// URL.
func (p *Proxy) URL() string { return "redis://" + p.ln.Addr().String() }

// FreezePubSub holds back (true) or releases (false) the bytes the server
// sends on connections that subscribed to a channel.
func (p *Proxy) FreezePubSub(on bool) {
	p.mu.Lock()
	p.frozen = on
	p.mu.Unlock()
	p.cond.Broadcast()
}

func (p *Proxy) close() {
	_ = p.ln.Close()
	p.mu.Lock()
	p.frozen = false
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	p.cond.Broadcast()
	p.wg.Wait()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, s)
		p.mu.Unlock()
		var sub sync.Once
		subscribed := make(chan struct{})
		p.wg.Add(2)
		go func() { // client → server: watch for SUBSCRIBE
			defer p.wg.Done()
			defer s.Close()
			buf := make([]byte, 32<<10)
			for {
				n, err := c.Read(buf)
				if n > 0 {
					if bytes.Contains(bytes.ToLower(buf[:n]), []byte("subscribe")) {
						sub.Do(func() { close(subscribed) })
					}
					if _, werr := s.Write(buf[:n]); werr != nil {
						return
					}
				}
				if err != nil {
					return
				}
			}
		}()
		go func() { // server → client: held back while frozen, on subscribers
			defer p.wg.Done()
			defer c.Close()
			buf := make([]byte, 32<<10)
			for {
				n, err := s.Read(buf)
				if n > 0 {
					select {
					case <-subscribed:
						p.mu.Lock()
						for p.frozen {
							p.cond.Wait()
						}
						p.mu.Unlock()
					default:
					}
					if _, werr := c.Write(buf[:n]); werr != nil {
						return
					}
				}
				if err != nil {
					return
				}
			}
		}()
	}
}
