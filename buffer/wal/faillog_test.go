package wal

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// TestWriteFailureIsLogged checks that the moment the WAL starts refusing
// writes is logged, once: the operator's sign that writes get 503.
func TestWriteFailureIsLogged(t *testing.T) {
	logger, logs := captureLogger()
	// No retry while the test runs: every Log below meets the failure.
	w, err := Open(logger, t.TempDir(), Options{RetryInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Log([]byte("ok")); err != nil {
		t.Fatal(err)
	}
	// The writer goroutine is idle between requests; break its file.
	if err := w.writer.f.Close(); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := w.Log([]byte("lost")); !errors.Is(err, ErrUnwritable) {
			t.Fatalf("log to a closed file: %v, want ErrUnwritable", err)
		}
	}
	if n := strings.Count(logs.String(), "WAL write failed"); n != 1 {
		t.Fatalf("the write failure logged %d times, want once:\n%s", n, logs.String())
	}
	_ = w.Close() // fails: the file is closed
}
