package segments

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
)

// dirSource is a Source reading the files of a segment directory, the way
// a bucket holds them. damage, when set, may change what a read returns
// (it gets a copy).
type dirSource struct {
	dir string

	mtx       sync.Mutex
	reads     int
	prefetch  int
	forgotten int
	damage    func(file string, off int64, b []byte)
	fail      error
}

func (s *dirSource) ReadRange(_ context.Context, file string, off, length int64) ([]byte, error) {
	s.mtx.Lock()
	s.reads++
	damage, fail := s.damage, s.fail
	s.mtx.Unlock()
	if fail != nil {
		return nil, fail
	}
	f, err := os.Open(filepath.Join(s.dir, filepath.FromSlash(file)))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, length)
	if _, err := f.ReadAt(b, off); err != nil {
		return nil, err
	}
	if damage != nil {
		damage(file, off, b)
	}
	return b, nil
}

func (s *dirSource) Forget(string, int64, int64) {
	s.mtx.Lock()
	s.forgotten++
	s.mtx.Unlock()
}

func (s *dirSource) Prefetch(ctx context.Context, file string, ranges [][2]int64) error {
	s.mtx.Lock()
	s.prefetch += len(ranges)
	s.mtx.Unlock()
	for _, r := range ranges {
		if _, err := s.ReadRange(ctx, file, r[0], r[1]-r[0]); err != nil {
			return err
		}
	}
	return nil
}

func openSourceT(t *testing.T, dir string, src Source) (*Segment, error) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, metaFilename))
	if err != nil {
		t.Fatal(err)
	}
	s, err := OpenSource(context.Background(), "bucket/"+filepath.Base(dir), b, src, nil)
	if err == nil {
		t.Cleanup(func() { _ = s.Close() })
	}
	return s, err
}

// sourceTestDirs returns segments of every format version: the fixtures,
// and randomized ones written now, plain and compressed, with small
// chunks files so that refs cross files.
func sourceTestDirs(t *testing.T) []string {
	dirs := []string{fixtureDir, fixtureV1Dir, fixtureV2Dir, fixtureV4Dir}
	parent := t.TempDir()
	data := randomSeriesData(t, rand.New(rand.NewPCG(7, 99)), testT0, 200)
	for _, compress := range []bool{false, true} {
		m, err := WriteSeriesWithOptions(parent, Meta{}, data, WriterOptions{MaxChunkFileSize: 64 << 10, Compress: compress})
		if err != nil {
			t.Fatal(err)
		}
		dirs = append(dirs, filepath.Join(parent, m.ID))
	}
	return dirs
}

// TestOpenSourceReadsAsOpen requires a segment read by range through a
// Source to read as the same segment opened from disk, in every format
// version, with and without a prefetch of its chunks, and to pass Verify.
func TestOpenSourceReadsAsOpen(t *testing.T) {
	for _, dir := range sourceTestDirs(t) {
		want := segmentContent(t, openT(t, dir))
		for _, prefetch := range []bool{false, true} {
			src := &dirSource{dir: dir}
			s, err := openSourceT(t, dir, src)
			if err != nil {
				t.Fatal(dir, err)
			}
			if prefetch {
				var refs []ChunkRef
				it, _ := s.Select()
				for it.Next() {
					for _, cm := range it.Chunks() {
						refs = append(refs, cm.Ref)
					}
				}
				if err := s.Prefetch(refs); err != nil {
					t.Fatal(err)
				}
				if src.prefetch == 0 {
					t.Fatalf("%s: prefetch asked the source for nothing", dir)
				}
			}
			if got := segmentContent(t, s); !slices.Equal(got, want) {
				t.Fatalf("%s: read through a source, the segment reads differently", dir)
			}
			if err := s.Verify(t.Context()); err != nil {
				t.Fatal(err)
			}
			if src.forgotten != 0 {
				t.Fatalf("%s: %d ranges forgotten without damage", dir, src.forgotten)
			}
		}
	}
}

// TestOpenSourceDamage: a range damaged once (on its way, or in the
// Source's cache) is forgotten and read again, and the segment reads as
// it should; a range damaged in the stored file itself is a
// *CorruptionError naming the file; a Source that fails is not
// corruption, and its error is passed on.
func TestOpenSourceDamage(t *testing.T) {
	for _, dir := range sourceTestDirs(t) {
		want := segmentContent(t, openT(t, dir))
		// Every first read of an offset gets a flipped byte in the middle.
		seen := map[[2]any]bool{}
		var mtx sync.Mutex
		src := &dirSource{dir: dir, damage: func(file string, off int64, b []byte) {
			mtx.Lock()
			defer mtx.Unlock()
			k := [2]any{file, off}
			if !seen[k] && len(b) > 0 {
				b[len(b)/2] ^= 0x20
			}
			seen[k] = true
		}}
		s, err := openSourceT(t, dir, src)
		if err != nil {
			t.Fatal(dir, err)
		}
		if got := segmentContent(t, s); !slices.Equal(got, want) {
			t.Fatalf("%s: damaged once, the segment reads differently", dir)
		}
		if src.forgotten == 0 {
			t.Fatalf("%s: no damaged range was forgotten", dir)
		}

		// Damage that stays: the chunks files' bytes always read flipped.
		src = &dirSource{dir: dir}
		s, err = openSourceT(t, dir, src)
		if err != nil {
			t.Fatal(err)
		}
		src.damage = func(file string, off int64, b []byte) {
			if file != indexFilename && len(b) > 8 {
				b[len(b)/2] ^= 0x20
			}
		}
		it, _ := s.Select()
		var readErr error
		for it.Next() && readErr == nil {
			for _, cm := range it.Chunks() {
				if _, readErr = s.ReadChunk(cm.Ref); readErr != nil {
					break
				}
			}
		}
		requireCorruption(t, readErr, chunksFileName(1))

		// A failing source.
		src.damage, src.fail = nil, errors.New("bucket down")
		s2, err := openSourceT(t, dir, &dirSource{dir: dir, fail: src.fail})
		if !errors.Is(err, src.fail) || s2 != nil {
			t.Fatalf("open with a failing source: %v", err)
		}
		s, err = openSourceT(t, dir, src)
		if err == nil {
			t.Fatal("opened through a failing source")
		}
		src.fail = nil
		s, err = openSourceT(t, dir, src)
		if err != nil {
			t.Fatal(err)
		}
		src.fail = errors.New("bucket down")
		// The series entries of a compressed index are read by page too:
		// Select, or the iterator, may be what fails.
		it, readErr = s.Select()
		for readErr == nil && it.Next() {
			for _, cm := range it.Chunks() {
				if _, readErr = s.ReadChunk(cm.Ref); readErr != nil {
					break
				}
			}
		}
		if readErr == nil {
			readErr = it.Err()
		}
		var ce *CorruptionError
		if !errors.Is(readErr, src.fail) || errors.As(readErr, &ce) {
			t.Fatalf("%s: read through a failing source: %v", dir, readErr)
		}
	}
}
