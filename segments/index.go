package segments

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// indexReader decodes an index file held in b (normally mmapped). The
// postings table is decoded into memory when the reader is created; symbols,
// series entries and postings lists are decoded from b on demand. Every
// method is safe for concurrent use and never panics on malformed bytes;
// errors are *CorruptionError without Dir.
type indexReader struct {
	b   []byte // the whole index; nil when read by sections from a Source
	toc [numSections]section
	// secs are the sections' bodies, slices of b (or read from a Source);
	// the series section's is nil when seriesPages reads it by page.
	secs [numSections][]byte

	// seriesPages holds the series section of a version 2 or 4 index; nil
	// for versions 1 and 3, whose entries are read from b.
	seriesPages *pagedRegion
	// stats is set for versions 3 to 7, whose raw chunk metas carry
	// statistics; runs for versions 5 to 7, whose statistics carry hour
	// runs; first for versions 6 and 7, whose float statistics carry the
	// first value.
	stats bool
	runs  bool
	first bool
	ver   int // the index's version (1 to 7)

	// src holds the index of a compressed segment read from a Source,
	// whose postings lists are read by range as Selects need them
	// (secs[secPostings] is nil); postOffs are the lists' offsets, in
	// file order, so that each list's end is the next one's start.
	src      *sourceFile
	postOffs []uint64

	// cache, when set, holds this index's decoded series entries under
	// the key cacheKey, for SelectShared.
	cache    *seriesCache
	cacheKey uint64

	allOff uint64   // offset of the postings list of all series
	names  []string // label names in order; strings alias b
	values map[string]*labelValues
}

// labelValues are the values of one label name, in order, with the offsets
// of their postings lists. The strings alias the index bytes.
type labelValues struct {
	values []string
	offs   []uint64
}

func (lv *labelValues) lookup(v string) (uint64, bool) {
	i, ok := slices.BinarySearch(lv.values, v)
	if !ok {
		return 0, false
	}
	return lv.offs[i], true
}

func indexErr(off uint64, format string, args ...any) *CorruptionError {
	return corruptf(indexFilename, int64(off), format, args...)
}

// newIndexReader checks the header, the table of contents and the CRC32C of
// every section, validates the symbol table and loads the postings table.
func newIndexReader(b []byte, formatVersion int, cache *PageCache) (*indexReader, error) {
	if len(b) < indexHeaderSize+numSections*4+tocSize {
		return nil, indexErr(0, "index of %d bytes is too short", len(b))
	}
	r, err := newIndexHeader(b[:indexHeaderSize], b[len(b)-tocSize:], uint64(len(b)), formatVersion)
	if err != nil {
		return nil, err
	}
	r.b = b
	for i, sec := range r.toc {
		if err := r.setSection(i, b[sec.off:sec.end()+4]); err != nil {
			return nil, err
		}
	}
	if compressedVersion(r.version()) {
		sec := r.toc[secSeries]
		if r.seriesPages, err = openPagedRegion(r.secs[secSeries], sec.off, cache); err != nil {
			return nil, indexErr(sec.off, "series section: %w", err)
		}
	}
	return r, r.load()
}

// newIndexReaderLazy reads the index of a compressed segment (format
// version 2 or 4) by range from f, as Thanos' store gateway reads an
// index-header: the header, table of contents and postings table (its
// section CRC32C checked) are read at once. The symbols are not read: they
// are every label name and value, sorted, which the postings table holds,
// so the section is rebuilt from it and checked against the section's
// CRC32C (read alone); only when that fails is the section read. The
// postings lists are read by range when a Select needs them (postingsAt),
// and the series section's entries by page, each page checked by its own
// CRC32C. The index's whole CRC32C in meta.json is not checked.
func newIndexReaderLazy(ctx context.Context, f sourceFile, formatVersion int, cache *PageCache) (*indexReader, error) {
	size := f.n
	if size < indexHeaderSize+numSections*4+tocSize {
		return nil, indexErr(0, "index of %d bytes is too short", size)
	}
	// The header, and the table of contents with up to indexTailGuess
	// bytes before it, which hold the postings table of most segments
	// (read next): fetched together.
	if err := f.src.Prefetch(ctx, f.name, [][2]int64{{0, indexHeaderSize}, {int64(size - min(size, indexTailGuess)), int64(size)}}); err != nil {
		return nil, err
	}
	var r *indexReader
	read := func() error {
		hdr, err := f.slice(ctx, 0, indexHeaderSize)
		if err != nil {
			return &sourceError{err}
		}
		toc, err := f.slice(ctx, size-tocSize, size)
		if err != nil {
			return &sourceError{err}
		}
		r, err = newIndexHeader(hdr, toc, size, formatVersion)
		return err
	}
	err := read()
	if err != nil && !errors.As(err, new(*sourceError)) {
		// Once more, from the bucket: the bytes may have been damaged on
		// their way.
		f.forget(0, indexHeaderSize)
		f.forget(size-tocSize, size)
		err = read()
	}
	if err != nil {
		return nil, unwrapSource(err)
	}
	if !compressedVersion(r.version()) {
		return nil, indexErr(4, "index version %d is not paged", r.version())
	}
	ser, sym, tbl := r.toc[secSeries], r.toc[secSymbols], r.toc[secPostingsTable]
	// The symbols' CRC and the postings table with what follows it (the
	// series section's page table is at the section's end, just before
	// the postings), fetched together.
	if err := f.src.Prefetch(ctx, f.name, [][2]int64{{int64(sym.end()), int64(sym.end() + 4)}, {int64(tbl.off), int64(size)}}); err != nil {
		return nil, err
	}
	if _, err := readChecked(ctx, f, tbl.off, tbl.end()+4, func(b []byte) error {
		return r.setSection(secPostingsTable, b)
	}); err != nil {
		return nil, unwrapSource(err)
	}
	if err := r.readPostingsTable(); err != nil {
		return nil, err
	}
	if err := r.rebuildSymbols(ctx, f); err != nil {
		return nil, unwrapSource(err)
	}
	if err := r.checkSymbols(); err != nil {
		return nil, err
	}
	r.src = &f
	r.postOffs = r.postingsOffsets()
	if r.seriesPages, err = openPagedRegionFrom(ctx, f.sub(ser.off, ser.len), ser.off, cache); err != nil {
		if se := (*sourceError)(nil); errors.As(err, &se) {
			return nil, se.err
		}
		return nil, indexErr(ser.off, "series section: %w", err)
	}
	return r, nil
}

// rebuildSymbols sets the symbols section of a reader whose postings
// table is loaded: rebuilt from the table's names and values when that
// matches the section's length and CRC32C (read from f), else read from f.
func (r *indexReader) rebuildSymbols(ctx context.Context, f sourceFile) error {
	sec := r.toc[secSymbols]
	var all []string
	for _, name := range r.names {
		all = append(all, name)
		all = append(all, r.values[name].values...)
	}
	slices.Sort(all)
	all = slices.Compact(all)
	e := encbuf{b: make([]byte, 0, sec.len+4)}
	e.putUvarint(uint64(len(all)))
	for _, s := range all {
		e.putUvarintStr(s)
	}
	if uint64(len(e.b)) == sec.len {
		sum, err := f.slice(ctx, sec.end(), sec.end()+4)
		if err != nil {
			return &sourceError{err}
		}
		if binary.BigEndian.Uint32(sum) == crc32c(e.b) {
			r.secs[secSymbols] = e.b
			return nil
		}
	}
	// Not what the writer wrote (or the CRC's bytes were damaged on
	// their way): the section itself.
	_, err := readChecked(ctx, f, sec.off, sec.end()+4, func(b []byte) error {
		return r.setSection(secSymbols, b)
	})
	return err
}

// postingsOffsets returns the offsets of the postings lists, in file
// order (the table's, checked).
func (r *indexReader) postingsOffsets() []uint64 {
	offs := []uint64{r.allOff}
	for _, name := range r.names {
		offs = append(offs, r.values[name].offs...)
	}
	slices.Sort(offs)
	return slices.Compact(offs)
}

// indexTailGuess is how much of the end of an index read from a Source is
// fetched with its table of contents, before the postings table's size is
// known: the gap below which the Source fetches the bytes between two
// ranges anyway.
const indexTailGuess = 64 << 10

// newIndexHeader checks the header and the table of contents (the last
// tocSize bytes) of an index of size bytes.
func newIndexHeader(hdr, toc []byte, size uint64, formatVersion int) (*indexReader, error) {
	if m := binary.BigEndian.Uint32(hdr); m != indexMagic {
		return nil, indexErr(0, "bad magic %#x", m)
	}
	v := hdr[4]
	if v < indexVersion || v > indexVersionPagedStatsFirst ||
		compressedVersion(int(v)) && !compressedVersion(formatVersion) ||
		v >= indexVersionStats && formatVersion < FormatVersionStats ||
		v >= indexVersionStatsRuns && formatVersion < FormatVersionStatsRuns ||
		v >= indexVersionStatsFirst && formatVersion < FormatVersionStatsFirst {
		return nil, indexErr(4, "unsupported index version %d", v)
	}
	r := &indexReader{stats: v >= indexVersionStats, runs: v >= indexVersionStatsRuns, first: v >= indexVersionStatsFirst}
	tocOff := size - tocSize
	d := decbuf{b: toc}
	for i := range r.toc {
		r.toc[i] = section{off: d.be64(), len: d.be64()}
	}
	if sum, got := d.be32(), crc32c(toc[:len(toc)-4]); sum != got {
		return nil, indexErr(tocOff, "table of contents: %w (stored %08x, computed %08x)", ErrChecksum, sum, got)
	}
	// Sections tile the file: header, then each body followed by its CRC,
	// then the TOC.
	next := uint64(indexHeaderSize)
	for i, s := range r.toc {
		if s.off != next || s.len > tocOff || s.off+s.len+4 > tocOff {
			return nil, indexErr(tocOff, "section %d at %d+%d does not follow the previous one (want offset %d)", i, s.off, s.len, next)
		}
		next = s.end() + 4
	}
	if next != tocOff {
		return nil, indexErr(next, "%d bytes between the last section and the table of contents", tocOff-next)
	}
	r.ver = int(v)
	return r, nil
}

// setSection checks section i, b: its body and CRC, and keeps the body.
func (r *indexReader) setSection(i int, b []byte) error {
	s := r.toc[i]
	body := b[:s.len]
	if sum, got := binary.BigEndian.Uint32(b[s.len:]), crc32c(body); sum != got {
		return indexErr(s.off, "section %s: %w (stored %08x, computed %08x)", sectionName(i), ErrChecksum, sum, got)
	}
	r.secs[i] = body
	return nil
}

func (r *indexReader) version() int { return r.ver }

// load validates the symbol table and loads the postings table.
func (r *indexReader) load() error {
	if err := r.checkSymbols(); err != nil {
		return err
	}
	return r.readPostingsTable()
}

// heldBytes is what the reader holds in memory of an index read from a
// Source: the sections it read and the page table of the series section.
func (r *indexReader) heldBytes() int64 {
	var n int64
	for _, b := range r.secs {
		n += int64(len(b))
	}
	if r.seriesPages != nil {
		n += int64(len(r.seriesPages.starts)) * 16
	}
	return n
}

func sectionName(i int) string {
	return [...]string{"symbols", "series", "postings", "postings table"}[i]
}

func (r *indexReader) body(i int) []byte { return r.secs[i] }

// checkSymbols validates that the symbol table decodes and is sorted.
func (r *indexReader) checkSymbols() error {
	sec := r.toc[secSymbols]
	d := decbuf{b: r.body(secSymbols)}
	n := d.uvarint()
	if d.err == nil && n > uint64(d.len()) {
		return indexErr(sec.off, "symbol count %d exceeds section", n)
	}
	var prev []byte
	for i := uint64(0); i < n && d.err == nil; i++ {
		s := d.uvarintBytes()
		if i > 0 && string(s) <= string(prev) {
			return indexErr(sec.end()-uint64(d.len()), "symbols not sorted at %q", s)
		}
		prev = s
	}
	if d.err != nil {
		return indexErr(sec.end()-uint64(d.len()), "decode symbols: %w", d.err)
	}
	if d.len() != 0 {
		return indexErr(sec.end()-uint64(d.len()), "%d trailing bytes after symbols", d.len())
	}
	return nil
}

// readPostingsTable loads the postings table into memory.
func (r *indexReader) readPostingsTable() error {
	sec := r.toc[secPostingsTable]
	pst := r.toc[secPostings]
	d := decbuf{b: r.body(secPostingsTable)}
	pos := func() uint64 { return sec.end() - uint64(d.len()) }
	n := d.uvarint()
	if d.err == nil && n > uint64(d.len())/3 { // an entry takes at least 3 bytes
		return indexErr(sec.off, "postings table count %d exceeds section", n)
	}
	r.values = make(map[string]*labelValues)
	var prevName, prevValue string
	var cur *labelValues
	for i := uint64(0); i < n; i++ {
		at := pos()
		name := yoloString(d.uvarintBytes())
		value := yoloString(d.uvarintBytes())
		off := d.uvarint()
		if d.err != nil {
			return indexErr(at, "decode postings table entry %d: %w", i, d.err)
		}
		if off < pst.off || off >= pst.end() {
			return indexErr(at, "postings offset %d outside postings section", off)
		}
		if i == 0 {
			if name != "" || value != "" {
				return indexErr(at, "postings table does not start with the list of all series")
			}
			r.allOff = off
			continue
		}
		if c := cmp.Or(strings.Compare(name, prevName), strings.Compare(value, prevValue)); c <= 0 || name == "" || value == "" {
			return indexErr(at, "postings table entry %q=%q out of order or empty", name, value)
		}
		if name != prevName {
			if cur != nil {
				cur.values, cur.offs = slices.Clip(cur.values), slices.Clip(cur.offs)
			}
			cur = &labelValues{}
			r.values[name] = cur
			r.names = append(r.names, name)
		}
		cur.values = append(cur.values, value)
		cur.offs = append(cur.offs, off)
		prevName, prevValue = name, value
	}
	if n == 0 {
		return indexErr(sec.off, "empty postings table")
	}
	if d.err != nil {
		return indexErr(pos(), "decode postings table: %w", d.err)
	}
	if d.len() != 0 {
		return indexErr(pos(), "%d trailing bytes after postings table", d.len())
	}
	if cur != nil {
		cur.values, cur.offs = slices.Clip(cur.values), slices.Clip(cur.offs)
	}
	r.names = slices.Clip(r.names)
	return nil
}

// symbol returns the symbol at offset ref. The string aliases the index.
func (r *indexReader) symbol(ref uint64) (string, error) {
	sec := r.toc[secSymbols]
	if ref < sec.off || ref >= sec.end() {
		return "", indexErr(ref, "symbol ref outside symbols section")
	}
	d := decbuf{b: r.secs[secSymbols][ref-sec.off:]}
	s := d.uvarintBytes()
	if d.err != nil {
		return "", indexErr(ref, "decode symbol: %w", d.err)
	}
	return yoloString(s), nil
}

// series decodes the series entry at ref. It appends the symbol refs of its
// label pairs (name, value, name, value, ...) to lbls and, unless chks is
// nil, its chunk metas to *chks. ctx is passed to a Source it reads.
func (r *indexReader) series(ctx context.Context, ref uint64, lbls []uint64, chks *[]ChunkMeta) ([]uint64, error) {
	var d decbuf
	if r.seriesPages != nil {
		b, err := r.seriesPages.at(ctx, ref)
		if se := (*sourceError)(nil); errors.As(err, &se) {
			return lbls, fmt.Errorf("read the index's series entry at %d: %w", ref, se.err)
		}
		if err != nil {
			return lbls, indexErr(ref, "read series: %w", err)
		}
		d.b = b
	} else {
		sec := r.toc[secSeries]
		if ref < sec.off || ref >= sec.end() {
			return lbls, indexErr(ref, "series ref outside series section")
		}
		d.b = r.secs[secSeries][ref-sec.off:]
	}
	d = decbuf{b: d.uvarintBytes(), err: d.err}
	nl := d.uvarint()
	if d.err == nil && nl > uint64(d.len())/2 {
		return lbls, indexErr(ref, "label count %d exceeds series entry", nl)
	}
	for i := uint64(0); i < 2*nl; i++ {
		lbls = append(lbls, d.uvarint())
	}
	if chks == nil {
		if d.err != nil {
			return lbls, indexErr(ref, "decode series: %w", d.err)
		}
		return lbls, nil
	}
	nc := d.uvarint()
	if d.err == nil && nc > uint64(d.len())/4 { // a chunk meta takes at least 4 bytes
		return lbls, indexErr(ref, "chunk count %d exceeds series entry", nc)
	}
	*chks = slices.Grow(*chks, int(nc))
	var mint int64
	var cref uint64
	for i := uint64(0); i < nc; i++ {
		kind := ChunkKind(d.byte())
		if i == 0 {
			mint = d.varint()
			cref = d.uvarint()
		} else {
			mint += d.varint()
			cref += d.uvarint()
		}
		span := d.uvarint()
		maxt := mint + int64(span)
		if d.err != nil {
			break
		}
		if !kind.Valid() {
			return lbls, indexErr(ref, "chunk %d: invalid kind %d", i, kind)
		}
		if int64(span) < 0 || maxt < mint {
			return lbls, indexErr(ref, "chunk %d: time span %d overflows", i, span)
		}
		var st ChunkStats
		if r.stats && kind == KindRaw {
			var ok bool
			if st, ok = d.stats(r.runs, r.first); !ok {
				if d.err != nil {
					break
				}
				return lbls, indexErr(ref, "chunk %d: invalid statistics", i)
			}
		}
		*chks = append(*chks, ChunkMeta{Kind: kind, MinTime: mint, MaxTime: maxt, Ref: ChunkRef(cref), Stats: st})
	}
	if d.err != nil {
		return lbls, indexErr(ref, "decode series: %w", d.err)
	}
	if d.len() != 0 {
		return lbls, indexErr(ref, "%d trailing bytes in series entry", d.len())
	}
	return lbls, nil
}

// postingsAt returns the postings list at offset off; ctx is passed to a
// Source it reads.
func (r *indexReader) postingsAt(ctx context.Context, off uint64) postings {
	sec := r.toc[secPostings]
	if off < sec.off || off >= sec.end() {
		return errPostings{indexErr(off, "postings offset outside postings section")}
	}
	if r.src != nil {
		return r.readPostings(ctx, off)
	}
	p := &listPostings{off: off, d: decbuf{b: r.secs[secPostings][off-sec.off:]}}
	p.n = p.d.uvarint()
	if p.d.err != nil {
		return errPostings{indexErr(off, "decode postings: %w", p.d.err)}
	}
	if p.n > uint64(p.d.len()) {
		return errPostings{indexErr(off, "postings count %d exceeds section", p.n)}
	}
	return p
}

func (r *indexReader) allPostings(ctx context.Context) postings {
	return r.postingsAt(ctx, r.allOff)
}

// postingsSpan returns where the postings list at off ends: where the next
// one starts, or the section's end.
func (r *indexReader) postingsSpan(off uint64) uint64 {
	i, found := slices.BinarySearch(r.postOffs, off)
	if found {
		i++
	}
	if i < len(r.postOffs) {
		return r.postOffs[i]
	}
	return r.toc[secPostings].end()
}

// prefetchPostings asks the Source for the postings lists at offs at once.
func (r *indexReader) prefetchPostings(ctx context.Context, offs []uint64) error {
	if r.src == nil || len(offs) == 0 {
		return nil
	}
	ranges := make([][2]int64, 0, len(offs))
	for _, off := range offs {
		ranges = append(ranges, [2]int64{int64(off), int64(r.postingsSpan(off))})
	}
	slices.SortFunc(ranges, func(a, b [2]int64) int { return cmp.Compare(a[0], b[0]) })
	return r.src.src.Prefetch(ctx, r.src.name, ranges)
}

// readPostings reads the postings list at off from the Source. The list
// has no checksum of its own (the section's covers them all), so it is
// checked for what it must be: a count and that many refs, strictly
// increasing and inside the series section, filling its span exactly
// (the lists lie back to back, where the postings table says). A list
// that fails is read once more; the series it names are read from pages
// checked by their CRC32C.
func (r *indexReader) readPostings(ctx context.Context, off uint64) postings {
	end := r.postingsSpan(off)
	b, err := readChecked(ctx, *r.src, off, end, func(b []byte) error {
		d := decbuf{b: b}
		n := d.uvarint()
		if d.err == nil && n > uint64(d.len()) {
			return fmt.Errorf("postings count %d exceeds its list", n)
		}
		var first, ref uint64
		for i := uint64(0); i < n && d.err == nil; i++ {
			delta := d.uvarint()
			if i > 0 && (delta == 0 || ref+delta < ref) {
				return errPostingsOrder
			}
			if ref += delta; i == 0 {
				first = ref
			}
		}
		switch {
		case d.err != nil:
			return d.err
		case d.len() != 0:
			return fmt.Errorf("%d bytes after the list's last ref", d.len())
		}
		for _, ref := range []uint64{first, ref} {
			if _, ok := r.seriesPages.pageIndex(ref); n > 0 && !ok {
				return fmt.Errorf("series ref %d outside the series entries", ref)
			}
		}
		return nil
	})
	if se := (*sourceError)(nil); errors.As(err, &se) {
		return errPostings{fmt.Errorf("read the index's postings at %d: %w", off, se.err)}
	}
	if err != nil {
		return errPostings{indexErr(off, "decode postings: %w", err)}
	}
	p := &listPostings{off: off, d: decbuf{b: b}}
	p.n = p.d.uvarint()
	return p
}

// String describes the reader for debugging.
func (r *indexReader) String() string {
	return fmt.Sprintf("index{%d bytes, %d names}", r.toc[secPostingsTable].end()+4+tocSize, len(r.names))
}
