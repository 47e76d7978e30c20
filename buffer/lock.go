package buffer

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// ErrDirLocked is returned by LockDir when another process holds the lock
// on the data directory.
var ErrDirLocked = errors.New("data dir is in use by another process")

// DirLock is an exclusive lock on a data directory, held from LockDir until
// Release or the end of the process (the kernel drops it after a crash, so
// a stale lock file never blocks a restart).
type DirLock struct {
	f    *os.File
	path string
}

// LockDir takes the lock on <dir>/lock and writes this process' PID into
// the file. When another process holds it, the error wraps ErrDirLocked
// and names that process' PID as read from the file.
func LockDir(dir string) (*DirLock, error) {
	path := filepath.Join(dir, "lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	if err := lockFile(f); err != nil {
		_ = f.Close()
		if errors.Is(err, errWouldBlock) {
			holder := "unknown"
			if b, rerr := os.ReadFile(path); rerr == nil && len(strings.TrimSpace(string(b))) > 0 {
				holder = strings.TrimSpace(string(b))
			}
			return nil, fmt.Errorf("%w: %s is locked by pid %s; stop that process or use another --data-dir", ErrDirLocked, path, holder)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	// The lock is ours: record who holds it for the next one to read.
	if err := f.Truncate(0); err == nil {
		_, err = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("write pid to %s: %w", path, err)
	}
	return &DirLock{f: f, path: path}, nil
}

// Release drops the lock. The file stays: removing it would let a third
// process lock a new file while a second still waits on the old one.
func (l *DirLock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close() // Closing the descriptor releases the flock.
	l.f = nil
	return err
}
