package api

import (
	"context"
	"net"
	"sync"
)

// Joined writes. net/http writes a response through a 4 KB buffer: an
// answer larger than that leaves in two write(2)s, the buffer (status
// line, headers and the answer's first bytes) and then the rest, and over
// loopback each wakes the client. A stored range answer of 80 KB so cost
// two system calls, two runs of the receiving TCP stack and two wake-ups
// of the reader where one would do. JoinWrites wraps a listener's TCP
// connections so that, for the length of one answer (sendBody), the
// first write is held and sent with the next in one writev(2).

// joinMin is the smallest answer whose writes are joined: below it
// net/http's buffer holds the headers and the answer, sent in one write
// anyway.
const joinMin = 3 << 10

// JoinWrites returns ln with its TCP connections able to join an answer's
// writes into one system call; the server must also set ConnContext as
// its http.Server's ConnContext (without it the connections only add a
// lock to each write). Connections of other kinds are returned as they
// are. Use it for plain HTTP only: under TLS, each record is written
// apart anyway.
func JoinWrites(ln net.Listener) net.Listener { return joinListener{ln} }

// ConnContext puts a connection of a JoinWrites listener in its requests'
// contexts, where the range route finds it; it suits
// http.Server.ConnContext.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	if jc, ok := c.(*joinConn); ok {
		return context.WithValue(ctx, joinConnKey{}, jc)
	}
	return ctx
}

type joinConnKey struct{}

type joinListener struct{ net.Listener }

func (l joinListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok && err == nil {
		return &joinConn{TCPConn: tc}, nil
	}
	return c, err
}

// joinConn is a TCP connection that holds one write while join is set
// and sends it with the next. It embeds the *net.TCPConn, so everything
// but Write (ReadFrom, CloseWrite, deadlines) is the connection's own.
type joinConn struct {
	*net.TCPConn
	mu   sync.Mutex // guards what follows, and serializes writes
	join bool       // hold the next write
	// held is a write held, to be sent with the next one, in a buffer of
	// heldBufs; nil when none is.
	held *[]byte
	bufs [2][]byte // for writev, kept to allocate nothing
}

// heldBufs holds the buffers of held writes between joins, so that an
// idle connection keeps none.
var heldBufs = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

// maxHeldBuf is the largest buffer put back in heldBufs.
const maxHeldBuf = 64 << 10

// startJoin holds the connection's next write until the one after it or
// endJoin; the caller, which serves the connection's request, calls
// endJoin before it returns.
func (c *joinConn) startJoin() {
	c.mu.Lock()
	c.join = true
	c.mu.Unlock()
}

// endJoin sends a write still held (when only one came) and stops
// holding.
func (c *joinConn) endJoin() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.join = false
	if c.held == nil {
		return nil
	}
	_, err := c.writeLocked(nil)
	return err
}

// Write writes p, or holds it while joining, or writes a held write and p
// in one system call.
func (c *joinConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.held != nil:
		return c.writeLocked(p)
	case c.join && len(p) > 0:
		// The bytes are the caller's buffer, written over once we
		// return: copied.
		bp := heldBufs.Get().(*[]byte)
		*bp = append((*bp)[:0], p...)
		c.held = bp
		c.join = false // only one write is held
		return len(p), nil
	}
	return c.TCPConn.Write(p)
}

// writeLocked writes the held bytes and p with one writev, and returns
// how much of p was written.
func (c *joinConn) writeLocked(p []byte) (int, error) {
	c.bufs = [2][]byte{*c.held, p}
	bufs := net.Buffers(c.bufs[:])
	n, err := bufs.WriteTo(c.TCPConn)
	held := int64(len(*c.held))
	if cap(*c.held) <= maxHeldBuf {
		*c.held = (*c.held)[:0]
		heldBufs.Put(c.held)
	}
	c.held, c.bufs = nil, [2][]byte{}
	if n < held {
		return 0, err // the held write failed: the connection is broken
	}
	return int(n - held), err
}

// joinedWrites calls send and then flush, joining what they write into
// one system call, when the request came over a JoinWrites connection and
// the answer is long enough to be written twice; otherwise it calls send
// alone. flush sends what net/http still buffers (the end of an answer
// of up to 8 KB stays in its buffer), so that it goes with the rest.
func joinedWrites(ctx context.Context, size int, send, flush func() error) error {
	jc, ok := ctx.Value(joinConnKey{}).(*joinConn)
	if !ok || size < joinMin {
		return send()
	}
	jc.startJoin()
	err := send()
	if err == nil {
		err = flush()
	}
	if jerr := jc.endJoin(); err == nil {
		err = jerr
	}
	return err
}
