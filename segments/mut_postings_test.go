package segments

import "testing"

// TestMergeErrorsAndEnd: a union, or a difference, reports the error of a
// list that fails part way (a delta of 0 after two refs), not a shorter
// result as if complete; and once a union has ended, Seek and Next
// report false.
func TestMergeErrorsAndEnd(t *testing.T) {
	list := func(b ...byte) postings {
		p := &listPostings{d: decbuf{b: b}}
		p.n = p.d.uvarint()
		return p
	}
	m := merge(list(3, 10, 5, 0), list(2, 12, 10)) // 10 15 (then fails), 12 22
	var got []uint64
	for m.Next() {
		got = append(got, m.At())
	}
	if m.Err() == nil {
		t.Fatalf("union of a failing list: %v, no error", got)
	}

	m = merge(list(1, 5), list(1, 7))
	got = got[:0]
	for m.Next() {
		got = append(got, m.At())
	}
	if len(got) != 2 || m.Err() != nil {
		t.Fatalf("union: %v, %v", got, m.Err())
	}
	if m.Seek(0) || m.Next() {
		t.Fatalf("union past its end: Seek or Next true, at %d", m.At())
	}

	// The refs of a list but those of one that fails part way: the
	// failure is reported too.
	w := without(list(2, 12, 10), list(3, 10, 5, 0)) // 12 22 but 10 15 (then fails)
	got = got[:0]
	for w.Next() {
		got = append(got, w.At())
	}
	if w.Err() == nil {
		t.Fatalf("difference with a failing list: %v, no error", got)
	}
}
