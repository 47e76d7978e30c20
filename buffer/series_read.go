package buffer

import (
	"sort"

	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/strata-tsdb/strata/segments"
)

func overlaps(c *memChunk, mint, maxt int64) bool { return c.minT <= maxt && c.maxT >= mint }

// snapshot is a copy of a series' data that stays valid after the series
// lock is released: closed chunks never change, and the open chunk and the
// unsorted buffer are copied. It can be iterated any number of times.
type snapshot struct {
	inOrder []chunkenc.Chunk
	maxTs   []int64 // maxTs[i] is the last timestamp in inOrder[i]
	ooo     []chunkenc.Chunk
	buf     []sample // sorted, deduplicated
}

// snapshotLocked returns the series' data that may lie in [mint, maxt]
// (whole chunks: a superset).
func (s *memSeries) snapshotLocked(mint, maxt int64) *snapshot {
	sn := &snapshot{}
	for _, c := range s.chunks[firstEndingAtOrAfter(s.chunks, mint):] {
		if c.minT > maxt {
			break
		}
		sn.inOrder = append(sn.inOrder, c.chunk)
		sn.maxTs = append(sn.maxTs, c.maxT)
	}
	if s.head != nil && overlaps(s.head, mint, maxt) {
		b := append([]byte(nil), s.head.chunk.Bytes()...)
		if c, err := chunkenc.FromData(s.head.chunk.Encoding(), b); err == nil {
			sn.inOrder = append(sn.inOrder, c)
			sn.maxTs = append(sn.maxTs, s.head.maxT)
		}
	}
	for _, c := range s.oooChunks() {
		if overlaps(c, mint, maxt) {
			sn.ooo = append(sn.ooo, c.chunk)
		}
	}
	for _, x := range s.oooBuf() {
		if x.T >= mint && x.T <= maxt {
			sn.buf = append(sn.buf, x)
		}
	}
	if len(sn.buf) > 0 {
		sn.buf = sortDedup(sn.buf)
	}
	return sn
}

// iterator merges the snapshot's in-order and out-of-order data in time
// order, the last write winning for equal timestamps.
func (sn *snapshot) iterator() chunkenc.Iterator {
	its := make([]chunkenc.Iterator, 0, 2+len(sn.ooo))
	if len(sn.inOrder) > 0 {
		its = append(its, segments.NewChainIterator(sn.inOrder, sn.maxTs))
	}
	for _, c := range sn.ooo {
		its = append(its, c.Iterator(nil))
	}
	if len(sn.buf) > 0 {
		its = append(its, segments.NewSliceIterator(sn.buf))
	}
	return segments.NewMergeIterator(its)
}

// iteratorLocked returns an iterator over all of the series' samples.
func (s *memSeries) iteratorLocked(mint, maxt int64) chunkenc.Iterator {
	return s.snapshotLocked(mint, maxt).iterator()
}

// hasDataLocked reports whether the series has samples that may lie in
// [mint, maxt].
func (s *memSeries) hasDataLocked(mint, maxt int64) bool {
	if i := firstEndingAtOrAfter(s.chunks, mint); i < len(s.chunks) && s.chunks[i].minT <= maxt {
		return true
	}
	if s.head != nil && overlaps(s.head, mint, maxt) {
		return true
	}
	for _, c := range s.oooChunks() {
		if overlaps(c, mint, maxt) {
			return true
		}
	}
	for _, x := range s.oooBuf() {
		if x.T >= mint && x.T <= maxt {
			return true
		}
	}
	return false
}

// firstEndingAtOrAfter returns the index of the first of chunks (sorted by
// time, not overlapping) whose last sample is at or after t.
func firstEndingAtOrAfter(chunks []*memChunk, t int64) int {
	return sort.Search(len(chunks), func(i int) bool { return chunks[i].maxT >= t })
}
