package segments

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/prometheus/prometheus/tsdb/chunkenc"
)

// ChunkKind says what a chunk's samples mean. Raw segments hold KindRaw
// chunks only; a rollup series holds, per bucket range, one chunk of each
// aggregate kind, whose samples are at the same bucket timestamps.
type ChunkKind uint8

// Chunk kinds. The values are part of the on-disk format.
const (
	KindRaw     ChunkKind = iota // raw samples as ingested
	KindCount                    // number of raw samples in the bucket
	KindSum                      // sum of raw sample values in the bucket
	KindMin                      // minimum raw sample value in the bucket
	KindMax                      // maximum raw sample value in the bucket
	KindCounter                  // counter value adjusted for resets

	numKinds
)

func (k ChunkKind) String() string {
	switch k {
	case KindRaw:
		return "raw"
	case KindCount:
		return "count"
	case KindSum:
		return "sum"
	case KindMin:
		return "min"
	case KindMax:
		return "max"
	case KindCounter:
		return "counter"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Valid reports whether k is one of the defined kinds.
func (k ChunkKind) Valid() bool { return k < numKinds }

// ChunkRef locates a chunk record in a segment: the sequence number of its
// chunks file (1 for chunks/000001) in the upper 32 bits and the byte offset
// of the record in that file in the lower 32 bits. A ChunkRef is only
// meaningful for the segment it came from.
type ChunkRef uint64

func newChunkRef(file, offset uint32) ChunkRef { return ChunkRef(uint64(file)<<32 | uint64(offset)) }

// File returns the sequence number of the chunks file.
func (r ChunkRef) File() uint32 { return uint32(r >> 32) }

// Offset returns the byte offset of the chunk record in its file.
func (r ChunkRef) Offset() uint32 { return uint32(r) }

func (r ChunkRef) String() string { return fmt.Sprintf("%06d@%d", r.File(), r.Offset()) }

// ChunkMeta describes one chunk of a series.
//
// When writing, Chunk must be set; Ref is ignored. When reading, Select
// returns metas with Ref set and Chunk nil: load the chunk with
// Segment.ReadChunk(meta.Ref).
type ChunkMeta struct {
	Kind ChunkKind
	// MinTime and MaxTime are the first and last sample timestamps in
	// milliseconds, inclusive. A writer computes them from Chunk when both
	// are zero.
	MinTime, MaxTime int64
	// Ref locates the chunk in the segment it was read from.
	Ref ChunkRef
	// Stats are the chunk's statistics, when reading a segment that has
	// them (format versions 3 and 4); a writer computes them itself and
	// ignores this field.
	Stats ChunkStats
	// Chunk holds the samples. Chunks returned by ReadChunk are read-only
	// views of mmapped memory: do not append to them, and do not use them
	// after the segment is closed.
	Chunk chunkenc.Chunk
}

// chunkTimes returns the first and last timestamp of c.
func chunkTimes(c chunkenc.Chunk) (mint, maxt int64, err error) {
	mint, maxt = math.MaxInt64, math.MinInt64
	it := c.Iterator(nil)
	n := 0
	for it.Next() != chunkenc.ValNone {
		t := it.AtT()
		if n == 0 {
			mint = t
		}
		maxt = t
		n++
	}
	if err := it.Err(); err != nil {
		return 0, 0, err
	}
	if n == 0 {
		return 0, 0, fmt.Errorf("chunk has no samples")
	}
	return mint, maxt, nil
}

// Chunks file layout constants.
const (
	chunksMagic        = 0x5343484B // "SCHK"
	chunksVersion      = 1          // chunk records back to back
	chunksVersionPaged = 2          // chunk records in zstd pages (a paged region)
	chunksHeaderSize   = 8          // magic(4) version(1) padding(3)

	// DefaultMaxChunkFileSize is the size after which the writer starts a
	// new chunks file.
	DefaultMaxChunkFileSize = 512 << 20
	// maxChunkFileOffset bounds offsets so they fit the 32 bits of a ChunkRef.
	maxChunkFileOffset = math.MaxUint32
)

// supportedEncoding reports whether segments store chunks of encoding e:
// XOR chunks for floats, and Prometheus' histogram and float histogram
// chunks for native histograms. The encoding byte of every chunk record
// has always been written, so segments from before histograms were
// supported (all XOR) read unchanged.
func supportedEncoding(e chunkenc.Encoding) bool {
	return e == chunkenc.EncXOR || e == chunkenc.EncHistogram || e == chunkenc.EncFloatHistogram
}

// minChunkSize is the header an iterator of encoding e reads
// unconditionally: the 2-byte sample count, and for histogram chunks the
// flags byte after it.
func minChunkSize(e chunkenc.Encoding) int {
	if e == chunkenc.EncXOR {
		return 2
	}
	return 3
}

func chunksFileName(seq uint32) string { return fmt.Sprintf("chunks/%06d", seq) }

func chunksHeader() []byte { return chunksHeaderVersion(chunksVersion) }

func chunksHeaderVersion(v byte) []byte {
	h := make([]byte, chunksHeaderSize)
	binary.BigEndian.PutUint32(h, chunksMagic)
	h[4] = v
	return h
}

// checkChunksHeader checks the header of a chunks file of a segment of
// format version formatVersion and returns the file's version.
func checkChunksHeader(b []byte, formatVersion int) (byte, error) {
	if len(b) < chunksHeaderSize {
		return 0, errShort
	}
	if m := binary.BigEndian.Uint32(b); m != chunksMagic {
		return 0, fmt.Errorf("bad magic %#x", m)
	}
	v := b[4]
	if v != chunksVersion && (v != chunksVersionPaged || !compressedVersion(formatVersion)) {
		return 0, fmt.Errorf("unsupported chunks file version %d", v)
	}
	return v, nil
}

// appendChunkRecord appends a chunk record: uvarint(len(data)), encoding
// byte, data, CRC32C(encoding byte + data) big-endian.
func appendChunkRecord(dst []byte, enc chunkenc.Encoding, data []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(data)))
	start := len(dst)
	dst = append(dst, byte(enc))
	dst = append(dst, data...)
	return binary.BigEndian.AppendUint32(dst, crc32c(dst[start:]))
}

// decodeChunkRecord decodes the chunk record at off in a chunks file b. The
// returned data aliases b.
func decodeChunkRecord(b []byte, off uint32) (chunkenc.Encoding, []byte, error) {
	if uint64(off) < chunksHeaderSize || uint64(off) >= uint64(len(b)) {
		return 0, nil, fmt.Errorf("chunk offset %d out of bounds (file size %d)", off, len(b))
	}
	return decodeRecord(b[off:])
}

// decodeRecord decodes the chunk record at the start of b.
func decodeRecord(b []byte) (chunkenc.Encoding, []byte, error) {
	d := decbuf{b: b}
	n := d.uvarint()
	if d.err != nil {
		return 0, nil, fmt.Errorf("read chunk length: %w", d.err)
	}
	if n > uint64(d.len()) || uint64(d.len())-n < 5 {
		return 0, nil, fmt.Errorf("chunk length %d exceeds file", n)
	}
	body := d.bytes(n + 1) // encoding byte + data
	sum := d.be32()
	if got := crc32c(body); got != sum {
		return 0, nil, fmt.Errorf("chunk record: %w (stored %08x, computed %08x)", ErrChecksum, sum, got)
	}
	enc := chunkenc.Encoding(body[0])
	data := body[1:]
	if !supportedEncoding(enc) {
		return 0, nil, fmt.Errorf("unsupported chunk encoding %d", enc)
	}
	if len(data) < minChunkSize(enc) {
		return 0, nil, fmt.Errorf("chunk of %d bytes is shorter than its header", len(data))
	}
	return enc, data, nil
}
