package segments

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

const (
	// tmpInfix marks directories of unfinished writes and deletions:
	// <id>.tmp-<random>. OpenAll removes them.
	tmpInfix = ".tmp-"
	// quarantineDirname is the directory under the parent that OpenAll
	// moves corrupt segments into.
	quarantineDirname = "quarantine"
)

// OpenAll opens every segment directory under parent and returns the
// segments sorted by MinTime, then ID.
//
// It removes leftover <id>.tmp-* directories of writes or deletions that did
// not finish, and moves each segment that fails to open with a
// *CorruptionError (its index, or any chunks file, not matching the CRC32C
// in meta.json) to <parent>/quarantine/<id>, logging a warning that names
// the problem, instead of failing. Directories that neither hold a
// meta.json nor are named like a segment ID are left alone. Any other error
// (I/O, ErrUnsupportedVersion) closes what was opened and is returned. A
// missing parent holds no segments.
//
// Compressed segments read their pages through a small cache each; see
// OpenAllWithCache.
func OpenAll(logger *slog.Logger, parent string) ([]*Segment, error) {
	return OpenAllWithCache(logger, parent, nil)
}

// OpenAllWithCache is OpenAll reading every compressed segment's pages
// through cache (nil: a cache per segment, as Open).
func OpenAllWithCache(logger *slog.Logger, parent string, cache *PageCache) ([]*Segment, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	entries, err := os.ReadDir(parent)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open segments: %w", err)
	}
	var segs []*Segment
	fail := func(err error) ([]*Segment, error) {
		for _, s := range segs {
			_ = s.Close()
		}
		return nil, fmt.Errorf("open segments in %s: %w", parent, err)
	}
	for _, e := range entries {
		name := e.Name()
		dir := filepath.Join(parent, name)
		if !e.IsDir() || name == quarantineDirname {
			continue
		}
		if strings.Contains(name, tmpInfix) {
			if err := os.RemoveAll(dir); err != nil {
				return fail(err)
			}
			logger.Info("removed leftover temporary segment directory", "dir", dir)
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, metaFilename)); err != nil && !isULID(name) {
			logger.Debug("skipping directory that is not a segment", "dir", dir)
			continue
		}
		s, err := OpenWithCache(dir, cache)
		if err == nil {
			// Open checks the index's CRC; the chunks files are checked here,
			// once per start, so that damage is found before a query meets
			// it (reads check each chunk's own CRC again).
			if err = s.verifyChunkFiles(); err != nil {
				_ = s.Close()
			}
		}
		var ce *CorruptionError
		if errors.As(err, &ce) {
			to, qerr := quarantine(parent, name)
			if qerr != nil {
				return fail(fmt.Errorf("quarantine %s: %w (after: %w)", name, qerr, err))
			}
			logger.Warn("quarantined corrupt segment", "segment", name, "file", ce.File,
				"offset", ce.Offset, "err", ce.Err, "moved_to", to)
			continue
		}
		if err != nil {
			return fail(err)
		}
		segs = append(segs, s)
	}
	slices.SortFunc(segs, func(a, b *Segment) int {
		return cmp.Or(cmp.Compare(a.meta.MinTime, b.meta.MinTime), strings.Compare(a.meta.ID, b.meta.ID))
	})
	return segs, nil
}

// quarantine moves <parent>/<name> to <parent>/quarantine/<name> (with a
// numeric suffix if that exists) and returns the new path.
func quarantine(parent, name string) (string, error) {
	qdir := filepath.Join(parent, quarantineDirname)
	if err := os.MkdirAll(qdir, 0o755); err != nil {
		return "", err
	}
	to := filepath.Join(qdir, name)
	for i := 1; ; i++ {
		if _, err := os.Lstat(to); errors.Is(err, os.ErrNotExist) {
			break
		}
		to = filepath.Join(qdir, name+"."+strconv.Itoa(i))
	}
	if err := os.Rename(filepath.Join(parent, name), to); err != nil {
		return "", err
	}
	if err := syncDir(qdir); err != nil {
		return "", err
	}
	return to, syncDir(parent)
}

// Remove closes s, waiting for its readers (see Segment.Acquire), and
// deletes its directory. The directory is first renamed to a temporary name,
// so a crash midway leaves nothing that OpenAll would take for a segment.
func Remove(s *Segment) error {
	if err := s.Close(); err != nil {
		return err
	}
	parent := filepath.Dir(s.dir)
	tmp := s.dir + tmpInfix + "delete-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	if err := os.Rename(s.dir, tmp); err != nil {
		return fmt.Errorf("remove segment %s: %w", s.meta.ID, err)
	}
	if err := syncDir(parent); err != nil {
		return fmt.Errorf("remove segment %s: %w", s.meta.ID, err)
	}
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("remove segment %s: %w", s.meta.ID, err)
	}
	return nil
}
