package buffer

import (
	"math/rand"
	"slices"
	"testing"
)

// TestPostingListMatchesModel: a postingList behaves as a sorted set of
// references whatever the order they come in (the index appends new
// references at the end; a replay merges the late ones; GC drops some):
// add inserts anywhere and says how many references it moved (those after
// the new one, as inserting into a sorted []uint64 would), a reference
// already there changes nothing, merge adds a sorted batch with
// duplicates, drop removes what its function reports, and intersect keeps
// the references of a sorted slice that the list holds.
func TestPostingListMatchesModel(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	check := func(what string, l *postingList, model []uint64) {
		t.Helper()
		got := l.appendTo(nil)
		if !slices.Equal(got, model) || l.n != len(model) || (len(model) > 0 && l.last != model[len(model)-1]) || (len(model) == 0 && l.last != 0) {
			t.Fatalf("%s: list %v (n %d, last %d), want %v", what, got, l.n, l.last, model)
		}
		// appendTo appends: what dst held stays in front.
		if got := l.appendTo([]uint64{7}); len(got) != len(model)+1 || got[0] != 7 || !slices.Equal(got[1:], model) {
			t.Fatalf("%s: appendTo([7]) = %v", what, got)
		}
	}
	for round := range 200 {
		var l postingList
		var model []uint64
		hi := uint64(1 + rng.Intn(300)) // small ranges give duplicates and one-byte deltas; large, longer ones
		if round%3 == 0 {
			hi = 1 << 40
		}
		for range rng.Intn(60) {
			ref := 1 + uint64(rng.Int63n(int64(hi)))
			i, found := slices.BinarySearch(model, ref)
			wantMoved := 0
			if !found {
				wantMoved = len(model) - i
				model = slices.Insert(model, i, ref)
			}
			if moved := l.add(ref); moved != wantMoved {
				t.Fatalf("round %d: add(%d) to %v moved %d, want %d", round, ref, model, moved, wantMoved)
			}
			check("add", &l, model)
		}
		// A batch, sorted, with duplicates of its own and of the list.
		var batch []uint64
		for range rng.Intn(20) {
			batch = append(batch, 1+uint64(rng.Int63n(int64(hi))))
		}
		if len(model) > 0 && rng.Intn(2) == 0 {
			batch = append(batch, model[rng.Intn(len(model))])
		}
		if rng.Intn(4) == 0 && len(model) > 0 {
			// All past the end: the append path.
			for i := range batch {
				batch[i] = model[len(model)-1] + 1 + batch[i]%5
			}
		}
		slices.Sort(batch)
		model = slices.Compact(slices.Sorted(slices.Values(append(slices.Clone(model), batch...))))
		l.merge(batch)
		check("merge", &l, model)
		// Intersect with a sorted slice holding some of the list and others.
		var a []uint64
		for _, r := range model {
			if rng.Intn(2) == 0 {
				a = append(a, r)
			}
			if rng.Intn(3) == 0 {
				a = append(a, r+1)
			}
		}
		a = slices.Compact(slices.Sorted(slices.Values(a)))
		var want []uint64
		for _, x := range a {
			if _, found := slices.BinarySearch(model, x); found {
				want = append(want, x)
			}
		}
		if got := l.intersect(slices.Clone(a)); !slices.Equal(got, want) {
			t.Fatalf("round %d: %v intersect %v = %v, want %v", round, model, a, got, want)
		}
		// Drop about half, then everything.
		odd := func(r uint64) bool { return r%2 == 1 }
		l.drop(odd)
		model = slices.DeleteFunc(model, odd)
		check("drop", &l, model)
		l.drop(func(uint64) bool { return true })
		check("drop all", &l, nil)
		if got := l.intersect([]uint64{1, 2, 3}); len(got) != 0 {
			t.Fatalf("empty list intersect: %v", got)
		}
	}
	// encodePostings of an empty slice, and merge of nothing.
	l := encodePostings(nil)
	l.merge(nil)
	check("empty", &l, nil)

	// merge rewrites the list once, whatever the number of references
	// it adds before its end (a replay's late references): not once per
	// reference, as add would.
	var refs, late []uint64
	for i := range uint64(1000) {
		refs = append(refs, 2*i+2)
	}
	for i := range uint64(200) {
		late = append(late, 4*i+1)
	}
	allocs := testing.AllocsPerRun(5, func() {
		l := encodePostings(refs)
		l.merge(late)
	})
	if allocs > 10 {
		t.Errorf("encoding 1000 references and merging 200 before the end: %v allocations, want at most 10", allocs)
	}
	l = encodePostings(refs)
	l.merge(late)
	check("late merge", &l, slices.Sorted(slices.Values(append(slices.Clone(refs), late...))))
}
