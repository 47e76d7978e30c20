//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package segments

import (
	"io"
	"os"
)

// mmapFile reads the file into memory on platforms without a supported
// mmap; segments then cost their size in heap.
func mmapFile(f *os.File, size int) ([]byte, error) {
	b := make([]byte, size)
	_, err := io.ReadFull(f, b)
	return b, err
}

func munmap([]byte) error { return nil }
