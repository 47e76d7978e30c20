package segments

import (
	"errors"
	"io/fs"
	"path/filepath"
	"slices"
	"testing"
)

// recordSyncedDirs makes syncDir record the directories it syncs until
// the test ends, and returns the record.
func recordSyncedDirs(t *testing.T) *[]string {
	t.Helper()
	var dirs []string
	prev := syncedDir
	syncedDir = func(dir string) { dirs = append(dirs, dir) }
	t.Cleanup(func() { syncedDir = prev })
	return &dirs
}

// TestSyncDirMissing: syncDir of a directory that does not exist reports
// that, and syncs nothing.
func TestSyncDirMissing(t *testing.T) {
	synced := recordSyncedDirs(t)
	err := syncDir(filepath.Join(t.TempDir(), "missing"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("syncDir of a missing directory: %v, want ErrNotExist", err)
	}
	if len(*synced) != 0 {
		t.Fatalf("synced %v", *synced)
	}
}

// TestLinkSnapshotSyncsDirs: LinkSnapshot fsyncs every directory it
// created in the snapshot, the snapshot directory, and its parent and
// grandparent (which may have been created by MkdirAll), so that the
// snapshot survives a power loss whole.
func TestLinkSnapshotSyncsDirs(t *testing.T) {
	parent := t.TempDir()
	m := writeTestSegment(t, parent, Meta{}, genSeries(1, 3, 2))
	to := filepath.Join(t.TempDir(), "snap", "segments")
	synced := recordSyncedDirs(t)
	if err := LinkSnapshot(parent, []Info{{Meta: m}}, to); err != nil {
		t.Fatal(err)
	}
	want := []string{
		filepath.Join(to, m.ID), filepath.Join(to, m.ID, chunksDirname), // the segment's directories
		to, filepath.Dir(to), filepath.Dir(filepath.Dir(to)),
	}
	if !slices.Equal(*synced, want) {
		t.Fatalf("synced %v, want %v", *synced, want)
	}
}
