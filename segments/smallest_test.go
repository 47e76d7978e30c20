package segments

import (
	"fmt"
	"math/rand"
	"slices"
	"testing"
)

func TestSmallest(t *testing.T) {
	f := func(n int, in, want []string) {
		t.Helper()
		s := NewSmallest(n)
		for _, v := range in {
			s.Add(v)
		}
		if got := s.Sorted(); !slices.Equal(got, want) {
			t.Fatalf("Smallest(%d) of %v = %v, want %v", n, in, got, want)
		}
	}
	f(2, nil, nil)
	f(2, []string{"c", "a", "b", "a"}, []string{"a", "b"})
	f(0, []string{"c", "a", "b", "a"}, []string{"a", "b", "c"})
	f(5, []string{"b", "a"}, []string{"a", "b"})
	// Many values, many duplicates: memory stays within 2n while adding.
	rng := rand.New(rand.NewSource(1))
	s := NewSmallest(10)
	var all []string
	for range 10_000 {
		v := fmt.Sprintf("v%05d", rng.Intn(3000))
		all = append(all, v)
		s.Add(v)
		if len(s.vals) >= 20 {
			t.Fatalf("holds %d values for n=10", len(s.vals))
		}
	}
	slices.Sort(all)
	if got, want := s.Sorted(), slices.Compact(all)[:10]; !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}
