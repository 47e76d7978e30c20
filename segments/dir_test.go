package segments

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func listDir(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestWriterAbortLeavesNothing(t *testing.T) {
	parent := t.TempDir()
	w, err := NewWriter(parent, Meta{})
	if err != nil {
		t.Fatal(err)
	}
	sd := genSeries(7, 1, 2)[0].data(t)
	if err := w.AddSeries(sd.Labels, sd.Chunks); err != nil {
		t.Fatal(err)
	}
	if err := w.Abort(); err != nil {
		t.Fatal(err)
	}
	if names := listDir(t, parent); len(names) != 0 {
		t.Fatalf("abort left %v", names)
	}
	if _, err := w.Close(); !errors.Is(err, ErrClosed) {
		t.Fatalf("close after abort: %v", err)
	}
}

// A process that dies before Close leaves only a temporary directory, which
// is not a segment and which OpenAll removes.
func TestCrashBeforeRename(t *testing.T) {
	parent := t.TempDir()
	good := writeTestSegment(t, parent, Meta{}, genSeries(8, 3, 1))

	// An unfinished write: the writer is dropped without Close or Abort.
	w, err := NewWriter(parent, Meta{})
	if err != nil {
		t.Fatal(err)
	}
	sd := genSeries(9, 1, 2)[0].data(t)
	if err := w.AddSeries(sd.Labels, sd.Chunks); err != nil {
		t.Fatal(err)
	}
	// A write that got as far as a complete directory, but not the rename.
	copyDir(t, filepath.Join(parent, good.ID), filepath.Join(parent, NewID(timeNow())+".tmp-12345"))

	if names := listDir(t, parent); len(names) != 3 {
		t.Fatalf("parent holds %v", names)
	}
	segs, err := OpenAll(nil, parent)
	if err != nil {
		t.Fatal(err)
	}
	defer closeAll(segs)
	if len(segs) != 1 || segs[0].Meta().ID != good.ID {
		t.Fatalf("opened %d segments", len(segs))
	}
	if names := listDir(t, parent); !slices.Equal(names, []string{good.ID}) {
		t.Fatalf("parent holds %v after OpenAll", names)
	}
}

func TestCloseFailureLeavesNothing(t *testing.T) {
	parent := t.TempDir()
	w, err := NewWriter(parent, Meta{ID: "seg"})
	if err != nil {
		t.Fatal(err)
	}
	sd := genSeries(10, 1, 1)[0].data(t)
	if err := w.AddSeries(sd.Labels, sd.Chunks); err != nil {
		t.Fatal(err)
	}
	// Something else took the name meanwhile: Close must not replace it.
	if err := os.Mkdir(filepath.Join(parent, "seg"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Close(); !errors.Is(err, os.ErrExist) {
		t.Fatalf("close: %v", err)
	}
	if names := listDir(t, parent); !slices.Equal(names, []string{"seg"}) {
		t.Fatalf("parent holds %v", names)
	}
}

func closeAll(segs []*Segment) {
	for _, s := range segs {
		_ = s.Close()
	}
}

func TestOpenAll(t *testing.T) {
	parent := t.TempDir()
	var want []string
	for i, mint := range []int64{3000, 1000, 2000} {
		m := writeTestSegment(t, parent, Meta{MinTime: mint, MaxTime: testT0 * 2}, genSeries(uint64(20+i), 3, 1))
		want = append(want, m.ID)
	}
	want = []string{want[1], want[2], want[0]} // by MinTime

	corrupt := writeTestSegment(t, parent, Meta{}, genSeries(30, 3, 1))
	idx := filepath.Join(parent, corrupt.ID, indexFilename)
	b, _ := os.ReadFile(idx)
	b[len(b)/2] ^= 0x10
	if err := os.WriteFile(idx, b, 0o644); err != nil {
		t.Fatal(err)
	}
	noMeta := writeTestSegment(t, parent, Meta{}, genSeries(31, 3, 1))
	if err := os.Remove(filepath.Join(parent, noMeta.ID, metaFilename)); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(parent, "lost+found"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(parent, "README"), []byte("hi"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(parent, "x.tmp-1"), 0o755); err != nil {
		t.Fatal(err)
	}

	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	segs, err := OpenAll(logger, parent)
	if err != nil {
		t.Fatal(err)
	}
	defer closeAll(segs)
	var got []string
	for _, s := range segs {
		got = append(got, s.Meta().ID)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("opened %v, want %v", got, want)
	}
	q := listDir(t, filepath.Join(parent, quarantineDirname))
	if wantQ := []string{corrupt.ID, noMeta.ID}; !slices.Equal(q, sortedStrings(wantQ)) {
		t.Fatalf("quarantine holds %v, want %v", q, wantQ)
	}
	rest := listDir(t, parent)
	if wantRest := sortedStrings(append(slices.Clone(want), "README", "lost+found", quarantineDirname)); !slices.Equal(rest, wantRest) {
		t.Fatalf("parent holds %v, want %v", rest, wantRest)
	}
	for _, want := range []string{"quarantined corrupt segment", corrupt.ID, "file=index", "checksum mismatch", noMeta.ID, "file=meta.json",
		"moved_to=" + filepath.Join(parent, quarantineDirname, corrupt.ID)} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs.String())
		}
	}

	// A second corrupt segment with the same name is quarantined beside
	// the first.
	closeAll(segs)
	if err := os.MkdirAll(filepath.Join(parent, corrupt.ID), 0o755); err != nil {
		t.Fatal(err)
	}
	segs, err = OpenAll(logger, parent)
	if err != nil {
		t.Fatal(err)
	}
	closeAll(segs)
	if q := listDir(t, filepath.Join(parent, quarantineDirname)); len(q) != 3 {
		t.Fatalf("quarantine holds %v", q)
	}
}

func TestOpenAllNewerVersionFails(t *testing.T) {
	parent := t.TempDir()
	m := writeTestSegment(t, parent, Meta{}, genSeries(40, 2, 1))
	path := filepath.Join(parent, m.ID, metaFilename)
	b, _ := os.ReadFile(path)
	var mf metaFile
	if err := jsonUnmarshal(b, &mf); err != nil {
		t.Fatal(err)
	}
	mf.Version = FormatVersion + 1
	b, err := mf.marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenAll(nil, parent); !errors.Is(err, ErrUnsupportedVersion) {
		t.Fatalf("got %v, want ErrUnsupportedVersion", err)
	}
	if _, err := os.Stat(filepath.Join(parent, m.ID)); err != nil {
		t.Fatalf("segment of a newer version was moved: %v", err)
	}
}

func TestOpenAllMissingParent(t *testing.T) {
	segs, err := OpenAll(nil, filepath.Join(t.TempDir(), "none"))
	if err != nil || len(segs) != 0 {
		t.Fatalf("got %v, %v", segs, err)
	}
}

func sortedStrings(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// TestOpenAllSegmentsReadable: the segments OpenAll returns are open and
// read back what was written (their chunks files verified, not closed).
func TestOpenAllSegmentsReadable(t *testing.T) {
	parent := t.TempDir()
	want := map[string][]testSeries{}
	for i, mint := range []int64{1000, 2000} {
		series := genSeries(uint64(40+i), 5, 2)
		m := writeTestSegment(t, parent, Meta{MinTime: mint, MaxTime: testT0 * 2}, series)
		want[m.ID] = series
	}
	segs, err := OpenAll(nil, parent)
	if err != nil {
		t.Fatal(err)
	}
	defer closeAll(segs)
	if len(segs) != len(want) {
		t.Fatalf("opened %d segments, want %d", len(segs), len(want))
	}
	for _, s := range segs {
		got, err := readAll(s)
		if err != nil {
			t.Fatalf("segment %s: %v", s.Meta().ID, err)
		}
		equalSeries(t, want[s.Meta().ID], got)
	}
}
