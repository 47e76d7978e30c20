package segments

import (
	"crypto/rand"
	"encoding/binary"
	"time"
)

const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// NewID returns a new segment ID for time t: a ULID (26 Crockford base32
// characters; 48 bits of milliseconds, then 80 random bits). IDs sort
// lexically by time to the millisecond.
func NewID(t time.Time) string {
	var b [16]byte
	ms := uint64(t.UnixMilli())
	binary.BigEndian.PutUint16(b[0:], uint16(ms>>32))
	binary.BigEndian.PutUint32(b[2:], uint32(ms))
	_, _ = rand.Read(b[6:]) // crypto/rand.Read never fails.
	return EncodeID(b)
}

// EncodeID writes 128 bits as a segment ID: 26 Crockford base32
// characters, the first holding the top 3 bits. Callers that need an ID
// derived from something other than the time and random bits (rollups,
// whose IDs must be the same when built twice) build the bytes themselves.
func EncodeID(b [16]byte) string {
	hi, lo := binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
	var out [26]byte
	for i := range out {
		// Character i holds bits [125-5i, 130-5i) of the 128-bit value.
		s := uint(125 - 5*i)
		var v uint64
		switch {
		case s >= 64:
			v = hi >> (s - 64)
		case s == 0:
			v = lo
		default:
			v = hi<<(64-s) | lo>>s
		}
		out[i] = crockford[v&31]
	}
	return string(out[:])
}

// isULID reports whether s looks like an ID made by NewID.
func isULID(s string) bool {
	if len(s) != 26 || s[0] > '7' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Z') || c == 'I' || c == 'L' || c == 'O' || c == 'U' {
			return false
		}
	}
	return true
}
