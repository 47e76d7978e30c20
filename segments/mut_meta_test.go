package segments

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestMetaValidateEdges: a meta.json behind a valid checksum (re-signed
// after the change) whose fields break the format's invariants is
// corruption, opened from disk and through a Source; one at the edge of
// each invariant is taken by the parser of meta.json. The checksum cannot catch these: a writer of
// another version, or a tool that re-signs, could have written them.
func TestMetaValidateEdges(t *testing.T) {
	parent := t.TempDir()
	m := writeTestSegmentWith(t, parent, Meta{}, genSeries(3, 4, 2), WriterOptions{MaxChunkFileSize: 1 << 10})
	dir := filepath.Join(parent, m.ID)
	metaJSON, files := segmentFiles(t, dir)
	orig, err := parseMetaFile(dir, metaJSON)
	if err != nil {
		t.Fatal(err)
	}
	if len(orig.Files) < 3 {
		t.Fatalf("%d files, want at least two chunks files", len(orig.Files))
	}
	clone := func() *metaFile {
		c := *orig
		c.Files = append([]fileMeta(nil), orig.Files...)
		return &c
	}
	for _, tc := range []struct {
		name string
		edit func(*metaFile)
		ok   bool
	}{
		{"as written", func(*metaFile) {}, true},
		{"min time equal to max time", func(f *metaFile) { f.MinTime = f.MaxTime }, true},
		{"min time after max time", func(f *metaFile) { f.MinTime = f.MaxTime + 1 }, false},
		{"resolution 0", func(f *metaFile) { f.Resolution = 0 }, true},
		{"negative resolution", func(f *metaFile) { f.Resolution = -1 }, false},
		{"no files", func(f *metaFile) { f.Files = nil }, false},
		{"index not first", func(f *metaFile) { f.Files[0], f.Files[1] = f.Files[1], f.Files[0] }, false},
		{"chunks files swapped", func(f *metaFile) { f.Files[1], f.Files[2] = f.Files[2], f.Files[1] }, false},
		{"negative size", func(f *metaFile) { f.Files[1].Size = -1 }, false},
		{"crc not hex", func(f *metaFile) { f.Files[2].CRC32C = "0000000g" }, false},
		{"crc of 7 digits", func(f *metaFile) { f.Files[0].CRC32C = f.Files[0].CRC32C[1:] }, false},
		{"crc of 9 digits", func(f *metaFile) { f.Files[0].CRC32C += "0" }, false},
		{"version 0", func(f *metaFile) { f.Version = 0 }, false},
	} {
		f := clone()
		tc.edit(f)
		b, err := f.marshal()
		if err != nil {
			t.Fatal(err)
		}
		_, err = parseMetaFile(dir, b)
		var ce *CorruptionError
		switch {
		case tc.ok && err != nil:
			t.Fatalf("%s: %v", tc.name, err)
		case !tc.ok && !errors.As(err, &ce):
			t.Fatalf("%s: %v, want *CorruptionError", tc.name, err)
		}
		if tc.ok {
			continue
		}
		// The same through Open and OpenSource.
		other := filepath.Join(t.TempDir(), m.ID)
		copyDir(t, dir, other)
		if err := os.WriteFile(filepath.Join(other, metaFilename), b, 0o644); err != nil {
			t.Fatal(err)
		}
		if s, err := Open(other); !errors.As(err, &ce) {
			if err == nil {
				s.Close()
			}
			t.Fatalf("%s: Open: %v, want *CorruptionError", tc.name, err)
		}
		if s, err := OpenSource(context.Background(), "bucket/x", b, &memSource{files: files}, nil); !errors.As(err, &ce) {
			if err == nil {
				s.Close()
			}
			t.Fatalf("%s: OpenSource: %v, want *CorruptionError", tc.name, err)
		}
	}
}

// TestSegmentIDs: the IDs a segment may have (they name its directory):
// letters, digits, '-' and '_', at most 200 bytes; not the quarantine's
// name nor "." or "..". A writer refuses the others, and a meta.json
// naming one (behind a valid checksum) is corruption.
func TestSegmentIDs(t *testing.T) {
	good := []string{"0", "9", "a", "z", "A", "Z", "-", "_", "09azAZ-_", strings.Repeat("x", 200), "quarantine2"}
	bad := []string{"", ".", "..", quarantineDirname, strings.Repeat("x", 201),
		"a/b", "a:b", "a@b", "a[b", "a`b", "a{b", "a.b", "a b", "a\x00b", "é"}
	for _, id := range good {
		if err := validateID(id); err != nil {
			t.Errorf("%q: %v", id, err)
		}
	}
	for _, id := range bad {
		if err := validateID(id); err == nil {
			t.Errorf("%q taken", id)
		}
	}
	// Through the writer and the reader of meta.json.
	parent := t.TempDir()
	m := writeTestSegmentWith(t, parent, Meta{ID: strings.Repeat("x", 200)}, genSeries(4, 1, 1), WriterOptions{})
	dir := filepath.Join(parent, m.ID)
	openT(t, dir).Close()
	metaJSON, _ := segmentFiles(t, dir)
	mf, err := parseMetaFile(dir, metaJSON)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a/b", "..", strings.Repeat("x", 201)} {
		if w, err := NewWriter(parent, Meta{ID: id}); err == nil {
			w.Abort()
			t.Fatalf("writer took ID %q", id)
		}
		mf.ID = id
		b, err := mf.marshal()
		if err != nil {
			t.Fatal(err)
		}
		var ce *CorruptionError
		if _, err := parseMetaFile(dir, b); !errors.As(err, &ce) {
			t.Fatalf("meta.json of ID %q: %v, want *CorruptionError", id, err)
		}
	}
}

// TestMetaMissing: a segment directory without meta.json is corruption of
// meta.json as a whole (Offset -1, as CorruptionError documents for a
// missing file), the file system's error kept.
func TestMetaMissing(t *testing.T) {
	parent := t.TempDir()
	m := writeTestSegmentWith(t, parent, Meta{}, genSeries(5, 2, 1), WriterOptions{})
	dir := filepath.Join(parent, m.ID)
	if err := os.Remove(filepath.Join(dir, metaFilename)); err != nil {
		t.Fatal(err)
	}
	s, err := Open(dir)
	var ce *CorruptionError
	if !errors.As(err, &ce) {
		if err == nil {
			s.Close()
		}
		t.Fatalf("Open: %v, want *CorruptionError", err)
	}
	if ce.File != metaFilename || ce.Offset != -1 || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Open: %#v (%v), want meta.json at offset -1, not found", ce, err)
	}
}
