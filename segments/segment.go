package segments

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/prometheus/prometheus/tsdb/chunkenc"
)

// Segment is an open, immutable segment. Its index and chunks files are
// mmapped; series entries, postings and chunks are decoded from the mapping
// on demand, so the heap holds only the meta and the postings table.
//
// All methods are safe for concurrent use. Labels and strings returned by a
// Segment are copies and stay valid after Close; chunks returned by
// ReadChunk alias the mapping and must not be used after Close. A reader
// that holds chunks across calls should Acquire the segment first, so that
// Close (and Remove) wait for it.
//
// A Segment read from object storage (OpenSource) reads its Source with
// the context of the view it is read through (WithContext); the views of
// one segment share everything else.
type Segment struct {
	*segment
	// ctx is passed to the Source of a segment opened with OpenSource
	// for every read made through this view; nil reads as
	// context.Background().
	ctx context.Context
}

// segment is what the views of one Segment share.
type segment struct {
	dir   string
	meta  Meta
	files []fileMeta
	size  int64

	index     *indexReader
	indexMap  []byte
	chunkMaps [][]byte // chunks files, by sequence number - 1
	// chunkPages are the paged regions of the chunks files, by sequence
	// number - 1; nil for a file of records back to back (version 1).
	chunkPages []*pagedRegion
	cache      *PageCache // for the pages of a compressed segment
	// src supplies the files of a segment opened with OpenSource, whose
	// chunks files are chunkFiles (and chunkMaps is empty).
	src        Source
	chunkFiles []sourceFile

	mtx     sync.Mutex
	cond    sync.Cond // signals when readers drops to zero
	readers int       // guarded by mtx
	closing bool      // guarded by mtx
	closed  atomic.Bool
}

// Open opens the segment in dir. It verifies meta.json, the size and CRC32C
// of the index and of each of its sections, and the size and header of
// every chunks file; chunk records are verified when read. Damage is
// reported as *CorruptionError; a segment of a newer format as
// ErrUnsupportedVersion.
//
// The pages of a compressed segment (format version 2) are read through a
// small cache of its own; OpenWithCache shares one.
func Open(dir string) (*Segment, error) { return OpenWithCache(dir, nil) }

// OpenWithCache is Open reading compressed pages through cache; nil gives
// the segment a cache of its own of smallPageCacheSize.
func OpenWithCache(dir string, cache *PageCache) (*Segment, error) {
	dir = filepath.Clean(dir)
	mf, metaSize, err := readMetaFile(dir)
	if err != nil {
		return nil, err
	}
	if cache == nil && compressedVersion(mf.Version) {
		cache = NewPageCache(smallPageCacheSize)
	}
	s := &Segment{segment: &segment{dir: dir, meta: mf.Meta, files: mf.Files, size: metaSize, cache: cache}}
	s.cond.L = &s.mtx
	if err := s.open(); err != nil {
		s.unmap()
		return nil, withDir(err, dir)
	}
	return s, nil
}

func (s *Segment) open() error {
	idx := s.files[0]
	b, err := s.mapFile(idx)
	if err != nil {
		return err
	}
	s.indexMap = b
	if s.index, err = newIndexReader(b, s.meta.Version, s.cache); err != nil {
		return err
	}
	s.index.useSeriesCache(s.cache)
	if want, _ := parseCRC(idx.CRC32C); crc32c(b) != want {
		return &CorruptionError{File: indexFilename, Offset: -1,
			Err: fmt.Errorf("index: %w with meta.json (computed %08x, meta %s)", ErrChecksum, crc32c(b), idx.CRC32C)}
	}
	for _, f := range s.files[1:] {
		b, err := s.mapFile(f)
		if err != nil {
			return err
		}
		s.chunkMaps = append(s.chunkMaps, b)
		v, err := checkChunksHeader(b, s.meta.Version)
		if err != nil {
			return &CorruptionError{File: f.Name, Offset: 0, Err: err}
		}
		var pr *pagedRegion
		if v == chunksVersionPaged {
			if pr, err = openPagedRegion(b[chunksHeaderSize:], chunksHeaderSize, s.cache); err != nil {
				return &CorruptionError{File: f.Name, Offset: -1, Err: err}
			}
		}
		s.chunkPages = append(s.chunkPages, pr)
	}
	for _, f := range s.files {
		s.size += f.Size
	}
	return nil
}

// mapFile mmaps one file after checking its size against meta.json.
func (s *Segment) mapFile(fm fileMeta) ([]byte, error) {
	f, err := os.Open(filepath.Join(s.dir, fm.Name))
	if err != nil {
		return nil, &CorruptionError{File: fm.Name, Offset: -1, Err: err}
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() != fm.Size {
		return nil, &CorruptionError{File: fm.Name, Offset: -1,
			Err: fmt.Errorf("size %d, meta.json says %d", st.Size(), fm.Size)}
	}
	if fm.Size == 0 {
		return nil, &CorruptionError{File: fm.Name, Offset: -1, Err: errors.New("empty file")}
	}
	if int64(int(fm.Size)) != fm.Size {
		return nil, fmt.Errorf("map %s: file too large", fm.Name)
	}
	b, err := mmapFile(f, int(fm.Size))
	if err != nil {
		return nil, fmt.Errorf("mmap %s: %w", fm.Name, err)
	}
	return b, nil
}

func (s *Segment) unmap() error {
	var errs []error
	if s.indexMap != nil {
		errs = append(errs, munmap(s.indexMap))
	}
	for _, b := range s.chunkMaps {
		errs = append(errs, munmap(b))
	}
	if s.cache != nil {
		for _, p := range s.chunkPages {
			if p != nil {
				s.cache.drop(p.key, len(p.starts))
			}
		}
		if s.index != nil && s.index.seriesPages != nil {
			s.cache.drop(s.index.seriesPages.key, len(s.index.seriesPages.starts))
		}
		if s.index != nil && s.index.cache != nil {
			s.index.cache.drop(s.index.cacheKey)
		}
	}
	s.index, s.indexMap, s.chunkMaps, s.chunkPages, s.chunkFiles = nil, nil, nil, nil, nil
	return errors.Join(errs...)
}

// WithContext returns a view of s whose reads from its Source (a segment
// opened with OpenSource) stop when ctx is done: the GETs a query makes
// through the view are abandoned when the query is cancelled or times out,
// and its reads fail with ctx's error (not a *CorruptionError). The view
// shares everything else with s, Close and Acquire included; for a segment
// on local disk it reads as s does. As with http.Request.WithContext, s
// itself is not changed.
func (s *Segment) WithContext(ctx context.Context) *Segment {
	return &Segment{segment: s.segment, ctx: ctx}
}

// context is the context of the view's reads.
func (s *Segment) context() context.Context {
	if s.ctx == nil {
		return context.Background()
	}
	return s.ctx
}

// Meta returns the segment's meta. Its Compaction.Sources slice is shared:
// do not modify it.
func (s *Segment) Meta() Meta { return s.meta }

// Dir returns the segment directory.
func (s *Segment) Dir() string { return s.dir }

// Size returns the bytes the segment's files take on disk.
func (s *Segment) Size() int64 { return s.size }

// Acquire registers a reader of s: Close waits until every successful
// Acquire is matched by a Release. It returns ErrClosed once Close has begun.
func (s *Segment) Acquire() error {
	s.mtx.Lock()
	defer s.mtx.Unlock()
	if s.closing {
		return ErrClosed
	}
	s.readers++
	return nil
}

// Release ends a reader registered with Acquire.
func (s *Segment) Release() {
	s.mtx.Lock()
	defer s.mtx.Unlock()
	s.readers--
	if s.readers < 0 {
		panic("segments: Release without Acquire")
	}
	if s.readers == 0 {
		s.cond.Broadcast()
	}
}

// Close waits for the readers registered with Acquire to Release, then
// unmaps the files. Further calls of s's methods return ErrClosed; a second
// Close returns nil.
func (s *Segment) Close() error {
	s.mtx.Lock()
	if s.closing {
		s.mtx.Unlock()
		return nil
	}
	s.closing = true
	for s.readers > 0 {
		s.cond.Wait()
	}
	s.mtx.Unlock()
	s.closed.Store(true)
	if err := s.unmap(); err != nil {
		return fmt.Errorf("close segment %s: %w", s.dir, err)
	}
	return nil
}

// ReadChunk loads the chunk at ref after verifying its CRC32C (and, for a
// compressed segment, its page's when the page is decompressed). The chunk
// is a read-only view of the mmapped file, or of a decompressed page, valid
// until Close. A damaged record or
// a ref that points nowhere returns a *CorruptionError.
func (s *Segment) ReadChunk(ref ChunkRef) (chunkenc.Chunk, error) {
	enc, data, err := s.ReadChunkData(ref)
	if err != nil {
		return nil, err
	}
	return chunkenc.FromData(enc, data)
}

// ReadChunkData is ReadChunk without the chunk: the encoding and the
// chunk's bytes, for readers that decode them themselves and would
// otherwise allocate a chunk per read.
func (s *Segment) ReadChunkData(ref ChunkRef) (chunkenc.Encoding, []byte, error) {
	if s.closed.Load() {
		return 0, nil, ErrClosed
	}
	seq := ref.File()
	if seq == 0 || uint64(seq) > uint64(len(s.files)-1) {
		return 0, nil, &CorruptionError{Dir: s.dir, File: indexFilename, Offset: -1,
			Err: fmt.Errorf("chunk ref %s: no such chunks file", ref)}
	}
	var (
		enc  chunkenc.Encoding
		data []byte
		err  error
	)
	if p := s.chunkPages[seq-1]; p != nil {
		var rec []byte
		if rec, err = p.at(s.context(), uint64(ref.Offset())); err == nil {
			enc, data, err = decodeRecord(rec)
		}
	} else if s.src != nil {
		enc, data, err = readSourceRecord(s.context(), s.chunkFiles[seq-1], uint64(ref.Offset()))
	} else {
		enc, data, err = decodeChunkRecord(s.chunkMaps[seq-1], ref.Offset())
	}
	if se := (*sourceError)(nil); errors.As(err, &se) {
		return 0, nil, fmt.Errorf("segment %s: read %s: %w", s.dir, chunksFileName(seq), se.err)
	}
	if err != nil {
		return 0, nil, &CorruptionError{Dir: s.dir, File: chunksFileName(seq), Offset: int64(ref.Offset()), Err: err}
	}
	return enc, data, nil
}

// Verify reads the whole segment: it checks the CRC32C of every chunks file
// against meta.json, decodes every series, and reads every chunk, checking
// its record CRC, its samples against the chunk meta's time range, and the
// counts against meta.json. It is meant for tools and tests, not for the
// open path.
func (s *Segment) Verify(ctx context.Context) error {
	if s.closed.Load() {
		return ErrClosed
	}
	if err := s.verifyChunkFiles(); err != nil {
		return err
	}
	it, err := s.Select()
	if err != nil {
		return err
	}
	var nSeries, nChunks, nSamples uint64
	var cit chunkenc.Iterator
	for it.Next() {
		if err := ctx.Err(); err != nil {
			return err
		}
		nSeries++
		for _, cm := range it.Chunks() {
			c, err := s.ReadChunk(cm.Ref)
			if err != nil {
				return err
			}
			nChunks++
			cit = c.Iterator(cit)
			n := 0
			for cit.Next() != chunkenc.ValNone {
				if t := cit.AtT(); t < cm.MinTime || t > cm.MaxTime || t < s.meta.MinTime || t > s.meta.MaxTime {
					return &CorruptionError{Dir: s.dir, File: chunksFileName(cm.Ref.File()), Offset: int64(cm.Ref.Offset()),
						Err: fmt.Errorf("series %s: sample at %d outside chunk range %d..%d", it.Labels(), t, cm.MinTime, cm.MaxTime)}
				}
				n++
			}
			if err := cit.Err(); err != nil || n != c.NumSamples() {
				return &CorruptionError{Dir: s.dir, File: chunksFileName(cm.Ref.File()), Offset: int64(cm.Ref.Offset()),
					Err: fmt.Errorf("series %s: decoded %d of %d samples: %v", it.Labels(), n, c.NumSamples(), err)}
			}
			nSamples += uint64(n)
		}
	}
	if err := it.Err(); err != nil {
		return err
	}
	if nSeries != s.meta.NumSeries || nChunks != s.meta.NumChunks || nSamples != s.meta.NumSamples {
		return &CorruptionError{Dir: s.dir, File: metaFilename, Offset: -1,
			Err: fmt.Errorf("counts: found %d series, %d chunks, %d samples; meta.json says %d, %d, %d",
				nSeries, nChunks, nSamples, s.meta.NumSeries, s.meta.NumChunks, s.meta.NumSamples)}
	}
	return nil
}

// verifyChunkFiles checks every chunks file against the CRC32C meta.json
// records for it; a mismatch is a *CorruptionError naming the file.
func (s *Segment) verifyChunkFiles() error {
	for i, f := range s.files[1:] {
		var b []byte
		if s.src != nil {
			var err error
			if b, err = s.chunkFiles[i].slice(s.context(), 0, s.chunkFiles[i].n); err != nil {
				return fmt.Errorf("segment %s: read %s: %w", s.dir, f.Name, err)
			}
		} else {
			b = s.chunkMaps[i]
		}
		if want, _ := parseCRC(f.CRC32C); crc32c(b) != want {
			return &CorruptionError{Dir: s.dir, File: f.Name, Offset: -1,
				Err: fmt.Errorf("chunks file: %w with meta.json", ErrChecksum)}
		}
	}
	return nil
}

// smallPageCacheSize bounds the page cache of a compressed segment opened
// without a shared one.
const smallPageCacheSize = 4 << 20
