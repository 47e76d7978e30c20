package segments

import (
	"cmp"
	"hash/crc32"
	"path/filepath"
	"slices"
	"strings"
)

// Index layout constants; see docs/format.md.
const (
	indexMagic   = 0x53494458 // "SIDX"
	indexVersion = 1          // series entries back to back
	// indexVersionPaged stores the series section as zstd pages (a paged
	// region); series refs are offsets in the uncompressed entries.
	indexVersionPaged = 2
	// indexVersionStats and indexVersionPagedStats are versions 1 and 2
	// with statistics in every raw chunk meta.
	indexVersionStats      = 3
	indexVersionPagedStats = 4
	// indexVersionStatsRuns is version 3 with hour runs in chunk
	// statistics; indexVersionStatsFirst and indexVersionPagedStatsFirst
	// are versions 3 and 4 with hour runs and first values in float chunk
	// statistics.
	indexVersionStatsRuns       = 5
	indexVersionStatsFirst      = 6
	indexVersionPagedStatsFirst = 7
	indexHeaderSize             = 5 // magic(4) version(1)
)

// Index sections, in file order.
const (
	secSymbols = iota
	secSeries
	secPostings
	secPostingsTable
	numSections

	tocSize = numSections*16 + 4 // (offset u64, length u64) per section, CRC32C
)

// section locates a section body in the index file. Its CRC32C follows the
// body.
type section struct{ off, len uint64 }

func (s section) end() uint64 { return s.off + s.len }

// indexWriter streams the index file, tracking the CRC of the current
// section.
type indexWriter struct {
	fw     *fileWriter
	secCRC uint32
	toc    [numSections]section
	buf    encbuf
}

func (iw *indexWriter) write(b []byte) error {
	iw.secCRC = crc32.Update(iw.secCRC, castagnoli, b)
	return iw.fw.write(b)
}

// flushBuf writes iw.buf when it holds at least min bytes.
func (iw *indexWriter) flushBuf(min int) error {
	if len(iw.buf.b) < min || len(iw.buf.b) == 0 {
		return nil
	}
	err := iw.write(iw.buf.b)
	iw.buf.reset()
	return err
}

func (iw *indexWriter) beginSection(i int) {
	iw.toc[i].off = iw.fw.pos
	iw.secCRC = 0
}

func (iw *indexWriter) endSection(i int) error {
	if err := iw.flushBuf(0); err != nil {
		return err
	}
	iw.toc[i].len = iw.fw.pos - iw.toc[i].off
	var e encbuf
	e.putBE32(iw.secCRC)
	return iw.fw.write(e.b)
}

// writeIndex writes the index file from the writer's in-memory state.
func (w *Writer) writeIndex() (fileMeta, error) {
	fw, err := createFileWriter(filepath.Join(w.dir, indexFilename), indexFilename)
	if err != nil {
		return fileMeta{}, err
	}
	iw := &indexWriter{fw: fw}
	if err := w.writeIndexTo(iw); err != nil {
		fw.abort()
		return fileMeta{}, err
	}
	return fw.finish()
}

func (w *Writer) writeIndexTo(iw *indexWriter) (err error) {
	var hdr encbuf
	hdr.putBE32(indexMagic)
	hdr.putByte(byte(w.formatVersion())) // index versions follow format versions
	if err := iw.fw.write(hdr.b); err != nil {
		return err
	}

	// Symbols, sorted; symRefs maps a temporary id to the symbol's offset.
	order := make([]uint32, len(w.symStrings))
	for i := range order {
		order[i] = uint32(i)
	}
	slices.SortFunc(order, func(a, b uint32) int { return strings.Compare(w.symStrings[a], w.symStrings[b]) })
	symRefs := make([]uint64, len(w.symStrings))
	iw.beginSection(secSymbols)
	iw.buf.putUvarint(uint64(len(order)))
	for _, id := range order {
		if err := iw.flushBuf(64 << 10); err != nil {
			return err
		}
		symRefs[id] = iw.fw.pos + uint64(len(iw.buf.b))
		iw.buf.putUvarintStr(w.symStrings[id])
	}
	if err := iw.endSection(secSymbols); err != nil {
		return err
	}

	// Series, in the order they were added (label order).
	seriesRefs := make([]uint64, len(w.series))
	iw.beginSection(secSeries)
	var pages *pagedWriter
	if w.enc != nil {
		pages = newPagedWriter(iw.write, w.enc, iw.fw.pos)
	}
	var entry, rec encbuf
	lblStart, chkStart := 0, 0
	for i, s := range w.series {
		entry.reset()
		pairs := w.lblIDs[lblStart:s.lblEnd]
		entry.putUvarint(uint64(len(pairs) / 2))
		for _, id := range pairs {
			entry.putUvarint(symRefs[id])
		}
		entry.b = append(entry.b, w.chkMetas.b[chkStart:s.chkEnd]...)
		lblStart, chkStart = s.lblEnd, s.chkEnd

		if pages != nil {
			rec.reset()
			rec.putUvarint(uint64(len(entry.b)))
			rec.b = append(rec.b, entry.b...)
			if seriesRefs[i], err = pages.add(rec.b); err != nil {
				return err
			}
			continue
		}
		if err := iw.flushBuf(64 << 10); err != nil {
			return err
		}
		seriesRefs[i] = iw.fw.pos + uint64(len(iw.buf.b))
		iw.buf.putUvarint(uint64(len(entry.b)))
		iw.buf.b = append(iw.buf.b, entry.b...)
	}
	if pages != nil {
		if err := pages.finish(); err != nil {
			return err
		}
	}
	if err := iw.endSection(secSeries); err != nil {
		return err
	}

	// Postings: the list of all series first, then one list per label
	// pair in (name, value) order.
	keys := make([]uint64, 0, len(w.postings))
	for k := range w.postings {
		keys = append(keys, k)
	}
	str := func(id uint64) string { return w.symStrings[uint32(id)] }
	slices.SortFunc(keys, func(a, b uint64) int {
		return cmp.Or(strings.Compare(str(a>>32), str(b>>32)), strings.Compare(str(a), str(b)))
	})
	offs := make([]uint64, len(keys))
	iw.beginSection(secPostings)
	allOff := iw.fw.pos
	if err := iw.writePostings(len(seriesRefs), func(i int) uint64 { return seriesRefs[i] }); err != nil {
		return err
	}
	for i, k := range keys {
		offs[i] = iw.fw.pos + uint64(len(iw.buf.b))
		list := w.postings[k]
		if err := iw.writePostings(len(list), func(j int) uint64 { return seriesRefs[list[j]] }); err != nil {
			return err
		}
	}
	if err := iw.endSection(secPostings); err != nil {
		return err
	}

	// Postings table: (name, value) -> postings offset, sorted; the empty
	// pair names the list of all series.
	iw.beginSection(secPostingsTable)
	iw.buf.putUvarint(uint64(len(keys) + 1))
	iw.buf.putUvarintStr("")
	iw.buf.putUvarintStr("")
	iw.buf.putUvarint(allOff)
	for i, k := range keys {
		if err := iw.flushBuf(64 << 10); err != nil {
			return err
		}
		iw.buf.putUvarintStr(str(k >> 32))
		iw.buf.putUvarintStr(str(k))
		iw.buf.putUvarint(offs[i])
	}
	if err := iw.endSection(secPostingsTable); err != nil {
		return err
	}

	var toc encbuf
	for _, s := range iw.toc {
		toc.putBE64(s.off)
		toc.putBE64(s.len)
	}
	toc.putBE32(crc32c(toc.b))
	return iw.fw.write(toc.b)
}

// writePostings appends one postings list: count, then the first series
// ref and the deltas between consecutive refs, all uvarints.
func (iw *indexWriter) writePostings(n int, ref func(int) uint64) error {
	iw.buf.putUvarint(uint64(n))
	var prev uint64
	for i := 0; i < n; i++ {
		if err := iw.flushBuf(64 << 10); err != nil {
			return err
		}
		r := ref(i)
		iw.buf.putUvarint(r - prev)
		prev = r
	}
	return nil
}
