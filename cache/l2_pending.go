package cache

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
)

// Bumps that could not reach Redis, kept on disk.
//
// While unsynced, Invalidate and Reset change only this instance's
// generations and remember what they did for the next resync. For a
// cache loaded from a directory (Load), they also append it to the file
// l2-pending there and fsync it before they return, so before the write
// that caused them is acknowledged. A process that starts reads the file
// and pushes its bumps to Redis at its first resync, which removes the
// file once they are in Redis. So an acknowledged invalidation outlives a
// Redis that refused it and the process that made it, whichever stops
// first, and whether it stops cleanly or not.
//
// The file holds text lines: "b <tag hash, hex>" for a bump, "r" for a
// Reset. A last line without its newline is a write that was not
// acknowledged, and is ignored; empty lines are skipped (an append after
// a failed one starts with a newline, which ends a record it may have
// torn: a torn bump then bumps a tag that does not exist, harmlessly);
// any other line that does not parse makes the whole file count as a
// Reset (misses, never a stale hit).
//
// If the file cannot be written either, the bump is still made here and
// remembered in memory, and the caller gets ErrInvalidationNotDurable:
// the write that caused it is not acknowledged as complete (503), and the
// next append writes every bump remembered since.

const pendingFileName = "l2-pending"

// loadPending reads the pending file of the cache's directory, applies its
// bumps to the local generations and remembers them for the first resync.
func (l *l2) loadPending() {
	if l.dir == "" {
		return
	}
	b, err := os.ReadFile(filepath.Join(l.dir, pendingFileName))
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	s := &l.sync
	at := l.c.now().UnixNano()
	if err != nil {
		l.opts.Logger.Warn("result cache: cannot read the L2 bumps kept on disk; every cached entry is dropped at the next resync", "err", err)
		s.pendingReset = true
		l.c.gens.reset()
		return
	}
	if i := bytes.LastIndexByte(b, '\n'); i < len(b)-1 {
		b = b[:i+1] // a torn last record: never acknowledged
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
		case line == "r":
			s.pendingReset = true
		case len(line) > 2 && line[:2] == "b ":
			h, err := strconv.ParseUint(line[2:], 16, 64)
			if err != nil {
				s.pendingReset = true
				continue
			}
			s.pending[h] = struct{}{}
		default:
			s.pendingReset = true
		}
	}
	if s.pendingReset {
		l.c.gens.reset()
	}
	for h := range s.pending {
		l.c.gens.bump(h, at)
	}
}

// ErrInvalidationNotDurable says that an invalidation Redis did not take
// could not be kept on disk either. This instance made it (it judges its
// own entries by it) and pushes it to Redis when Redis is back, but if
// the process stops before that, other instances never learn of it and
// may serve entries it invalidated until they expire. A caller must not
// acknowledge the write (or delete) that caused it as complete: it
// answers 503 and the sender retries, which bumps the tags again.
var ErrInvalidationNotDurable = errors.New("result cache: an invalidation that Redis did not take could not be kept on disk")

// persistPendingLocked appends bumps of tag hashes hs (and a Reset if
// reset) to the pending file and fsyncs it, creating the cache directory
// if it does not exist yet (a fresh data directory has none before the
// first Save). If an earlier append failed, it writes every bump
// remembered since instead, so that one success makes them all durable.
// why is what Redis answered. pendingMu must be held.
func (l *l2) persistPendingLocked(hs []uint64, reset bool, why error) error {
	if l.dir == "" {
		return nil
	}
	s := &l.sync
	if s.pendingUnsaved {
		reset = s.pendingReset
		hs = make([]uint64, 0, len(s.pending))
		for h := range s.pending {
			hs = append(hs, h)
		}
	}
	var buf []byte
	if s.pendingUnsaved {
		buf = append(buf, '\n') // ends a record the failed append may have torn
	}
	if reset {
		buf = append(buf, "r\n"...)
	}
	for _, h := range hs {
		buf = append(buf, "b "...)
		buf = strconv.AppendUint(buf, h, 16)
		buf = append(buf, '\n')
	}
	path := filepath.Join(l.dir, pendingFileName)
	err := func() error {
		if s.pendingFile == nil {
			if err := mkdirSynced(l.dir); err != nil {
				return err
			}
			_, statErr := os.Stat(path)
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
			if err != nil {
				return err
			}
			s.pendingFile = f
			if statErr != nil {
				if err := syncPath(l.dir); err != nil {
					return err
				}
			}
		}
		if _, err := s.pendingFile.Write(buf); err != nil {
			return err
		}
		return fsync(s.pendingFile)
	}()
	if err != nil {
		// The file may hold a torn record now: reopen (and rewrite
		// everything) next time.
		l.closePendingLocked()
		s.pendingUnsaved = true
		l.m.errors.Add(1)
		if !s.pendingLogged {
			s.pendingLogged = true
			l.opts.Logger.Error("result cache: cannot keep invalidations that Redis did not take on disk; writes that need them are refused (503) until the file can be written or Redis takes them",
				"file", path, "err", err)
		}
		if why == nil {
			why = errors.New("the Redis L2 tier is unavailable")
		}
		return fmt.Errorf("%w: Redis did not take it (%v), and %s cannot be written (%v); if this process stopped now, other instances could serve answers it invalidated", ErrInvalidationNotDurable, why, path, err)
	}
	if s.pendingUnsaved {
		s.pendingUnsaved = false
		s.pendingLogged = false
		l.opts.Logger.Info("result cache: invalidations that Redis did not take are kept on disk again", "file", path)
	}
	return nil
}

// mkdirSynced creates dir (and its parents) if it does not exist, and
// fsyncs the parent of a directory it created, so that a file created in
// it survives a crash.
func mkdirSynced(dir string) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return syncPath(filepath.Dir(dir))
}

// clearPendingLocked removes the pending file: its bumps are in Redis.
// pendingMu must be held.
func (l *l2) clearPendingLocked() {
	if l.dir == "" {
		return
	}
	l.closePendingLocked()
	err := os.Remove(filepath.Join(l.dir, pendingFileName))
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	if err == nil {
		err = syncPath(l.dir)
	}
	if err != nil {
		l.m.errors.Add(1)
		l.opts.Logger.Warn("result cache: cannot remove the L2 bumps kept on disk; they will be pushed again at the next start", "err", fmt.Errorf("remove %s: %w", pendingFileName, err))
	}
}

// closePendingLocked closes the pending file if it is open. pendingMu must
// be held.
func (l *l2) closePendingLocked() {
	if f := l.sync.pendingFile; f != nil {
		_ = f.Close()
		l.sync.pendingFile = nil
	}
}
