package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/golang/snappy"
)

const readBufSize = 1 << 20

// frameError says why the frame at off is not a good record.
type frameError struct {
	off int64
	// tail is true when nothing but zeros follows the bad frame's declared
	// end, or that end lies past the end of the file: the signature of a
	// write torn by a crash, which repair may cut off. A bad frame followed
	// by more data is corruption.
	tail bool
	err  error
}

func (e *frameError) Error() string { return fmt.Sprintf("at offset %d: %v", e.off, e.err) }
func (e *frameError) Unwrap() error { return e.err }

var (
	errZeroTail = errors.New("zero-filled tail")
	errTorn     = errors.New("record extends past end of file")
	errChecksum = errors.New("checksum mismatch")
	// errLengthPastEOF is a frame length running past the end of the file
	// with good frames after its header: damage, not a torn write.
	errLengthPastEOF = errors.New("record length runs past end of file but good records follow")
)

// followScan bounds how far frameFollows looks for a good frame, and the
// largest candidate frame it checksums: a torn write is at most one group
// commit's write(2), and damage is followed by the next frame within the
// damaged record's true length.
const followScan = 4 << 20

// segmentReader reads the frames of one segment file front to back.
type segmentReader struct {
	f    *os.File
	src  io.Reader // f, limited to size
	size int64     // file size when opened; later growth is not read
	off  int64     // file offset of buf[r]: the next frame
	buf  []byte    // buf[r:w] holds file bytes not yet consumed
	r, w int
	dec  []byte // decompression buffer
}

func newSegmentReader(f *os.File, size int64) *segmentReader {
	n := int64(readBufSize)
	if size < n {
		n = max(size, frameHeaderSize)
	}
	return &segmentReader{f: f, src: io.NewSectionReader(f, 0, size), size: size, buf: make([]byte, n)}
}

// fill makes at least n unconsumed bytes available in buf[r:w]. The caller
// has checked that the file holds them.
func (s *segmentReader) fill(n int) error {
	if s.w-s.r >= n {
		return nil
	}
	if s.r > 0 {
		s.w = copy(s.buf, s.buf[s.r:s.w])
		s.r = 0
	}
	if n > len(s.buf) {
		nb := make([]byte, max(n, 2*len(s.buf)))
		copy(nb, s.buf[:s.w])
		s.buf = nb
	}
	for s.w < n {
		k, err := s.src.Read(s.buf[s.w:])
		s.w += k
		if err == io.EOF && s.w < n {
			return io.ErrUnexpectedEOF // The file shrank under us.
		}
		if err != nil && err != io.EOF {
			return err
		}
	}
	return nil
}

// next returns the next record, io.EOF at the clean end of the segment, a
// *frameError for a bad frame (the reader then stays on that frame), or
// another error for a failed read. With decode false, a snappy payload is
// verified by checksum only and the returned record is nil. The record is
// valid until the next call.
func (s *segmentReader) next(decode bool) ([]byte, error) {
	left := s.size - s.off
	if left == 0 {
		return nil, io.EOF
	}
	if left < frameHeaderSize {
		if err := s.fill(int(left)); err != nil {
			return nil, err
		}
		if isZero(s.buf[s.r:s.w]) {
			return nil, &frameError{off: s.off, tail: true, err: errZeroTail}
		}
		return nil, &frameError{off: s.off, tail: true, err: errTorn}
	}
	if err := s.fill(frameHeaderSize); err != nil {
		return nil, err
	}
	hdr := s.buf[s.r : s.r+frameHeaderSize]
	typ := hdr[0]
	length := int64(binary.LittleEndian.Uint32(hdr[1:5]))
	end := s.off + frameHeaderSize + length
	if typ == frameZero {
		zero, err := s.zeroFrom(s.off)
		if err != nil {
			return nil, err
		}
		if zero {
			return nil, &frameError{off: s.off, tail: true, err: errZeroTail}
		}
	}
	if end > s.size {
		// A crash tears only the last write: a length running past the end
		// is a torn tail only when no good frame follows its header. A
		// length enlarged by damage in the middle of the file has the
		// following frames right behind it.
		more, err := s.frameFollows(s.off + frameHeaderSize)
		if err != nil {
			return nil, err
		}
		if more {
			return nil, &frameError{off: s.off, err: errLengthPastEOF}
		}
		return nil, &frameError{off: s.off, tail: true, err: errTorn}
	}
	if err := s.fill(int(frameHeaderSize + length)); err != nil {
		return nil, err
	}
	hdr = s.buf[s.r : s.r+frameHeaderSize]
	payload := s.buf[s.r+frameHeaderSize : s.r+frameHeaderSize+int(length)]
	var ferr error
	switch {
	case typ != frameRaw && typ != frameSnappy:
		ferr = fmt.Errorf("invalid frame type 0x%02x", typ)
	case frameCRC(hdr[:5], payload) != binary.LittleEndian.Uint32(hdr[5:9]):
		ferr = errChecksum
	}
	var rec []byte
	if ferr == nil && decode {
		rec, s.dec, ferr = decodePayload(typ, payload, s.dec)
	}
	if ferr != nil {
		zero, err := s.zeroFrom(end)
		if err != nil {
			return nil, err
		}
		return nil, &frameError{off: s.off, tail: zero, err: ferr}
	}
	s.r += frameHeaderSize + int(length)
	s.off = end
	return rec, nil
}

// zeroFrom reports whether the file holds only zero bytes from off to its
// end (true when off is at or past the end).
func (s *segmentReader) zeroFrom(off int64) (bool, error) {
	var buf [32 << 10]byte
	for off < s.size {
		n := int64(len(buf))
		if s.size-off < n {
			n = s.size - off
		}
		k, err := s.f.ReadAt(buf[:n], off)
		if err != nil && !(err == io.EOF && int64(k) == n) {
			return false, err
		}
		if !isZero(buf[:k]) {
			return false, nil
		}
		off += int64(k)
	}
	return true, nil
}

func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// frameFollows reports whether a frame with a valid type, a length that
// fits in the file and a matching checksum starts anywhere in the
// followScan bytes from off.
func (s *segmentReader) frameFollows(off int64) (bool, error) {
	n := min(s.size-off, followScan+frameHeaderSize)
	if n < frameHeaderSize {
		return false, nil
	}
	buf := make([]byte, n)
	if _, err := s.f.ReadAt(buf, off); err != nil && err != io.EOF {
		return false, err
	}
	var payload []byte
	for i := 0; i+frameHeaderSize <= len(buf); i++ {
		typ := buf[i]
		if typ != frameRaw && typ != frameSnappy {
			continue
		}
		length := int64(binary.LittleEndian.Uint32(buf[i+1 : i+5]))
		start := off + int64(i) + frameHeaderSize
		if length > followScan || start+length > s.size {
			continue
		}
		if int64(i)+frameHeaderSize+length <= n {
			payload = buf[i+frameHeaderSize : int64(i)+frameHeaderSize+length]
		} else {
			payload = make([]byte, length)
			if _, err := s.f.ReadAt(payload, start); err != nil && err != io.EOF {
				return false, err
			}
		}
		if frameCRC(buf[i:i+5], payload) == binary.LittleEndian.Uint32(buf[i+5:i+9]) {
			return true, nil
		}
	}
	return false, nil
}

// resyncBudget bounds the payload bytes one resync checksums for
// candidate frames longer than followScan; past it only shorter
// candidates are checked, so that garbage claiming huge lengths cannot
// make a repair take minutes.
const resyncBudget = 1 << 30

// resync returns the offset of the first good frame at or after from (a
// valid type, a length that fits in the file, a matching checksum and, for
// a snappy payload, a decodable length), or -1 if there is none. A chance
// match of the 32-bit checksum on garbage is the only way to land on a
// false frame. The reader is left where it was: call seek to move it.
func (s *segmentReader) resync(from int64) (int64, error) {
	if from+frameHeaderSize > s.size {
		return -1, nil
	}
	rest := make([]byte, s.size-from)
	if _, err := s.f.ReadAt(rest, from); err != nil && err != io.EOF {
		return -1, err
	}
	budget := int64(resyncBudget)
	for i := 0; i+frameHeaderSize <= len(rest); i++ {
		typ := rest[i]
		if typ != frameRaw && typ != frameSnappy {
			continue
		}
		length := int64(binary.LittleEndian.Uint32(rest[i+1 : i+5]))
		end := int64(i) + frameHeaderSize + length
		if end > int64(len(rest)) {
			continue
		}
		if length > followScan {
			if budget < length {
				continue
			}
			budget -= length
		}
		payload := rest[i+frameHeaderSize : end]
		if frameCRC(rest[i:i+5], payload) != binary.LittleEndian.Uint32(rest[i+5:i+9]) {
			continue
		}
		if typ == frameSnappy {
			if n, err := snappy.DecodedLen(payload); err != nil || n > MaxRecordSize || n > snappyMaxExpansion*len(payload) {
				continue
			}
		}
		return from + int64(i), nil
	}
	return -1, nil
}

// seek moves the reader to the frame at off.
func (s *segmentReader) seek(off int64) {
	s.src = io.NewSectionReader(s.f, off, s.size-off)
	s.off, s.r, s.w = off, 0, 0
}
