package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"

	"github.com/golang/snappy"
)

// A frame is one record on disk:
//
//	type (1 byte) | length (4 bytes, little endian) | CRC32C (4 bytes, little endian) | payload (length bytes)
//
// The CRC covers the type byte, the length bytes and the payload. See
// docs/wal-format.md.
const (
	frameHeaderSize = 9

	// frameZero is never written: a zero type byte at a frame boundary
	// starts either a zero-filled tail or corruption.
	frameZero   byte = 0
	frameRaw    byte = 1 // payload is the record as is
	frameSnappy byte = 2 // payload is the snappy block encoding of the record
)

// MaxRecordSize is the largest record, in bytes before compression, that
// Log accepts and that Replay decodes.
const MaxRecordSize = 256 << 20

// snappyMaxExpansion bounds the ratio of decoded to encoded size of a
// valid snappy block (the densest op, a 3-byte copy, yields 64 bytes), so
// that a corrupt length claim cannot make Replay allocate much.
const snappyMaxExpansion = 22

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrRecordTooLarge is returned by Log for a record over MaxRecordSize.
var ErrRecordTooLarge = errors.New("record too large")

// appendFrame appends the frame of rec to dst. The payload is snappy
// compressed unless that does not make it smaller.
func appendFrame(dst, rec []byte) []byte {
	start := len(dst)
	maxLen := snappy.MaxEncodedLen(len(rec))
	dst = slices.Grow(dst, frameHeaderSize+maxLen)
	p := start + frameHeaderSize
	typ := frameSnappy
	payload := snappy.Encode(dst[p:p+maxLen], rec)
	if len(payload) >= len(rec) {
		typ = frameRaw
		payload = append(dst[p:p], rec...)
	}
	dst = dst[:p+len(payload)]
	dst[start] = typ
	binary.LittleEndian.PutUint32(dst[start+1:], uint32(len(payload)))
	binary.LittleEndian.PutUint32(dst[start+5:], frameCRC(dst[start:start+5], payload))
	return dst
}

// frameCRC returns the checksum of a frame with header hdr (type and
// length, 5 bytes) and payload.
func frameCRC(hdr, payload []byte) uint32 {
	return crc32.Update(crc32.Checksum(hdr, castagnoli), castagnoli, payload)
}

// decodePayload returns the record of a verified frame's payload,
// decompressing into buf (grown as needed; the result may alias buf or
// payload).
func decodePayload(typ byte, payload, buf []byte) (rec, newBuf []byte, err error) {
	if typ == frameRaw {
		return payload, buf, nil
	}
	n, err := snappy.DecodedLen(payload)
	if err != nil {
		return nil, buf, fmt.Errorf("decode snappy length: %w", err)
	}
	if n > MaxRecordSize || n > snappyMaxExpansion*len(payload) {
		return nil, buf, fmt.Errorf("snappy claims %d bytes from %d", n, len(payload))
	}
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	rec, err = snappy.Decode(buf[:cap(buf)], payload)
	if err != nil {
		return nil, buf, fmt.Errorf("decode snappy: %w", err)
	}
	return rec, buf, nil
}
