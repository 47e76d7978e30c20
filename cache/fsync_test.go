package cache

import (
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
)

// recordFsyncs makes the package's fsyncs record the names of the files
// they sync, in order, until the end of the test.
func recordFsyncs(t *testing.T) func() []string {
	t.Helper()
	var mu sync.Mutex
	var names []string
	orig := fsync
	fsync = func(f *os.File) error {
		mu.Lock()
		names = append(names, f.Name())
		mu.Unlock()
		return orig(f)
	}
	t.Cleanup(func() { fsync = orig })
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(names)
	}
}

// TestSaveSyncsEverything: Save fsyncs every file of the data it names,
// the data directory and the directory holding it, all before the
// generations file that names the data; the generations file before it
// is renamed into place and its directory after; the clean marker last
// (format of the promise: persist.go's "Each file is fsynced"). Load
// fsyncs the directory after removing the marker.
func TestSaveSyncsEverything(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cache")
	clk := newFakeClock()
	c := newTestCache(t, clk)
	var n counter
	mustGet(t, c, "a", []string{"t"}, n.fn("A", 0, nil))
	c.Invalidate("t2")
	synced := recordFsyncs(t)
	if err := c.Save(dir); err != nil {
		t.Fatal(err)
	}
	got := synced()
	index := func(name string, from int) int {
		t.Helper()
		i := slices.Index(got[from:], name)
		if i < 0 {
			t.Fatalf("%s not synced after fsync #%d; synced: %q", name, from, got)
		}
		return from + i
	}
	data := filepath.Join(dir, "data.1")
	des, err := os.ReadDir(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(des) == 0 {
		t.Fatal("no data files")
	}
	last := 0
	for _, de := range des {
		last = max(last, index(filepath.Join(data, de.Name()), 0))
	}
	dataDir := index(data, 0)
	if dataDir < last {
		t.Errorf("the data directory synced before its files: %q", got)
	}
	parent := index(dir, dataDir)
	gen := index(filepath.Join(dir, genFileName+".tmp"), 0)
	if gen < parent {
		t.Errorf("the generations file synced before the data it names: %q", got)
	}
	genDir := index(dir, gen)
	clean := index(filepath.Join(dir, cleanFileName+".tmp"), 0)
	if clean < genDir {
		t.Errorf("the clean marker synced before the generations file's rename: %q", got)
	}
	index(dir, clean)
	_ = c.Close()

	synced = recordFsyncs(t)
	loadTestCache(t, dir, clk)
	if got := synced(); !slices.Contains(got, dir) {
		t.Errorf("Load removed the clean marker without syncing %s: %q", dir, got)
	}
}

// TestFailedSaveLeavesNoTemporary: a Save whose generations file cannot
// be put in place (a directory holds its name) fails, leaves no
// temporary file behind, and marks nothing clean.
func TestFailedSaveLeavesNoTemporary(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, genFileName, "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	c := newTestCache(t, newFakeClock())
	if err := c.Save(dir); err == nil {
		t.Fatal("Save over a directory named generations succeeded")
	}
	for _, name := range []string{genFileName + ".tmp", cleanFileName, cleanFileName + ".tmp"} {
		if _, err := os.Stat(filepath.Join(dir, name)); !os.IsNotExist(err) {
			t.Errorf("%s after a failed Save: %v", name, err)
		}
	}
}
