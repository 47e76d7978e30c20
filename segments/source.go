package segments

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/prometheus/prometheus/tsdb/chunkenc"
)

// A Source supplies byte ranges of the files of a segment that is not on
// local disk: a segment in object storage, read by ranged requests through
// a cache (segments/remote). Files are named as in meta.json ("index",
// "chunks/000001"). It is safe for concurrent use.
//
// A Source's errors are returned as they are (an unreachable bucket is not
// corruption). The bytes it returns are checked by the segment against the
// format's checksums; when one fails, the segment calls Forget for the
// range and reads it once more, so that a range damaged on its way or in
// the Source's cache is fetched again, and only damage in the stored
// object itself is reported, as a *CorruptionError.
//
// ctx is the context of the read (of the query, through
// Segment.WithContext): once it is done, a Source stops what it fetches
// for that read and returns ctx's error.
type Source interface {
	// ReadRange returns length bytes of file from off. The caller may keep
	// them.
	ReadRange(ctx context.Context, file string, off, length int64) ([]byte, error)
	// Forget drops what the Source keeps of the range.
	Forget(file string, off, length int64)
	// Prefetch fetches the ranges of file (each [off, end)) that the
	// Source does not hold yet, in as few requests as it can, before they
	// are read one by one.
	Prefetch(ctx context.Context, file string, ranges [][2]int64) error
}

// fileBytes is the bytes of a segment file, or of a region of one:
// mapped memory, or ranges read from a Source.
type fileBytes interface {
	size() uint64
	// slice returns the bytes [off, end); the caller checks the bounds.
	// ctx is passed to a Source.
	slice(ctx context.Context, off, end uint64) ([]byte, error)
	// forget reports whether bytes of [off, end) may read differently
	// when read again (they came through a Source, which was told to
	// drop them).
	forget(off, end uint64) bool
}

// memBytes is a file held in memory (mmapped).
type memBytes []byte

func (b memBytes) size() uint64 { return uint64(len(b)) }
func (b memBytes) slice(_ context.Context, off, end uint64) ([]byte, error) {
	return b[off:end], nil
}
func (memBytes) forget(uint64, uint64) bool { return false }

// sourceFile is a file read by range from a Source; base is where the
// region starts in the file (the paged region of a chunks file starts
// after its header).
type sourceFile struct {
	src  Source
	name string
	base uint64
	n    uint64
}

func (f sourceFile) size() uint64 { return f.n }

func (f sourceFile) slice(ctx context.Context, off, end uint64) ([]byte, error) {
	if end < off || end > f.n {
		return nil, fmt.Errorf("range %d..%d outside %s of %d bytes", off, end, f.name, f.n)
	}
	return f.src.ReadRange(ctx, f.name, int64(f.base+off), int64(end-off))
}

func (f sourceFile) forget(off, end uint64) bool {
	f.src.Forget(f.name, int64(f.base+off), int64(end-off))
	return true
}

func (f sourceFile) region(off uint64) sourceFile { return f.sub(off, f.n-off) }

// sub is n bytes of f from off.
func (f sourceFile) sub(off, n uint64) sourceFile {
	return sourceFile{src: f.src, name: f.name, base: f.base + off, n: n}
}

// readChecked reads [off, end) of f and checks it; when the check fails
// on bytes that may read differently a second time (a Source's), it tells
// f to forget them and reads once more.
func readChecked(ctx context.Context, f fileBytes, off, end uint64, check func([]byte) error) ([]byte, error) {
	for try := 0; ; try++ {
		b, err := f.slice(ctx, off, end)
		if err != nil {
			return nil, &sourceError{err}
		}
		if err = check(b); err == nil {
			return b, nil
		}
		if try > 0 || !f.forget(off, end) {
			return nil, err
		}
	}
}

// sourceError is an error of a Source: not corruption, passed on as it is.
type sourceError struct{ err error }

func (e *sourceError) Error() string { return e.err.Error() }
func (e *sourceError) Unwrap() error { return e.err }

// recordGuess is the bytes read at a chunk record's offset in a plain
// chunks file held by a Source before its length is known: most chunks
// fit (120 samples of XOR take 100 to 300 bytes).
const recordGuess = 1 << 10

// readSourceRecord reads the chunk record at off of a plain chunks file
// held by a Source. A record that fails its checks, its length included,
// is read once more, its length too, after the Source is told to forget
// the bytes read: a length damaged on its way must not decide the range
// read again.
func readSourceRecord(ctx context.Context, f fileBytes, off uint64) (chunkenc.Encoding, []byte, error) {
	if off < chunksHeaderSize || off >= f.size() {
		return 0, nil, fmt.Errorf("chunk offset %d out of bounds (file size %d)", off, f.size())
	}
	for try := 0; ; try++ {
		enc, data, end, err := readSourceRecordOnce(ctx, f, off)
		if err == nil || errors.As(err, new(*sourceError)) || try > 0 || !f.forget(off, end) {
			return enc, data, err
		}
	}
}

// readSourceRecordOnce reads the record at off, whose length it reads
// first; end is where the bytes it read end.
func readSourceRecordOnce(ctx context.Context, f fileBytes, off uint64) (enc chunkenc.Encoding, data []byte, end uint64, err error) {
	end = min(off+recordGuess, f.size())
	b, err := f.slice(ctx, off, end)
	if err != nil {
		return 0, nil, end, &sourceError{err}
	}
	n, k := binary.Uvarint(b)
	if k <= 0 {
		return 0, nil, end, errors.New("read chunk length: bad uvarint")
	}
	need := uint64(k) + 1 + n + 4
	if n > f.size() || need > f.size()-off {
		return 0, nil, end, fmt.Errorf("chunk length %d exceeds file", n)
	}
	if need > uint64(len(b)) {
		// Longer than the first read (few are).
		end = off + need
		if b, err = f.slice(ctx, off, end); err != nil {
			return 0, nil, end, &sourceError{err}
		}
	}
	enc, data, err = decodeRecord(b[:need])
	return enc, data, end, err
}

// OpenSource opens the segment whose meta.json is metaJSON and whose other
// files src supplies; name stands for its directory in errors (Dir). It
// checks what Open checks: meta.json, the index (read whole, with its
// CRC32C), and the header (and page table) of every chunks file, read by
// range; chunk records and pages are read by range when a query reads
// them (through the view WithContext gives it), and checked then. ctx is
// the context of the reads that open it. Close does not remove anything.
func OpenSource(ctx context.Context, name string, metaJSON []byte, src Source, cache *PageCache) (*Segment, error) {
	mf, err := parseMetaFile(name, metaJSON)
	if err != nil {
		return nil, err
	}
	if cache == nil && compressedVersion(mf.Version) {
		cache = NewPageCache(smallPageCacheSize)
	}
	s := &Segment{segment: &segment{dir: name, meta: mf.Meta, files: mf.Files, size: int64(len(metaJSON)), cache: cache, src: src}, ctx: ctx}
	s.cond.L = &s.mtx
	if err := s.openSource(ctx); err != nil {
		s.unmap()
		return nil, withDir(err, name)
	}
	s.ctx = nil // the opener's context is not the readers'
	return s, nil
}

func (s *Segment) openSource(ctx context.Context) error {
	for _, f := range s.files {
		if f.Size <= 0 {
			return &CorruptionError{File: f.Name, Offset: -1, Err: errors.New("empty file")}
		}
		s.size += f.Size
	}
	idx := s.files[0]
	if compressedVersion(s.meta.Version) {
		// The series section is read by page, when queries select series.
		var err error
		if s.index, err = newIndexReaderLazy(ctx, sourceFile{src: s.src, name: idx.Name, n: uint64(idx.Size)}, s.meta.Version, s.cache); err != nil {
			return err
		}
	} else {
		// Every section is read anyway to check it: the whole index at once.
		want, _ := parseCRC(idx.CRC32C)
		b, err := readChecked(ctx, sourceFile{src: s.src, name: idx.Name, n: uint64(idx.Size)}, 0, uint64(idx.Size), func(b []byte) error {
			if got := crc32c(b); got != want {
				return &CorruptionError{File: indexFilename, Offset: -1,
					Err: fmt.Errorf("index: %w with meta.json (computed %08x, meta %s)", ErrChecksum, got, idx.CRC32C)}
			}
			return nil
		})
		if err != nil {
			return unwrapSource(err)
		}
		if s.index, err = newIndexReader(b, s.meta.Version, s.cache); err != nil {
			return err
		}
	}
	s.index.useSeriesCache(s.cache)
	for _, f := range s.files[1:] {
		sf := sourceFile{src: s.src, name: f.Name, n: uint64(f.Size)}
		if compressedVersion(s.meta.Version) {
			// The header and the page table's trailer, fetched together.
			if err := s.src.Prefetch(ctx, f.Name, [][2]int64{{0, min(chunksHeaderSize, f.Size)}, {max(f.Size-pageTrailerSize, 0), f.Size}}); err != nil {
				return err
			}
		}
		var v byte
		if _, err := readChecked(ctx, sf, 0, min(chunksHeaderSize, sf.n), func(b []byte) error {
			var err error
			v, err = checkChunksHeader(b, s.meta.Version)
			return err
		}); err != nil {
			if se := (*sourceError)(nil); errors.As(err, &se) {
				return se.err
			}
			return &CorruptionError{File: f.Name, Offset: 0, Err: err}
		}
		s.chunkFiles = append(s.chunkFiles, sf)
		var pr *pagedRegion
		if v == chunksVersionPaged {
			var err error
			if pr, err = openPagedRegionFrom(ctx, sf.region(chunksHeaderSize), chunksHeaderSize, s.cache); err != nil {
				if se := (*sourceError)(nil); errors.As(err, &se) {
					return se.err
				}
				return &CorruptionError{File: f.Name, Offset: -1, Err: err}
			}
		}
		s.chunkPages = append(s.chunkPages, pr)
	}
	return nil
}

func unwrapSource(err error) error {
	if se := (*sourceError)(nil); errors.As(err, &se) {
		return se.err
	}
	return err
}

// FromSource reports whether the segment was opened with OpenSource: its
// chunks are read by range, and worth a Prefetch.
func (s *Segment) FromSource() bool { return s.src != nil }

// IndexSize returns the bytes of its index an open segment holds in
// memory: the whole file, or, for a compressed segment opened with
// OpenSource, all but the series entries.
func (s *Segment) IndexSize() int64 {
	if s.src != nil {
		if r := s.index; r != nil {
			return r.heldBytes()
		}
	}
	return s.files[0].Size
}

// Prefetch tells a segment opened with OpenSource that the chunks at refs
// are about to be read: it asks its Source for the ranges that hold them
// (their pages, in a compressed segment) at once, so that nearby ones are
// fetched in one request. For a segment on local disk it does nothing.
func (s *Segment) Prefetch(refs []ChunkRef) error {
	if s.src == nil || len(refs) == 0 {
		return nil
	}
	if s.closed.Load() {
		return ErrClosed
	}
	byFile := map[uint32][][2]int64{}
	for _, ref := range refs {
		seq := ref.File()
		if seq == 0 || uint64(seq) > uint64(len(s.chunkFiles)) {
			continue // ReadChunk reports it
		}
		f := s.chunkFiles[seq-1]
		off := uint64(ref.Offset())
		if p := s.chunkPages[seq-1]; p != nil {
			i, ok := p.pageIndex(off)
			if !ok || p.cached(i) {
				continue
			}
			start, end := p.pageRange(i)
			byFile[seq] = append(byFile[seq], [2]int64{int64(start + chunksHeaderSize), int64(end + chunksHeaderSize)})
			continue
		}
		if off < chunksHeaderSize || off >= f.n {
			continue
		}
		byFile[seq] = append(byFile[seq], [2]int64{int64(off), int64(min(off+recordGuess, f.n))})
	}
	for seq, rs := range byFile {
		slices.SortFunc(rs, func(a, b [2]int64) int { return int(a[0] - b[0]) })
		rs = slices.Compact(rs)
		if err := s.src.Prefetch(s.context(), chunksFileName(seq), rs); err != nil {
			return err
		}
	}
	return nil
}

// PrefetchAll asks the Source of a segment opened with OpenSource for
// every chunks file whole (a reader of all its chunks, such as a rewrite,
// then fetches them in a few large GETs instead of one per range). For a
// segment on local disk it does nothing.
func (s *Segment) PrefetchAll() error {
	if s.src == nil {
		return nil
	}
	if s.closed.Load() {
		return ErrClosed
	}
	for _, f := range s.chunkFiles {
		if err := s.src.Prefetch(s.context(), f.name, [][2]int64{{0, int64(f.n)}}); err != nil {
			return err
		}
	}
	return nil
}

// parseMetaFile parses and verifies the bytes of a meta.json; name stands
// for the segment's directory in errors.
func parseMetaFile(name string, b []byte) (*metaFile, error) {
	var m metaFile
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&m); err != nil {
		return nil, &CorruptionError{Dir: name, File: metaFilename, Offset: dec.InputOffset(), Err: err}
	}
	if dec.More() {
		return nil, &CorruptionError{Dir: name, File: metaFilename, Offset: dec.InputOffset(), Err: errors.New("trailing data")}
	}
	sum, ok := rawChecksum(b, m.Checksum)
	if !ok || formatCRC(sum) != m.Checksum {
		return nil, &CorruptionError{Dir: name, File: metaFilename, Offset: -1,
			Err: fmt.Errorf("meta: %w (stored %q, computed %08x)", ErrChecksum, m.Checksum, sum)}
	}
	// Checked after the checksum, so a damaged version digit is
	// corruption, while a segment from a newer Strata is refused, not
	// quarantined.
	if m.Version > FormatVersion {
		return nil, fmt.Errorf("segment %s: version %d: %w", name, m.Version, ErrUnsupportedVersion)
	}
	if m.Version < FormatVersionPlain {
		return nil, &CorruptionError{Dir: name, File: metaFilename, Offset: -1, Err: fmt.Errorf("invalid version %d", m.Version)}
	}
	if err := m.validate(); err != nil {
		return nil, &CorruptionError{Dir: name, File: metaFilename, Offset: -1, Err: err}
	}
	return &m, nil
}

// prefetchSeries reads the postings p of a segment opened with OpenSource
// whose series entries are read by page, asks the Source for the pages
// that hold them at once, and returns p's refs.
func (s *Segment) prefetchSeries(p postings) ([]uint64, error) {
	var refs []uint64
	for p.Next() {
		refs = append(refs, p.At())
	}
	if err := p.Err(); err != nil {
		return nil, withDir(err, s.dir)
	}
	sp := s.index.seriesPages
	base := s.index.toc[secSeries].off // where the paged region starts in the file
	var ranges [][2]int64
	last := -1
	for _, ref := range refs {
		i, ok := sp.pageIndex(ref)
		if !ok || i == last || sp.cached(i) {
			continue // a ref outside the pages is reported when read
		}
		last = i
		start, end := sp.pageRange(i)
		ranges = append(ranges, [2]int64{int64(base + start), int64(base + end)})
	}
	if len(ranges) > 0 {
		if err := s.src.Prefetch(s.context(), indexFilename, ranges); err != nil {
			return nil, fmt.Errorf("segment %s: read series entries: %w", s.dir, err)
		}
	}
	return refs, nil
}

// slicePostings iterates refs held in memory.
type slicePostings struct {
	refs []uint64
	i    int
}

func (p *slicePostings) Next() bool {
	p.i++
	return p.i < len(p.refs)
}

func (p *slicePostings) Seek(v uint64) bool {
	if p.i >= 0 && p.i < len(p.refs) && p.refs[p.i] >= v {
		return true
	}
	p.i = max(p.i, 0)
	j, _ := slices.BinarySearch(p.refs[p.i:], v)
	p.i += j
	return p.i < len(p.refs)
}

func (p *slicePostings) At() uint64 { return p.refs[p.i] }
func (p *slicePostings) Err() error { return nil }
