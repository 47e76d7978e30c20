package segments

import "slices"

// Smallest collects the n smallest distinct strings of a stream in O(n)
// memory, for label APIs that honour a limit without holding every value:
// it sorts and cuts whenever it holds 2n, so a stream of m strings costs
// O(m log n). n <= 0 keeps everything, and sorts only in Sorted.
type Smallest struct {
	n    int
	vals []string
}

// NewSmallest returns a collector of the n smallest strings.
func NewSmallest(n int) *Smallest { return &Smallest{n: n} }

// Add offers v.
func (s *Smallest) Add(v string) {
	s.vals = append(s.vals, v)
	if s.n > 0 && len(s.vals) >= 2*s.n {
		s.trim()
	}
}

func (s *Smallest) trim() {
	slices.Sort(s.vals)
	s.vals = slices.Compact(s.vals)
	if s.n > 0 && len(s.vals) > s.n {
		clear(s.vals[s.n:]) // let the dropped strings go
		s.vals = s.vals[:s.n]
	}
}

// Sorted returns the strings kept, sorted and distinct.
func (s *Smallest) Sorted() []string {
	s.trim()
	return s.vals
}
