package segments

import (
	"bufio"
	"fmt"
	"hash/crc32"
	"os"
)

// fileWriter writes a segment file through a buffer, tracking its size and
// CRC32C.
type fileWriter struct {
	name string // relative to the segment directory
	f    *os.File
	bw   *bufio.Writer
	pos  uint64
	crc  uint32
}

func createFileWriter(path, name string) (*fileWriter, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	return &fileWriter{name: name, f: f, bw: bufio.NewWriterSize(f, 1<<20)}, nil
}

func (fw *fileWriter) write(b []byte) error {
	n, err := fw.bw.Write(b)
	fw.crc = crc32.Update(fw.crc, castagnoli, b[:n])
	fw.pos += uint64(n)
	if err != nil {
		return fmt.Errorf("write %s: %w", fw.name, err)
	}
	return nil
}

// finish flushes, fsyncs and closes the file.
func (fw *fileWriter) finish() (fileMeta, error) {
	fm := fileMeta{Name: fw.name, Size: int64(fw.pos), CRC32C: formatCRC(fw.crc)}
	if err := fw.bw.Flush(); err != nil {
		fw.f.Close()
		return fm, fmt.Errorf("write %s: %w", fw.name, err)
	}
	if err := fw.f.Sync(); err != nil {
		fw.f.Close()
		return fm, fmt.Errorf("sync %s: %w", fw.name, err)
	}
	if err := fw.f.Close(); err != nil {
		return fm, fmt.Errorf("close %s: %w", fw.name, err)
	}
	return fm, nil
}

// abort closes the file without flushing.
func (fw *fileWriter) abort() { _ = fw.f.Close() }

// syncedDir is called by syncDir with each directory it opened, just before
// the fsync. Tests set it to see which directories are synced (only a power
// loss would show one skipped); it is a no-op otherwise.
var syncedDir = func(dir string) {}

// syncDir fsyncs a directory so that entries created or renamed in it are
// durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	syncedDir(dir)
	serr := d.Sync()
	cerr := d.Close()
	if serr != nil {
		return fmt.Errorf("sync dir %s: %w", dir, serr)
	}
	return cerr
}
