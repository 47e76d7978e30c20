package segments

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// corruptionFixture is a small segment and its original files, which
// mutate changes in place and restore after each check.
type corruptionFixture struct {
	dir  string
	meta Meta
	orig map[string][]byte
	toc  [numSections]section
	// read reads every sample of a segment; same fails the test unless
	// what read returned is what was written.
	read func(*Segment) (any, error)
	same func(t *testing.T, got any)
	// stride is how far apart the bytes of chunk records that
	// TestCorruptionBitFlip damages are.
	stride int
}

// newCorruptionFixture is a segment of float series, raw and rollup, in
// several chunks files.
func newCorruptionFixture(t *testing.T, opts WriterOptions) *corruptionFixture {
	series := genSeries(5, 20, 2)
	var data []SeriesData
	for _, ts := range series {
		data = append(data, ts.data(t))
	}
	opts.MaxChunkFileSize = 12 << 10
	return writeCorruptionFixture(t, data, opts,
		func(s *Segment) (any, error) { return readAll(s) },
		func(t *testing.T, got any) { equalSeries(t, series, got.([]testSeries)) })
}

// writeCorruptionFixture writes data into a segment with opts (chunks files
// of at most opts.MaxChunkFileSize bytes), and keeps its files.
func writeCorruptionFixture(t *testing.T, data []SeriesData, opts WriterOptions, read func(*Segment) (any, error), same func(*testing.T, any)) *corruptionFixture {
	parent := t.TempDir()
	w, err := NewWriterWithOptions(parent, Meta{}, opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, sd := range data {
		if err := w.AddSeries(sd.Labels, sd.Chunks); err != nil {
			t.Fatal(err)
		}
	}
	meta, err := w.Close()
	if err != nil {
		t.Fatal(err)
	}
	if opts.Compress != meta.Compressed() || opts.NoStats != (meta.Version < FormatVersionStats) {
		t.Fatalf("compress %v wrote version %d", opts.Compress, meta.Version)
	}
	f := &corruptionFixture{dir: filepath.Join(parent, meta.ID), meta: meta, orig: map[string][]byte{}, read: read, same: same, stride: 7}
	s, err := Open(f.dir)
	if err != nil {
		t.Fatal(err)
	}
	f.toc = s.index.toc
	for _, fm := range s.files {
		f.orig[fm.Name] = nil
	}
	s.Close()
	f.orig[metaFilename] = nil
	for name := range f.orig {
		b, err := os.ReadFile(filepath.Join(f.dir, name))
		if err != nil {
			t.Fatal(err)
		}
		f.orig[name] = b
	}
	if len(f.orig) < 4 {
		t.Fatalf("want at least 2 chunks files, have files %d", len(f.orig))
	}
	return f
}

// check applies mutate to a copy of file (nil removes the file), opens and
// reads the segment, and restores the file. The damage must be reported as
// a *CorruptionError naming file; only meta.json may instead read back
// exactly what was written (a change JSON decoding ignores).
func (f *corruptionFixture) check(t *testing.T, file, what string, mutate func([]byte) []byte) {
	t.Helper()
	path := filepath.Join(f.dir, file)
	orig := f.orig[file]
	var b []byte
	if mutate == nil {
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
	} else {
		b = mutate(append([]byte(nil), orig...))
		writeFile(t, path, b, len(b) == len(orig))
	}
	defer writeFile(t, path, orig, b != nil && len(b) == len(orig))

	s, err := Open(f.dir)
	if err != nil {
		f.requireCorruption(t, err, file, what)
		// A missing file, or one whose size is not meta.json's, concerns
		// the file as a whole.
		var ce *CorruptionError
		if errors.As(err, &ce) && (mutate == nil || file != metaFilename && len(b) != len(orig)) && ce.Offset != -1 {
			t.Fatalf("%s %s: reported at offset %d, want -1: %v", file, what, ce.Offset, err)
		}
		return
	}
	defer s.Close()
	got, err := f.read(s)
	if err == nil {
		err = s.Verify(t.Context())
	}
	if err != nil {
		f.requireCorruption(t, err, file, what)
		return
	}
	if file != metaFilename {
		t.Fatalf("%s %s: damage not detected", file, what)
	}
	if !metaEqual(s.Meta(), f.meta) {
		t.Fatalf("%s %s: silently changed meta to %+v", file, what, s.Meta())
	}
	f.same(t, got)
}

// writeFile replaces path's content; inPlace overwrites it without
// truncating, which is much cheaper than a rewrite on some file systems.
func writeFile(t *testing.T, path string, b []byte, inPlace bool) {
	t.Helper()
	if !inPlace {
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	fd, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fd.WriteAt(b, 0); err != nil {
		t.Fatal(err)
	}
	if err := fd.Close(); err != nil {
		t.Fatal(err)
	}
}

func (f *corruptionFixture) requireCorruption(t *testing.T, err error, file, what string) {
	t.Helper()
	var ce *CorruptionError
	if !errors.As(err, &ce) {
		t.Fatalf("%s %s: got %v (%T), want *CorruptionError", file, what, err, err)
	}
	if ce.File != file || ce.Dir != f.dir {
		t.Fatalf("%s %s: error names %q in %q: %v", file, what, ce.File, ce.Dir, err)
	}
}

// forEachCorruptionFixture runs test on a segment of floats and on one of
// native histograms, each written plain and compressed.
func forEachCorruptionFixture(t *testing.T, test func(*testing.T, *corruptionFixture)) {
	for _, fx := range []struct {
		name string
		new  func(*testing.T, WriterOptions) *corruptionFixture
	}{{"floats", newCorruptionFixture}, {"histograms", newHistogramCorruptionFixture}} {
		for _, f := range formats {
			t.Run(fx.name+"/"+f.name, func(t *testing.T) {
				t.Parallel()
				test(t, fx.new(t, f.opts))
			})
		}
	}
}

func TestCorruptionTruncate(t *testing.T) {
	forEachCorruptionFixture(t, func(t *testing.T, f *corruptionFixture) {
		for file, b := range f.orig {
			offs := []int{0, 1, 4, 7, 8, len(b) / 3, len(b) / 2, len(b) - 5, len(b) - 1}
			if file == indexFilename {
				for _, s := range f.toc {
					offs = append(offs, int(s.off), int(s.end()), int(s.end()+2))
				}
			}
			for _, off := range offs {
				f.check(t, file, "truncated at "+itoa(off), func(b []byte) []byte { return b[:off] })
			}
			// Appended garbage is damage too.
			f.check(t, file, "extended", func(b []byte) []byte { return append(b, 0, 0, 0, 0) })
		}
	})
}

func TestCorruptionBitFlip(t *testing.T) {
	forEachCorruptionFixture(t, func(t *testing.T, f *corruptionFixture) {
		// Every byte of meta.json and index and of the chunks file headers, and
		// every stride-th byte of chunk records; one bit each, rotating
		// through the bits.
		for file, b := range f.orig {
			for off := 0; off < len(b); off++ {
				if off >= chunksHeaderSize && file != metaFilename && file != indexFilename && off%f.stride != 0 {
					continue
				}
				bit := byte(1) << (off % 8)
				f.check(t, file, "bit flipped at "+itoa(off), func(b []byte) []byte {
					b[off] ^= bit
					return b
				})
			}
		}
	})
}

func TestCorruptionZeroPage(t *testing.T) {
	forEachCorruptionFixture(t, func(t *testing.T, f *corruptionFixture) {
		const page = 4096
		for file, b := range f.orig {
			for start := 0; start < len(b); start += page / 2 {
				f.check(t, file, "zeroed from "+itoa(start), func(b []byte) []byte {
					clear(b[start:min(start+page, len(b))])
					return b
				})
			}
		}
	})
}

func TestCorruptionMissingFile(t *testing.T) {
	forEachCorruptionFixture(t, func(t *testing.T, f *corruptionFixture) {
		for file := range f.orig {
			f.check(t, file, "removed", nil)
		}
	})
}

func TestCorruptionIndexFromOtherSegment(t *testing.T) {
	f := newCorruptionFixture(t, WriterOptions{})
	parent := t.TempDir()
	other := writeTestSegment(t, parent, Meta{}, genSeries(6, 20, 2))
	b, err := os.ReadFile(filepath.Join(parent, other.ID, indexFilename))
	if err != nil {
		t.Fatal(err)
	}
	// Valid on its own, but not the index meta.json describes.
	f.check(t, indexFilename, "replaced", func([]byte) []byte { return b })

	// The same series 1 ms later: an index of the same size, each of its
	// sections sound, that only meta.json's CRC32C of the whole file tells
	// from the segment's own.
	series := genSeries(5, 20, 2)
	for i := range series {
		for j := range series[i].chunks {
			for k := range series[i].chunks[j].samples {
				series[i].chunks[j].samples[k].T++
			}
		}
	}
	later := writeTestSegmentWith(t, parent, Meta{}, series, WriterOptions{MaxChunkFileSize: 12 << 10})
	if b, err = os.ReadFile(filepath.Join(parent, later.ID, indexFilename)); err != nil {
		t.Fatal(err)
	}
	if len(b) != len(f.orig[indexFilename]) {
		t.Fatalf("index of %d bytes, want %d", len(b), len(f.orig[indexFilename]))
	}
	f.check(t, indexFilename, "replaced by one of the same size", func([]byte) []byte { return b })
	path := filepath.Join(f.dir, indexFilename)
	writeFile(t, path, b, true)
	defer writeFile(t, path, f.orig[indexFilename], true)
	_, err = Open(f.dir)
	if ce := (*CorruptionError)(nil); !errors.As(err, &ce) || ce.File != indexFilename || ce.Offset != -1 {
		t.Fatalf("index replaced by one of the same size: %v, want a *CorruptionError of the whole index", err)
	}
}

func itoa(i int) string {
	return string(appendInt(nil, i))
}

func appendInt(b []byte, i int) []byte {
	if i >= 10 {
		b = appendInt(b, i/10)
	}
	return append(b, byte('0'+i%10))
}
