package segments

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
)

// WriterOptions configure a Writer.
type WriterOptions struct {
	// MaxChunkFileSize is the size in bytes after which the writer starts a
	// new chunks file. 0 means DefaultMaxChunkFileSize; at most 4 GiB. A
	// single chunk larger than this still gets a file of its own.
	MaxChunkFileSize int64
	// Compress writes the segment in format version 2: chunk records and
	// series entries in pages compressed with zstd, read through a
	// PageCache. False writes version 1, which reads chunks straight from
	// the mapped files.
	Compress bool
	// NoStats writes no chunk statistics (format version 1 or 2, as
	// written before statistics existed); false writes ChunkStats with
	// every raw chunk (version 6 or 7, with hour runs and first values).
	NoStats bool
	// NoRuns writes statistics without hour runs and first values (format
	// version 3 or 4, as written before they existed).
	NoRuns bool
}

// DefaultWriterOptions returns the options NewWriter uses.
func DefaultWriterOptions() WriterOptions {
	return WriterOptions{MaxChunkFileSize: DefaultMaxChunkFileSize}
}

// Validate reports whether o is usable.
func (o WriterOptions) Validate() error {
	if o.MaxChunkFileSize < 0 || o.MaxChunkFileSize > maxChunkFileOffset {
		return fmt.Errorf("max chunk file size %d out of range [0, %d]", o.MaxChunkFileSize, int64(maxChunkFileOffset))
	}
	return nil
}

// Writer writes one segment. Series are added in label order with
// AddSeries; Close makes the segment visible atomically, Abort discards it.
// Until Close returns, nothing is visible under the segment's final name:
// everything is written into <parent>/<id>.tmp-<random>, which OpenAll
// removes if the process dies first.
//
// Chunk data is written to disk as series are added; the label sets and
// chunk metas are kept in memory until Close writes the index. A Writer is
// not safe for concurrent use.
type Writer struct {
	parent string
	dir    string // the temporary directory
	meta   Meta
	opts   WriterOptions
	// fixedTimes is set when the caller gave the time range; chunks must
	// then lie within it.
	fixedTimes bool

	chunks   *fileWriter   // current chunks file
	pages    *pagedWriter  // pages of the current chunks file, when compressing
	enc      *zstd.Encoder // nil unless compressing
	chunkSeq uint32
	files    []fileMeta // finished chunks files
	rec      []byte     // scratch for one chunk record
	statsPts []xorPoint // computeStats' buffer
	run      runState   // the hour run of the series being added
	// rawChunks counts the raw chunks written; a segment without any is
	// written as version 1 or 2 even without NoStats, since only raw chunk
	// metas carry statistics.
	rawChunks int

	// Index state, with label strings as temporary symbol ids (insertion
	// order) that Close maps to symbol offsets.
	symbols    map[string]uint32
	symStrings []string
	lblIDs     []uint32 // name, value pairs of every series, flat
	chkMetas   encbuf   // encoded chunk metas of every series, flat
	series     []pendingSeries
	postings   map[uint64][]uint32 // nameID<<32|valueID -> series indexes
	histNames  map[string]struct{} // metric names of series with histogram chunks
	prev       labels.Labels

	mint, maxt int64
	numSamples uint64
	numChunks  uint64

	err  error // sticky I/O error
	done bool
}

type pendingSeries struct {
	lblEnd int // end of this series' pairs in lblIDs
	chkEnd int // end of this series' metas in chkMetas
}

// NewWriter starts a segment under parent with DefaultWriterOptions.
//
// meta.ID is generated with NewID when empty. When meta.MinTime and
// meta.MaxTime are both zero they are computed from the data; otherwise
// every chunk must lie within them. The counts are always computed from the
// data, Version is set to FormatVersion, and Compaction defaults to level 1
// with the segment itself as the only source.
func NewWriter(parent string, meta Meta) (*Writer, error) {
	return NewWriterWithOptions(parent, meta, DefaultWriterOptions())
}

// NewWriterWithOptions is NewWriter with explicit options.
func NewWriterWithOptions(parent string, meta Meta, opts WriterOptions) (*Writer, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if opts.MaxChunkFileSize == 0 {
		opts.MaxChunkFileSize = DefaultMaxChunkFileSize
	}
	if meta.ID == "" {
		meta.ID = NewID(time.Now())
	}
	if err := validateID(meta.ID); err != nil {
		return nil, err
	}
	if meta.MinTime > meta.MaxTime {
		return nil, fmt.Errorf("new segment %s: min time %d after max time %d", meta.ID, meta.MinTime, meta.MaxTime)
	}
	if meta.Resolution < 0 {
		return nil, fmt.Errorf("new segment %s: negative resolution %d", meta.ID, meta.Resolution)
	}
	if _, err := os.Lstat(filepath.Join(parent, meta.ID)); err == nil {
		return nil, fmt.Errorf("new segment %s: %w", meta.ID, os.ErrExist)
	}
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, fmt.Errorf("new segment %s: %w", meta.ID, err)
	}
	dir, err := os.MkdirTemp(parent, meta.ID+tmpInfix+"*")
	if err != nil {
		return nil, fmt.Errorf("new segment %s: %w", meta.ID, err)
	}
	if err := os.Chmod(dir, 0o755); err != nil { // MkdirTemp makes it 0700.
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("new segment %s: %w", meta.ID, err)
	}
	w := &Writer{
		parent:     parent,
		dir:        dir,
		meta:       meta,
		opts:       opts,
		fixedTimes: meta.MinTime != 0 || meta.MaxTime != 0,
		symbols:    map[string]uint32{},
		postings:   map[uint64][]uint32{},
		histNames:  map[string]struct{}{},
		mint:       math.MaxInt64,
		maxt:       math.MinInt64,
	}
	if opts.Compress {
		if w.enc, err = newZstdEncoder(); err != nil {
			_ = os.RemoveAll(dir)
			return nil, fmt.Errorf("new segment %s: %w", meta.ID, err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, chunksDirname), 0o755); err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("new segment %s: %w", meta.ID, err)
	}
	if err := w.cutChunksFile(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("new segment %s: %w", meta.ID, err)
	}
	return w, nil
}

// ID returns the ID of the segment being written.
func (w *Writer) ID() string { return w.meta.ID }

// AddSeries adds a series and its chunks. lset must sort after the label set
// of the previous call (labels.Compare), must not be empty, and must not
// hold empty names or values. chunks must be non-empty XOR chunks with at
// least one sample each, sorted by (Kind, MinTime), and chunks of one kind
// must not overlap in time. ChunkMeta.MinTime and MaxTime are computed from
// the chunk when both are zero.
//
// A validation error (wrapping ErrOutOfOrder for ordering problems) leaves
// the writer usable; an I/O error is returned again by every later call.
// The chunk bytes are copied to disk before AddSeries returns.
func (w *Writer) AddSeries(lset labels.Labels, chunks []ChunkMeta) error {
	if w.done {
		return ErrClosed
	}
	if w.err != nil {
		return w.err
	}
	if err := validateLabels(lset); err != nil {
		return fmt.Errorf("add series %s: %w", lset, err)
	}
	if len(w.series) > 0 && labels.Compare(w.prev, lset) >= 0 {
		return fmt.Errorf("add series %s after %s: %w", lset, w.prev, ErrOutOfOrder)
	}
	if len(chunks) == 0 {
		return fmt.Errorf("add series %s: no chunks", lset)
	}
	// Validate everything before changing any state.
	times := make([][2]int64, len(chunks))
	for i := range chunks {
		mint, maxt, err := w.checkChunk(&chunks[i])
		if err != nil {
			return fmt.Errorf("add series %s: chunk %d: %w", lset, i, err)
		}
		times[i] = [2]int64{mint, maxt}
		if i > 0 {
			pk, pt := chunks[i-1].Kind, times[i-1]
			if chunks[i].Kind < pk || chunks[i].Kind == pk && mint <= pt[1] {
				return fmt.Errorf("add series %s: chunk %d (%s, %d..%d) after (%s, %d..%d): %w",
					lset, i, chunks[i].Kind, mint, maxt, pk, pt[0], pt[1], ErrOutOfOrder)
			}
		}
	}

	// Chunk records first: their refs go into the index entry.
	e := &w.chkMetas
	e.putUvarint(uint64(len(chunks)))
	var prevMint int64
	var prevRef ChunkRef
	w.run = runState{}
	for i := range chunks {
		ref, err := w.writeChunk(chunks[i].Chunk)
		if err != nil {
			w.err = fmt.Errorf("add series %s: %w", lset, err)
			return w.err
		}
		mint, maxt := times[i][0], times[i][1]
		e.putByte(byte(chunks[i].Kind))
		if i == 0 {
			e.putVarint(mint)
			e.putUvarint(uint64(ref))
		} else {
			e.putVarint(mint - prevMint)
			e.putUvarint(uint64(ref - prevRef))
		}
		e.putUvarint(uint64(maxt - mint))
		if chunks[i].Kind == KindRaw && !w.opts.NoStats {
			var st ChunkStats
			var run *runState
			if w.runs() {
				run = &w.run
			}
			st, w.statsPts = computeStats(chunks[i].Chunk, w.statsPts, run)
			e.putStats(st, run != nil, run != nil)
			w.rawChunks++
		}
		prevMint, prevRef = mint, ref
		w.mint, w.maxt = min(w.mint, mint), max(w.maxt, maxt)
		w.numSamples += uint64(chunks[i].Chunk.NumSamples())
		if chunks[i].Chunk.Encoding() != chunkenc.EncXOR {
			w.histNames[lset.Get(labels.MetricName)] = struct{}{}
		}
	}
	w.numChunks += uint64(len(chunks))

	idx := uint32(len(w.series))
	lset.Range(func(l labels.Label) {
		n, v := w.symbol(l.Name), w.symbol(l.Value)
		w.lblIDs = append(w.lblIDs, n, v)
		k := uint64(n)<<32 | uint64(v)
		w.postings[k] = append(w.postings[k], idx)
	})
	w.series = append(w.series, pendingSeries{lblEnd: len(w.lblIDs), chkEnd: len(e.b)})
	w.prev = lset.Copy()
	return nil
}

// checkChunk validates one chunk and returns its time range.
func (w *Writer) checkChunk(c *ChunkMeta) (mint, maxt int64, err error) {
	if c.Chunk == nil {
		return 0, 0, errors.New("nil chunk")
	}
	if !c.Kind.Valid() {
		return 0, 0, fmt.Errorf("invalid kind %d", c.Kind)
	}
	e := c.Chunk.Encoding()
	if !supportedEncoding(e) {
		return 0, 0, fmt.Errorf("unsupported encoding %s", e)
	}
	if e != chunkenc.EncXOR && c.Kind != KindRaw {
		return 0, 0, fmt.Errorf("%s chunk of kind %s: rollup chunks are XOR", e, c.Kind)
	}
	if len(c.Chunk.Bytes()) < minChunkSize(e) || c.Chunk.NumSamples() == 0 {
		return 0, 0, errors.New("chunk has no samples")
	}
	mint, maxt = c.MinTime, c.MaxTime
	if mint == 0 && maxt == 0 {
		if mint, maxt, err = chunkTimes(c.Chunk); err != nil {
			return 0, 0, err
		}
	}
	if mint > maxt {
		return 0, 0, fmt.Errorf("min time %d after max time %d", mint, maxt)
	}
	if w.fixedTimes && (mint < w.meta.MinTime || maxt > w.meta.MaxTime) {
		return 0, 0, fmt.Errorf("time range %d..%d outside segment range %d..%d", mint, maxt, w.meta.MinTime, w.meta.MaxTime)
	}
	return mint, maxt, nil
}

func validateLabels(lset labels.Labels) error {
	if lset.IsEmpty() {
		return errors.New("empty label set")
	}
	var err error
	prev := ""
	first := true
	lset.Range(func(l labels.Label) {
		switch {
		case err != nil:
		case l.Name == "":
			err = errors.New("empty label name")
		case l.Value == "":
			err = fmt.Errorf("label %q has an empty value", l.Name)
		case !first && l.Name <= prev:
			err = fmt.Errorf("label names not sorted or duplicate at %q", l.Name)
		}
		prev, first = l.Name, false
	})
	return err
}

func (w *Writer) symbol(s string) uint32 {
	if id, ok := w.symbols[s]; ok {
		return id
	}
	s = strings.Clone(s)
	id := uint32(len(w.symStrings))
	w.symbols[s] = id
	w.symStrings = append(w.symStrings, s)
	return id
}

// writeChunk appends c's record to the current chunks file, cutting a new
// file when it would grow past MaxChunkFileSize.
func (w *Writer) writeChunk(c chunkenc.Chunk) (ChunkRef, error) {
	w.rec = appendChunkRecord(w.rec[:0], c.Encoding(), c.Bytes())
	n := uint64(len(w.rec))
	if w.pages != nil {
		return w.writePagedChunk()
	}
	if w.chunks.pos > chunksHeaderSize && w.chunks.pos+n > uint64(w.opts.MaxChunkFileSize) {
		if err := w.cutChunksFile(); err != nil {
			return 0, err
		}
	}
	if w.chunks.pos+n > maxChunkFileOffset {
		return 0, fmt.Errorf("chunk record of %d bytes does not fit a chunks file", n)
	}
	ref := newChunkRef(w.chunkSeq, uint32(w.chunks.pos))
	return ref, w.chunks.write(w.rec)
}

// writePagedChunk adds w.rec to the current page, cutting a new chunks
// file when the file's stored bytes could grow past MaxChunkFileSize or its
// logical offsets past what a ChunkRef holds.
func (w *Writer) writePagedChunk() (ChunkRef, error) {
	n := uint64(len(w.rec))
	stored := w.chunks.pos + uint64(w.pages.pending()) // at most, before compression
	if w.pages.logical > chunksHeaderSize && (stored+n > uint64(w.opts.MaxChunkFileSize) || w.pages.logical+n > maxChunkFileOffset) {
		if err := w.cutChunksFile(); err != nil {
			return 0, err
		}
	}
	if w.pages.logical+n > maxChunkFileOffset {
		return 0, fmt.Errorf("chunk record of %d bytes does not fit a chunks file", n)
	}
	off, err := w.pages.add(w.rec)
	return newChunkRef(w.chunkSeq, uint32(off)), err
}

// finishChunksFile writes what is left of the current chunks file and
// closes it.
func (w *Writer) finishChunksFile() error {
	fw := w.chunks
	w.chunks = nil
	if w.pages != nil {
		if err := w.pages.finish(); err != nil {
			fw.abort()
			return err
		}
		w.pages = nil
	}
	fm, err := fw.finish()
	if err != nil {
		return err
	}
	w.files = append(w.files, fm)
	return nil
}

func (w *Writer) cutChunksFile() error {
	if w.chunks != nil {
		if err := w.finishChunksFile(); err != nil {
			return err
		}
	}
	w.chunkSeq++
	name := chunksFileName(w.chunkSeq)
	fw, err := createFileWriter(filepath.Join(w.dir, name), name)
	if err != nil {
		return err
	}
	w.chunks = fw
	if w.enc == nil {
		return fw.write(chunksHeader())
	}
	w.pages = newPagedWriter(fw.write, w.enc, chunksHeaderSize)
	return fw.write(chunksHeaderVersion(chunksVersionPaged))
}

// Close writes the index and meta.json, fsyncs every file and directory,
// renames the segment into place and fsyncs the parent. It returns the final
// meta. After an error nothing is left on disk. The Writer cannot be used
// after Close.
func (w *Writer) Close() (Meta, error) {
	if w.done {
		return Meta{}, ErrClosed
	}
	w.done = true
	meta, err := w.finish()
	if w.enc != nil {
		_ = w.enc.Close()
	}
	if err != nil {
		w.cleanup()
		return Meta{}, fmt.Errorf("write segment %s: %w", w.meta.ID, err)
	}
	return meta, nil
}

func (w *Writer) finish() (Meta, error) {
	if w.err != nil {
		return Meta{}, w.err
	}
	if err := w.finishChunksFile(); err != nil {
		return Meta{}, err
	}
	ifm, err := w.writeIndex()
	if err != nil {
		return Meta{}, err
	}

	m := w.meta
	m.Version = w.formatVersion()
	m.NumSeries = uint64(len(w.series))
	m.NumChunks = w.numChunks
	m.NumSamples = w.numSamples
	if !w.fixedTimes && len(w.series) > 0 {
		m.MinTime, m.MaxTime = w.mint, w.maxt
	}
	if m.Compaction.Level == 0 {
		m.Compaction.Level = 1
	}
	m.HistogramNames = slices.Sorted(maps.Keys(w.histNames))
	if len(m.Compaction.Sources) == 0 {
		m.Compaction.Sources = []string{m.ID}
	} else {
		m.Compaction.Sources = slices.Clone(m.Compaction.Sources)
	}
	mf := metaFile{Meta: m, Files: append([]fileMeta{ifm}, w.files...)}
	if err := writeMetaFile(filepath.Join(w.dir, metaFilename), &mf); err != nil {
		return Meta{}, err
	}
	if err := syncDir(filepath.Join(w.dir, chunksDirname)); err != nil {
		return Meta{}, err
	}
	if err := syncDir(w.dir); err != nil {
		return Meta{}, err
	}
	final := filepath.Join(w.parent, m.ID)
	if _, err := os.Lstat(final); err == nil {
		return Meta{}, fmt.Errorf("rename into place: %w", os.ErrExist)
	}
	if err := os.Rename(w.dir, final); err != nil {
		return Meta{}, err
	}
	w.dir = final
	if err := syncDir(w.parent); err != nil {
		// The segment is in place but its rename may not be durable; keep
		// it rather than remove a complete segment.
		return m, err
	}
	return m, nil
}

// runs reports whether the segment's chunk statistics carry hour runs
// and first values (format version 6 or 7).
func (w *Writer) runs() bool { return !w.opts.NoStats && !w.opts.NoRuns }

// formatVersion is the version of the segment being written.
func (w *Writer) formatVersion() int {
	stats := w.rawChunks > 0
	switch {
	case w.enc != nil && stats && w.runs():
		return FormatVersionCompressedStatsFirst
	case w.enc != nil && stats:
		return FormatVersionCompressedStats
	case w.enc != nil:
		return FormatVersionCompressed
	case stats && w.runs():
		return FormatVersionStatsFirst
	case stats:
		return FormatVersionStats
	}
	return FormatVersionPlain
}

func writeMetaFile(path string, mf *metaFile) error {
	b, err := mf.marshal()
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", metaFilename, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync %s: %w", metaFilename, err)
	}
	return f.Close()
}

// Abort discards everything written. It is a no-op after Close.
func (w *Writer) Abort() error {
	if w.done {
		return nil
	}
	w.done = true
	return w.cleanup()
}

func (w *Writer) cleanup() error {
	if w.enc != nil {
		_ = w.enc.Close()
	}
	if w.chunks != nil {
		w.chunks.abort()
		w.chunks = nil
	}
	if filepath.Base(w.dir) == w.meta.ID {
		return nil // Renamed into place: the segment is complete.
	}
	if err := os.RemoveAll(w.dir); err != nil {
		return fmt.Errorf("abort segment %s: %w", w.meta.ID, err)
	}
	return nil
}

// SeriesData is one series for WriteSeries.
type SeriesData struct {
	Labels labels.Labels
	// Chunks with Chunk set, in any order.
	Chunks []ChunkMeta
}

// WriteSeries writes series as one segment under parent and returns its
// meta. It sorts the series by labels and each series' chunks by (Kind,
// MinTime) without modifying the caller's slices; the other rules are those
// of NewWriter and Writer.AddSeries.
func WriteSeries(parent string, meta Meta, series []SeriesData) (Meta, error) {
	return WriteSeriesWithOptions(parent, meta, series, DefaultWriterOptions())
}

// WriteSeriesWithOptions is WriteSeries with explicit writer options.
func WriteSeriesWithOptions(parent string, meta Meta, series []SeriesData, opts WriterOptions) (Meta, error) {
	w, err := NewWriterWithOptions(parent, meta, opts)
	if err != nil {
		return Meta{}, err
	}
	order := make([]int, len(series))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return labels.Compare(series[a].Labels, series[b].Labels) })
	var chks []ChunkMeta
	for _, i := range order {
		chks = append(chks[:0], series[i].Chunks...)
		for j := range chks {
			c := &chks[j]
			if c.MinTime == 0 && c.MaxTime == 0 && c.Chunk != nil {
				if c.MinTime, c.MaxTime, err = chunkTimes(c.Chunk); err != nil {
					_ = w.Abort()
					return Meta{}, fmt.Errorf("write series %s: %w", series[i].Labels, err)
				}
			}
		}
		slices.SortStableFunc(chks, func(a, b ChunkMeta) int {
			return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.MinTime, b.MinTime))
		})
		if err := w.AddSeries(series[i].Labels, chks); err != nil {
			_ = w.Abort()
			return Meta{}, err
		}
	}
	return w.Close()
}
