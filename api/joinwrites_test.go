package api

import (
	"bytes"
	"context"
	"io"
	"net"
	"testing"
	"time"
)

// joinPair returns a connection accepted by a JoinWrites listener and the
// client's end of it.
func joinPair(t *testing.T) (*joinConn, net.Conn) {
	t.Helper()
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := JoinWrites(raw)
	t.Cleanup(func() { ln.Close() })
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	jc, ok := c.(*joinConn)
	if !ok {
		t.Fatalf("accepted a %T, want a *joinConn", c)
	}
	if got, _ := ConnContext(context.Background(), c).Value(joinConnKey{}).(*joinConn); got != jc {
		t.Fatal("ConnContext does not carry the connection")
	}
	return jc, client
}

// readN reads exactly n bytes from c (bounded by a generous deadline, so
// that a defect fails the test rather than hanging it).
func readN(t *testing.T, c net.Conn, n int) []byte {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(time.Minute))
	b := make([]byte, n)
	if _, err := io.ReadFull(c, b); err != nil {
		t.Fatalf("read %d bytes: %v", n, err)
	}
	return b
}

// TestJoinConn: outside a join a write goes out as it is; inside one, the
// first write is held (a copy: the caller's buffer is written over, as
// bufio does) and goes out with the next, in order; a join with one write
// sends it at its end, and one with none sends nothing; the connection
// writes directly again after a join.
func TestJoinConn(t *testing.T) {
	jc, client := joinPair(t)
	write := func(p []byte) {
		t.Helper()
		if n, err := jc.Write(p); n != len(p) || err != nil {
			t.Fatalf("Write(%d bytes) = %d, %v", len(p), n, err)
		}
	}
	write([]byte("plain"))
	if got := readN(t, client, 5); string(got) != "plain" {
		t.Fatalf("read %q", got)
	}

	head := bytes.Repeat([]byte("h"), 4096)
	body := bytes.Repeat([]byte("0123456789"), 8000)
	buf := append([]byte(nil), head...)
	jc.startJoin()
	write(buf)
	if jc.held == nil || !bytes.Equal(*jc.held, head) {
		t.Fatal("the first write of a join is not held")
	}
	copy(buf, bytes.Repeat([]byte("x"), len(buf))) // bufio reuses its buffer
	write(body)
	if jc.held != nil || jc.join {
		t.Fatalf("after the second write: a write held %t, join %t", jc.held != nil, jc.join)
	}
	if err := jc.endJoin(); err != nil {
		t.Fatal(err)
	}
	if got := readN(t, client, len(head)+len(body)); !bytes.Equal(got[:len(head)], head) || !bytes.Equal(got[len(head):], body) {
		t.Fatal("the joined writes arrived changed or out of order")
	}

	jc.startJoin()
	write([]byte("alone"))
	if err := jc.endJoin(); err != nil {
		t.Fatal(err)
	}
	jc.startJoin()
	if err := jc.endJoin(); err != nil { // nothing written: nothing sent
		t.Fatal(err)
	}
	write([]byte("after"))
	if got := readN(t, client, 10); string(got) != "aloneafter" {
		t.Fatalf("read %q, want %q", got, "aloneafter")
	}
	if jc.held != nil || jc.join {
		t.Fatalf("after the joins: a write held %t, join %t (an idle connection keeps no buffer)", jc.held != nil, jc.join)
	}
}

// TestJoinConnBroken: when the connection is closed under a held write,
// the write that follows fails and reports nothing of its own bytes
// written.
func TestJoinConnBroken(t *testing.T) {
	jc, _ := joinPair(t)
	jc.startJoin()
	if n, err := jc.Write([]byte("held")); n != 4 || err != nil {
		t.Fatalf("held write = %d, %v", n, err)
	}
	jc.TCPConn.Close()
	if n, err := jc.Write([]byte("next")); n != 0 || err == nil {
		t.Fatalf("write after close = %d, %v; want 0 and an error", n, err)
	}
	if jc.held != nil {
		t.Fatal("a write still held after a failed write")
	}
}
