package segments

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"unsafe"
)

// castagnoli is the CRC32C table used for every checksum in a segment.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func crc32c(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

var errShort = errors.New("unexpected end of data")

// decbuf decodes from a byte slice. The first error sticks: later calls
// return zero values, so a decoder checks err once at the end of a record.
// It never panics on malformed input.
type decbuf struct {
	b   []byte
	err error
}

func (d *decbuf) len() int { return len(d.b) }

func (d *decbuf) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errShort
		if n < 0 {
			d.err = errors.New("varint overflows 64 bits")
		}
		return 0
	}
	d.b = d.b[n:]
	return v
}

// varint reads a zigzag-encoded varint, as binary.Varint does: the
// uvarint, its low bit the sign.
func (d *decbuf) varint() int64 {
	u := d.uvarint()
	x := int64(u >> 1)
	if u&1 != 0 {
		x = ^x
	}
	return x
}

func (d *decbuf) byte() byte {
	if d.err != nil {
		return 0
	}
	if len(d.b) < 1 {
		d.err = errShort
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decbuf) be32() uint32 {
	if d.err != nil {
		return 0
	}
	if len(d.b) < 4 {
		d.err = errShort
		return 0
	}
	v := binary.BigEndian.Uint32(d.b)
	d.b = d.b[4:]
	return v
}

func (d *decbuf) be64() uint64 {
	if d.err != nil {
		return 0
	}
	if len(d.b) < 8 {
		d.err = errShort
		return 0
	}
	v := binary.BigEndian.Uint64(d.b)
	d.b = d.b[8:]
	return v
}

// bytes returns the next n bytes without copying.
func (d *decbuf) bytes(n uint64) []byte {
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.err = errShort
		return nil
	}
	b := d.b[:n:n]
	d.b = d.b[n:]
	return b
}

// uvarintBytes returns a uvarint length-prefixed byte string without copying.
func (d *decbuf) uvarintBytes() []byte { return d.bytes(d.uvarint()) }

// yoloString views b as a string without copying. The string is only valid
// while b's memory is (for mmapped files: until the segment is closed), so it
// must be cloned before it leaves the package.
func yoloString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// encbuf appends to a byte slice.
type encbuf struct{ b []byte }

func (e *encbuf) reset()              { e.b = e.b[:0] }
func (e *encbuf) putByte(c byte)      { e.b = append(e.b, c) }
func (e *encbuf) putUvarint(x uint64) { e.b = binary.AppendUvarint(e.b, x) }
func (e *encbuf) putVarint(x int64)   { e.b = binary.AppendVarint(e.b, x) }
func (e *encbuf) putBE32(x uint32)    { e.b = binary.BigEndian.AppendUint32(e.b, x) }
func (e *encbuf) putBE64(x uint64)    { e.b = binary.BigEndian.AppendUint64(e.b, x) }
func (e *encbuf) putUvarintStr(s string) {
	e.putUvarint(uint64(len(s)))
	e.b = append(e.b, s...)
}

func crc32cUpdate(crc uint32, b []byte) uint32 { return crc32.Update(crc, castagnoli, b) }
