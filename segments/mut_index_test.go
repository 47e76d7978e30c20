package segments

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
)

// memSource is a Source holding a segment's files in memory. damage, when
// set, changes every read of a file (damage in the stored object, which a
// second read does not repair).
type memSource struct {
	files map[string][]byte

	mtx       sync.Mutex
	forgotten int
	reads     [][2]int64 // the ranges of the index read, [off, end)
	prefetch  [][2]int64 // the ranges of the index prefetched
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
	if file == indexFilename {
		s.mtx.Lock()
		s.prefetch = append(s.prefetch, ranges...)
		s.mtx.Unlock()
	}
	for _, r := range ranges {
		if _, err := s.read(file, r[0], r[1]-r[0], false); err != nil {
			return err
		}
	}
	return nil
}

// readIndexFile returns the index file of the segment in dir.
func readIndexFile(t testing.TB, dir string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, indexFilename))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestIndexTooShort: an index cut to any length below its table of
// contents and sections' checksums, or just past them, is corruption,
// read whole (Open) or by range from a Source (OpenSource of a compressed
// segment); the reader must not slice past the bytes it has, nor take a
// range error of its own making for an error of the Source.
func TestIndexTooShort(t *testing.T) {
	parent := t.TempDir()
	for _, f := range formats {
		m := writeTestSegmentWith(t, parent, Meta{}, genSeries(3, 4, 1), f.opts)
		b := readIndexFile(t, filepath.Join(parent, m.ID))
		for n := 0; n <= indexHeaderSize+numSections*4+tocSize+8; n++ {
			short := b[:n:n]
			_, err := func() (r *indexReader, err error) {
				defer func() {
					if p := recover(); p != nil {
						err = fmt.Errorf("panic: %v", p)
					}
				}()
				return newIndexReader(short, m.Version, NewPageCache(1<<20))
			}()
			var ce *CorruptionError
			if !errors.As(err, &ce) {
				t.Fatalf("%s: index of %d bytes read whole: %v, want *CorruptionError", f.name, n, err)
			}
			src := &memSource{files: map[string][]byte{indexFilename: short}}
			_, err = newIndexReaderLazy(context.Background(), sourceFile{src: src, name: indexFilename, n: uint64(n)}, m.Version, NewPageCache(1<<20))
			if !errors.As(err, &ce) {
				t.Fatalf("%s: index of %d bytes read by range: %v, want *CorruptionError", f.name, n, err)
			}
		}
	}
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

// TestSmallSegmentsReadAsWritten: a segment of no series, and one of a
// single series with few labels, read whole and through a Source, in
// every format, read back what was written and pass Verify. Their
// sections are the smallest there are: a symbols section of one byte, a
// postings list whose count equals the bytes of its refs.
func TestSmallSegmentsReadAsWritten(t *testing.T) {
	parent := t.TempDir()
	one := []SeriesData{{Labels: labels.FromStrings("__name__", "a"),
		Chunks: []ChunkMeta{{Chunk: newXOR(t, []sample{{T: testT0, V: 1}, {T: testT0 + 1000, V: 2}})}}}}
	for _, f := range formats {
		for _, data := range [][]SeriesData{nil, one} {
			m, err := WriteSeriesWithOptions(parent, Meta{}, data, f.opts)
			if err != nil {
				t.Fatal(err)
			}
			dir := filepath.Join(parent, m.ID)
			disk := openT(t, dir)
			src, _ := openMemSource(t, dir)
			for _, s := range []*Segment{disk, src} {
				got, err := readContent(s)
				if err != nil {
					t.Fatalf("%s, %d series, from a Source %v: %v", f.name, len(data), s.FromSource(), err)
				}
				want := 1 // the label names
				if len(data) > 0 {
					want = 2 + len(data) // the series, the names, the values of __name__
				}
				if len(got) != want {
					t.Fatalf("%s, %d series, from a Source %v: read %q", f.name, len(data), s.FromSource(), got)
				}
				if len(data) > 0 && got[0] != `{__name__="a"}: raw `+fmt.Sprint(testT0)+`..`+fmt.Sprint(testT0+1000)+` XOR `+fmt.Sprintf("%x", data[0].Chunks[0].Chunk.Bytes()) {
					t.Fatalf("%s, from a Source %v: read %q", f.name, s.FromSource(), got[0])
				}
				if err := s.Verify(t.Context()); err != nil {
					t.Fatalf("%s, %d series, from a Source %v: %v", f.name, len(data), s.FromSource(), err)
				}
			}
		}
	}
}

// TestOpenSourceReadsNoSymbols: a compressed segment opened through a
// Source rebuilds its index's symbols section from the postings table,
// which holds every symbol, instead of reading it (only its CRC32C); the
// section is read when what was rebuilt is not what the writer wrote.
func TestOpenSourceReadsNoSymbols(t *testing.T) {
	parent := t.TempDir()
	m := writeTestSegmentWith(t, parent, Meta{}, genSeries(5, 30, 1), WriterOptions{Compress: true})
	dir := filepath.Join(parent, m.ID)
	sym := openT(t, dir).index.toc[secSymbols]
	_, src := openMemSource(t, dir)
	for _, r := range src.reads {
		if r[0] < int64(sym.end()) && r[1] > int64(sym.off) {
			t.Fatalf("read [%d, %d) of the index, in its symbols section [%d, %d)", r[0], r[1], sym.off, sym.end())
		}
	}
	// A symbol the postings table does not hold: the section is read.
	metaJSON, files := segmentFiles(t, dir)
	src = &memSource{files: files}
	src.damage = func(file string, off int64, b []byte) {
		// The section's CRC32C, as a Source may damage it: not what the
		// rebuilt section sums to.
		if p := int64(sym.end()) - off; file == indexFilename && p >= 0 && p < int64(len(b)) && src.forgotten == 0 {
			b[p] ^= 1
		}
	}
	s, err := OpenSource(context.Background(), "bucket/x", metaJSON, src, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	read := false
	for _, r := range src.reads {
		read = read || r[0] <= int64(sym.off) && r[1] >= int64(sym.end())
	}
	if !read {
		t.Fatal("symbols section not read after its CRC32C did not match the rebuilt one")
	}
	if got, want := segmentContent(t, s), segmentContent(t, openT(t, dir)); !slices.Equal(got, want) {
		t.Fatal("reads differently")
	}
}

// TestIndexNewerThanMeta: an index of a version its segment's meta.json
// does not allow (statistics, hour runs or first values under a meta.json
// of an older format) is corruption, opened from disk or through a
// Source, though meta.json's own checksum is right: the reader must not
// take the older format's layout for the index's.
func TestIndexNewerThanMeta(t *testing.T) {
	parent := t.TempDir()
	dirs := []string{fixtureV3Dir, fixtureV4Dir, fixtureV5Dir, fixtureV6Dir, fixtureV7Dir}
	for _, f := range formats {
		m := writeTestSegmentWith(t, parent, Meta{}, genSeries(9, 3, 1), f.opts)
		dirs = append(dirs, filepath.Join(parent, m.ID))
	}
	for _, dir := range dirs {
		m := openT(t, dir).Meta()
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
				t.Fatalf("%s (version %d) under a meta.json of version %d, through a Source: %v, want *CorruptionError", dir, m.Version, w, err)
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
				t.Fatalf("%s (version %d) under a meta.json of version %d: %v, want *CorruptionError", dir, m.Version, w, err)
			}
		}
	}
}

// TestIndexSizeFromSource: a compressed segment opened through a Source
// holds its index's symbols and postings table, and the page table of its
// series section (16 bytes a page); not the series entries nor the
// postings lists, which it reads by range. From disk it holds the whole
// file.
func TestIndexSizeFromSource(t *testing.T) {
	parent := t.TempDir()
	for _, f := range formats {
		m := writeTestSegmentWith(t, parent, Meta{}, genSeries(11, 40, 1), f.opts)
		dir := filepath.Join(parent, m.ID)
		disk := openT(t, dir)
		size := int64(len(readIndexFile(t, dir)))
		if got := disk.IndexSize(); got != size {
			t.Fatalf("%s from disk: IndexSize %d, want the file's %d", f.name, got, size)
		}
		s, _ := openMemSource(t, dir)
		// A plain index read through a Source is held whole; IndexSize
		// counts its sections' bodies (all but the header, the sections'
		// CRC32Cs and the table of contents: 89 bytes).
		toc := disk.index.toc
		want := int64(toc[secSymbols].len + toc[secSeries].len + toc[secPostings].len + toc[secPostingsTable].len)
		if m.Compressed() {
			want = int64(toc[secSymbols].len+toc[secPostingsTable].len) + 16*int64(len(s.index.seriesPages.starts))
		}
		if got := s.IndexSize(); got != want {
			t.Fatalf("%s through a Source: IndexSize %d, want %d", f.name, got, want)
		}
	}
}

// TestSourceSelectEveryValue: through a Source, the postings list of every
// label value of a compressed segment (each read by range, to where the
// next list starts or the section ends) selects what it selects from
// disk, alone and two lists at once; the lists a selection needs are
// prefetched together, each range exactly its list.
func TestSourceSelectEveryValue(t *testing.T) {
	parent := t.TempDir()
	dirs := []string{fixtureV2Dir, fixtureV4Dir, fixtureV7Dir}
	for _, n := range []int{1, 30} {
		m := writeTestSegmentWith(t, parent, Meta{}, genSeries(uint64(n), n, 1), WriterOptions{Compress: true})
		dirs = append(dirs, filepath.Join(parent, m.ID))
	}
	for _, dir := range dirs {
		disk := openT(t, dir)
		r := disk.index
		offs := r.postingsOffsets()
		span := func(off uint64) [2]int64 {
			i, _ := slices.BinarySearch(offs, off)
			if i+1 < len(offs) {
				return [2]int64{int64(off), int64(offs[i+1])}
			}
			return [2]int64{int64(off), int64(r.toc[secPostings].end())}
		}
		src, msrc := openMemSource(t, dir)
		for _, name := range r.names {
			lv := r.values[name]
			for i, v := range lv.values {
				ms := []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, name, v)}
				wantRanges := [][2]int64{span(lv.offs[i])}
				if i > 0 {
					ms = []*labels.Matcher{labels.MustNewMatcher(labels.MatchRegexp, name, lv.values[i-1]+"|"+v)}
					wantRanges = [][2]int64{span(lv.offs[i-1]), span(lv.offs[i])}
				}
				want := selectContent(t, disk, ms)
				msrc.mtx.Lock()
				msrc.prefetch = nil
				msrc.mtx.Unlock()
				if got := selectContent(t, src, ms); !slices.Equal(got, want) || len(got) == 0 {
					t.Fatalf("%s: %s through a Source: %q, from disk %q", dir, ms, got, want)
				}
				msrc.mtx.Lock()
				got := msrc.prefetch[:min(len(msrc.prefetch), len(wantRanges))]
				msrc.mtx.Unlock()
				if !slices.Equal(got, wantRanges) {
					t.Fatalf("%s: %s prefetched %v of the index first, want its lists %v", dir, ms, got, wantRanges)
				}
			}
		}
	}
}

// selectContent returns the label sets and chunk metas Select(ms...) gives.
func selectContent(t testing.TB, s *Segment, ms []*labels.Matcher) []string {
	t.Helper()
	it, err := s.Select(ms...)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for it.Next() {
		out = append(out, fmt.Sprint(it.Labels(), it.Chunks()))
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// oneSeriesIndex writes a segment of one series, a{b="c"}, with one sample
// and no chunk statistics, and returns its directory, its meta and its
// index file's bytes: the symbols are __name__, a, b, c.
func oneSeriesIndex(t *testing.T) (string, Meta, []byte) {
	t.Helper()
	parent := t.TempDir()
	data := []SeriesData{{Labels: labels.FromStrings("__name__", "a", "b", "c"),
		Chunks: []ChunkMeta{{Chunk: newXOR(t, []sample{{T: testT0, V: 1}})}}}}
	m, err := WriteSeriesWithOptions(parent, Meta{}, data, WriterOptions{NoStats: true})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(parent, m.ID)
	return dir, m, readIndexFile(t, dir)
}

// TestIndexSymbolsOutOfOrder: an index whose symbols are not strictly
// increasing (one repeated, or one smaller than the one before it) is
// corruption even behind valid checksums, reported at the end of the
// offending symbol: a repeated symbol would give a series the label
// value of another.
func TestIndexSymbolsOutOfOrder(t *testing.T) {
	dir, m, orig := oneSeriesIndex(t)
	if _, err := newIndexReader(orig, m.Version, nil); err != nil {
		t.Fatal(err)
	}
	sym := openT(t, dir).index.toc[secSymbols]
	// The symbols are __name__, a, b, c: b is the third.
	at := bytes.Index(orig[sym.off:sym.end()], []byte("\x01b")) + int(sym.off)
	for _, repl := range []byte{'a', '0'} {
		b := append([]byte(nil), orig...)
		b[at+1] = repl
		_, err := newIndexReader(fixIndexCRCs(b), m.Version, nil)
		var ce *CorruptionError
		if !errors.As(err, &ce) || ce.File != indexFilename || ce.Offset != int64(at+2) {
			t.Fatalf("third symbol %q: %v, want *CorruptionError at %d", repl, err, at+2)
		}
	}
}

// TestIndexCorruptionOffsets: damage behind valid checksums is reported
// at the offset of the bytes that fail: a symbol longer than what is left
// of the section at its length's end, trailing symbols or postings table
// entries (their count one short) at the first one not counted, a
// postings table entry naming the end of the postings section at the
// entry.
func TestIndexCorruptionOffsets(t *testing.T) {
	dir, m, orig := oneSeriesIndex(t)
	toc := openT(t, dir).index.toc
	sym, tbl := toc[secSymbols], toc[secPostingsTable]
	lastSym := bytes.LastIndex(orig[:sym.end()], []byte("\x01c"))        // the last symbol, c
	lastEntry := bytes.LastIndex(orig[:tbl.end()], []byte("\x01b\x01c")) // the last entry, b="c"
	for _, c := range []struct {
		what   string
		change func(b []byte)
		at     int
	}{
		// The first symbol, __name__, given a length past the section: its
		// bytes are refused where they start (a later one fails the order
		// check first, its bytes read as "").
		{"first symbol longer than the section", func(b []byte) { b[sym.off+1] = 0x7f }, int(sym.off) + 2},
		{"symbol count one short", func(b []byte) { b[sym.off]-- }, lastSym},
		{"postings table count one short", func(b []byte) { b[tbl.off]-- }, lastEntry},
		// The last entry's offset (one byte), made the postings section's end.
		{"postings table entry at the end of the postings section", func(b []byte) { b[lastEntry+4] = byte(toc[secPostings].end()) }, lastEntry},
	} {
		b := append([]byte(nil), orig...)
		c.change(b)
		_, err := newIndexReader(fixIndexCRCs(b), m.Version, nil)
		var ce *CorruptionError
		if !errors.As(err, &ce) || ce.File != indexFilename || ce.Offset != int64(c.at) {
			t.Fatalf("%s: %v, want *CorruptionError at %d", c.what, err, c.at)
		}
	}
}

// TestIndexPostingsTableRepeats: a postings table naming one label value
// twice is corruption even behind valid checksums: the reader would take
// the second list for the value, or two lists for one value.
func TestIndexPostingsTableRepeats(t *testing.T) {
	parent := t.TempDir()
	var data []SeriesData
	for _, v := range []string{"a", "b"} {
		data = append(data, SeriesData{Labels: labels.FromStrings("__name__", v),
			Chunks: []ChunkMeta{{Chunk: newXOR(t, []sample{{T: testT0, V: 1}})}}})
	}
	m, err := WriteSeriesWithOptions(parent, Meta{}, data, WriterOptions{NoStats: true})
	if err != nil {
		t.Fatal(err)
	}
	b := readIndexFile(t, filepath.Join(parent, m.ID))
	tbl := openT(t, filepath.Join(parent, m.ID)).index.toc[secPostingsTable]
	// The entries are "" "", __name__ a, __name__ b: the last made a
	// second __name__ a.
	at := bytes.LastIndex(b[:tbl.end()], []byte("__name__\x01b"))
	b[at+len("__name__")+1] = 'a'
	_, err = newIndexReader(fixIndexCRCs(b), m.Version, nil)
	var ce *CorruptionError
	if !errors.As(err, &ce) || ce.Offset != int64(at-1) {
		t.Fatalf("a value named twice: %v, want *CorruptionError at %d", err, at-1)
	}
}

// TestIndexHugeCounts: a series entry whose label or chunk count is far
// more than its bytes could hold (behind valid checksums) is corruption,
// found before anything is set aside or decoded for that many.
func TestIndexHugeCounts(t *testing.T) {
	dir, m, orig := oneSeriesIndex(t)
	ser := openT(t, dir).index.toc[secSeries]
	// The entry: its length, 2 labels, their 4 symbol refs (one byte
	// each), 1 chunk and its meta.
	if e := orig[ser.off:]; e[1] != 2 || e[6] != 1 {
		t.Fatalf("series entry % x", e[:8])
	}
	huge := []byte{0xff, 0xff, 0xff, 0xff, 0x0f} // 2^32-1
	for _, c := range []struct {
		what string
		at   int
	}{{"label count", 1}, {"chunk count", 6}} {
		b := append([]byte(nil), orig...)
		copy(b[int(ser.off)+c.at:], huge)
		r, err := newIndexReader(fixIndexCRCs(b), m.Version, nil)
		if err != nil {
			t.Fatal(err)
		}
		var chks []ChunkMeta
		_, err = r.series(context.Background(), ser.off, nil, &chks)
		var ce *CorruptionError
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), c.what) {
			t.Fatalf("%s 2^32-1: %v, want *CorruptionError", c.what, err)
		}
	}
}

// TestIndexInvalidStatistics: a chunk meta whose statistics decode but no
// writer makes (a float chunk of no sample), behind valid checksums, is
// corruption; the series must not be returned without that chunk.
func TestIndexInvalidStatistics(t *testing.T) {
	parent := t.TempDir()
	data := []SeriesData{{Labels: labels.FromStrings("__name__", "a"),
		Chunks: []ChunkMeta{{Chunk: newXOR(t, []sample{{T: testT0, V: 1.5}})}}}}
	m, err := WriteSeriesWithOptions(parent, Meta{}, data, WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b := readIndexFile(t, filepath.Join(parent, m.ID))
	ser := openT(t, filepath.Join(parent, m.ID)).index.toc[secSeries]
	// The statistics of the only chunk: float, 1 sample, min 1.5, ...
	st := bytes.Index(b[ser.off:ser.end()], binary.BigEndian.AppendUint64([]byte{byte(StatsFloat), 1}, math.Float64bits(1.5)))
	if st < 0 {
		t.Fatal("statistics not found")
	}
	b[int(ser.off)+st+1] = 0 // a count of 0
	r, err := newIndexReader(fixIndexCRCs(b), m.Version, nil)
	if err != nil {
		t.Fatal(err)
	}
	var chks []ChunkMeta
	_, err = r.series(context.Background(), ser.off, nil, &chks)
	var ce *CorruptionError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "invalid statistics") {
		t.Fatalf("a float chunk of no sample: %v (chunks %v), want *CorruptionError", err, chks)
	}
}

// TestSourcePostingsDamagedInStore: a postings list read by range whose
// stored bytes name one series twice (a delta of 0, written in as many
// bytes as the delta it replaces), or whose count is one short (its last
// ref trailing), is corruption, not a series returned twice or one
// series left out.
func TestSourcePostingsDamagedInStore(t *testing.T) {
	parent := t.TempDir()
	m := writeTestSegmentWith(t, parent, Meta{}, genSeries(4, 30, 1), WriterOptions{Compress: true})
	dir := filepath.Join(parent, m.ID)
	r := openT(t, dir).index
	// The list of every series: its count, first ref and second delta.
	b := readIndexFile(t, dir)
	d := decbuf{b: b[r.allOff:]}
	if n := d.uvarint(); n < 2 {
		t.Fatalf("%d series", n)
	}
	d.uvarint()
	at := len(b) - d.len() // the second delta
	d.uvarint()
	n := len(b) - d.len() - at
	metaJSON, files := segmentFiles(t, dir)
	for _, damage := range []func(b []byte){
		func(b []byte) {
			for i := range n {
				b[at+i] = 0x80 // a delta of 0 in n bytes
			}
			b[at+n-1] = 0
		},
		func(b []byte) { b[r.allOff]-- }, // 30 series: one byte
	} {
		files[indexFilename] = append([]byte(nil), b...)
		damage(files[indexFilename])
		checkSourceCorrupt(t, metaJSON, files)
	}
}

// checkSourceCorrupt opens a segment of files through a Source and selects
// every series: either must fail with a *CorruptionError naming the index.
func checkSourceCorrupt(t *testing.T, metaJSON []byte, files map[string][]byte) {
	t.Helper()
	var got []string
	s, err := OpenSource(context.Background(), "bucket/x", metaJSON, &memSource{files: files}, nil)
	if err == nil { // the list may be read when the segment opens, or by Select
		defer s.Close()
		var it SeriesIterator
		if it, err = s.Select(); err == nil {
			for it.Next() {
				got = append(got, it.Labels().String())
			}
			err = it.Err()
		}
	}
	var ce *CorruptionError
	if !errors.As(err, &ce) || ce.File != indexFilename {
		t.Fatalf("series %q, error %v; want *CorruptionError naming the index", got, err)
	}
}

// TestSourcePostingsErrorInUnionAndIntersection: a postings list that is
// damaged in the stored object (its count one short), read through a
// Source, fails a selection that merges it with another value's list or
// intersects it with another label's: the error is not lost, and the
// selection does not end early as if complete.
func TestSourcePostingsErrorInUnionAndIntersection(t *testing.T) {
	parent := t.TempDir()
	m := writeTestSegmentWith(t, parent, Meta{}, genSeries(6, 30, 1), WriterOptions{Compress: true})
	dir := filepath.Join(parent, m.ID)
	lv := openT(t, dir).index.values["job"]
	metaJSON, files := segmentFiles(t, dir)
	files[indexFilename] = append([]byte(nil), files[indexFilename]...)
	files[indexFilename][lv.offs[0]]-- // fewer than 128 refs: one byte
	s, err := OpenSource(context.Background(), "bucket/x", metaJSON, &memSource{files: files}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, ms := range [][]*labels.Matcher{
		{labels.MustNewMatcher(labels.MatchRegexp, "job", lv.values[0]+"|"+lv.values[1])},
		{labels.MustNewMatcher(labels.MatchRegexp, "job", lv.values[1]+"|"+lv.values[0])},
		{labels.MustNewMatcher(labels.MatchEqual, "job", lv.values[0]), labels.MustNewMatcher(labels.MatchRegexp, "region", ".+")},
		{labels.MustNewMatcher(labels.MatchRegexp, "region", ".+"), labels.MustNewMatcher(labels.MatchEqual, "job", lv.values[0])},
	} {
		it, err := s.Select(ms...)
		n := 0
		if err == nil {
			for it.Next() {
				n++
			}
			err = it.Err()
		}
		var ce *CorruptionError
		if !errors.As(err, &ce) || ce.File != indexFilename {
			t.Fatalf("%s: %d series, error %v; want *CorruptionError naming the index", ms, n, err)
		}
	}
}
