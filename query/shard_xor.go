package query

import (
	"encoding/binary"
	"errors"
	"math"

	"github.com/prometheus/prometheus/promql"
)

// errXOR is returned for an XOR chunk whose bits end early or do not
// follow the encoding.
var errXOR = errors.New("malformed XOR chunk")

// xorBits reads a bit stream most significant bit first, eight bytes at a
// time where it can.
type xorBits struct {
	b   []byte
	i   int    // next byte of b to load
	buf uint64 // the next bits, left-aligned
	n   uint   // how many bits of buf are loaded
}

func (r *xorBits) refill() {
	if r.i+8 <= len(r.b) {
		// Bits past n are the stream's own next bits: OR-ing them in again
		// on the next refill changes nothing.
		r.buf |= binary.BigEndian.Uint64(r.b[r.i:]) >> r.n
		adv := (64 - r.n) >> 3
		r.i += int(adv)
		r.n += adv << 3
		return
	}
	for r.n <= 56 && r.i < len(r.b) {
		r.buf |= uint64(r.b[r.i]) << (56 - r.n)
		r.i++
		r.n += 8
	}
}

// read returns the next k bits, 1 <= k <= 64.
func (r *xorBits) read(k uint) (uint64, bool) {
	if k > 56 {
		hi, ok1 := r.read(k - 32)
		lo, ok2 := r.read(32)
		return hi<<32 | lo, ok1 && ok2
	}
	if r.n < k {
		r.refill()
		if r.n < k {
			return 0, false
		}
	}
	v := r.buf >> (64 - k)
	r.buf <<= k
	r.n -= k
	return v, true
}

// bit returns the next bit.
func (r *xorBits) bit() (uint64, bool) {
	if r.n == 0 {
		r.refill()
		if r.n == 0 {
			return 0, false
		}
	}
	v := r.buf >> 63
	r.buf <<= 1
	r.n--
	return v, true
}

func (r *xorBits) read64() (uint64, bool) { return r.read(64) }

func (r *xorBits) uvarint() (uint64, bool) {
	var x uint64
	var s uint
	for i := range binary.MaxVarintLen64 {
		b, ok := r.read(8)
		if !ok {
			return 0, false
		}
		if b < 0x80 {
			if i == binary.MaxVarintLen64-1 && b > 1 {
				return 0, false // overflow
			}
			return x | b<<s, true
		}
		x |= (b & 0x7f) << s
		s += 7
	}
	return 0, false
}

func (r *xorBits) varint() (int64, bool) {
	ux, ok := r.uvarint()
	x := int64(ux >> 1)
	if ux&1 != 0 {
		x = ^x
	}
	return x, ok
}

// appendXOR appends the samples of the XOR chunk data (Prometheus'
// chunkenc encoding: a 2-byte sample count, then the bit stream) with
// timestamps in [mint, maxt] to dst, the same samples, bit for bit, that
// chunkenc's iterator gives, in one loop without a call per sample. It
// stops at the first sample past maxt.
func appendXOR(dst []promql.FPoint, data []byte, mint, maxt int64) ([]promql.FPoint, error) {
	if len(data) < 2 {
		return dst, errXOR
	}
	num := int(binary.BigEndian.Uint16(data))
	if num == 0 {
		return dst, nil
	}
	r := xorBits{b: data[2:]}
	t, ok := r.varint()
	if !ok {
		return dst, errXOR
	}
	vb, ok := r.read64()
	if !ok {
		return dst, errXOR
	}
	if t > maxt {
		return dst, nil
	}
	if t >= mint {
		dst = append(dst, promql.FPoint{T: t, F: math.Float64frombits(vb)})
	}
	if num == 1 {
		return dst, nil
	}
	delta, ok := r.uvarint()
	if !ok {
		return dst, errXOR
	}
	var leading, trailing uint
	known := false // leading and trailing have been read
	for i := 1; i < num; i++ {
		if i > 1 {
			// The delta of the timestamp delta: 0, or a 2-4 bit prefix and
			// 14, 17, 20 or 64 bits.
			b, ok := r.bit()
			if !ok {
				return dst, errXOR
			}
			if b != 0 {
				var sz uint
				var pre uint64
				for pre = 1; pre < 4; pre++ {
					if b, ok = r.bit(); !ok {
						return dst, errXOR
					}
					if b == 0 {
						break
					}
				}
				var dod int64
				switch pre {
				case 1:
					sz = 14
				case 2:
					sz = 17
				case 3:
					sz = 20
				default:
					bits, ok := r.read64()
					if !ok {
						return dst, errXOR
					}
					dod = int64(bits)
				}
				if sz != 0 {
					bits, ok := r.read(sz)
					if !ok {
						return dst, errXOR
					}
					if bits > 1<<(sz-1) {
						bits -= 1 << sz
					}
					dod = int64(bits)
				}
				delta = uint64(int64(delta) + dod)
			}
		}
		t += int64(delta)
		// The value: 0 (unchanged), 10 and the meaningful bits within
		// the previous window, or 11, 5 bits leading zeros, 6 bits length
		// (0 is 64) and the bits.
		b, ok := r.bit()
		if !ok {
			return dst, errXOR
		}
		if b != 0 {
			if b, ok = r.bit(); !ok {
				return dst, errXOR
			}
			if b != 0 {
				l, ok1 := r.read(5)
				m, ok2 := r.read(6)
				if !ok1 || !ok2 {
					return dst, errXOR
				}
				if m == 0 {
					m = 64
				}
				if uint(l)+uint(m) > 64 {
					return dst, errXOR
				}
				leading, trailing, known = uint(l), 64-uint(l)-uint(m), true
			} else if !known {
				return dst, errXOR
			}
			mbits := 64 - leading - trailing
			bits, ok := r.read(mbits)
			if !ok {
				return dst, errXOR
			}
			vb ^= bits << trailing
		}
		if t > maxt {
			return dst, nil
		}
		if t >= mint {
			dst = append(dst, promql.FPoint{T: t, F: math.Float64frombits(vb)})
		}
	}
	return dst, nil
}
