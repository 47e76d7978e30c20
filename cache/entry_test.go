package cache

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

func testEntry() *entry {
	e := &entry{
		entryMeta: entryMeta{writtenAt: 7, created: 100, expires: 200, graceEnd: 300, seq: 5},
		key:       []byte("query:sum(rate(x[5m])):60:1700000000"),
		value:     []byte("extent bytes"),
	}
	e.tags = appendTagHashes(nil, []string{"m:x:2026-11-20", "m:x:2026-11-21"})
	return e
}

func TestEntryRoundTrip(t *testing.T) {
	want := testEntry()
	b := appendEntry([]byte("prefix"), want)
	got, err := decodeEntry(b[6:])
	if err != nil {
		t.Fatal(err)
	}
	if got.entryMeta != want.entryMeta || !bytes.Equal(got.tags, want.tags) ||
		!bytes.Equal(got.key, want.key) || !bytes.Equal(got.value, want.value) {
		t.Fatalf("round trip: got %+v, want %+v", got, want)
	}
	if got.numTags() != 2 || got.tag(1) != tagHash("m:x:2026-11-21") {
		t.Errorf("tags: %d, %x", got.numTags(), got.tag(1))
	}
	if len(b)-6 != entrySize(2, len(want.key), len(want.value)) {
		t.Errorf("size %d, entrySize %d", len(b)-6, entrySize(2, len(want.key), len(want.value)))
	}
	// Appending to a decoded key or tags must not overwrite what follows.
	_ = append(got.key, 'X')
	if !bytes.Equal(got.value, want.value) {
		t.Error("key aliases value capacity")
	}
}

func TestDecodeEntryTruncations(t *testing.T) {
	b := appendEntry(nil, testEntry())
	for n := range len(b) {
		if _, err := decodeEntry(b[:n]); err == nil {
			t.Fatalf("truncated to %d of %d bytes: decoded", n, len(b))
		}
	}
	for i := range len(b) {
		if i >= offWrittenAt && i < offWrittenAt+8 {
			continue // not checksummed: an LRU hint
		}
		c := bytes.Clone(b)
		c[i] ^= 0x80
		if _, err := decodeEntry(c); err == nil {
			t.Fatalf("bit flipped at %d: decoded", i)
		}
	}
}

// TestDecodeEntryLengths: an entry whose key length (resealed, so the
// checksum holds) runs past its end is refused with errEntryLength, not
// read out of bounds; one whose key takes every byte left (an empty value)
// decodes. As do times that are equal: only times out of order are
// refused.
func TestDecodeEntryLengths(t *testing.T) {
	e := testEntry()
	b := appendEntry(nil, e)
	left := len(b) - entryHeaderLen - len(e.tags) // key and value bytes
	for _, keyLen := range []int{left - 1, left, left + 1, left + 2, left + 8} {
		c := bytes.Clone(b)
		binary.LittleEndian.PutUint32(c[offKeyLen:], uint32(keyLen))
		sealEntry(c)
		got, err := decodeEntry(c)
		switch {
		case keyLen <= left && (err != nil || len(got.key) != keyLen || len(got.value) != left-keyLen):
			t.Errorf("key of %d of %d bytes left: %v, key %d bytes, value %d", keyLen, left, err, len(got.key), len(got.value))
		case keyLen > left && !errors.Is(err, errEntryLength):
			t.Errorf("key of %d of %d bytes left: %v, want errEntryLength", keyLen, left, err)
		}
	}
	same := testEntry()
	same.created, same.expires, same.graceEnd = 100, 100, 100
	if got, err := decodeEntry(appendEntry(nil, same)); err != nil || got.entryMeta != same.entryMeta {
		t.Errorf("equal times: %+v, %v", got.entryMeta, err)
	}
	for _, times := range [][3]int64{{101, 100, 200}, {100, 201, 200}} {
		bad := testEntry()
		bad.created, bad.expires, bad.graceEnd = times[0], times[1], times[2]
		if _, err := decodeEntry(appendEntry(nil, bad)); !errors.Is(err, errEntryTimes) {
			t.Errorf("times %v: %v, want errEntryTimes", times, err)
		}
	}
}

func FuzzDecodeEntry(f *testing.F) {
	f.Add(appendEntry(nil, testEntry()))
	f.Add(appendEntry(nil, &entry{}))
	f.Add(make([]byte, entryHeaderLen))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		// Entries read through GetBig skip the checksum: that path must be
		// as robust, and is the one the fuzzer can explore past the
		// checksum.
		e, err := decodeEntryChecked(b, false)
		if err != nil {
			return
		}
		// Whatever decodes re-encodes to the same bytes, checksum aside.
		re := appendEntry(nil, &e)
		if !bytes.Equal(re[checksumFrom:], b[checksumFrom:]) || !bytes.Equal(re[offWrittenAt:checksumFrom], b[offWrittenAt:checksumFrom]) {
			t.Fatalf("re-encoding differs:\n%x\n%x", re, b)
		}
		_, err = decodeEntry(b)
		if sumOK := bytes.Equal(re[:8], b[:8]); (err == nil) != sumOK {
			t.Fatalf("checked decode: %v, checksum match %v", err, sumOK)
		}
	})
}
