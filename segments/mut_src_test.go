package segments

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
)

// logSource is a cacheSource that records the ranges read and forgotten,
// and fails a read of a range asked for more than maxReads times (0: no
// bound), so that a reader that retries without end fails instead of
// hanging. Its reads and prefetches fail with the error of a context
// that is done, and fail when given none.
type logSource struct {
	cacheSource
	maxReads int
	// prefetchErr, when set, is what Prefetch returns; readErr what
	// ReadRange does.
	prefetchErr, readErr error

	logMtx   sync.Mutex
	reads    []fileRange
	forgets  []fileRange
	prefetch []fileRange
	// prefetchCalls is the number of ranges of each call of Prefetch.
	prefetchCalls []int
}

type fileRange struct {
	file     string
	off, len int64
}

var errReadTooOften = errors.New("range read too often")

func (s *logSource) ReadRange(ctx context.Context, file string, off, length int64) ([]byte, error) {
	r := fileRange{file, off, length}
	s.logMtx.Lock()
	n := 0
	for _, x := range s.reads {
		if x == r {
			n++
		}
	}
	s.reads = append(s.reads, r)
	s.logMtx.Unlock()
	if s.maxReads > 0 && n >= s.maxReads {
		return nil, fmt.Errorf("%s %d+%d: %w", file, off, length, errReadTooOften)
	}
	if s.readErr != nil {
		return nil, s.readErr
	}
	if ctx == nil {
		return nil, errors.New("nil context")
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return s.cacheSource.ReadRange(ctx, file, off, length)
}

func (s *logSource) Forget(file string, off, length int64) {
	s.logMtx.Lock()
	s.forgets = append(s.forgets, fileRange{file, off, length})
	s.logMtx.Unlock()
	s.cacheSource.Forget(file, off, length)
}

func (s *logSource) Prefetch(ctx context.Context, file string, ranges [][2]int64) error {
	if ctx == nil {
		return errors.New("nil context")
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	s.logMtx.Lock()
	defer s.logMtx.Unlock()
	for _, r := range ranges {
		s.prefetch = append(s.prefetch, fileRange{file, r[0], r[1] - r[0]})
	}
	s.prefetchCalls = append(s.prefetchCalls, len(ranges))
	return s.prefetchErr
}

// clear forgets the ranges logged so far.
func (s *logSource) clear() {
	s.logMtx.Lock()
	defer s.logMtx.Unlock()
	s.reads, s.forgets, s.prefetch, s.prefetchCalls = nil, nil, nil, nil
}

// check fails t unless every range logged is a non-empty range inside
// its file, and every Prefetch asked for at least one range.
func (s *logSource) check(t *testing.T, what string) {
	t.Helper()
	s.logMtx.Lock()
	defer s.logMtx.Unlock()
	for _, l := range []struct {
		kind string
		rs   []fileRange
	}{{"read", s.reads}, {"forgot", s.forgets}, {"prefetched", s.prefetch}} {
		for _, r := range l.rs {
			if size := int64(len(s.files[r.file])); r.off < 0 || r.len <= 0 || r.off+r.len > size {
				t.Fatalf("%s: %s %s %d+%d, outside its %d bytes", what, l.kind, r.file, r.off, r.len, size)
			}
		}
	}
	if slices.Contains(s.prefetchCalls, 0) {
		t.Fatalf("%s: a Prefetch of no range", what)
	}
}

// storedDamage is a Source whose stored copy of a file is damaged: the
// byte at off of file always reads flipped, Forget or not.
func storedDamage(files map[string][]byte, file string, off int) map[string][]byte {
	out := map[string][]byte{}
	for name, b := range files {
		out[name] = b
	}
	b := append([]byte(nil), files[file]...)
	b[off] ^= 0x20
	out[file] = b
	return out
}

// TestSourceForgetsOnlyWhatItRead: each range a segment tells its Source
// to forget, after damage in the Source's cache, lies within its file (a
// range that runs past it names bytes that are not there, and drops cached
// bytes that were sound); and the segment then reads as from disk.
func TestSourceForgetsOnlyWhatItRead(t *testing.T) {
	for _, dir := range sourceTestDirs(t) {
		want, err := readContent(openT(t, dir))
		if err != nil {
			t.Fatal(err)
		}
		metaJSON, files := segmentFiles(t, dir)
		forgot := 0
		for name, b := range files {
			for p := 7; p < len(b); p += max(1, len(b)/16) {
				src := &logSource{cacheSource: cacheSource{files: files}}
				src.damage(name, int64(p))
				s, err := OpenSource(context.Background(), "bucket/x", metaJSON, src, nil)
				if err != nil {
					t.Fatalf("%s: %s damaged in the cache at %d: open: %v", dir, name, p, err)
				}
				got, err := readContent(s)
				_ = s.Close()
				if err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
					t.Fatalf("%s: %s damaged in the cache at %d: read %v", dir, name, p, err)
				}
				for _, f := range src.forgets {
					if f.off < 0 || f.len <= 0 || f.off+f.len > int64(len(files[f.file])) {
						t.Fatalf("%s: %s damaged in the cache at %d: forgot %s %d+%d, outside its %d bytes",
							dir, name, p, f.file, f.off, f.len, len(files[f.file]))
					}
				}
				forgot += len(src.forgets)
			}
		}
		if forgot == 0 {
			t.Fatalf("%s: nothing forgotten", dir)
		}
	}
}

// TestSourceStoredDamageReadTwice: damage in the stored object itself is
// read twice (once more after a Forget), then reported as a
// *CorruptionError naming the file: never read again and again, which
// would leave the query waiting on its Source for ever.
func TestSourceStoredDamageReadTwice(t *testing.T) {
	for _, dir := range sourceTestDirs(t) {
		metaJSON, files := segmentFiles(t, dir)
		// Every chunk's record, or its page, damaged in turn.
		s := openT(t, dir)
		refs := segmentRefs(t, dir)
		for i, ref := range refs {
			if i%max(1, len(refs)/8) != 0 {
				continue
			}
			name := chunksFileName(ref.File())
			off := int(ref.Offset()) + 3
			if s.chunkPages[ref.File()-1] != nil {
				// Inside the page's compressed bytes.
				i, _ := s.chunkPages[ref.File()-1].pageIndex(uint64(ref.Offset()))
				start, end := s.chunkPages[ref.File()-1].pageRange(i)
				off = int(chunksHeaderSize + (start+end)/2)
			}
			src := &logSource{cacheSource: cacheSource{files: storedDamage(files, name, off)}, maxReads: 2}
			seg, err := OpenSource(context.Background(), "bucket/x", metaJSON, src, nil)
			if err != nil {
				t.Fatal(err)
			}
			_, err = seg.ReadChunk(ref)
			_ = seg.Close()
			var ce *CorruptionError
			if !errors.As(err, &ce) || ce.File != name || errors.Is(err, errReadTooOften) {
				t.Fatalf("%s: %s damaged in store at %d: read %s: %v", dir, name, off, ref, err)
			}
		}
		// The index of a plain segment damaged in store: the open, which
		// reads it whole and checks it against meta.json's CRC32C, fails
		// for the file as a whole, having read it twice.
		if s.Meta().Compressed() {
			continue
		}
		for _, off := range []int{10, len(files[indexFilename]) / 2, len(files[indexFilename]) - 10} {
			src := &logSource{cacheSource: cacheSource{files: storedDamage(files, indexFilename, off)}, maxReads: 2}
			_, err := OpenSource(context.Background(), "bucket/x", metaJSON, src, nil)
			var ce *CorruptionError
			if !errors.As(err, &ce) || ce.File != indexFilename || ce.Offset != -1 || errors.Is(err, errReadTooOften) || len(src.reads) != 2 {
				t.Fatalf("%s: index damaged in store at %d: %v after reads %v", dir, off, err, src.reads)
			}
		}
	}
}

// TestSourceRefOutsideChunksFile: a chunk ref at or past the end of its
// chunks file (a damaged series entry) is a *CorruptionError, found
// without a request to the Source; a ref to chunks file 0, or to one past
// the last, is a *CorruptionError of the index, which holds the ref, from
// disk and through a Source.
func TestSourceRefOutsideChunksFile(t *testing.T) {
	for _, dir := range sourceTestDirs(t) {
		metaJSON, files := segmentFiles(t, dir)
		src := &logSource{cacheSource: cacheSource{files: files}}
		s, err := OpenSource(context.Background(), "bucket/x", metaJSON, src, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, seg := range []*Segment{s, openT(t, dir)} {
			for _, ref := range []ChunkRef{newChunkRef(0, chunksHeaderSize), newChunkRef(uint32(len(seg.files)), chunksHeaderSize)} {
				_, err := seg.ReadChunk(ref)
				var ce *CorruptionError
				if !errors.As(err, &ce) || ce.File != indexFilename || ce.Offset != -1 {
					t.Fatalf("%s, from a Source %v: read %s of %d chunks files: %v", dir, seg.FromSource(), ref, len(seg.files)-1, err)
				}
			}
		}
		n := len(files[chunksFileName(1)])
		for _, off := range []int{n, n + 1, 0, chunksHeaderSize - 1} {
			src.reads = nil
			ref := newChunkRef(1, uint32(off))
			_, err := s.ReadChunk(ref)
			var ce *CorruptionError
			if !errors.As(err, &ce) || ce.File != chunksFileName(1) {
				t.Fatalf("%s: read %s of a file of %d bytes: %v", dir, ref, n, err)
			}
			if !s.Meta().Compressed() && len(src.reads) != 0 {
				t.Fatalf("%s: read %s of a file of %d bytes: asked the source for %v", dir, ref, n, src.reads)
			}
		}
		_ = s.Close()
	}
}

// longRecordDirs is sourceTestDirs with a plain segment whose chunks
// have 50 to 400 samples of random floats: records of about 0.5 to 3.5
// KiB, several longer than recordGuess.
func longRecordDirs(t *testing.T) []string {
	rng := rand.New(rand.NewPCG(3, 4))
	var data []SeriesData
	for i := range 6 {
		smp := make([]sample, 50+rng.IntN(350))
		for j := range smp {
			smp[j] = sample{T: testT0 + int64(j)*testStep, V: rng.Float64()}
		}
		data = append(data, SeriesData{Labels: labels.FromStrings("__name__", "long", "i", fmt.Sprint(i)),
			Chunks: []ChunkMeta{{Chunk: newXOR(t, smp)}}})
	}
	parent := t.TempDir()
	m, err := WriteSeriesWithOptions(parent, Meta{}, data, WriterOptions{MaxChunkFileSize: 8 << 10})
	if err != nil {
		t.Fatal(err)
	}
	return append(sourceTestDirs(t), filepath.Join(parent, m.ID))
}

// segmentRefs returns the chunk refs of the segment in dir, by chunks file.
func segmentRefs(t *testing.T, dir string) []ChunkRef {
	t.Helper()
	it, err := openT(t, dir).Select()
	if err != nil {
		t.Fatal(err)
	}
	var refs []ChunkRef
	for it.Next() {
		for _, cm := range it.Chunks() {
			refs = append(refs, cm.Ref)
		}
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	return refs
}

// TestSourceRecordReads: a chunk record of a plain segment read through a
// Source costs one read when it fits in the first guess at its length (or
// ends the file within it), two when it is longer: never one more for a
// record that was read whole the first time.
func TestSourceRecordReads(t *testing.T) {
	long := 0
	for _, dir := range longRecordDirs(t) {
		metaJSON, files := segmentFiles(t, dir)
		src := &logSource{cacheSource: cacheSource{files: files}}
		s, err := OpenSource(context.Background(), "bucket/x", metaJSON, src, nil)
		if err != nil {
			t.Fatal(err)
		}
		if s.Meta().Compressed() {
			continue
		}
		for _, ref := range segmentRefs(t, dir) {
			b := files[chunksFileName(ref.File())][ref.Offset():]
			n, k := binary.Uvarint(b)
			need := k + 1 + int(n) + 4
			want := 1
			if need > min(recordGuess, len(b)) {
				want = 2
				long++
			}
			src.reads = nil
			if _, err := s.ReadChunk(ref); err != nil {
				t.Fatal(err)
			}
			if len(src.reads) != want {
				t.Fatalf("%s: chunk %s, a record of %d bytes, %d before the file's end: read %v, want %d reads",
					dir, ref, need, len(b), src.reads, want)
			}
		}
	}
	if long == 0 {
		t.Fatal("no record longer than the first read")
	}
}

// TestSourceRecordLengthPastFileEnd: a chunk record whose stored length
// runs past the end of its chunks file is a *CorruptionError naming the
// file, read through a Source as from disk (not an error of the Source's
// range check, which would pass for an unreachable bucket).
func TestSourceRecordLengthPastFileEnd(t *testing.T) {
	tested, long := 0, 0
	for _, dir := range longRecordDirs(t) {
		if openT(t, dir).Meta().Compressed() {
			continue
		}
		metaJSON, files := segmentFiles(t, dir)
		// The last record of each chunks file, made 50 bytes longer.
		last := map[uint32]ChunkRef{}
		for _, ref := range segmentRefs(t, dir) {
			if ref.Offset() > last[ref.File()].Offset() {
				last[ref.File()] = ref
			}
		}
		for _, ref := range last {
			name := chunksFileName(ref.File())
			b := append([]byte(nil), files[name]...)
			n, k := binary.Uvarint(b[ref.Offset():])
			if binary.PutUvarint(make([]byte, 10), n+50) != k {
				continue
			}
			binary.PutUvarint(b[ref.Offset():], n+50)
			if n > recordGuess {
				long++
			}
			damaged := storedDamage(files, name, 0)
			damaged[name] = b
			src := &logSource{cacheSource: cacheSource{files: damaged}}
			s, err := OpenSource(context.Background(), "bucket/x", metaJSON, src, nil)
			if err != nil {
				t.Fatal(err)
			}
			_, err = s.ReadChunk(ref)
			_ = s.Close()
			var ce *CorruptionError
			if !errors.As(err, &ce) || ce.File != name || ce.Offset != int64(ref.Offset()) {
				t.Fatalf("%s: %s's last record %s 50 bytes longer than the file: %v", dir, name, ref, err)
			}
			tested++
		}
	}
	if tested == 0 || long == 0 {
		t.Fatalf("%d records damaged, %d longer than the first read", tested, long)
	}
}

// TestOpenSourceEmptyFile: a meta.json (valid, signed) that gives one of
// the segment's files 0 bytes is a *CorruptionError naming that file as a
// whole (offset -1), as Open reports the file emptied on disk, found
// before the Source is asked for anything.
func TestOpenSourceEmptyFile(t *testing.T) {
	for _, dir := range sourceTestDirs(t) {
		metaJSON, files := segmentFiles(t, dir)
		mf, err := parseMetaFile(dir, metaJSON)
		if err != nil {
			t.Fatal(err)
		}
		for i, f := range mf.Files {
			m := *mf
			m.Files = slices.Clone(mf.Files)
			m.Files[i].Size = 0
			b, err := m.marshal()
			if err != nil {
				t.Fatal(err)
			}
			src := &logSource{cacheSource: cacheSource{files: files}}
			_, err = OpenSource(context.Background(), "bucket/x", b, src, nil)
			var ce *CorruptionError
			if !errors.As(err, &ce) || ce.File != f.Name || ce.Offset != -1 {
				t.Fatalf("%s: meta.json gives %s 0 bytes: %v", dir, f.Name, err)
			}
			if len(src.reads) != 0 || len(src.prefetch) != 0 {
				t.Fatalf("%s: meta.json gives %s 0 bytes: read %v, prefetched %v", dir, f.Name, src.reads, src.prefetch)
			}

			// The same file emptied on disk, under the same meta.json.
			other := filepath.Join(t.TempDir(), filepath.Base(dir))
			copyDir(t, dir, other)
			if err := os.WriteFile(filepath.Join(other, filepath.FromSlash(f.Name)), nil, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(other, metaFilename), b, 0o644); err != nil {
				t.Fatal(err)
			}
			_, err = Open(other)
			if !errors.As(err, &ce) || ce.File != f.Name || ce.Offset != -1 {
				t.Fatalf("%s: %s emptied on disk: %v", dir, f.Name, err)
			}
		}
	}
}

// TestSourcePrefetchExact: what a segment read through a Source asks it
// to prefetch is what it then reads. Select prefetches the postings lists
// and series pages of a compressed index that it reads, Prefetch the
// records or pages of the chunks it is given, in ascending order without
// repeats, PrefetchAll every chunks file whole; each range read is one
// prefetched before (or, for a plain record longer than the first read,
// starts where one does); nothing outside the files, no empty Prefetch.
// A Source's error in a prefetch is returned as it is.
func TestSourcePrefetchExact(t *testing.T) {
	for _, dir := range longRecordDirs(t) {
		metaJSON, files := segmentFiles(t, dir)
		src := &logSource{cacheSource: cacheSource{files: files}}
		s, err := OpenSource(context.Background(), "bucket/x", metaJSON, src, nil)
		if err != nil {
			t.Fatal(err)
		}
		src.check(t, dir+": open")
		if disk := openT(t, dir); !s.FromSource() || disk.FromSource() {
			t.Fatalf("%s: FromSource %v through a Source, %v from disk", dir, s.FromSource(), disk.FromSource())
		}
		covered := func(what string, exact bool) {
			t.Helper()
			for _, r := range src.reads {
				ok := false
				for _, p := range src.prefetch {
					ok = ok || p == r || !exact && p.file == r.file && p.off == r.off
				}
				if !ok {
					t.Fatalf("%s: %s: read %s %d+%d, not prefetched (prefetched %v)", dir, what, r.file, r.off, r.len, src.prefetch)
				}
			}
		}
		src.clear()
		var refs []ChunkRef
		it, err := s.Select()
		if err != nil {
			t.Fatal(err)
		}
		for it.Next() {
			for _, cm := range it.Chunks() {
				refs = append(refs, cm.Ref)
			}
		}
		if err := it.Err(); err != nil {
			t.Fatal(err)
		}
		src.check(t, dir+": select")
		covered("select", true)
		// Again, with the series pages cached.
		src.clear()
		if it, err = s.Select(); err != nil {
			t.Fatal(err)
		}
		for it.Next() {
		}
		if err := it.Err(); err != nil {
			t.Fatal(err)
		}
		src.check(t, dir+": select again")
		covered("select again", true)
		if s.Meta().Compressed() {
			// Each label value selected first, its series in any page.
			r := openT(t, dir).index
			for _, name := range r.names {
				for _, v := range r.values[name].values {
					src := &logSource{cacheSource: cacheSource{files: files}}
					s, err := OpenSource(context.Background(), "bucket/x", metaJSON, src, nil)
					if err != nil {
						t.Fatal(err)
					}
					src.clear()
					selectContent(t, s, []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, name, v)})
					_ = s.Close()
					src.check(t, dir+": select "+name+"="+v)
					for _, r := range src.reads {
						if !slices.Contains(src.prefetch, r) {
							t.Fatalf("%s: select %s=%s: read %s %d+%d, not prefetched (prefetched %v)", dir, name, v, r.file, r.off, r.len, src.prefetch)
						}
					}
				}
			}
		}

		// Refs outside the files are left to ReadChunk.
		n := len(files[chunksFileName(1)])
		bad := []ChunkRef{newChunkRef(0, chunksHeaderSize), newChunkRef(uint32(len(s.files)), chunksHeaderSize),
			newChunkRef(1, 0), newChunkRef(1, uint32(n)), newChunkRef(1, uint32(n+1))}
		src.clear()
		// In reverse order, and each twice: the Source gets each range
		// once, in ascending order.
		rev := slices.Concat(refs, refs)
		slices.Reverse(rev)
		if err := s.Prefetch(append(rev, bad...)); err != nil {
			t.Fatal(err)
		}
		src.check(t, dir+": prefetch")
		for i, p := range src.prefetch {
			if i > 0 && p.file == src.prefetch[i-1].file && p.off <= src.prefetch[i-1].off {
				t.Fatalf("%s: prefetched %v: not ascending, or repeated", dir, src.prefetch)
			}
		}
		src.reads = nil
		for _, ref := range refs {
			if _, err := s.ReadChunk(ref); err != nil {
				t.Fatal(err)
			}
		}
		src.check(t, dir+": read chunks")
		covered("read chunks", s.Meta().Compressed())

		src.clear()
		if err := s.PrefetchAll(); err != nil {
			t.Fatal(err)
		}
		var whole []fileRange
		for _, f := range s.files[1:] {
			whole = append(whole, fileRange{f.Name, 0, f.Size})
		}
		if !slices.Equal(src.prefetch, whole) {
			t.Fatalf("%s: PrefetchAll prefetched %v, want %v", dir, src.prefetch, whole)
		}

		_ = s.Close()

		// A Source that fails to prefetch, once the segment is open.
		src = &logSource{cacheSource: cacheSource{files: files}}
		if s, err = OpenSource(context.Background(), "bucket/x", metaJSON, src, nil); err != nil {
			t.Fatal(err)
		}
		src.prefetchErr = errors.New("bucket down")
		if err := s.Prefetch(refs); !errors.Is(err, src.prefetchErr) {
			t.Fatalf("%s: Prefetch through a failing source: %v", dir, err)
		}
		if err := s.PrefetchAll(); !errors.Is(err, src.prefetchErr) {
			t.Fatalf("%s: PrefetchAll through a failing source: %v", dir, err)
		}
		_ = s.Close()
	}
}

// TestOpenSourceDamageAsOnDisk: a chunks file damaged in its header or
// its page table (what an open reads of it) is reported by OpenSource as
// by Open of the same files on disk: a *CorruptionError naming the same
// file and offset (-1: the page table as a whole).
func TestOpenSourceDamageAsOnDisk(t *testing.T) {
	for _, dir := range sourceTestDirs(t) {
		metaJSON, files := segmentFiles(t, dir)
		other := filepath.Join(t.TempDir(), filepath.Base(dir))
		copyDir(t, dir, other)
		for name, b := range files {
			if name == indexFilename {
				continue
			}
			for _, off := range []int{0, 5, len(b) - 1, len(b) - 5, len(b) - 9, len(b) - 20, -1} {
				damaged := storedDamage(files, name, max(off, 0))
				if off == -1 {
					// The page table's length in the trailer zeroed: an
					// empty table, which its CRC32C refuses.
					damaged[name] = slices.Clone(b)
					clear(damaged[name][len(b)-pageTrailerSize : len(b)-pageTrailerSize+4])
				}
				path := filepath.Join(other, filepath.FromSlash(name))
				if err := os.WriteFile(path, damaged[name], 0o644); err != nil {
					t.Fatal(err)
				}
				_, diskErr := Open(other)
				_, srcErr := OpenSource(context.Background(), "bucket/x", metaJSON, &logSource{cacheSource: cacheSource{files: damaged}}, nil)
				if err := os.WriteFile(path, b, 0o644); err != nil {
					t.Fatal(err)
				}
				var dce, sce *CorruptionError
				if (diskErr == nil) != (srcErr == nil) || diskErr != nil &&
					(!errors.As(diskErr, &dce) || !errors.As(srcErr, &sce) || dce.File != sce.File || dce.Offset != sce.Offset) {
					t.Fatalf("%s: %s damaged at %d: from disk %v, through a Source %v", dir, name, off, diskErr, srcErr)
				}
			}
		}
	}
}

// TestMetaFileChecks: what parseMetaFile (Open and OpenSource) refuses of
// a meta.json, and how: a damaged one, or one whose content is invalid
// behind a valid checksum, is a *CorruptionError naming meta.json (at the
// offset where JSON decoding stopped, or -1 for the file as a whole); a
// meta.json of a newer format is ErrUnsupportedVersion, not corruption;
// the oldest format and the newest are read.
func TestMetaFileChecks(t *testing.T) {
	metaJSON, _ := segmentFiles(t, fixtureDir)
	orig, err := parseMetaFile("x", metaJSON)
	if err != nil {
		t.Fatal(err)
	}
	signed := func(edit func(*metaFile)) []byte {
		m := *orig
		m.Files = slices.Clone(orig.Files)
		edit(&m)
		b, err := m.marshal()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	i := bytes.LastIndex(metaJSON, []byte(checksumKey)) + len(checksumKey)
	badSum := bytes.Clone(metaJSON)
	badSum[i] ^= 1 // a hex digit still
	for _, tc := range []struct {
		name   string
		b      []byte
		offset int64 // -2: not corruption, ErrUnsupportedVersion; -3: no error; -4: any offset in the file
	}{
		{"as written", metaJSON, -3},
		{"oldest version", signed(func(m *metaFile) { m.Version = FormatVersionPlain }), -3},
		{"newest version", signed(func(m *metaFile) { m.Version = FormatVersion }), -3},
		{"newer version", signed(func(m *metaFile) { m.Version = FormatVersion + 1 }), -2},
		{"version 0", signed(func(m *metaFile) { m.Version = FormatVersionPlain - 1 }), -1},
		{"negative size", signed(func(m *metaFile) { m.Files[1].Size = -1 }), -1},
		{"no index", signed(func(m *metaFile) { m.Files = m.Files[1:] }), -1},
		{"checksum", badSum, -1},
		{"trailing value", append(bytes.Clone(metaJSON), "{}\n"...), int64(len(metaJSON))},
		{"cut", metaJSON[:len(metaJSON)/2], -4},
	} {
		m, err := parseMetaFile("bucket/x", tc.b)
		var ce *CorruptionError
		switch {
		case tc.offset == -3:
			if err != nil || m == nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
		case tc.offset == -2:
			if !errors.Is(err, ErrUnsupportedVersion) || errors.As(err, &ce) {
				t.Fatalf("%s: %v, want ErrUnsupportedVersion", tc.name, err)
			}
		case !errors.As(err, &ce) || ce.File != metaFilename || ce.Dir != "bucket/x" ||
			ce.Offset != tc.offset && (tc.offset != -4 || ce.Offset < 0 || ce.Offset > int64(len(tc.b))):
			t.Fatalf("%s: %v (%#v), want a *CorruptionError of meta.json at %d", tc.name, err, ce, tc.offset)
		}
	}
}

// TestSourceAnswersAsDisk: a segment read through a Source, plain or
// compressed, selects the series of every test matcher, and gives their
// label names and values, as the model does (what the same segment from
// disk is tested against); LabelValuesLimit gives the limit smallest
// values of LabelValues, or all of them for a limit of 0 or less, from
// disk and through a Source.
func TestSourceAnswersAsDisk(t *testing.T) {
	series := genSeries(21, 40, 1)
	for _, f := range []struct {
		name string
		opts WriterOptions
	}{{"plain", WriterOptions{}}, {"compressed", WriterOptions{Compress: true}}} {
		parent := t.TempDir()
		m := writeTestSegmentWith(t, parent, Meta{}, series, f.opts)
		dir := filepath.Join(parent, m.ID)
		metaJSON, files := segmentFiles(t, dir)
		src, err := OpenSource(context.Background(), "bucket/x", metaJSON, &logSource{cacheSource: cacheSource{files: files}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = src.Close() })
		t.Run(f.name, func(t *testing.T) {
			testSelect(t, src, series)
			testLabelNamesValues(t, src, series)
		})
		for _, s := range []*Segment{openT(t, dir), src} {
			for _, ms := range testMatchers {
				for _, name := range []string{"__name__", "instance", "env", "nonexistent"} {
					all, err := s.LabelValues(name, ms...)
					if err != nil {
						t.Fatal(err)
					}
					for _, limit := range []int{-1, 0, 1, 2, 3, len(all) - 1, len(all), len(all) + 1} {
						want := all
						if limit > 0 && limit < len(all) {
							want = all[:limit]
						}
						got, err := s.LabelValuesLimit(name, limit, ms...)
						if err != nil || !slices.Equal(got, want) {
							t.Fatalf("%s, from a Source %v: LabelValuesLimit(%s, %d, %v) = %v, %v; want %v",
								f.name, s.FromSource(), name, limit, ms, got, err, want)
						}
					}
				}
			}
		}
	}
}

// resignedMeta writes dir's meta.json edited by edit, signed again, into
// a copy of dir, and returns the copy and the new meta.json.
func resignedMeta(t *testing.T, dir string, edit func(*metaFile)) (string, []byte) {
	t.Helper()
	metaJSON, _ := segmentFiles(t, dir)
	mf, err := parseMetaFile(dir, metaJSON)
	if err != nil {
		t.Fatal(err)
	}
	mf.Files = slices.Clone(mf.Files)
	edit(mf)
	b, err := mf.marshal()
	if err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(t.TempDir(), filepath.Base(dir))
	copyDir(t, dir, other)
	if err := os.WriteFile(filepath.Join(other, metaFilename), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return other, b
}

// TestVerifyFindsWhatReadsDoNot: Verify, from disk and through a Source,
// reports what reading the series and chunks does not check: counts that
// are not meta.json's, a sample outside meta.json's time range, a chunks
// file whose CRC32C is not meta.json's (each a *CorruptionError, of
// meta.json as a whole, of the chunks file at the chunk, of the chunks
// file as a whole); a cancelled context, and a Source that fails, are
// not corruption.
func TestVerifyFindsWhatReadsDoNot(t *testing.T) {
	for _, dir := range sourceTestDirs(t) {
		open := func(other string, metaJSON []byte) []*Segment {
			_, files := segmentFiles(t, other)
			src, err := OpenSource(context.Background(), "bucket/x", metaJSON, &logSource{cacheSource: cacheSource{files: files}}, nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = src.Close() })
			return []*Segment{openT(t, other), src}
		}
		for _, tc := range []struct {
			name   string
			edit   func(*metaFile)
			file   string
			offset bool // at a chunk, not the whole file
		}{
			{"one series more", func(m *metaFile) { m.NumSeries++ }, metaFilename, false},
			{"one chunk less", func(m *metaFile) { m.NumChunks-- }, metaFilename, false},
			{"one sample more", func(m *metaFile) { m.NumSamples++ }, metaFilename, false},
			{"min time 1 ms later", func(m *metaFile) { m.MinTime++ }, chunksFileName(1), true},
			{"max time 1 ms earlier", func(m *metaFile) { m.MaxTime-- }, "chunks/", true},
			{"chunks file's CRC32C", func(m *metaFile) {
				c, _ := parseCRC(m.Files[1].CRC32C)
				m.Files[1].CRC32C = formatCRC(c ^ 1)
			}, chunksFileName(1), false},
		} {
			other, metaJSON := resignedMeta(t, dir, tc.edit)
			for _, s := range open(other, metaJSON) {
				err := s.Verify(t.Context())
				var ce *CorruptionError
				if !errors.As(err, &ce) || !strings.HasPrefix(ce.File, tc.file) || (ce.Offset >= chunksHeaderSize) != tc.offset || !tc.offset && ce.Offset != -1 {
					t.Fatalf("%s, from a Source %v: %s: Verify: %v", dir, s.FromSource(), tc.name, err)
				}
			}
		}
		metaJSON, files := segmentFiles(t, dir)
		for _, s := range open(dir, metaJSON) {
			if err := s.Verify(t.Context()); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			var ce *CorruptionError
			if err := s.Verify(ctx); !errors.Is(err, context.Canceled) || errors.As(err, &ce) {
				t.Fatalf("%s, from a Source %v: Verify with a cancelled context: %v", dir, s.FromSource(), err)
			}
		}
		src := &logSource{cacheSource: cacheSource{files: files}}
		s, err := OpenSource(context.Background(), "bucket/x", metaJSON, src, nil)
		if err != nil {
			t.Fatal(err)
		}
		src.readErr = errors.New("bucket down")
		var ce *CorruptionError
		if err := s.Verify(t.Context()); !errors.Is(err, src.readErr) || errors.As(err, &ce) {
			t.Fatalf("%s: Verify through a failing Source: %v", dir, err)
		}
		_ = s.Close()
	}
}

// TestCloseDropsCachedPages: a compressed segment closed leaves nothing
// in the page cache it shares with others, neither its pages nor its
// series entries, from disk or through a Source.
func TestCloseDropsCachedPages(t *testing.T) {
	for _, dir := range sourceTestDirs(t) {
		if !openT(t, dir).Meta().Compressed() {
			continue
		}
		metaJSON, files := segmentFiles(t, dir)
		cache := NewPageCache(0)
		disk, err := OpenWithCache(dir, cache)
		if err != nil {
			t.Fatal(err)
		}
		src, err := OpenSource(context.Background(), "bucket/x", metaJSON, &logSource{cacheSource: cacheSource{files: files}}, cache)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range []*Segment{disk, src} {
			it, err := s.SelectShared()
			if err != nil {
				t.Fatal(err)
			}
			for it.Next() {
				for _, cm := range it.Chunks() {
					if _, err := s.ReadChunk(cm.Ref); err != nil {
						t.Fatal(err)
					}
				}
			}
			if err := it.Err(); err != nil {
				t.Fatal(err)
			}
		}
		if cache.Size() == 0 || cache.series.entries.size() == 0 {
			t.Fatalf("%s: nothing cached: %d bytes of pages, %d of series", dir, cache.Size(), cache.series.entries.size())
		}
		if err := disk.Close(); err != nil {
			t.Fatal(err)
		}
		if err := src.Close(); err != nil {
			t.Fatal(err)
		}
		if cache.Size() != 0 || cache.series.entries.size() != 0 {
			t.Fatalf("%s: closed, the cache holds %d bytes of pages, %d of series", dir, cache.Size(), cache.series.entries.size())
		}
	}
}

// TestWithContextReachesSource: the reads of a view WithContext gives of
// a segment read through a Source pass the view's context to the Source:
// once it is cancelled they fail with its error, not a *CorruptionError,
// while the segment itself reads on (its Source is given a context, the
// background); the view's Close closes the segment. From disk, the view
// reads as the segment does.
func TestWithContextReachesSource(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	for _, dir := range sourceTestDirs(t) {
		refs := segmentRefs(t, dir)
		metaJSON, files := segmentFiles(t, dir)
		s, err := OpenSource(context.Background(), "bucket/x", metaJSON, &logSource{cacheSource: cacheSource{files: files}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		v := s.WithContext(ctx)
		var ce *CorruptionError
		_, err = v.ReadChunk(refs[len(refs)-1])
		if !errors.Is(err, context.Canceled) || errors.As(err, &ce) {
			t.Fatalf("%s: read through a cancelled view: %v", dir, err)
		}
		if err := v.Prefetch(refs); !errors.Is(err, context.Canceled) {
			t.Fatalf("%s: prefetch through a cancelled view: %v", dir, err)
		}
		if _, err := readContent(s); err != nil {
			t.Fatalf("%s: the segment itself: %v", dir, err)
		}
		if err := s.Verify(t.Context()); err != nil {
			t.Fatal(err)
		}
		if err := v.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := s.ReadChunk(refs[0]); !errors.Is(err, ErrClosed) {
			t.Fatalf("%s: the view closed, the segment reads: %v", dir, err)
		}

		disk := openT(t, dir)
		for _, ref := range refs {
			if _, err := disk.WithContext(ctx).ReadChunk(ref); err != nil {
				t.Fatalf("%s: from disk through a cancelled view: %v", dir, err)
			}
		}
	}
}

// TestReleaseWithoutAcquirePanics: a Release not matched by an Acquire is
// a bug of the caller's, which would let Close unmap the files under a
// reader: it panics.
func TestReleaseWithoutAcquirePanics(t *testing.T) {
	for _, acquired := range []int{0, 1, 3} {
		// Closed only when the test passes: a Close would wait for ever
		// for readers that a Release did not count off.
		s, err := Open(fixtureDir)
		if err != nil {
			t.Fatal(err)
		}
		for range acquired {
			if err := s.Acquire(); err != nil {
				t.Fatal(err)
			}
		}
		for range acquired {
			s.Release()
		}
		func() {
			defer func() {
				if recover() == nil {
					t.Fatalf("a Release after %d Acquire and %d Release did not panic", acquired, acquired)
				}
			}()
			s.Release()
		}()
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestLabelsOfBadSymbol: a series entry naming a symbol outside the
// symbols section, behind valid checksums (no writer makes it), is a
// *CorruptionError for LabelNames, and for LabelValues with matchers of
// a label at or after the damaged one (they read the entry's refs without
// resolving its labels, up to the label asked for): never the names or
// values of the other labels without the damaged one's.
func TestLabelsOfBadSymbol(t *testing.T) {
	parent := t.TempDir()
	data := []SeriesData{{Labels: labels.FromStrings("__name__", "a", "x", "1"),
		Chunks: []ChunkMeta{{Chunk: newXOR(t, []sample{{T: testT0, V: 1}})}}}}
	m, err := WriteSeriesWithOptions(parent, Meta{}, data, WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(parent, m.ID)
	disk := openT(t, dir)
	it, err := disk.Select()
	if err != nil || !it.Next() {
		t.Fatal(err)
	}
	p, err := disk.index.postingsForMatchers(t.Context(), nil)
	if err != nil || !p.Next() {
		t.Fatal(err)
	}
	refs, err := disk.index.series(t.Context(), p.At(), nil, nil)
	if err != nil || len(refs) != 4 || slices.ContainsFunc(refs, func(r uint64) bool { return r >= 0x80 }) {
		t.Fatalf("refs %v, %v: want 4 of one byte each", refs, err)
	}
	b := readIndexFile(t, dir)
	ser := disk.index.toc[secSeries]
	entry := []byte{2, byte(refs[0]), byte(refs[1]), byte(refs[2]), byte(refs[3])}
	i := bytes.Index(b[ser.off:ser.end()], entry)
	if i < 0 {
		t.Fatal("series entry not found")
	}
	for _, name := range []int{0, 2} { // the name of __name__, of x
		bad := slices.Clone(b)
		bad[int(ser.off)+i+1+name] = 0 // before the symbols section
		r, err := newIndexReader(fixIndexCRCs(bad), m.Version, nil)
		if err != nil {
			t.Fatal(err)
		}
		s := &Segment{segment: &segment{dir: dir, index: r}}
		ms := []*labels.Matcher{labels.MustNewMatcher(labels.MatchRegexp, "__name__", ".+")}
		var ce *CorruptionError
		if names, err := s.LabelNames(ms...); !errors.As(err, &ce) {
			t.Fatalf("label %d's name damaged: LabelNames %v, %v; want *CorruptionError", name/2, names, err)
		}
		for j, l := range []string{"__name__", "x"} {
			if j < name/2 {
				continue // found before the damaged ref is read
			}
			if vals, err := s.LabelValues(l, ms...); !errors.As(err, &ce) {
				t.Fatalf("label %d's name damaged: LabelValues(%s) %v, %v; want *CorruptionError", name/2, l, vals, err)
			}
		}
	}
}
