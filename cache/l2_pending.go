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
// acknowledged, and is ignored; any other line that does not parse makes
// the whole file count as a Reset (misses, never a stale hit).

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

// persistPendingLocked appends bumps of tag hashes hs (and a Reset if
// reset) to the pending file and fsyncs it. pendingMu must be held.
func (l *l2) persistPendingLocked(hs []uint64, reset bool) {
	if l.dir == "" {
		return
	}
	s := &l.sync
	var buf []byte
	if reset {
		buf = append(buf, "r\n"...)
	}
	for _, h := range hs {
		buf = append(buf, "b "...)
		buf = strconv.AppendUint(buf, h, 16)
		buf = append(buf, '\n')
	}
	err := func() error {
		if s.pendingFile == nil {
			path := filepath.Join(l.dir, pendingFileName)
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
		return s.pendingFile.Sync()
	}()
	if err != nil {
		l.m.errors.Add(1)
		l.opts.Logger.Error("result cache: cannot keep an invalidation that Redis did not take on disk; if this process stops before Redis is back, other instances may serve entries it invalidated until they expire",
			"dir", l.dir, "err", err)
	}
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
