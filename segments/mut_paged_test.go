package segments

import (
	"bytes"
	"context"
	"encoding/binary"
	"testing"
)

// pageTable returns a paged region of no page data whose page table is
// tbl, behind a valid trailer (its length and CRC32C).
func pageTable(tbl []byte) []byte {
	b := bytes.Clone(tbl)
	b = binary.BigEndian.AppendUint32(b, uint32(len(tbl)))
	return binary.BigEndian.AppendUint32(b, crc32c(tbl))
}

// TestPagedWriterCutsPastThePageSize: the writer starts a new page only
// before a record would take the current one past defaultPageSize
// (docs/format.md, "Paged regions"): records that fill a page exactly
// share it, one byte more starts the next.
func TestPagedWriterCutsPastThePageSize(t *testing.T) {
	rec := func(n int, c byte) []byte { return bytes.Repeat([]byte{c}, n) }
	for _, tc := range []struct {
		name  string
		recs  [][]byte
		pages []int // records in each page
	}{
		{"exactly a page", [][]byte{rec(defaultPageSize/2, 1), rec(defaultPageSize/2, 2)}, []int{2}},
		{"one byte past", [][]byte{rec(defaultPageSize/2, 1), rec(defaultPageSize/2+1, 2)}, []int{1, 1}},
		{"a page, then one byte", [][]byte{rec(defaultPageSize-1, 1), rec(1, 2), rec(1, 3)}, []int{2, 1}},
		{"one record of a page", [][]byte{rec(defaultPageSize, 1), rec(1, 2)}, []int{1, 1}},
	} {
		const base = 8
		b, offs := writePaged(t, tc.recs, base)
		r, err := openPagedRegion(b, base, NewPageCache(0))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if len(r.starts) != len(tc.pages) {
			t.Fatalf("%s: %d pages, want %d", tc.name, len(r.starts), len(tc.pages))
		}
		k := 0
		for i, n := range tc.pages {
			if offs[k] != r.starts[i] {
				t.Fatalf("%s: page %d starts at %d, want record %d's offset %d", tc.name, i, r.starts[i], k, offs[k])
			}
			k += n
		}
		for i, want := range tc.recs {
			got, err := r.at(context.Background(), offs[i])
			if err != nil || !bytes.HasPrefix(got, want) {
				t.Fatalf("%s: record %d: %v", tc.name, i, err)
			}
		}
	}
}

// TestPagedRecordSizeLimit: a record of maxPageSize bytes, as large as a
// reader accepts a page, is written and read back; one byte more is
// refused by the writer, which would otherwise write a page no reader
// opens.
func TestPagedRecordSizeLimit(t *testing.T) {
	big := make([]byte, maxPageSize+1)
	big[0], big[maxPageSize-1], big[maxPageSize] = 1, 2, 3
	enc, err := newZstdEncoder()
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	var out []byte
	pw := newPagedWriter(func(b []byte) error { out = append(out, b...); return nil }, enc, 8)
	if _, err := pw.add(big); err == nil {
		t.Fatalf("a record of %d bytes taken", len(big))
	}
	if pw.pending() != 0 || len(out) != 0 {
		t.Fatalf("the refused record left %d bytes pending, %d written", pw.pending(), len(out))
	}
	if _, err := pw.add([]byte{7}); err != nil {
		t.Fatal(err)
	}
	off, err := pw.add(big[:maxPageSize])
	if err != nil {
		t.Fatalf("a record of maxPageSize bytes: %v", err)
	}
	if err := pw.finish(); err != nil {
		t.Fatal(err)
	}
	r, err := openPagedRegion(out, 8, NewPageCache(0))
	if err != nil {
		t.Fatal(err)
	}
	if len(r.starts) != 2 || off != 9 {
		t.Fatalf("%d pages, the big record at %d; want 2 pages, at 9", len(r.starts), off)
	}
	got, err := r.at(context.Background(), off)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, big[:maxPageSize]) {
		t.Fatal("the big record read back other bytes")
	}
}

// TestPagedRegionHugeCount: a page table whose count is far beyond what
// its bytes can hold, behind a valid CRC, is refused before anything is
// set aside for it, not a panic or an allocation of the count.
func TestPagedRegionHugeCount(t *testing.T) {
	for _, n := range []uint64{1 << 60, 1<<63 - 1, 3} {
		var tbl encbuf
		tbl.putUvarint(n)
		tbl.putUvarint(8) // first page: logical 8, offset 0
		tbl.putUvarint(0)
		tbl.putUvarint(1) // the last page's length
		b := append([]byte{0, 1, 1, 0}, pageTable(tbl.b)...)
		if _, err := openPagedRegion(b, 8, NewPageCache(0)); err == nil {
			t.Fatalf("page count %d in a table of %d bytes taken", n, len(tbl.b))
		}
	}
}

// TestPagedRegionPageAtTableStart: a page table (behind a valid CRC) that
// puts a page at the table's own start, a page of no stored bytes, is
// refused when the region is opened, as every page outside the region
// is, not left for a read to find.
func TestPagedRegionPageAtTableStart(t *testing.T) {
	orig, _ := writePaged(t, [][]byte{{1, 2, 3}}, 8)
	r, err := openPagedRegion(orig, 8, NewPageCache(0))
	if err != nil {
		t.Fatal(err)
	}
	pages := orig[:r.tstart]
	for _, off := range []uint64{r.tstart - 1, r.tstart} {
		var tbl encbuf
		tbl.putUvarint(2)
		tbl.putUvarint(8) // page 0: logical 8, at 0
		tbl.putUvarint(0)
		tbl.putUvarint(3) // page 1: logical 11, at off
		tbl.putUvarint(off)
		tbl.putUvarint(1) // page 1's length
		b := append(bytes.Clone(pages), pageTable(tbl.b)...)
		_, err := openPagedRegion(b, 8, NewPageCache(0))
		if off == r.tstart && err == nil {
			t.Fatalf("a page at the table's start (%d) taken", off)
		}
		if off < r.tstart && err != nil {
			t.Fatalf("a page at %d, before the table at %d: %v", off, r.tstart, err)
		}
	}
}

// TestPagedRegionTableLength: a trailer whose table length takes the
// region's every byte before the trailer is read (a region of no page,
// from which a read is an error);
// one that takes more, up to the trailer's own bytes, is an error, not a
// table read from before the region's start.
func TestPagedRegionTableLength(t *testing.T) {
	b := pageTable([]byte{0, 0}) // no page, last length 0
	r, err := openPagedRegion(b, 8, NewPageCache(0))
	if err != nil {
		t.Fatalf("a region of no page: %v", err)
	}
	if r.start() != 8 || r.end != 8 {
		t.Fatalf("a region of no page spans %d..%d, want 8..8", r.start(), r.end)
	}
	if _, err := r.at(context.Background(), 8); err == nil {
		t.Fatal("a record read from a region of no page")
	}
	for extra := uint32(1); extra <= pageTrailerSize; extra++ {
		d := bytes.Clone(b)
		binary.BigEndian.PutUint32(d[len(d)-pageTrailerSize:], uint32(len(d)-pageTrailerSize)+extra)
		if _, err := openPagedRegion(d, 8, NewPageCache(0)); err == nil {
			t.Fatalf("a table of %d bytes in a region of %d taken", uint32(len(d)-pageTrailerSize)+extra, len(d))
		}
	}
}

// threePages writes a paged region of three full pages (bytes of 1, 2
// and 3) from base 8 and opens it; it returns the region's bytes, the
// records' logical offsets and the opened region (its stored offsets).
func threePages(t *testing.T) ([]byte, []uint64, *pagedRegion) {
	t.Helper()
	recs := [][]byte{bytes.Repeat([]byte{1}, defaultPageSize), bytes.Repeat([]byte{2}, defaultPageSize), bytes.Repeat([]byte{3}, defaultPageSize)}
	orig, offs := writePaged(t, recs, 8)
	r, err := openPagedRegion(orig, 8, NewPageCache(0))
	if err != nil {
		t.Fatal(err)
	}
	return orig, offs, r
}

// threePagesTable returns the region of threePages with its page table
// written anew (and signed): pages 0 and 1 as stored, page 2 at the
// logical and stored deltas ds and do from page 1.
func threePagesTable(orig []byte, offs []uint64, r *pagedRegion, ds, do uint64) []byte {
	var tbl encbuf
	tbl.putUvarint(3)
	tbl.putUvarint(8)
	tbl.putUvarint(0)
	tbl.putUvarint(offs[1] - offs[0])
	tbl.putUvarint(r.offs[1])
	tbl.putUvarint(ds)
	tbl.putUvarint(do)
	tbl.putUvarint(defaultPageSize)
	return append(bytes.Clone(orig[:r.tstart]), pageTable(tbl.b)...)
}

// TestPagedRegionOffsetsWrap: a page table (behind a valid CRC) whose
// stored offset deltas wrap around 2^64, so that a page's offset falls
// back before the previous page's, is refused when the region is opened,
// as a wrapping logical start is: read, such a page's range would end
// before it starts (a slice out of range: a panic reading from disk).
func TestPagedRegionOffsetsWrap(t *testing.T) {
	orig, offs, r := threePages(t)
	if len(r.offs) != 3 {
		t.Fatalf("%d pages, want 3", len(r.offs))
	}
	for _, back := range []uint64{1, r.offs[1] - 1, r.offs[1]} {
		// Page 2 at r.offs[1]-back: before page 1.
		wr, err := openPagedRegion(threePagesTable(orig, offs, r, offs[2]-offs[1], -back), 8, NewPageCache(0))
		if err == nil {
			// Read what was taken: it must not panic either.
			for i := range wr.starts {
				_, _, _ = wr.pageAt(context.Background(), wr.starts[i])
			}
			t.Fatalf("page 2 at %d, before page 1 at %d, taken", r.offs[1]-back, r.offs[1])
		}
	}
}
