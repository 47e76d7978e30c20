package cache

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// testRedis is a redis-server of the test's own on 127.0.0.1 and a random
// port, without persistence, killed when the test ends (or when the test
// process dies).
type testRedis struct {
	t    testing.TB
	port int
	dir  string
	cmd  *exec.Cmd
}

// startRedis starts a redis-server, skipping the test if there is none.
func startRedis(t testing.TB) *testRedis {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatal("redis-server not installed: run the tests with bash .ci/test, which installs it")
	}
	r := &testRedis{t: t, dir: t.TempDir()}
	for attempt := 0; ; attempt++ {
		r.port = freePort(t)
		if err := r.start(); err == nil {
			break
		} else if attempt == 5 {
			t.Fatal(err)
		}
	}
	t.Cleanup(r.stop)
	return r
}

func freePort(t testing.TB) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// start runs the server on r.port and waits until it answers.
func (r *testRedis) start() error {
	cmd := exec.Command("redis-server", "--port", strconv.Itoa(r.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", r.dir, "--loglevel", "warning")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return err
	}
	r.cmd = cmd
	rc := redis.NewClient(&redis.Options{Addr: r.addr(), MaxRetries: -1})
	defer rc.Close()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := rc.Ping(ctx).Err()
		cancel()
		if err == nil {
			return nil
		}
	}
	r.stop()
	return fmt.Errorf("redis-server on port %d did not answer", r.port)
}

// stop kills the server; calling it twice is fine.
func (r *testRedis) stop() {
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	_ = r.cmd.Wait()
	r.cmd = nil
}

// restart starts the server again on the same port.
func (r *testRedis) restart() {
	r.t.Helper()
	if err := r.start(); err != nil {
		r.t.Fatal(err)
	}
}

// signal sends sig to the server (SIGSTOP, SIGCONT: a slow server).
func (r *testRedis) signal(sig syscall.Signal) {
	r.t.Helper()
	if err := r.cmd.Process.Signal(sig); err != nil {
		r.t.Fatal(err)
	}
}

func (r *testRedis) addr() string { return "127.0.0.1:" + strconv.Itoa(r.port) }
func (r *testRedis) url() string  { return "redis://" + r.addr() }

// client returns a client of the server, closed at the end of the test.
func (r *testRedis) client() *redis.Client {
	rc := redis.NewClient(&redis.Options{Addr: r.addr(), MaxRetries: -1})
	r.t.Cleanup(func() { _ = rc.Close() })
	return rc
}

var prefixSeq atomic.Uint64

// newL2Cache returns a cache with an L2 tier on url under prefix (on the
// wall clock: entries in Redis live by it), closed at the end of the test.
func newL2Cache(t testing.TB, url, prefix string, mutate ...func(*Options)) *Cache {
	t.Helper()
	o := DefaultOptions()
	o.MaxBytes = 32 << 20
	o.TTL = time.Minute
	o.Grace = time.Minute
	o.L2 = L2Options{URL: url, Prefix: prefix, OpTimeout: 100 * time.Millisecond}
	for _, f := range mutate {
		f(&o)
	}
	c, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// testPrefix returns a prefix no other cache of the test binary uses.
func testPrefix() string { return fmt.Sprintf("t%d:", prefixSeq.Add(1)) }

// waitFor polls cond every 5 ms until it holds, failing after d.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
	}
}

// waitSynced waits until every cache is connected and has applied the
// same last generation as Redis has handed out.
func waitSynced(t testing.TB, rc *redis.Client, prefix string, cs ...*Cache) {
	t.Helper()
	waitFor(t, 10*time.Second, "caches in sync with Redis", func() bool {
		seq, err := rc.Get(context.Background(), prefix+"{gen}:seq").Uint64()
		if err != nil && err != redis.Nil {
			return false
		}
		for _, c := range cs {
			s := c.Stats()
			if !s.L2Connected || s.Generation != seq {
				return false
			}
		}
		return true
	})
}
