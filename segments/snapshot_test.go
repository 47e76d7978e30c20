//go:build unix

package segments

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestLinkSnapshot links a segment and the tombstones file into a
// snapshot directory: every segment file is a hard link to the original
// (same inode), the tombstones file a copy, and the snapshot opens as the
// same segment.
func TestLinkSnapshot(t *testing.T) {
	parent := t.TempDir()
	series := genSeries(1, 3, 2)
	m := writeTestSegment(t, parent, Meta{}, series)
	if err := os.WriteFile(filepath.Join(parent, tombstonesFile), []byte("[]"), 0o644); err != nil {
		t.Fatal(err)
	}
	to := filepath.Join(t.TempDir(), "snap", "segments")
	if err := LinkSnapshot(parent, []Info{{Meta: m}}, to); err != nil {
		t.Fatal(err)
	}
	src, dst := filepath.Join(parent, m.ID), filepath.Join(to, m.ID)
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		a, errA := os.Stat(p)
		b, errB := os.Stat(filepath.Join(dst, rel))
		if errA != nil || errB != nil {
			t.Fatalf("stat %s: %v %v", rel, errA, errB)
		}
		if a.Sys().(*syscall.Stat_t).Ino != b.Sys().(*syscall.Stat_t).Ino {
			t.Errorf("%s is not a hard link of the original", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(to, tombstonesFile)); err != nil || string(b) != "[]" {
		t.Errorf("tombstones not copied: %q %v", b, err)
	}
	got, err := readAll(openT(t, dst))
	if err != nil {
		t.Fatal(err)
	}
	equalSeries(t, series, got)
}
