package segments

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// A paged region holds records (chunk records, series entries) in pages
// compressed one by one, so that a record is read by decompressing only its
// page. Records keep the offsets they would have in an uncompressed stream
// ("logical" offsets, starting at the region's base), so chunk refs and
// series refs keep their meaning and their small deltas in the index.
// A record never spans two pages. See docs/format.md, "Paged regions".
const (
	pageCodecNone = 0 // the page is stored as is
	pageCodecZstd = 1 // the page is one zstd frame

	// defaultPageSize is the uncompressed size after which the writer
	// starts a new page. Bigger pages compress better (a day segment of the
	// TARGETS data, BenchmarkDiskPerSample: 16 KiB 0.372 bytes per sample,
	// 32 KiB 0.364) but cost more to read one chunk cold: the 10 series of
	// one host lie in 10 pages (series are in label order, metric name
	// first).
	defaultPageSize = 16 << 10
	// maxPageSize bounds the uncompressed size of a page: a single record
	// larger than defaultPageSize gets a page of its own, up to this.
	maxPageSize = 64 << 20

	pageTrailerSize = 8 // table length u32, table CRC32C u32
)

// zstdDecoder decompresses pages. A zstd.Decoder's DecodeAll is safe for
// concurrent use; it keeps no state between calls, so one serves every
// segment, as castagnoli does for checksums.
var zstdDecoder = sync.OnceValue(func() *zstd.Decoder {
	d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(maxPageSize))
	if err != nil {
		panic(fmt.Sprintf("segments: zstd decoder: %v", err)) // only for invalid options
	}
	return d
})

// pagedWriter cuts records into pages, compresses each and passes the
// stored bytes to out; finish writes the page table and trailer.
type pagedWriter struct {
	out      func([]byte) error
	enc      *zstd.Encoder
	pageSize int

	page    []byte // records of the page being filled
	logical uint64 // logical offset of the next record
	phys    uint64 // bytes passed to out so far
	starts  []uint64
	offs    []uint64
	scratch []byte
}

func newZstdEncoder() (*zstd.Encoder, error) {
	return zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1),
		zstd.WithEncoderCRC(false), zstd.WithZeroFrames(true))
}

func newPagedWriter(out func([]byte) error, enc *zstd.Encoder, base uint64) *pagedWriter {
	return &pagedWriter{out: out, enc: enc, pageSize: defaultPageSize, logical: base}
}

// add appends one record and returns its logical offset.
func (p *pagedWriter) add(rec []byte) (uint64, error) {
	if len(p.page) > 0 && len(p.page)+len(rec) > p.pageSize {
		if err := p.flushPage(); err != nil {
			return 0, err
		}
	}
	if len(p.page)+len(rec) > maxPageSize {
		return 0, fmt.Errorf("record of %d bytes does not fit a page", len(rec))
	}
	off := p.logical
	p.page = append(p.page, rec...)
	p.logical += uint64(len(rec))
	return off, nil
}

// pending returns the uncompressed bytes not yet written as a page.
func (p *pagedWriter) pending() int { return len(p.page) }

func (p *pagedWriter) flushPage() error {
	if len(p.page) == 0 {
		return nil
	}
	codec := byte(pageCodecZstd)
	data := p.enc.EncodeAll(p.page, p.scratch[:0])
	p.scratch = data
	if len(data) >= len(p.page) {
		codec, data = pageCodecNone, p.page
	}
	var e encbuf
	e.putByte(codec)
	e.putUvarint(uint64(len(p.page)))
	e.putUvarint(uint64(len(data)))
	crc := crc32c(e.b)
	crc = crc32cUpdate(crc, data)
	p.starts = append(p.starts, p.logical-uint64(len(p.page)))
	p.offs = append(p.offs, p.phys)
	for _, b := range [][]byte{e.b, data, binary.BigEndian.AppendUint32(nil, crc)} {
		if err := p.out(b); err != nil {
			return err
		}
		p.phys += uint64(len(b))
	}
	p.page = p.page[:0]
	return nil
}

// finish writes the last page, the page table and the trailer.
func (p *pagedWriter) finish() error {
	if err := p.flushPage(); err != nil {
		return err
	}
	var t encbuf
	t.putUvarint(uint64(len(p.starts)))
	var ps, po uint64
	for i := range p.starts {
		t.putUvarint(p.starts[i] - ps)
		t.putUvarint(p.offs[i] - po)
		ps, po = p.starts[i], p.offs[i]
	}
	last := uint64(0) // the last page's length, so that the region's logical end is known
	if len(p.starts) > 0 {
		last = p.logical - ps
	}
	t.putUvarint(last)
	tbl := t.b
	t.putBE32(uint32(len(tbl)))
	t.putBE32(crc32c(tbl))
	return p.out(t.b)
}

// pagedRegion reads a paged region held in b (normally mmapped; read by
// range from a Source for a segment in object storage).
type pagedRegion struct {
	b      fileBytes
	key    uint64   // identifies the region in a pageCache
	starts []uint64 // logical offset of each page, increasing
	offs   []uint64 // offset of each page in b
	end    uint64   // logical end of the last page
	tstart uint64   // offset of the page table in b: the end of the last page
	cache  *PageCache
}

// openPagedRegion decodes the page table of the region b, whose first
// record has logical offset base. Errors are plain; the caller wraps them
// in a *CorruptionError naming the file.
func openPagedRegion(b []byte, base uint64, cache *PageCache) (*pagedRegion, error) {
	return openPagedRegionFrom(context.Background(), memBytes(b), base, cache)
}

// openPagedRegionFrom is openPagedRegion for a region of any fileBytes. An
// error of a Source is a *sourceError.
func openPagedRegionFrom(ctx context.Context, b fileBytes, base uint64, cache *PageCache) (*pagedRegion, error) {
	size := b.size()
	if size < pageTrailerSize {
		return nil, errors.New("paged region too short for its trailer")
	}
	tbl, tstart, err := readPageTable(ctx, b, size)
	if err != nil && !errors.As(err, new(*sourceError)) && b.forget(0, size) {
		// Bytes from a Source: the trailer and the table once more.
		tbl, tstart, err = readPageTable(ctx, b, size)
	}
	if err != nil {
		return nil, err
	}
	d := decbuf{b: tbl}
	n := d.uvarint()
	if d.err == nil && n > uint64(d.len())/2 {
		return nil, fmt.Errorf("page count %d exceeds page table", n)
	}
	r := &pagedRegion{b: b, starts: make([]uint64, 0, n), offs: make([]uint64, 0, n), tstart: tstart, cache: cache}
	var ls, po uint64
	for i := uint64(0); i < n && d.err == nil; i++ {
		ds, do := d.uvarint(), d.uvarint()
		if i == 0 {
			if ds != base || do != 0 {
				return nil, fmt.Errorf("first page at %d (logical %d), want 0 (logical %d)", do, ds, base)
			}
		} else if ds == 0 || do == 0 {
			return nil, fmt.Errorf("page %d does not follow page %d", i, i-1)
		}
		ls, po = ls+ds, po+do
		if po >= tstart || po < do || ls < ds { // past the table, or wrapped around
			return nil, fmt.Errorf("page %d at %d outside the region", i, po)
		}
		r.starts, r.offs = append(r.starts, ls), append(r.offs, po)
	}
	last := d.uvarint()
	r.end = ls + last
	if n == 0 {
		r.end = base
	}
	switch {
	case d.err != nil:
		return nil, fmt.Errorf("decode page table: %w", d.err)
	case d.len() != 0:
		return nil, fmt.Errorf("%d trailing bytes in page table", d.len())
	case n > 0 && (last == 0 || r.end < ls), n == 0 && last != 0:
		return nil, fmt.Errorf("last page length %d", last)
	}
	r.key = cache.newKey()
	return r, nil
}

// readPageTable reads and checks the trailer and page table at the end of
// the region b of size bytes; it returns the table and where it starts.
func readPageTable(ctx context.Context, b fileBytes, size uint64) ([]byte, uint64, error) {
	trb, err := b.slice(ctx, size-pageTrailerSize, size)
	if err != nil {
		return nil, 0, &sourceError{err}
	}
	tr := decbuf{b: trb}
	tlen, tcrc := uint64(tr.be32()), tr.be32()
	if tlen > size-pageTrailerSize {
		return nil, 0, fmt.Errorf("page table of %d bytes exceeds region", tlen)
	}
	tstart := size - pageTrailerSize - tlen
	tbl, err := b.slice(ctx, tstart, size-pageTrailerSize)
	if err != nil {
		return nil, 0, &sourceError{err}
	}
	if got := crc32c(tbl); got != tcrc {
		return nil, 0, fmt.Errorf("page table: %w (stored %08x, computed %08x)", ErrChecksum, tcrc, got)
	}
	return tbl, tstart, nil
}

// pageAt returns the uncompressed page holding logical offset off and the
// logical offset of its start; ctx is passed to a Source it reads.
func (r *pagedRegion) pageAt(ctx context.Context, off uint64) ([]byte, uint64, error) {
	i, ok := r.pageIndex(off)
	if !ok {
		return nil, 0, fmt.Errorf("offset %d outside paged data %d..%d", off, r.start(), r.end)
	}
	if p, ok := r.cache.get(r.key, i); ok {
		return p, r.starts[i], nil
	}
	p, err := r.decode(ctx, i)
	if err != nil {
		return nil, 0, err
	}
	r.cache.put(r.key, i, p)
	return p, r.starts[i], nil
}

// pageIndex returns the index of the page that holds logical offset off.
func (r *pagedRegion) pageIndex(off uint64) (int, bool) {
	if len(r.starts) == 0 || off < r.starts[0] || off >= r.end {
		return 0, false
	}
	i, found := slices.BinarySearch(r.starts, off)
	if !found {
		i--
	}
	return i, true
}

// pageRange returns where page i is stored in b: [start, end).
func (r *pagedRegion) pageRange(i int) (uint64, uint64) {
	if i+1 < len(r.offs) {
		return r.offs[i], r.offs[i+1]
	}
	return r.offs[i], r.tstart
}

// cached reports whether page i is in the page cache (without counting a
// hit or miss).
func (r *pagedRegion) cached(i int) bool { return r.cache.has(r.key, i) }

func (r *pagedRegion) start() uint64 {
	if len(r.starts) == 0 {
		return r.end
	}
	return r.starts[0]
}

// at returns the bytes from logical offset off to the end of its page.
func (r *pagedRegion) at(ctx context.Context, off uint64) ([]byte, error) {
	p, start, err := r.pageAt(ctx, off)
	if err != nil {
		return nil, err
	}
	return p[off-start:], nil
}

// decode verifies and decompresses page i.
func (r *pagedRegion) decode(ctx context.Context, i int) ([]byte, error) {
	want := r.end - r.starts[i]
	if i+1 < len(r.starts) {
		want = r.starts[i+1] - r.starts[i]
	}
	off, limit := r.pageRange(i)
	var (
		codec             byte
		rawLen, storedLen uint64
		data              []byte
	)
	_, err := readChecked(ctx, r.b, off, limit, func(b []byte) error {
		d := decbuf{b: b}
		codec = d.byte()
		rawLen = d.uvarint()
		storedLen = d.uvarint()
		hdr := uint64(len(b)) - uint64(d.len())
		data = d.bytes(storedLen)
		sum := d.be32()
		switch {
		case d.err != nil:
			return fmt.Errorf("page at %d: %w", off, d.err)
		case rawLen != want || rawLen > maxPageSize:
			return fmt.Errorf("page at %d: %d bytes, page table says %d", off, rawLen, want)
		}
		if got := crc32cUpdate(crc32c(b[:hdr]), data); got != sum {
			return fmt.Errorf("page at %d: %w (stored %08x, computed %08x)", off, ErrChecksum, sum, got)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	switch codec {
	case pageCodecNone:
		if storedLen != rawLen {
			return nil, fmt.Errorf("page at %d: stored %d bytes for %d", off, storedLen, rawLen)
		}
		return data, nil
	case pageCodecZstd:
		p, err := zstdDecoder().DecodeAll(data, make([]byte, 0, rawLen))
		if err != nil {
			return nil, fmt.Errorf("page at %d: decompress: %w", off, err)
		}
		if uint64(len(p)) != rawLen {
			return nil, fmt.Errorf("page at %d: decompressed %d bytes, want %d", off, len(p), rawLen)
		}
		return p, nil
	}
	return nil, fmt.Errorf("page at %d: unknown codec %d", off, codec)
}
