// Package s3test runs an S3-compatible server of a test's own (versitygw
// with its posix backend) for the tests of the object storage tier
// (segments/remote) and of the server with the tier on (cmd/strata): on
// 127.0.0.1 and a free port, over a temporary directory, with its own
// credentials, killed when the test ends or when the test process dies.
package s3test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/strata-tsdb/strata/internal/testproc"
)

// Access and secret keys of the root user of every test server.
const (
	AccessKey = "strata-test-access"
	SecretKey = "strata-test-secret-key"
)

// Bucket is the bucket every test server starts with.
const Bucket = "strata"

// Server is a running versitygw.
type Server struct {
	t    testing.TB
	port int
	root string            // the posix backend's directory: one subdirectory per bucket
	proc *testproc.Process // nil while stopped
	out  *syncBuilder
}

// Binary returns the path of versitygw: on PATH, else in $(go env
// GOPATH)/bin, where bash .ci/test installs it.
func Binary() (string, error) {
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p, nil
	}
	gopath := os.Getenv("GOPATH")
	if gopath == "" {
		if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
			gopath = strings.TrimSpace(string(out))
		}
	}
	for _, dir := range filepath.SplitList(gopath) {
		p := filepath.Join(dir, "bin", "versitygw")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("versitygw is not installed: run the tests with bash .ci/test, which installs it, or go install github.com/versity/versitygw/cmd/versitygw@v1.8.0")
}

// Start starts a versitygw holding the empty bucket Bucket and stops it
// when the test ends. It fails the test when versitygw is not installed:
// the tests never skip for a missing dependency.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{t: t, root: t.TempDir()}
	if err := os.Mkdir(filepath.Join(s.root, Bucket), 0o755); err != nil {
		t.Fatal(err)
	}
	testproc.OnFreePort(t, 6, func(port int) error {
		s.port = port
		return s.start()
	})
	t.Cleanup(s.Stop)
	return s
}

const healthPath = "/strata-test-health"

// start runs the server on s.port and waits until it answers.
func (s *Server) start() error {
	bin, err := Binary()
	if err != nil {
		return err
	}
	s.out = &syncBuilder{}
	cmd := exec.Command(bin, "--access", AccessKey, "--secret", SecretKey, "--port", s.Addr(),
		"--quiet", "--health", healthPath, "posix", s.root)
	cmd.Stdout, cmd.Stderr = s.out, s.out
	p, err := testproc.Start(cmd)
	if err != nil {
		return fmt.Errorf("start versitygw: %w", err)
	}
	s.proc = p
	// Generous: a loaded machine starts processes slowly.
	err = p.WaitReady(60*time.Second, 20*time.Millisecond, func() error {
		resp, err := http.Get("http://" + s.Addr() + healthPath)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("health: %s", resp.Status)
		}
		return nil
	})
	if errors.Is(err, testproc.ErrExited) {
		s.proc = nil
		return fmt.Errorf("versitygw on port %d exited: %s", s.port, s.out.String())
	}
	if err != nil {
		out := s.out.String()
		s.Stop()
		return fmt.Errorf("versitygw on port %d did not answer: %s", s.port, out)
	}
	return s.waitBucket()
}

// waitBucket waits until the bucket answers a listing with the test's
// credentials.
func (s *Server) waitBucket() error {
	c := s.Client()
	var err error
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		var ok bool
		ok, err = c.BucketExists(ctx, Bucket)
		cancel()
		if err == nil && ok {
			return nil
		}
		if err == nil {
			err = fmt.Errorf("bucket %s not found", Bucket)
		}
	}
	return fmt.Errorf("versitygw on port %d: %w", s.port, err)
}

// Stop kills the server (a bucket that is down); calling it twice is fine.
func (s *Server) Stop() {
	if s.proc == nil {
		return
	}
	s.proc.Stop()
	s.proc = nil
}

// Restart starts the server again on the same port, over the same
// directory (the bucket is back with what it held).
func (s *Server) Restart() {
	s.t.Helper()
	var err error
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if err = s.start(); err == nil {
			return
		}
	}
	s.t.Fatal(err)
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// URL is the storage.object.url of prefix in the test bucket.
func (s *Server) URL(prefix string) string {
	return "s3://" + Bucket + "/" + prefix + "?endpoint=http://" + s.Addr() + "&region=us-east-1"
}

// Env is the environment that gives a client the server's credentials, as
// the AWS SDKs read it.
func (s *Server) Env() []string {
	return []string{"AWS_ACCESS_KEY_ID=" + AccessKey, "AWS_SECRET_ACCESS_KEY=" + SecretKey}
}

// SetEnv sets Env in the test process for the rest of the test.
func (s *Server) SetEnv(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", SecretKey)
}

// Client returns a minio client of the server, to look at the bucket
// independently of the code under test.
func (s *Server) Client() *minio.Client {
	c, err := minio.New(s.Addr(), &minio.Options{
		Creds: credentials.NewStaticV4(AccessKey, SecretKey, ""), Region: "us-east-1", BucketLookup: minio.BucketLookupPath,
	})
	if err != nil {
		s.t.Fatal(err)
	}
	return c
}

// Keys lists every key of the bucket under prefix.
func (s *Server) Keys(prefix string) []string {
	s.t.Helper()
	var keys []string
	for oi := range s.Client().ListObjects(context.Background(), Bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if oi.Err != nil {
			s.t.Fatal(oi.Err)
		}
		keys = append(keys, oi.Key)
	}
	return keys
}

// syncBuilder is the server's output, written by the process' copier
// goroutines and read by start.
type syncBuilder struct {
	mu sync.Mutex
	b  strings.Builder
}

func (w *syncBuilder) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.b.Len() > 64<<10 {
		return len(p), nil
	}
	return w.b.Write(p)
}

func (w *syncBuilder) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// Get returns the content of key, failing the test if it cannot.
func (s *Server) Get(t testing.TB, key string) []byte {
	t.Helper()
	o, err := s.Client().GetObject(context.Background(), Bucket, key, minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	b, err := io.ReadAll(o)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
