package segments

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// LinkSnapshot hard-links the files of segs (directories under from) into
// to, copies the tombstones file if there is one, and syncs the
// directories. Segments are immutable, so a link is a copy that costs no
// space until the original is deleted; the caller keeps the set from
// changing meanwhile (no compaction, retention or flush).
func LinkSnapshot(from string, segs []Info, to string) error {
	for _, in := range segs {
		src := filepath.Join(from, in.Meta.ID)
		var dirs []string
		err := filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, err := filepath.Rel(src, path)
			if err != nil {
				return err
			}
			dst := filepath.Join(to, in.Meta.ID, rel)
			if d.IsDir() {
				dirs = append(dirs, dst)
				return os.MkdirAll(dst, 0o755)
			}
			return os.Link(path, dst)
		})
		if err != nil {
			return fmt.Errorf("link segment %s: %w", in.Meta.ID, err)
		}
		for _, d := range dirs {
			if err := syncDir(d); err != nil {
				return err
			}
		}
	}
	// The tombstones file is rewritten in place over time: copy it.
	if b, err := os.ReadFile(filepath.Join(from, tombstonesFile)); err == nil {
		if err := os.MkdirAll(to, 0o755); err != nil {
			return fmt.Errorf("create snapshot dir: %w", err)
		}
		if err := os.WriteFile(filepath.Join(to, tombstonesFile), b, 0o644); err != nil {
			return fmt.Errorf("copy tombstones: %w", err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("read tombstones: %w", err)
	}
	if err := os.MkdirAll(to, 0o755); err != nil {
		return fmt.Errorf("create snapshot dir: %w", err)
	}
	for _, d := range []string{to, filepath.Dir(to), filepath.Dir(filepath.Dir(to))} {
		if err := syncDir(d); err != nil {
			return err
		}
	}
	return nil
}
