package wal

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
)

// ErrMissingSegment is the Err of a *CorruptionError for a segment absent
// from the middle of the sequence.
var ErrMissingSegment = errors.New("missing segment")

// CorruptionError reports damage in a segment file that replay cannot
// repair: anything in a segment other than the last, or a bad record in
// the last segment that is followed by more data. Offset is the byte
// offset in the file of the first bad record (0 for a missing segment).
type CorruptionError struct {
	Segment int
	Path    string
	Offset  int64
	Err     error
}

func (e *CorruptionError) Error() string {
	return fmt.Sprintf("wal corruption in segment %d (%s) at offset %d: %v", e.Segment, e.Path, e.Offset, e.Err)
}

func (e *CorruptionError) Unwrap() error { return e.Err }

// Replay calls fn with every record in the segments of dir with index
// from or above, in the order they were logged. The slice passed to fn is
// valid only during the call. An error from fn stops the replay and is
// returned wrapped. fn may be nil to only verify (by checksum) and repair.
//
// A torn or corrupt tail of the last segment (a bad record followed by
// nothing but zeros, or running past the end of the file) is repaired: the
// file is truncated at the last good record and a warning names the file,
// offset and reason. Any other damage, and a segment missing from the
// sequence (segment from-1 exists but from does not, or a gap after from),
// is returned as a *CorruptionError. A missing dir replays nothing.
//
// Replay must not run while a WAL open on dir is logging; it may run
// before Open or after it, before the first Log.
func Replay(logger *slog.Logger, dir string, from int, fn func(rec []byte) error) error {
	return ReplayWithProgress(logger, dir, from, fn, nil)
}

// Progress tells how far a replay is: it reads segment Current of First
// through Last (the numbers Prometheus' /api/v1/status/walreplay reports),
// having read Bytes of the TotalBytes of those segments.
type Progress struct {
	First, Last, Current int
	Bytes, TotalBytes    int64
}

// Percent is the share of the bytes replayed, 0 to 100.
func (p Progress) Percent() int {
	if p.TotalBytes <= 0 {
		return 100
	}
	return int(p.Bytes * 100 / p.TotalBytes)
}

// progressEvery is how many bytes a replay reads between two calls to
// its progress function within one segment.
const progressEvery = 4 << 20

// ReplayWithProgress is Replay that also calls progress (when not nil)
// before each segment, every few MiB within one, and once at the end.
func ReplayWithProgress(logger *slog.Logger, dir string, from int, fn func(rec []byte) error, progress func(Progress)) error {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	segs, err := listSegments(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("list segments: %w", err)
	}
	var pr Progress
	if progress != nil {
		pr = progressOf(segs, from)
		progress(pr)
	}
	expect := -1 // The index the next segment must have; -1: any.
	for i, s := range segs {
		if s.index < from {
			if s.index == from-1 {
				expect = from
			}
			continue
		}
		if expect >= 0 && s.index != expect {
			return &CorruptionError{Segment: expect, Path: segmentPath(dir, expect), Err: ErrMissingSegment}
		}
		expect = s.index + 1
		last := i == len(segs)-1
		segFn := fn
		var segEnd int64
		if progress != nil {
			pr.Current = s.index
			segEnd = pr.Bytes + segmentSize(s)
			progress(pr)
			if fn != nil {
				segFn = progressFn(fn, &pr, segEnd, progress)
			}
		}
		if _, err := scanSegment(logger, s, last, segFn); err != nil {
			return err
		}
		pr.Bytes = segEnd
	}
	if progress != nil {
		pr.Bytes = pr.TotalBytes
		progress(pr)
	}
	return nil
}

// scanSegment reads segment s, calling fn (if not nil) with each record.
// If last, a torn tail is truncated away and repaired reports it. Bad data
// elsewhere is a *CorruptionError.
func scanSegment(logger *slog.Logger, s segmentRef, last bool, fn func([]byte) error) (repaired bool, err error) {
	f, err := os.Open(s.path)
	if err != nil {
		return false, fmt.Errorf("open segment: %w", err)
	}
	defer f.Close() // Read only: nothing to lose on Close.
	st, err := f.Stat()
	if err != nil {
		return false, fmt.Errorf("stat segment: %w", err)
	}
	r := newSegmentReader(f, st.Size())
	for {
		off := r.off
		rec, err := r.next(fn != nil)
		if err == io.EOF {
			return false, nil
		}
		var fe *frameError
		if errors.As(err, &fe) {
			if !last || !fe.tail {
				return false, &CorruptionError{Segment: s.index, Path: s.path, Offset: fe.off, Err: fe.err}
			}
			if err := truncateSegment(s.path, fe.off); err != nil {
				return false, err
			}
			logger.Warn("WAL tail repaired: truncated last segment at last good record",
				"segment", s.path, "offset", fe.off, "discarded_bytes", st.Size()-fe.off, "reason", fe.err)
			return true, nil
		}
		if err != nil {
			return false, fmt.Errorf("read segment %s at offset %d: %w", s.path, off, err)
		}
		if fn == nil {
			continue
		}
		if err := fn(rec); err != nil {
			return false, fmt.Errorf("replay record at %s offset %d: %w", s.path, off, err)
		}
	}
}

// truncateSegment cuts the file at size and makes that durable.
func truncateSegment(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("open segment for repair: %w", err)
	}
	if err := f.Truncate(size); err != nil {
		_ = f.Close()
		return fmt.Errorf("truncate segment %s to %d: %w", path, size, err)
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return fmt.Errorf("sync repaired segment %s: %w", path, err)
	}
	return f.Close()
}
