package buffer

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLockDir(t *testing.T) {
	dir := t.TempDir()
	l, err := LockDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "lock"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.TrimSpace(string(b)), fmt.Sprint(os.Getpid()); got != want {
		t.Fatalf("lock file holds %q, want the pid %s", got, want)
	}
	// flock conflicts between two open files even in one process.
	_, err = LockDir(dir)
	if !errors.Is(err, ErrDirLocked) || !strings.Contains(err.Error(), "pid "+fmt.Sprint(os.Getpid())) {
		t.Fatalf("second lock: %v, want ErrDirLocked naming pid %d", err, os.Getpid())
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	l2, err := LockDir(dir)
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	if err := l2.Release(); err != nil {
		t.Fatal(err)
	}
}

// TestLockDirHolderUnknown: a lock held by a process that has not written
// its pid yet (the file is empty) is reported as held by an unknown pid.
func TestLockDirHolderUnknown(t *testing.T) {
	dir := t.TempDir()
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := lockFile(f); err != nil {
		t.Fatal(err)
	}
	_, err = LockDir(dir)
	if !errors.Is(err, ErrDirLocked) || !strings.Contains(err.Error(), "locked by pid unknown;") {
		t.Fatalf("lock held with an empty file: %v, want ErrDirLocked naming pid unknown", err)
	}
	var none *DirLock
	if err := none.Release(); err != nil {
		t.Fatalf("Release of no lock: %v", err)
	}
}
