package wal

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/strata-tsdb/strata/internal/tmpfstest"
)

// TestFailedProbeKeepsUnwritable: while the disk stays full, every
// recovery attempt of the retry loop fails its probe write, and the WAL
// stays unwritable between them (Err() never nil), with no Log to set it
// again. A recovery that took a successful removal of the probe for a
// successful probe (writer.go's tryRecover returning the truncation's nil
// error) would accept writes on a full disk.
func TestFailedProbeKeepsUnwritable(t *testing.T) {
	dir := tmpfstest.Mount(t, 1<<20)
	m := NewMetrics(nil)
	w, err := Open(nil, filepath.Join(dir, "wal"), Options{Metrics: m, RetryInterval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.Log([]byte("before")); err != nil {
		t.Fatal(err)
	}
	filler := filepath.Join(dir, "filler")
	fill(t, filler)
	big := make([]byte, 200<<10)
	if err := w.Log(big); !errors.Is(err, ErrUnwritable) || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("log on a full disk: %v, want ErrUnwritable wrapping ENOSPC", err)
	}
	// Five failed recovery attempts (each counts a write error), the
	// WAL unwritable all along.
	base := counterValue(t, m.WriteErrors)
	for deadline := time.Now().Add(60 * time.Second); counterValue(t, m.WriteErrors) < base+5; time.Sleep(time.Millisecond) {
		if err := w.Err(); !errors.Is(err, ErrUnwritable) {
			t.Fatalf("the WAL counts as writable (Err() = %v) while the disk is full", err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("fewer than 5 recovery attempts in 60s (%v write errors, %v at the failure)", counterValue(t, m.WriteErrors), base)
		}
	}
	if err := w.Err(); !errors.Is(err, ErrUnwritable) {
		t.Fatalf("the WAL counts as writable (Err() = %v) while the disk is full", err)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(60 * time.Second); w.Err() != nil; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("still unwritable 60s after space returned: %v", w.Err())
		}
	}
	if err := w.Log([]byte("after")); err != nil {
		t.Fatalf("log after space returned: %v", err)
	}
}
