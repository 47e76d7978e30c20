package wal

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"
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
	_, err := replay(logger, dir, from, fn, progress, false)
	return err
}

// replay does the work of ReplayWithProgress and, with repair, of
// ReplayRepair.
func replay(logger *slog.Logger, dir string, from int, fn func(rec []byte) error, progress func(Progress), repair bool) (RepairReport, error) {
	var rep RepairReport
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	segs, err := listSegments(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return rep, nil
	}
	if err != nil {
		return rep, fmt.Errorf("list segments: %w", err)
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
			ce := &CorruptionError{Segment: expect, Path: segmentPath(dir, expect), Err: ErrMissingSegment}
			if !repair {
				return rep, ce
			}
			rep.Corruptions = append(rep.Corruptions, ce)
			logger.Error("WAL segments missing; replaying the ones after the gap", "missing_from", expect, "missing_to", s.index-1)
		}
		expect = s.index + 1
		last := i == len(segs)-1
		var (
			segEnd int64
			at     func(off int64)
		)
		if progress != nil {
			pr.Current = s.index
			segEnd = pr.Bytes + segmentSize(s)
			progress(pr)
			at = progressAt(&pr, pr.Bytes, progress)
		}
		var dmg *damage
		if repair {
			dmg = &damage{}
		}
		if _, err := scanSegmentAt(logger, s, last, fn, at, dmg); err != nil {
			return rep, err
		}
		if dmg != nil && dmg.first != nil {
			if err := quarantineDamage(logger, dir, s, dmg, &rep); err != nil {
				return rep, err
			}
		}
		pr.Bytes = segEnd
	}
	if progress != nil {
		pr.Bytes = pr.TotalBytes
		progress(pr)
	}
	return rep, nil
}

// scanSegment reads segment s, calling fn (if not nil) with each record.
// If last, a torn tail is truncated away and repaired reports it. Bad data
// elsewhere is a *CorruptionError.
func scanSegment(logger *slog.Logger, s segmentRef, last bool, fn func([]byte) error) (repaired bool, err error) {
	return scanSegmentAt(logger, s, last, fn, nil, nil)
}

// damage is what a scan that resynchronises found bad in one segment: the
// first damage as a *CorruptionError and every byte range skipped.
type damage struct {
	first   *CorruptionError
	skipped [][2]int64 // [from, to) file offsets, ascending
	size    int64      // the file's size when scanned
}

func (d *damage) bytes() (n int64) {
	for _, r := range d.skipped {
		n += r[1] - r[0]
	}
	return n
}

// scanSegmentAt is scanSegment that also calls at (when not nil) with the
// file offset reached after each record, for progress reports. With dmg
// not nil, damage does not stop the scan: it resynchronises on the next
// good frame (frames are checksummed), goes on from there and records in
// dmg what it skipped; a torn tail after damage is skipped too. The file
// is then left as it is for the caller to rewrite.
func scanSegmentAt(logger *slog.Logger, s segmentRef, last bool, fn func([]byte) error, at func(off int64), dmg *damage) (repaired bool, err error) {
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
	if dmg != nil {
		dmg.size = st.Size()
	}
	for {
		off := r.off
		rec, err := r.next(fn != nil)
		if err == io.EOF {
			return false, nil
		}
		var fe *frameError
		if errors.As(err, &fe) {
			tail := last && fe.tail
			if !tail && dmg == nil {
				return false, &CorruptionError{Segment: s.index, Path: s.path, Offset: fe.off, Err: fe.err}
			}
			if dmg != nil && (!tail || dmg.first != nil) {
				if dmg.first == nil {
					dmg.first = &CorruptionError{Segment: s.index, Path: s.path, Offset: fe.off, Err: fe.err}
				}
				next := int64(-1)
				if !tail {
					if next, err = r.resync(fe.off + 1); err != nil {
						return false, fmt.Errorf("read segment %s after damage at offset %d: %w", s.path, fe.off, err)
					}
				}
				if next < 0 {
					dmg.skipped = append(dmg.skipped, [2]int64{fe.off, st.Size()})
					return false, nil
				}
				dmg.skipped = append(dmg.skipped, [2]int64{fe.off, next})
				r.seek(next)
				continue
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
		if at != nil {
			at(r.off)
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

// quarantineDirname is the directory under the WAL directory that
// ReplayRepair copies damaged segments into.
const quarantineDirname = "quarantine"

// RepairReport says what ReplayRepair found and did.
type RepairReport struct {
	// Corruptions is the damage found, one per damaged or missing segment
	// (the first damage in the segment).
	Corruptions []*CorruptionError
	// Quarantined are the paths of the copies of damaged segments, in the
	// same order as the Corruptions that have a file.
	Quarantined []string
	// DiscardedBytes is how much of the damaged segments was skipped and
	// removed from them.
	DiscardedBytes int64
	// DamagedRanges counts the damaged byte ranges skipped (a segment may
	// hold several).
	DamagedRanges int
}

// ReplayRepair is Replay that does not stop at damage. In a damaged
// segment it calls fn with every record before the damage, resynchronises
// on the next good frame (each frame is checksummed) and goes on with the
// records after it, for every damaged range of the segment; it then
// copies the whole segment into dir/quarantine (for inspection or a manual
// rescue), rewrites the segment with only its good frames, logs an error
// naming the file, the first offset, the ranges and bytes skipped and the
// cause, and goes on with the next segment; a missing segment is logged
// and skipped. Only the damaged frames are lost (samples whose series
// record was among them count as unknown references in the caller). A
// torn tail of the last segment is repaired as by Replay, and is not a
// corruption.
//
// fn may be nil to repair without replaying; progress is as for
// ReplayWithProgress. An error is returned for what stops the repair
// itself (an error from fn, a failed read or copy).
func ReplayRepair(logger *slog.Logger, dir string, from int, fn func(rec []byte) error, progress func(Progress)) (RepairReport, error) {
	return replay(logger, dir, from, fn, progress, true)
}

// quarantineDamage copies the damaged segment s aside, rewrites it
// without the ranges dmg skipped, logs it and adds it to rep.
func quarantineDamage(logger *slog.Logger, dir string, s segmentRef, dmg *damage, rep *RepairReport) error {
	ce := dmg.first
	to, err := quarantineSegment(dir, s, dmg.skipped, dmg.size)
	if err != nil {
		return fmt.Errorf("quarantine damaged segment (%w): %w", ce, err)
	}
	n := dmg.bytes()
	rep.Corruptions = append(rep.Corruptions, ce)
	rep.Quarantined = append(rep.Quarantined, to)
	rep.DiscardedBytes += n
	rep.DamagedRanges += len(dmg.skipped)
	logger.Error("WAL segment damaged: replayed every good record around the damage, removed the damaged bytes from the segment and moved a copy aside",
		"segment", s.path, "offset", ce.Offset, "damaged_ranges", len(dmg.skipped), "discarded_bytes", n, "copy", to, "reason", ce.Err)
	return nil
}

// quarantineSegment copies segment s into dir/quarantine and rewrites s
// (size bytes when scanned) without the skipped ranges, atomically. It
// returns the copy's path.
func quarantineSegment(dir string, s segmentRef, skipped [][2]int64, size int64) (string, error) {
	qdir := filepath.Join(dir, quarantineDirname)
	if err := os.MkdirAll(qdir, 0o777); err != nil {
		return "", err
	}
	to := filepath.Join(qdir, fmt.Sprintf("%s.%d", filepath.Base(s.path), time.Now().UnixNano()))
	if _, err := copyFile(s.path, to); err != nil {
		return "", err
	}
	if err := syncDir(qdir); err != nil {
		return "", err
	}
	return to, rewriteWithout(s.path, skipped, size)
}

// rewriteWithout replaces the file at path by a copy of its first size
// bytes without the skipped ranges: written to path.repair (a name
// listSegments ignores), fsynced, renamed over path, directory fsynced.
func rewriteWithout(path string, skipped [][2]int64, size int64) error {
	src, err := os.Open(path)
	if err != nil {
		return err
	}
	defer src.Close() // Read only.
	tmp := path + ".repair"
	dst, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o666)
	if err != nil {
		return err
	}
	var off int64
	for _, r := range append(skipped, [2]int64{size, size}) {
		if r[0] > off {
			if _, err = io.Copy(dst, io.NewSectionReader(src, off, r[0]-off)); err != nil {
				break
			}
		}
		off = r[1]
	}
	if err == nil {
		err = dst.Sync()
	}
	if err = errors.Join(err, dst.Close()); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("rewrite damaged segment %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("rewrite damaged segment %s: %w", path, err)
	}
	return syncDir(filepath.Dir(path))
}

// copyFile copies from to a new file to, fsynced, and returns its size.
func copyFile(from, to string) (int64, error) {
	src, err := os.Open(from)
	if err != nil {
		return 0, err
	}
	defer src.Close() // Read only.
	dst, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o666)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(dst, src)
	if err == nil {
		err = dst.Sync()
	}
	return n, errors.Join(err, dst.Close())
}
