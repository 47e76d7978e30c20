package segments

import (
	"encoding/binary"
	"errors"
	"math"
	"math/bits"
	"slices"

	"github.com/prometheus/prometheus/model/value"
)

// errXOR is returned for an XOR chunk whose bits end early or do not
// follow the encoding.
var errXOR = errors.New("malformed XOR chunk")

// XORPoint is a float sample as AppendXOR appends it: promql.FPoint, or
// any struct of the same two fields (segments does not import promql).
type XORPoint interface {
	~struct {
		T int64
		F float64
	}
}

// xorPoint is the point type AppendXOR builds and converts to P.
type xorPoint = struct {
	T int64
	F float64
}

// xorSlack is how many bytes past a bit position one sample's decoding
// may load: a sample takes at most 145 bits (a 4-bit prefix and a 64-bit
// timestamp delta of delta; 2 control bits, 11 bits of window and 64 bits
// of value), and each read loads 8 bytes from the byte that holds the
// position.
const xorSlack = 145/8 + 1 + 8

// AppendXOR appends the samples of the XOR chunk data (Prometheus'
// chunkenc encoding: a 2-byte sample count, then the bit stream) with
// timestamps in [mint, maxt] to dst, the same samples, bit for bit, that
// chunkenc's iterator gives, in one loop without a call per sample. It
// stops at the first sample past maxt. Stale is how many of the samples
// appended are stale markers.
//
// The first sample and the second's timestamp are byte-aligned varints
// and bits; from there on every field is read by loading the 8 bytes that
// hold the bit position, so the loop keeps no bit buffer. Within
// xorSlack bytes of the end the rest of the stream is copied into a
// zero-padded array first, and a sample that ends past the stream's last
// bit is an error.
func AppendXOR[P XORPoint](dst []P, data []byte, mint, maxt int64) (_ []P, stale int, err error) {
	if len(data) < 2 {
		return dst, stale, errXOR
	}
	num := int(binary.BigEndian.Uint16(data))
	if num == 0 {
		return dst, stale, nil
	}
	b := data[2:]
	t, n := binary.Varint(b)
	if n <= 0 || len(b) < n+8 {
		return dst, stale, errXOR
	}
	b = b[n:]
	vb := binary.BigEndian.Uint64(b)
	b = b[8:]
	if t > maxt {
		return dst, stale, nil
	}
	if t >= mint {
		dst = append(dst, P(xorPoint{T: t, F: math.Float64frombits(vb)}))
		if vb == value.StaleNaN {
			stale++
		}
	}
	if num == 1 {
		return dst, stale, nil
	}
	delta, n := binary.Uvarint(b)
	if n <= 0 {
		return dst, stale, errXOR
	}
	b = b[n:]
	dst = slices.Grow(dst, num-1)

	var (
		tail     [2 * xorSlack]byte
		inTail   bool
		pos      uint // bit position in b
		end      = uint(len(b)) * 8
		leading  uint8 // as chunkenc's iterator starts
		trailing uint8
	)
	for i := 1; i < num; i++ {
		if !inTail && uint(len(b))-pos>>3 < xorSlack {
			// Near the end: go on in a zero-padded copy of the rest.
			copy(tail[:], b[pos>>3:])
			end -= pos &^ 7
			pos &= 7
			b = tail[:]
			inTail = true
		}
		if i > 1 {
			// The delta of the timestamp delta: 0, or a prefix of 10, 110,
			// 1110 with 14, 17 or 20 bits, or 1111 with 64 bits.
			w := binary.BigEndian.Uint64(b[pos>>3:]) << (pos & 7)
			if w>>63 != 0 {
				ones := uint(bits.LeadingZeros64(^w))
				var dod int64
				switch ones {
				case 1, 2, 3:
					sz := [4]uint{0, 14, 17, 20}[ones]
					v := w << (ones + 1) >> (64 - sz)
					if v > 1<<(sz-1) {
						v -= 1 << sz
					}
					dod = int64(v)
					pos += ones + 1 + sz
				default:
					pos += 4
					hi := binary.BigEndian.Uint64(b[pos>>3:]) << (pos & 7) >> 32
					pos += 32
					lo := binary.BigEndian.Uint64(b[pos>>3:]) << (pos & 7) >> 32
					pos += 32
					dod = int64(hi<<32 | lo)
				}
				delta = uint64(int64(delta) + dod)
			} else {
				pos++
			}
		}
		t += int64(delta)
		// The value: 0 (unchanged), or 10 and the meaningful bits within
		// the previous window, or 11, 5 bits of leading zeros, 6 bits of
		// length (0 is 64) and the bits.
		w := binary.BigEndian.Uint64(b[pos>>3:]) << (pos & 7)
		if w>>63 != 0 {
			if w>>62&1 != 0 {
				l, m := uint8(w>>57&31), uint8(w>>51&63)
				if m == 0 {
					m = 64
				}
				if l+m > 64 {
					return dst, stale, errXOR
				}
				leading, trailing = l, 64-l-m
				pos += 13
			} else {
				pos += 2
			}
			mbits := uint(64 - leading - trailing)
			var v uint64
			if mbits <= 56 {
				v = binary.BigEndian.Uint64(b[pos>>3:]) << (pos & 7) >> (64 - mbits)
			} else {
				hi := binary.BigEndian.Uint64(b[pos>>3:]) << (pos & 7) >> 32
				r := mbits - 32
				lo := binary.BigEndian.Uint64(b[(pos+32)>>3:]) << ((pos + 32) & 7) >> (64 - r)
				v = hi<<r | lo
			}
			pos += mbits
			vb ^= v << trailing
		} else {
			pos++
		}
		if pos > end {
			return dst, stale, errXOR
		}
		if t > maxt {
			return dst, stale, nil
		}
		if t >= mint {
			dst = append(dst, P(xorPoint{T: t, F: math.Float64frombits(vb)}))
			if vb == value.StaleNaN {
				stale++
			}
		}
	}
	return dst, stale, nil
}
