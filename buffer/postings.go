package buffer

import (
	"encoding/binary"
	"slices"
)

// postingList is a sorted list of distinct series references, stored as
// the uvarint deltas between them (the first from 0). The head's
// references are handed out in increasing order, so a list grows at its
// end: at a million series most deltas take one byte, where a []uint64
// took eight (and up to eight more of append slack), for each of the ~10
// labels of every series and the list of all series.
type postingList struct {
	b    []byte // uvarint deltas
	last uint64 // the largest reference; 0 when empty
	n    int    // references in the list
}

// encodePostings returns the list holding refs, which are sorted and
// distinct.
func encodePostings(refs []uint64) postingList {
	var l postingList
	l.b = make([]byte, 0, len(refs)+len(refs)/4)
	for _, r := range refs {
		l.b = binary.AppendUvarint(l.b, r-l.last)
		l.last = r
	}
	l.n = len(refs)
	return l
}

// appendTo appends the references of l to dst, in order.
func (l *postingList) appendTo(dst []uint64) []uint64 {
	dst = slices.Grow(dst, l.n)
	var r uint64
	for b := l.b; len(b) > 0; {
		d, k := binary.Uvarint(b)
		if k <= 0 {
			panic("buffer: corrupt postings list") // only this file writes them
		}
		b = b[k:]
		r += d
		dst = append(dst, r)
	}
	return dst
}

// add inserts ref and returns how many references it had to move: 0 when
// ref is past the last one, the common case. A reference before the last
// one rewrites the list (the count of references after it is what sorted
// insertion into a []uint64 moved); one already there changes nothing.
func (l *postingList) add(ref uint64) (moved int) {
	if l.n == 0 || ref > l.last {
		l.b = binary.AppendUvarint(l.b, ref-l.last)
		l.last = ref
		l.n++
		return 0
	}
	if ref == l.last {
		return 0
	}
	refs := l.appendTo(nil)
	i, found := slices.BinarySearch(refs, ref)
	if found {
		return 0
	}
	*l = encodePostings(slices.Insert(refs, i, ref))
	return len(refs) - i
}

// merge adds refs, sorted, to the list in one rewrite.
func (l *postingList) merge(refs []uint64) {
	if len(refs) == 0 {
		return
	}
	if l.n == 0 || refs[0] > l.last {
		for _, r := range slices.Compact(refs) {
			l.add(r)
		}
		return
	}
	all := append(l.appendTo(nil), refs...)
	slices.Sort(all)
	*l = encodePostings(slices.Compact(all))
}

// drop removes the references gone reports, in one rewrite when there are
// any.
func (l *postingList) drop(gone func(uint64) bool) {
	refs := l.appendTo(nil)
	n := len(refs)
	if kept := slices.DeleteFunc(refs, gone); len(kept) != n {
		*l = encodePostings(kept)
	}
}

// intersect keeps the references of a (sorted) that l holds, in place.
func (l *postingList) intersect(a []uint64) []uint64 {
	out := a[:0]
	var r uint64
	b := l.b
	next := func() bool {
		if len(b) == 0 {
			return false
		}
		d, k := binary.Uvarint(b)
		b = b[k:]
		r += d
		return true
	}
	if !next() {
		return out
	}
	for _, x := range a {
		for r < x {
			if !next() {
				return out
			}
		}
		if r == x {
			out = append(out, x)
		}
	}
	return out
}
