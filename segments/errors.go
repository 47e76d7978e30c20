package segments

import (
	"errors"
	"fmt"
)

var (
	// ErrClosed is returned by the methods of a Segment after Close, and by
	// the methods of a Writer after Close or Abort.
	ErrClosed = errors.New("segment closed")
	// ErrUnsupportedVersion is returned by Open for a segment whose
	// meta.json is intact but written in a format version this package does
	// not read. It is not a corruption: OpenAll fails instead of
	// quarantining such a segment.
	ErrUnsupportedVersion = errors.New("unsupported segment format version")
	// ErrChecksum is the Err of a *CorruptionError raised by a CRC32C
	// mismatch.
	ErrChecksum = errors.New("checksum mismatch")
	// ErrOutOfOrder is returned by Writer.AddSeries for a series that does
	// not sort after the previous one, or chunks that are not sorted by
	// (Kind, MinTime).
	ErrOutOfOrder = errors.New("out of order")
)

// CorruptionError reports damage in a segment's files: a checksum mismatch,
// a truncated or missing file, or bytes that do not decode. Any error
// returned by Open, ReadChunk, or a SeriesIterator that is caused by the
// bytes on disk is a *CorruptionError.
type CorruptionError struct {
	// Dir is the segment directory.
	Dir string
	// File is the damaged file, relative to Dir ("meta.json", "index",
	// "chunks/000001").
	File string
	// Offset is the byte offset in File where the problem was found, or -1
	// when it concerns the file as a whole (missing, wrong size).
	Offset int64
	// Err is the underlying problem (ErrChecksum, a decode error, an
	// *os.PathError).
	Err error
}

func (e *CorruptionError) Error() string {
	if e.Offset < 0 {
		return fmt.Sprintf("corrupt segment %s: %s: %v", e.Dir, e.File, e.Err)
	}
	return fmt.Sprintf("corrupt segment %s: %s at offset %d: %v", e.Dir, e.File, e.Offset, e.Err)
}

func (e *CorruptionError) Unwrap() error { return e.Err }

// corruptf builds a *CorruptionError without Dir; Open fills it in.
func corruptf(file string, off int64, format string, args ...any) *CorruptionError {
	return &CorruptionError{File: file, Offset: off, Err: fmt.Errorf(format, args...)}
}

// withDir sets the Dir of a *CorruptionError in err's chain, if any.
func withDir(err error, dir string) error {
	var ce *CorruptionError
	if errors.As(err, &ce) && ce.Dir == "" {
		ce.Dir = dir
	}
	return err
}
