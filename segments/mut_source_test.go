package segments

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
)

// cacheSource is a Source in front of a cache whose copy of some bytes is
// damaged: a damaged byte reads flipped until a Forget covers it, after
// which it reads as stored. It records the ranges forgotten.
type cacheSource struct {
	files map[string][]byte

	mtx     sync.Mutex
	damaged map[string]map[int64]bool // file -> offsets of damaged bytes
	forgot  int
}

func (s *cacheSource) damage(file string, off int64) {
	s.mtx.Lock()
	defer s.mtx.Unlock()
	if s.damaged == nil {
		s.damaged = map[string]map[int64]bool{}
	}
	if s.damaged[file] == nil {
		s.damaged[file] = map[int64]bool{}
	}
	s.damaged[file][off] = true
}

func (s *cacheSource) ReadRange(_ context.Context, file string, off, length int64) ([]byte, error) {
	f, ok := s.files[file]
	if !ok {
		return nil, fmt.Errorf("no file %s", file)
	}
	if off < 0 || length < 0 || off+length > int64(len(f)) {
		return nil, fmt.Errorf("%s: range %d+%d outside %d bytes", file, off, length, len(f))
	}
	b := append([]byte(nil), f[off:off+length]...)
	s.mtx.Lock()
	defer s.mtx.Unlock()
	for p := range s.damaged[file] {
		if p >= off && p < off+length {
			b[p-off] ^= 0x20
		}
	}
	return b, nil
}

func (s *cacheSource) Forget(file string, off, length int64) {
	s.mtx.Lock()
	defer s.mtx.Unlock()
	s.forgot++
	for p := range s.damaged[file] {
		if p >= off && p < off+length {
			delete(s.damaged[file], p)
		}
	}
}

func (s *cacheSource) Prefetch(context.Context, string, [][2]int64) error { return nil }

// segmentFiles reads the files of the segment in dir, by the names
// meta.json gives them.
func segmentFiles(t testing.TB, dir string) (metaJSON []byte, files map[string][]byte) {
	t.Helper()
	metaJSON, err := os.ReadFile(filepath.Join(dir, metaFilename))
	if err != nil {
		t.Fatal(err)
	}
	mf, err := parseMetaFile(dir, metaJSON)
	if err != nil {
		t.Fatal(err)
	}
	files = map[string][]byte{}
	for _, f := range mf.Files {
		b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(f.Name)))
		if err != nil {
			t.Fatal(err)
		}
		files[f.Name] = b
	}
	return metaJSON, files
}

// TestSourceForgetsTheDamagedRange: a byte damaged in a Source's cache,
// anywhere in a segment's files, is forgotten (the range the segment
// tells the Source to forget covers it) and read again, so the segment
// opens and reads as it does from disk. A Forget of the wrong range would
// leave the damage in the cache and report the stored object corrupt.
func TestSourceForgetsTheDamagedRange(t *testing.T) {
	for _, dir := range sourceTestDirs(t) {
		want, err := readContent(openT(t, dir))
		if err != nil {
			t.Fatal(err)
		}
		metaJSON, files := segmentFiles(t, dir)
		// Every byte of a small compressed fixture's postings section,
		// which only structural checks cover when read by range.
		var post section
		if m := openT(t, dir); m.Meta().Compressed() && len(files[indexFilename]) < 2000 {
			post = m.index.toc[secPostings]
		}
		for name, b := range files {
			stride := max(1, len(b)/64)
			for p := 0; p < len(b); p += stride {
				if name == indexFilename && p >= int(post.off) && p < int(post.end()) {
					stride = 1
				} else {
					stride = max(1, len(b)/64)
				}
				src := &cacheSource{files: files}
				src.damage(name, int64(p))
				s, err := OpenSource(context.Background(), "bucket/x", metaJSON, src, nil)
				if err != nil {
					t.Fatalf("%s: %s damaged in the cache at %d: open: %v", dir, name, p, err)
				}
				got, err := readContent(s)
				_ = s.Close()
				if err != nil {
					t.Fatalf("%s: %s damaged in the cache at %d: read: %v", dir, name, p, err)
				}
				if !slices.Equal(got, want) {
					t.Fatalf("%s: %s damaged in the cache at %d: reads differently", dir, name, p)
				}
			}
		}
	}
}

// readContent is segmentContent returning its error.
func readContent(s *Segment) ([]string, error) {
	it, err := s.Select()
	if err != nil {
		return nil, err
	}
	var out []string
	for it.Next() {
		line := fmt.Sprintf("%s:", it.Labels())
		for _, cm := range it.Chunks() {
			c, err := s.ReadChunk(cm.Ref)
			if err != nil {
				return nil, err
			}
			line += fmt.Sprintf(" %s %d..%d %s %x", cm.Kind, cm.MinTime, cm.MaxTime, c.Encoding(), c.Bytes())
		}
		out = append(out, line)
	}
	if err := it.Err(); err != nil {
		return nil, err
	}
	// The label names and values of the series a matcher selects, read
	// from their postings too.
	m := labels.MustNewMatcher(labels.MatchRegexp, labels.MetricName, ".+")
	names, err := s.LabelNames(m)
	if err != nil {
		return nil, err
	}
	out = append(out, fmt.Sprint(names))
	for _, name := range names {
		vals, err := s.LabelValues(name, m)
		if err != nil {
			return nil, err
		}
		out = append(out, fmt.Sprint(vals))
	}
	return out, nil
}
