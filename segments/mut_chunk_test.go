package segments

import (
	"slices"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
)

// TestChunkKindsValid: the kinds the format defines (raw and the five
// rollup aggregates) are written; the next value, the first undefined,
// is refused by the writer as any other undefined kind.
func TestChunkKindsValid(t *testing.T) {
	w, err := NewWriter(t.TempDir(), Meta{MinTime: 1000, MaxTime: 2000, Resolution: 100})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	c := newXOR(t, []sample{{1000, 1}, {1100, 2}})
	names := []string{"raw", "count", "sum", "min", "max", "counter"}
	var metas []ChunkMeta
	for k := KindRaw; k < numKinds; k++ {
		if !k.Valid() || k.String() != names[k] {
			t.Fatalf("kind %d: valid %v, named %q; want valid, %q", k, k.Valid(), k, names[k])
		}
		metas = append(metas, ChunkMeta{Kind: k, Chunk: c})
	}
	if err := w.AddSeries(labels.FromStrings("a", "1"), metas); err != nil {
		t.Fatalf("every defined kind: %v", err)
	}
	if k := numKinds; k.Valid() || k.String() != "kind(6)" {
		t.Fatalf("kind %d: valid %v, named %q", k, k.Valid(), k)
	}
	if err := w.AddSeries(labels.FromStrings("a", "2"), []ChunkMeta{{Kind: numKinds, Chunk: c}}); err == nil {
		t.Fatalf("kind %d written", numKinds)
	}
}

// TestChunkRecordLengthToTheEnd: a chunk record whose length names every
// byte left in its file (or page), leaving none for its encoding byte and
// CRC, as a damaged length or a ref into the middle of a record can, is
// an error, not a read past the record; so is every offset into a plain
// chunks file that is not a record's start, unless its bytes happen to
// pass the CRC.
func TestChunkRecordLengthToTheEnd(t *testing.T) {
	for n := range 12 {
		b := chunksHeader()
		b = append(b, byte(n))
		for i := range n {
			b = append(b, byte(i+1))
		}
		if _, _, err := decodeChunkRecord(b, chunksHeaderSize); err == nil {
			t.Fatalf("a record of length %d with %d bytes after its length taken", n, n)
		}
		if _, _, err := decodeRecord(b[chunksHeaderSize:]); err == nil {
			t.Fatalf("a record of length %d with %d bytes after its length taken (in a page)", n, n)
		}
	}
	var b []byte
	b = append(b, chunksHeader()...)
	var starts []int
	for i := range 20 {
		starts = append(starts, len(b))
		c := newXOR(t, []sample{{int64(i), float64(i)}, {int64(i) + 10, 2}, {int64(i) + 20, float64(3 * i)}})
		b = appendChunkRecord(b, c.Encoding(), c.Bytes())
	}
	for off := chunksHeaderSize; off < len(b); off++ {
		_, data, err := decodeChunkRecord(b, uint32(off))
		if err == nil && !slices.Contains(starts, off) && len(data) > 0 {
			t.Logf("offset %d decodes (%d bytes): its CRC happens to match", off, len(data))
		}
	}
	for _, off := range []int{len(b), len(b) + 1, chunksHeaderSize - 1} {
		if _, _, err := decodeChunkRecord(b, uint32(off)); err == nil {
			t.Fatalf("offset %d of a file of %d bytes taken", off, len(b))
		}
	}
}
