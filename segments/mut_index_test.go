package segments

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// memSource is a Source holding a segment's files in memory. damage, when
// set, changes every read of a file (damage in the stored object, which a
// second read does not repair).
type memSource struct {
	files map[string][]byte

	mtx       sync.Mutex
	forgotten int
	reads     [][2]int64 // the ranges of the index read, [off, end)
	damage    func(file string, off int64, b []byte)
}

func (s *memSource) ReadRange(_ context.Context, file string, off, length int64) ([]byte, error) {
	return s.read(file, off, length, true)
}

// read reads a range; record adds it to reads (a Prefetch's are not).
func (s *memSource) read(file string, off, length int64, record bool) ([]byte, error) {
	f, ok := s.files[file]
	if !ok {
		return nil, fmt.Errorf("no file %s", file)
	}
	if off < 0 || length < 0 || off+length > int64(len(f)) {
		return nil, fmt.Errorf("%s: range %d+%d outside %d bytes", file, off, length, len(f))
	}
	b := append([]byte(nil), f[off:off+length]...)
	s.mtx.Lock()
	damage := s.damage
	if record && file == indexFilename {
		s.reads = append(s.reads, [2]int64{off, off + length})
	}
	s.mtx.Unlock()
	if damage != nil {
		damage(file, off, b)
	}
	return b, nil
}

func (s *memSource) Forget(string, int64, int64) {
	s.mtx.Lock()
	s.forgotten++
	s.mtx.Unlock()
}

func (s *memSource) Prefetch(_ context.Context, file string, ranges [][2]int64) error {
	for _, r := range ranges {
		if _, err := s.read(file, r[0], r[1]-r[0], false); err != nil {
			return err
		}
	}
	return nil
}

// openMemSource opens the segment in dir through a memSource holding its
// files.
func openMemSource(t testing.TB, dir string) (*Segment, *memSource) {
	t.Helper()
	metaJSON, files := segmentFiles(t, dir)
	src := &memSource{files: files}
	s, err := OpenSource(context.Background(), "bucket/"+filepath.Base(dir), metaJSON, src, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, src
}

// TestIndexNewerThanMeta: an index of a version its segment's meta.json
// does not allow (statistics, hour runs or first values under a meta.json
// of an older format) is corruption, opened from disk or through a
// Source, though meta.json's own checksum is right: the reader must not
// take the older format's layout for the index's.
func TestIndexNewerThanMeta(t *testing.T) {
	parent := t.TempDir()
	for _, f := range formats {
		m := writeTestSegmentWith(t, parent, Meta{}, genSeries(9, 3, 1), f.opts)
		dir := filepath.Join(parent, m.ID)
		metaJSON, files := segmentFiles(t, dir)
		for w := FormatVersionPlain; w < m.Version; w++ {
			mf, err := parseMetaFile(dir, metaJSON)
			if err != nil {
				t.Fatal(err)
			}
			mf.Version = w
			b, err := mf.marshal()
			if err != nil {
				t.Fatal(err)
			}
			s, err := OpenSource(context.Background(), "bucket/x", b, &memSource{files: files}, nil)
			var ce *CorruptionError
			if !errors.As(err, &ce) {
				if err == nil {
					s.Close()
				}
				t.Fatalf("%s (version %d) under a meta.json of version %d, through a Source: %v, want *CorruptionError", f.name, m.Version, w, err)
			}
			other := filepath.Join(t.TempDir(), m.ID)
			copyDir(t, dir, other)
			if err := os.WriteFile(filepath.Join(other, metaFilename), b, 0o644); err != nil {
				t.Fatal(err)
			}
			s, err = Open(other)
			if !errors.As(err, &ce) {
				if err == nil {
					s.Close()
				}
				t.Fatalf("%s (version %d) under a meta.json of version %d: %v, want *CorruptionError", f.name, m.Version, w, err)
			}
		}
	}
}
