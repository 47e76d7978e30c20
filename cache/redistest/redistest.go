// Package redistest runs a redis-server of a test's own, for the tests of
// the result cache's L2 tier (package cache) and of the server with that
// tier on (cmd/strata): on 127.0.0.1 and a free port, without persistence,
// killed when the test ends or when the test process dies.
package redistest

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/strata-tsdb/strata/internal/testproc"
)

// Server is a running redis-server.
type Server struct {
	t    testing.TB
	port int
	dir  string
	proc *testproc.Process // nil while stopped
}

// Start starts a redis-server and stops it when the test ends. It fails
// the test when redis-server is not installed: the tests never skip for a
// missing dependency (bash .ci/test installs it).
func Start(t testing.TB) *Server {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatal("redis-server not installed: run the tests with bash .ci/test, which installs it")
	}
	r := &Server{t: t, dir: t.TempDir()}
	testproc.OnFreePort(t, 6, func(port int) error {
		r.port = port
		return r.start()
	})
	t.Cleanup(r.Stop)
	return r
}

// start runs the server on r.port and waits until it answers.
func (r *Server) start() error {
	cmd := exec.Command("redis-server", "--port", strconv.Itoa(r.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", r.dir, "--loglevel", "warning",
		// Tests move dir to make an RDB save fail (MISCONF).
		"--enable-protected-configs", "local")
	p, err := testproc.Start(cmd)
	if err != nil {
		return err
	}
	r.proc = p
	rc := redis.NewClient(&redis.Options{Addr: r.Addr(), MaxRetries: -1})
	defer rc.Close()
	err = p.WaitReady(5*time.Second, 10*time.Millisecond, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		return rc.Ping(ctx).Err()
	})
	if err != nil {
		r.Stop()
		return fmt.Errorf("redis-server on port %d did not answer: %w", r.port, err)
	}
	return nil
}

// Stop kills the server; calling it twice is fine.
func (r *Server) Stop() {
	if r.proc == nil {
		return
	}
	r.proc.Stop()
	r.proc = nil
}

// Restart starts the server again on the same port.
func (r *Server) Restart() {
	r.t.Helper()
	if err := r.start(); err != nil {
		r.t.Fatal(err)
	}
}

// Signal sends sig to the server (SIGSTOP, SIGCONT: a slow server). After
// SIGSTOP it returns once the server is stopped (on Linux, where /proc
// says so), so that no command sent after it is answered.
func (r *Server) Signal(sig syscall.Signal) {
	r.t.Helper()
	if err := r.proc.Signal(sig); err != nil {
		r.t.Fatal(err)
	}
	waitIfStopped(r.t, r.proc.Pid(), sig)
}

// Addr is the server's host:port.
func (r *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(r.port) }

// URL is the server's redis:// URL.
func (r *Server) URL() string { return "redis://" + r.Addr() }

// Client returns a client of the server, closed at the end of the test.
func (r *Server) Client() *redis.Client {
	rc := redis.NewClient(&redis.Options{Addr: r.Addr(), MaxRetries: -1})
	r.t.Cleanup(func() { _ = rc.Close() })
	return rc
}
