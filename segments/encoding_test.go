package segments

import (
	"encoding/binary"
	"math"
	"testing"
)

// TestDecbufVarint: decbuf.varint reads what binary.Varint reads, and
// fails where it fails (input cut short, a varint longer than 64 bits),
// leaving 0 and the error.
func TestDecbufVarint(t *testing.T) {
	f := func(b []byte) {
		t.Helper()
		want, n := binary.Varint(b)
		d := decbuf{b: b}
		got := d.varint()
		if (n <= 0) != (d.err != nil) || n > 0 && (got != want || d.len() != len(b)-n) || n <= 0 && got != 0 {
			t.Fatalf("varint of %x: %d, err %v, %d bytes left; binary.Varint: %d, n %d", b, got, d.err, d.len(), want, n)
		}
	}
	for _, v := range []int64{0, 1, -1, 63, -64, 64, -65, 1 << 40, -(1 << 40), math.MaxInt64, math.MinInt64} {
		b := binary.AppendVarint(nil, v)
		f(b)
		f(append(b, 0x7f))
		f(b[:len(b)-1])
	}
	f(nil)
	f([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}) // 11 bytes
	f([]byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x02})       // overflows in the 10th
}
