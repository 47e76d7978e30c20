package segments

import (
	"math/big"
	"math/rand"
	"strings"
	"testing"
)

// TestEncodeIDIsULIDText: EncodeID writes 128 bits as the ULID spec does,
// the value in base 32 (Crockford's alphabet), most significant character
// first, 26 characters: compared with math/big for edge values (every
// single bit, all ones) and random ones. Tools that read ULIDs parse
// segment IDs; rollups derive theirs from bytes.
func TestEncodeIDIsULIDText(t *testing.T) {
	ref := func(b [16]byte) string {
		n := new(big.Int).SetBytes(b[:])
		out := make([]byte, 26)
		m := new(big.Int)
		for i := 25; i >= 0; i-- {
			n.DivMod(n, big.NewInt(32), m)
			out[i] = crockford[m.Int64()]
		}
		return string(out)
	}
	var cases [][16]byte
	cases = append(cases, [16]byte{})
	var ones [16]byte
	for i := range ones {
		ones[i] = 0xff
	}
	cases = append(cases, ones)
	for bit := range 128 {
		var b [16]byte
		b[bit/8] = 0x80 >> (bit % 8)
		cases = append(cases, b)
	}
	rng := rand.New(rand.NewSource(1))
	for range 200 {
		var b [16]byte
		rng.Read(b[:])
		cases = append(cases, b)
	}
	for _, b := range cases {
		if got, want := EncodeID(b), ref(b); got != want {
			t.Fatalf("EncodeID(%x) = %s, want %s", b, got, want)
		}
		if !isULID(EncodeID(b)) {
			t.Fatalf("isULID(EncodeID(%x)) is false", b)
		}
	}
}

// TestIsULID: isULID takes what NewID and EncodeID write and nothing else
// (a directory in the segments dir that is not a segment is left alone).
func TestIsULID(t *testing.T) {
	valid := "01ARYZ6S41TSV4RRFFQ69G5FAV"
	for _, s := range []string{valid, strings.Repeat("0", 26), "7" + strings.Repeat("Z", 25), "0123456789ABCDEFGHJKMNPQRS"} {
		if !isULID(s) {
			t.Errorf("isULID(%q) = false", s)
		}
	}
	bad := []string{"", valid[:25], valid + "0", "8" + valid[1:], "Z" + valid[1:], strings.ToLower(valid)}
	for _, c := range "ILOU/:@[`a" {
		bad = append(bad, valid[:10]+string(c)+valid[11:])
	}
	for _, s := range bad {
		if isULID(s) {
			t.Errorf("isULID(%q) = true", s)
		}
	}
}
