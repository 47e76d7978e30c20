package buffer

import (
	"encoding/binary"
	"math"
	"math/bits"
	"unsafe"

	"github.com/prometheus/prometheus/tsdb/chunkenc"
)

// xorState is what appending to a series' open float chunk needs besides
// the chunk's bytes and the last timestamp (memSeries.lastT): chunkenc's
// xorAppender, a 48-byte allocation per open chunk, kept in the series
// instead (in what was the appender's interface value and padding).
type xorState struct {
	v      float64 // the last value
	tDelta uint64  // the last timestamp delta
}

// xorBits is the rest of the state: the leading and trailing zeros of the
// last value delta (leading 0xff: none yet) and the unwritten bits of the
// stream's last byte.
type xorBits struct {
	leading, trailing, free uint8
}

// newXORBits is the state of an empty chunk.
var newXORBits = xorBits{leading: 0xff}

// appendXORLocked appends (t, v) to the open float chunk, as chunkenc's
// xorAppender.Append writes it, bit for bit (TestXORAppendMatchesChunkenc),
// so that every reader of XOR chunks reads it.
func (s *memSeries) appendXORLocked(t int64, v float64) {
	c := s.head.chunk.(*chunkenc.XORChunk)
	w := bitWriter{b: c.Bytes(), free: s.xorBits.free}
	num := binary.BigEndian.Uint16(w.b)
	var tDelta uint64
	switch num {
	case 0:
		var buf [binary.MaxVarintLen64]byte
		for _, b := range buf[:binary.PutVarint(buf[:], t)] {
			w.writeByte(b)
		}
		w.writeBits(math.Float64bits(v), 64)
	case 1:
		tDelta = uint64(t - s.lastT)
		var buf [binary.MaxVarintLen64]byte
		for _, b := range buf[:binary.PutUvarint(buf[:], tDelta)] {
			w.writeByte(b)
		}
		s.writeVDelta(&w, v, 0, 0)
	case math.MaxUint16:
		panic("chunk capacity exceeded")
	default:
		tDelta = uint64(t - s.lastT)
		dod := int64(tDelta - s.xor.tDelta)
		// The timestamp's bits go with the value's in one write where
		// they fit (writeVDelta).
		switch {
		case dod == 0:
			s.writeVDelta(&w, v, 0, 1)
		case bitRange(dod, 14):
			s.writeVDelta(&w, v, 0b10<<14|uint64(dod)&(1<<14-1), 16)
		case bitRange(dod, 17):
			s.writeVDelta(&w, v, 0b110<<17|uint64(dod)&(1<<17-1), 20)
		case bitRange(dod, 20):
			s.writeVDelta(&w, v, 0b1110<<20|uint64(dod)&(1<<20-1), 24)
		default:
			w.writeBits(0b1111, 4)
			w.writeBits(uint64(dod), 64)
			s.writeVDelta(&w, v, 0, 0)
		}
	}
	binary.BigEndian.PutUint16(w.b, num+1)
	c.Reset(w.b) // the stream may have moved; its free bits are ours
	s.xorBits.free = w.free
	s.xor = xorState{v: v, tDelta: tDelta}
	s.noteOpenLocked(w.b)
}

// noteOpenLocked updates the prefetch hints of the open float chunk
// (memSeries.openAt) to its bytes b: the atomic stores are made only when
// the bytes moved or their last byte entered another cache line.
func (s *memSeries) noteOpenLocked(b []byte) {
	at, last := uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(len(b)-1)
	if at != s.openAt.Load() {
		s.openAt.Store(at)
		s.openTail.Store(uint32(last))
		return
	}
	if (at+last)/cacheLine != (at+uintptr(s.openTail.Load()))/cacheLine {
		s.openTail.Store(uint32(last))
	}
}

// cacheLine is the size of a cache line on the processors Strata runs
// on, in bytes.
const cacheLine = 64

// bitRange reports whether x can be represented in nbits (chunkenc's).
func bitRange(x int64, nbits uint8) bool {
	return -((1<<(nbits-1))-1) <= x && x <= 1<<(nbits-1)
}

// writeVDelta writes v as its XOR with the last value (chunkenc's
// xorWrite), after the npre (at most 24) right-most bits of pre: in one
// writeBits call where they fit in 64 bits.
func (s *memSeries) writeVDelta(w *bitWriter, v float64, pre uint64, npre int) {
	delta := math.Float64bits(v) ^ math.Float64bits(s.xor.v)
	if delta == 0 {
		w.writeBits(pre<<1, npre+1) // 0
		return
	}
	leading := uint8(bits.LeadingZeros64(delta))
	trailing := uint8(bits.TrailingZeros64(delta))
	if leading >= 32 {
		leading = 31 // it has 5 bits
	}
	st := &s.xorBits
	if st.leading != 0xff && leading >= st.leading && trailing >= st.trailing {
		// 10, then the bits between the last delta's leading and
		// trailing zeros.
		pre, npre = pre<<2|0b10, npre+2
		s.writeSig(w, pre, npre, delta>>st.trailing, 64-int(st.leading)-int(st.trailing))
		return
	}
	st.leading, st.trailing = leading, trailing
	// 11, 5 bits of leading zeros, 6 of significant bits (64 written as
	// 0: 0 never occurs, delta != 0), then those bits.
	sigbits := 64 - leading - trailing
	pre, npre = pre<<13|0b11<<11|uint64(leading)<<6|uint64(sigbits&63), npre+13
	s.writeSig(w, pre, npre, delta>>trailing, int(sigbits))
}

// writeSig writes the npre right-most bits of pre, then the n right-most
// bits of sig (whose higher bits are 0).
func (s *memSeries) writeSig(w *bitWriter, pre uint64, npre int, sig uint64, n int) {
	if npre+n <= 64 {
		w.writeBits(pre<<uint(n)|sig, npre+n)
		return
	}
	w.writeBits(pre, npre)
	w.writeBits(sig, n)
}

// bitWriter appends bits to a stream whose last byte has free bits left
// unwritten (chunkenc's bstream).
type bitWriter struct {
	b    []byte
	free uint8
}

func (w *bitWriter) writeByte(byt byte) {
	if w.free == 0 {
		w.b = append(w.b, byt)
		return
	}
	w.b[len(w.b)-1] |= byt >> (8 - w.free)
	w.b = append(w.b, byt<<w.free)
}

// writeBits writes the nbits (at most 64) right-most bits of u, left to
// right: first into the free bits of the last byte, then whole bytes.
func (w *bitWriter) writeBits(u uint64, nbits int) {
	if nbits == 0 {
		return
	}
	u <<= 64 - uint(nbits) // left-aligned; the bits below are 0
	if w.free > 0 {
		w.b[len(w.b)-1] |= byte(u >> (64 - w.free))
		if nbits <= int(w.free) {
			w.free -= uint8(nbits)
			return
		}
		nbits -= int(w.free)
		u <<= w.free
	}
	// Byte-aligned now: the bytes of u, the last one partly filled.
	n := (nbits + 7) / 8
	w.free = uint8(8*n - nbits)
	if cap(w.b)-len(w.b) >= 8 {
		w.b = binary.BigEndian.AppendUint64(w.b, u)[:len(w.b)+n]
		return
	}
	for ; n > 0; n-- {
		w.b = append(w.b, byte(u>>56))
		u <<= 8
	}
}
