package buffer

import (
	"encoding/binary"
	"math"
	"math/bits"

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
		s.writeVDelta(&w, v)
	case math.MaxUint16:
		panic("chunk capacity exceeded")
	default:
		tDelta = uint64(t - s.lastT)
		dod := int64(tDelta - s.xor.tDelta)
		switch {
		case dod == 0:
			w.writeBit(false)
		case bitRange(dod, 14):
			w.writeByte(0b10<<6 | (uint8(dod>>8) & (1<<6 - 1)))
			w.writeByte(uint8(dod))
		case bitRange(dod, 17):
			w.writeBits(0b110, 3)
			w.writeBits(uint64(dod), 17)
		case bitRange(dod, 20):
			w.writeBits(0b1110, 4)
			w.writeBits(uint64(dod), 20)
		default:
			w.writeBits(0b1111, 4)
			w.writeBits(uint64(dod), 64)
		}
		s.writeVDelta(&w, v)
	}
	binary.BigEndian.PutUint16(w.b, num+1)
	c.Reset(w.b) // the stream may have moved; its free bits are ours
	s.xorBits.free = w.free
	s.xor = xorState{v: v, tDelta: tDelta}
}

// bitRange reports whether x can be represented in nbits (chunkenc's).
func bitRange(x int64, nbits uint8) bool {
	return -((1<<(nbits-1))-1) <= x && x <= 1<<(nbits-1)
}

// writeVDelta writes v as its XOR with the last value (chunkenc's
// xorWrite).
func (s *memSeries) writeVDelta(w *bitWriter, v float64) {
	delta := math.Float64bits(v) ^ math.Float64bits(s.xor.v)
	if delta == 0 {
		w.writeBit(false)
		return
	}
	w.writeBit(true)
	leading := uint8(bits.LeadingZeros64(delta))
	trailing := uint8(bits.TrailingZeros64(delta))
	if leading >= 32 {
		leading = 31 // it has 5 bits
	}
	st := &s.xorBits
	if st.leading != 0xff && leading >= st.leading && trailing >= st.trailing {
		w.writeBit(false)
		w.writeBits(delta>>st.trailing, 64-int(st.leading)-int(st.trailing))
		return
	}
	st.leading, st.trailing = leading, trailing
	w.writeBit(true)
	w.writeBits(uint64(leading), 5)
	// 64 significant bits are written as 0: 0 never occurs (delta != 0).
	sigbits := 64 - leading - trailing
	w.writeBits(uint64(sigbits), 6)
	w.writeBits(delta>>trailing, int(sigbits))
}

// bitWriter appends bits to a stream whose last byte has free bits left
// unwritten (chunkenc's bstream).
type bitWriter struct {
	b    []byte
	free uint8
}

func (w *bitWriter) writeBit(bit bool) {
	if w.free == 0 {
		w.b = append(w.b, 0)
		w.free = 8
	}
	if bit {
		w.b[len(w.b)-1] |= 1 << (w.free - 1)
	}
	w.free--
}

func (w *bitWriter) writeByte(byt byte) {
	if w.free == 0 {
		w.b = append(w.b, byt)
		return
	}
	w.b[len(w.b)-1] |= byt >> (8 - w.free)
	w.b = append(w.b, byt<<w.free)
}

// writeBits writes the nbits right-most bits of u, left to right.
func (w *bitWriter) writeBits(u uint64, nbits int) {
	u <<= 64 - uint(nbits)
	for nbits >= 8 {
		w.writeByte(byte(u >> 56))
		u <<= 8
		nbits -= 8
	}
	for nbits > 0 {
		w.writeBit(u>>63 == 1)
		u <<= 1
		nbits--
	}
}
