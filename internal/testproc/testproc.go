// Package testproc runs the server processes that test helpers start
// (redis-server in cache/redistest, versitygw in segments/remote/s3test):
// on a free port of 127.0.0.1, killed by the kernel if the test process
// dies without cleaning up (on Linux), polled until they answer, stopped by
// the helper's cleanup. It is used by test helpers only.
package testproc

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"testing"
	"time"
)

// FreePort returns a TCP port of 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// OnFreePort calls start with a free port until it returns nil, at most
// attempts times (another process may take the port first), and fails the
// test with the last error.
func OnFreePort(t testing.TB, attempts int, start func(port int) error) {
	t.Helper()
	var err error
	for range attempts {
		if err = start(FreePort(t)); err == nil {
			return
		}
	}
	t.Fatal(err)
}

// Process is a started child process.
type Process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once cmd has exited
}

// Start starts cmd with a parent-death signal where the kernel has one,
// and waits for its exit in the background.
func Start(cmd *exec.Cmd) (*Process, error) {
	setDeathSignal(cmd)
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &Process{cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// ErrExited is returned by WaitReady when the process exits first.
var ErrExited = errors.New("process exited")

// WaitReady calls ready every interval until it returns nil. It returns
// the last error of ready when timeout passes first, or ErrExited when the
// process exits first.
func (p *Process) WaitReady(timeout, interval time.Duration, ready func() error) error {
	var err error
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(interval) {
		if err = ready(); err == nil {
			return nil
		}
		select {
		case <-p.done:
			return ErrExited
		default:
		}
	}
	return err
}

// Signal sends sig to the process.
func (p *Process) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// Pid is the process' id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Stop kills the process and waits until it has exited.
func (p *Process) Stop() {
	_ = p.cmd.Process.Kill()
	<-p.done
}
