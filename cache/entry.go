package cache

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"

	"github.com/cespare/xxhash/v2"
)

// An entry is stored in fastcache as one byte slice, little-endian:
//
//	off len
//	 0   8  checksum   xxhash64 of bytes [16:]
//	 8   8  writtenAt  value of Cache.written when stored (LRU hint, not checksummed)
//	16   1  version    entryVersion
//	17   1  flags      0, reserved
//	18   2  ntags
//	20   4  keyLen
//	24   8  created    unix ns: when the computation started (Snapshot time)
//	32   8  expires    unix ns: fresh before this instant
//	40   8  graceEnd   unix ns: may be served stale before this instant
//	48   8  seq        tag generation snapshot taken before computing
//	56   8×ntags       xxhash64 of each tag
//	 …   keyLen        the full key
//	 …   rest          the value
//
// format.md carries the same table.
const (
	entryVersion   = 1
	entryHeaderLen = 56

	offChecksum  = 0
	offWrittenAt = 8
	offVersion   = 16
	offFlags     = 17
	offNTags     = 18
	offKeyLen    = 20
	offCreated   = 24
	offExpires   = 32
	offGraceEnd  = 40
	offSeq       = 48

	// checksumFrom is where the checksummed part begins: writtenAt is
	// rewritten in place on promotion, so it stays out of the checksum.
	checksumFrom = offVersion

	maxTags = math.MaxUint16
)

// Errors of decodeEntry. They are counted as corrupt entries, never shown to
// callers: a damaged entry is a miss.
var (
	errEntryShort    = errors.New("entry shorter than its header")
	errEntryVersion  = errors.New("unknown entry version")
	errEntryLength   = errors.New("entry lengths exceed its size")
	errEntryChecksum = errors.New("entry checksum mismatch")
	errEntryTimes    = errors.New("entry times out of order")
)

// entryMeta is the fixed part of an entry's header.
type entryMeta struct {
	writtenAt uint64
	created   int64 // unix ns
	expires   int64 // unix ns
	graceEnd  int64 // unix ns
	seq       uint64
}

// entry is a decoded entry. Its slices alias the buffer it was decoded from.
type entry struct {
	entryMeta
	tags  []byte // ntags little-endian uint64 tag hashes
	key   []byte
	value []byte
}

func entrySize(ntags, keyLen, valueLen int) int {
	return entryHeaderLen + 8*ntags + keyLen + valueLen
}

// appendEntryHeader appends the header of an entry with ntags tags and a
// keyLen-byte key. The caller appends the tag hashes, the key and the value,
// then calls sealEntry.
func appendEntryHeader(dst []byte, m *entryMeta, ntags, keyLen int) []byte {
	var h [entryHeaderLen]byte
	binary.LittleEndian.PutUint64(h[offWrittenAt:], m.writtenAt)
	h[offVersion] = entryVersion
	binary.LittleEndian.PutUint16(h[offNTags:], uint16(ntags))
	binary.LittleEndian.PutUint32(h[offKeyLen:], uint32(keyLen))
	binary.LittleEndian.PutUint64(h[offCreated:], uint64(m.created))
	binary.LittleEndian.PutUint64(h[offExpires:], uint64(m.expires))
	binary.LittleEndian.PutUint64(h[offGraceEnd:], uint64(m.graceEnd))
	binary.LittleEndian.PutUint64(h[offSeq:], m.seq)
	return append(dst, h[:]...)
}

// appendTagHashes appends the hash of each tag.
func appendTagHashes(dst []byte, tags []string) []byte {
	for _, t := range tags {
		dst = binary.LittleEndian.AppendUint64(dst, tagHash(t))
	}
	return dst
}

// sealEntry writes the checksum of a complete entry b.
func sealEntry(b []byte) {
	binary.LittleEndian.PutUint64(b[offChecksum:], xxhash.Sum64(b[checksumFrom:]))
}

// appendEntry appends the complete entry e; tags holds the tag hashes.
func appendEntry(dst []byte, e *entry) []byte {
	start := len(dst)
	dst = appendEntryHeader(dst, &e.entryMeta, len(e.tags)/8, len(e.key))
	dst = append(dst, e.tags...)
	dst = append(dst, e.key...)
	dst = append(dst, e.value...)
	sealEntry(dst[start:])
	return dst
}

// decodeEntry parses b. It never panics: any b that is not a well-formed
// entry gives an error.
func decodeEntry(b []byte) (entry, error) { return decodeEntryChecked(b, true) }

// decodeEntryChecked is decodeEntry, with the checksum verified only if
// checksum is set: GetBig verifies a hash of the whole entry already.
func decodeEntryChecked(b []byte, checksum bool) (entry, error) {
	var e entry
	if len(b) < entryHeaderLen {
		return e, errEntryShort
	}
	if b[offVersion] != entryVersion || b[offFlags] != 0 {
		return e, errEntryVersion
	}
	ntags := int(binary.LittleEndian.Uint16(b[offNTags:]))
	keyLen := int(binary.LittleEndian.Uint32(b[offKeyLen:]))
	tagsEnd := entryHeaderLen + 8*ntags
	if tagsEnd > len(b) || keyLen > len(b)-tagsEnd {
		return e, errEntryLength
	}
	if checksum && binary.LittleEndian.Uint64(b[offChecksum:]) != xxhash.Sum64(b[checksumFrom:]) {
		return e, errEntryChecksum
	}
	e.writtenAt = binary.LittleEndian.Uint64(b[offWrittenAt:])
	e.created = int64(binary.LittleEndian.Uint64(b[offCreated:]))
	e.expires = int64(binary.LittleEndian.Uint64(b[offExpires:]))
	e.graceEnd = int64(binary.LittleEndian.Uint64(b[offGraceEnd:]))
	e.seq = binary.LittleEndian.Uint64(b[offSeq:])
	if e.created > e.expires || e.expires > e.graceEnd {
		return entry{}, errEntryTimes
	}
	e.tags = b[entryHeaderLen:tagsEnd:tagsEnd]
	e.key = b[tagsEnd : tagsEnd+keyLen : tagsEnd+keyLen]
	e.value = b[tagsEnd+keyLen:]
	return e, nil
}

// hasKey reports whether e was stored under key.
func (e *entry) hasKey(key []byte) bool { return bytes.Equal(e.key, key) }

// numTags returns the number of tag hashes in e.
func (e *entry) numTags() int { return len(e.tags) / 8 }

// tag returns the i-th tag hash of e.
func (e *entry) tag(i int) uint64 { return binary.LittleEndian.Uint64(e.tags[8*i:]) }

// tagHash maps a tag to the 64-bit name its generation is kept under. Two
// tags with one hash share a generation: a bump of either invalidates the
// entries of both, which costs misses, never a wrong answer.
func tagHash(tag string) uint64 { return xxhash.Sum64String(tag) }
