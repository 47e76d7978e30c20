package wal

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"testing"
	"time"
)

// TestMain fails the run if a WAL writer goroutine outlives the tests
// (goleak is not a dependency of the module, so this checks for ours).
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if stacks := leakedWriters(2 * time.Second); stacks != "" {
			fmt.Fprintf(os.Stderr, "leaked WAL writer goroutines:\n%s\n", stacks)
			code = 1
		}
	}
	os.Exit(code)
}

func leakedWriters(wait time.Duration) string {
	deadline := time.Now().Add(wait)
	for {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		if !bytes.Contains(buf, []byte("wal.(*WAL).run")) {
			return ""
		}
		if time.Now().After(deadline) {
			return string(buf)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
