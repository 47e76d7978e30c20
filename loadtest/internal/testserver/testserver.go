// Package testserver runs a real Strata for end-to-end tests of the load
// generator: it builds cmd/strata once per test binary and starts it as a
// child process on a free loopback port with a temporary data directory.
//
// It is for tests only and must not be imported by the load generator.
package testserver

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	buildDir  string
	binary    string
	buildErr  error
)

// Main runs the tests of a package that uses Start, then the checks (a
// goroutine leak check, say) if the tests passed, and removes the binary;
// call it from TestMain.
func Main(m *testing.M, checks ...func() error) {
	code := m.Run()
	if code == 0 {
		for _, check := range checks {
			if err := check(); err != nil {
				fmt.Fprintln(os.Stderr, err)
				code = 1
			}
		}
	}
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// build compiles cmd/strata into a temporary directory, once.
func build(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "strata-loadtest-")
		if buildErr != nil {
			return
		}
		binary = filepath.Join(buildDir, "strata")
		cmd := exec.Command("go", "build", "-o", binary, "github.com/strata-tsdb/strata/cmd/strata")
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build cmd/strata: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binary
}

var listenRE = regexp.MustCompile(`listening on (http://[0-9.:]+)/`)

// Server is a running Strata.
type Server struct {
	// URL is the base URL, e.g. http://127.0.0.1:41234.
	URL string
	// DataDir is its data directory.
	DataDir string
}

// Start builds Strata if needed and runs it with a fresh data directory on
// a free loopback port, plus the extra flags. The process is killed when
// the test ends (and, on Linux, when the test binary dies).
func Start(t testing.TB, flags ...string) *Server {
	t.Helper()
	bin := build(t)
	dir := t.TempDir()
	args := append([]string{"--listen-addr", "127.0.0.1:0", "--data-dir", dir, "--log.level", "warn"}, flags...)
	cmd := exec.Command(bin, args...)
	setDeathSignal(cmd)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var logs tail
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("strata stderr (tail):\n%s", logs.String())
		}
	})
	urls := make(chan string, 1)
	go func() {
		defer close(exited)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := listenRE.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case urls <- m[1]:
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
		_ = cmd.Wait()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	select {
	case u := <-urls:
		return &Server{URL: u, DataDir: dir}
	case <-exited:
		t.Fatalf("strata exited before listening:\n%s", logs.String())
	case <-ctx.Done():
		t.Fatalf("strata did not print its URL within 30s:\n%s", logs.String())
	}
	return nil
}

// tail keeps the last 8 KiB written to it.
type tail struct {
	mu  sync.Mutex
	buf []byte
}

func (w *tail) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	if len(w.buf) > 8<<10 {
		w.buf = w.buf[len(w.buf)-8<<10:]
	}
	return len(p), nil
}

func (w *tail) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.TrimSpace(string(w.buf))
}
