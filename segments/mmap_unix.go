//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package segments

import (
	"os"
	"syscall"
)

// mmapFile maps size bytes of f read-only. The mapping outlives f.
func mmapFile(f *os.File, size int) ([]byte, error) {
	return syscall.Mmap(int(f.Fd()), 0, size, syscall.PROT_READ, syscall.MAP_SHARED)
}

func munmap(b []byte) error { return syscall.Munmap(b) }
