package downsample

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"iter"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/strata-tsdb/strata/segments"
)

// lineage is what a rollup was built from. It is stored in the rollup's
// Compaction.Sources as "<resolution>:<segment ID>" entries:
//
//	0:<id>       a level-1 raw segment whose samples the rollup holds
//	300000:<id>  a 5m rollup: for a 1h rollup, the one it was built from;
//	             for a 5m rollup, the previous window's, whose last counter
//	             values its counters continue
//
// The ":" keeps the entries from ever being taken for segment IDs (which
// may not contain it): segments.OpenSet removes any segment whose ID
// another segment lists as a source, as the leftover input of a compaction.
type lineage struct {
	raw  []string // sorted level-1 raw IDs
	link string   // the 5m rollup described above, or ""
}

const lineageSep = ":"

func (l lineage) sources() []string {
	out := make([]string, 0, len(l.raw)+1)
	for _, id := range l.raw {
		out = append(out, "0"+lineageSep+id)
	}
	if l.link != "" {
		out = append(out, strconv.FormatInt(Res5m, 10)+lineageSep+l.link)
	}
	return out
}

// parseLineage reads Compaction.Sources written by sources; ok is false
// for anything else.
func parseLineage(srcs []string) (lineage, bool) {
	var l lineage
	for _, s := range srcs {
		res, id, found := strings.Cut(s, lineageSep)
		if !found || id == "" {
			return lineage{}, false
		}
		switch res {
		case "0":
			l.raw = append(l.raw, id)
		case strconv.FormatInt(Res5m, 10):
			if l.link != "" {
				return lineage{}, false
			}
			l.link = id
		default:
			return lineage{}, false
		}
	}
	slices.Sort(l.raw)
	return l, true
}

// rollupInfo is a rollup segment the Downsampler recognises as its own.
type rollupInfo struct {
	meta  segments.Meta
	start int64 // window start: the window is (start, start+Window]
	lin   lineage
}

// asRollup recognises the rollups written by this package: resolution 5m
// or 1h, time range exactly one window, lineage in Compaction.Sources.
func asRollup(m segments.Meta) (rollupInfo, bool) {
	if m.Resolution != Res5m && m.Resolution != Res1h || m.MinTime == minTime {
		return rollupInfo{}, false
	}
	start := m.MinTime - 1
	if windowStart(m.MinTime) != start || m.MaxTime != start+Window {
		return rollupInfo{}, false
	}
	lin, ok := parseLineage(m.Compaction.Sources)
	if !ok {
		return rollupInfo{}, false
	}
	return rollupInfo{meta: m, start: start, lin: lin}, true
}

const (
	minTime = -1 << 63
	maxTime = 1<<63 - 1
)

// windowStart returns the start of the window (start, start+Window] that
// holds t.
func windowStart(t int64) int64 {
	if t == minTime {
		t++ // its window is out of range anyway; avoid overflow
	}
	end, _ := BucketEnd(t, Window)
	return end - Window
}

// rawSources returns the level-1 source IDs of a raw segment.
func rawSources(m segments.Meta) []string {
	if len(m.Compaction.Sources) == 0 {
		return []string{m.ID}
	}
	return m.Compaction.Sources
}

// rawKept reports whether every raw source of lin (sorted) is still held
// by a raw segment: by one of the window's, whose sources are near
// (sorted), or else by any raw segment of metas, whatever its time. A
// delete can take a segment's data out of a window (its samples there, or
// the one at the window's end that a segment of the next day held), which
// narrows its time range so that it no longer overlaps the window, and a
// compaction can leave an empty segment: the data is deleted, not gone, and
// its sources stay listed. Only retention removes a source: the window's
// raw data is then partly gone.
func rawKept(lin, near []string, metas iter.Seq[segments.Meta]) bool {
	if subset(lin, near) {
		return true
	}
	var all []string
	for m := range metas {
		if m.Resolution == 0 {
			all = append(all, rawSources(m)...)
		}
	}
	slices.Sort(all)
	return subset(lin, all)
}

// subset reports whether every element of a is in b; both sorted.
func subset(a, b []string) bool {
	for _, s := range a {
		if _, ok := slices.BinarySearch(b, s); !ok {
			return false
		}
	}
	return true
}

// rollupID returns the ID of a rollup: a ULID whose time is now and whose
// 80 random bits are the start of a SHA-256 of what it is built from, so
// that the same inputs at the same time give the same segment, byte for
// byte, and different inputs never share an ID.
func rollupID(now time.Time, res, start int64, sources []string) string {
	h := sha256.New()
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(res))
	binary.BigEndian.PutUint64(b[8:], uint64(start))
	h.Write(b[:])
	for _, s := range sources {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	sum := h.Sum(nil)
	ms := uint64(now.UnixMilli())
	binary.BigEndian.PutUint16(b[0:], uint16(ms>>32))
	binary.BigEndian.PutUint32(b[2:], uint32(ms))
	copy(b[6:], sum[:10])
	return segments.EncodeID(b)
}

// byID orders rollups by ID: the greater was written later.
func byID(a, b rollupInfo) int { return cmp.Compare(a.meta.ID, b.meta.ID) }
