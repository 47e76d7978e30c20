package segments

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// listOf encodes refs as a postings list and returns an iterator over it.
func listOf(refs ...uint64) postings {
	var e encbuf
	e.putUvarint(uint64(len(refs)))
	var prev uint64
	for _, r := range refs {
		e.putUvarint(r - prev)
		prev = r
	}
	p := &listPostings{d: decbuf{b: e.b}}
	p.n = p.d.uvarint()
	return p
}

func expand(t *testing.T, p postings) []uint64 {
	t.Helper()
	var out []uint64
	for p.Next() {
		out = append(out, p.At())
	}
	if err := p.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestPostingsOps(t *testing.T) {
	f := func(name string, p postings, want ...uint64) {
		t.Helper()
		if got := expand(t, p); !slices.Equal(got, want) {
			t.Errorf("%s: got %v, want %v", name, got, want)
		}
	}
	f("list", listOf(1, 5, 9), 1, 5, 9)
	f("empty", emptyPostings)
	f("intersect", intersect(listOf(1, 2, 3, 5, 8), listOf(2, 3, 4, 8, 9), listOf(3, 8, 10)), 3, 8)
	f("intersect disjoint", intersect(listOf(1, 3), listOf(2, 4)))
	f("intersect one", intersect(listOf(1, 3)), 1, 3)
	f("merge", merge(listOf(1, 4, 9), listOf(2, 4, 10), listOf(), listOf(1)), 1, 2, 4, 9, 10)
	f("without", without(listOf(1, 2, 3, 4, 5, 6), listOf(2, 3, 6, 7)), 1, 4, 5)
	f("without nothing", without(listOf(1, 2), emptyPostings), 1, 2)
	f("without of merge", without(merge(listOf(1, 3), listOf(2, 4)), merge(listOf(3), listOf(1))), 2, 4)
	f("intersect of merges", intersect(merge(listOf(1, 5), listOf(3, 7)), merge(listOf(3), listOf(5, 9)), without(listOf(1, 3, 5, 7), listOf(1))), 3, 5)
}

func TestPostingsSeek(t *testing.T) {
	ps := map[string]func() postings{
		"list":      func() postings { return listOf(2, 4, 6, 8, 10) },
		"merge":     func() postings { return merge(listOf(2, 6, 10), listOf(4, 8)) },
		"intersect": func() postings { return intersect(listOf(1, 2, 4, 6, 8, 10), listOf(2, 3, 4, 6, 8, 10, 11)) },
		"without":   func() postings { return without(listOf(1, 2, 3, 4, 6, 7, 8, 10), listOf(1, 3, 7)) },
		// The refs a selection through a Source has prefetched.
		"slice": func() postings { return &slicePostings{refs: []uint64{2, 4, 6, 8, 10}, i: -1} },
	}
	for name, mk := range ps {
		p := mk()
		if !p.Seek(5) || p.At() != 6 {
			t.Fatalf("%s: seek 5 -> %d", name, p.At())
		}
		if !p.Seek(3) || p.At() != 6 {
			t.Fatalf("%s: backwards seek moved to %d", name, p.At())
		}
		if !p.Next() || p.At() != 8 {
			t.Fatalf("%s: next -> %d", name, p.At())
		}
		if !p.Seek(10) || p.At() != 10 {
			t.Fatalf("%s: seek 10 -> %d", name, p.At())
		}
		if p.Seek(11) {
			t.Fatalf("%s: seek past end -> %d", name, p.At())
		}
		if p.Seek(12) || p.Next() {
			t.Fatalf("%s: ended, moved again", name)
		}
		// A first Seek, to the first ref.
		if p = mk(); !p.Seek(2) || p.At() != 2 || !p.Next() || p.At() != 4 {
			t.Fatalf("%s: first seek to the first ref", name)
		}
	}
}

// TestPostingsRandom compares the set operations with a map model.
func TestPostingsRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	gen := func() []uint64 {
		var out []uint64
		for v := uint64(1); v < 300; v++ {
			if rng.IntN(3) == 0 {
				out = append(out, v)
			}
		}
		return out
	}
	for i := 0; i < 200; i++ {
		a, b, c := gen(), gen(), gen()
		var inter, union, diff []uint64
		for v := uint64(1); v < 300; v++ {
			ia, ib, ic := slices.Contains(a, v), slices.Contains(b, v), slices.Contains(c, v)
			if ia && ib && ic {
				inter = append(inter, v)
			}
			if ia || ib || ic {
				union = append(union, v)
			}
			if ia && !(ib || ic) {
				diff = append(diff, v)
			}
		}
		if got := expand(t, intersect(listOf(a...), listOf(b...), listOf(c...))); !slices.Equal(got, inter) {
			t.Fatalf("intersect: got %v, want %v", got, inter)
		}
		if got := expand(t, merge(listOf(a...), listOf(b...), listOf(c...))); !slices.Equal(got, union) {
			t.Fatalf("merge: got %v, want %v", got, union)
		}
		if got := expand(t, without(listOf(a...), merge(listOf(b...), listOf(c...)))); !slices.Equal(got, diff) {
			t.Fatalf("without: got %v, want %v", got, diff)
		}
	}
}
