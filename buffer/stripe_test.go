package buffer

import (
	"testing"
	"unsafe"

	"github.com/prometheus/prometheus/model/labels"
)

// TestSeriesHashmapCollisions stores three series under one hash (as a
// hash collision would) and removes them in turn: each stays findable by
// its labels until removed, whichever of them was first.
func TestSeriesHashmapCollisions(t *testing.T) {
	m := seriesHashmap{unique: map[uint64]*memSeries{}}
	syms := newSymbolTable()
	const h = 42
	var ss []*memSeries
	for i, v := range []string{"a", "b", "c"} {
		s := newMemSeries(uint64(i+1), syms.encode(labels.FromStrings("x", v)))
		m.set(h, s)
		ss = append(ss, s)
	}
	sb := labels.NewScratchBuilder(1)
	check := func(present ...*memSeries) {
		t.Helper()
		for _, s := range ss {
			lset := syms.labels(s.lset, &sb)
			got := m.get(syms, h, lset)
			want := (*memSeries)(nil)
			for _, p := range present {
				if p == s {
					want = s
				}
			}
			if got != want {
				t.Fatalf("get %s = %v, want %v", lset, got, want)
			}
		}
	}
	check(ss...)
	m.del(h, ss[0]) // the unique one: b or c takes its place
	check(ss[1], ss[2])
	m.del(h, ss[2])
	check(ss[1])
	m.del(h, ss[1])
	check()
	if len(m.unique) != 0 || len(m.conflicts) != 0 {
		t.Fatalf("maps not empty: %v %v", m.unique, m.conflicts)
	}
}

// TestStripeIsOneCacheLine: a stripe's lock and its map headers share one
// 64-byte line, and stripes do not share lines.
func TestStripeIsOneCacheLine(t *testing.T) {
	if got := unsafe.Sizeof(stripe{}); got != 64 {
		t.Fatalf("a stripe takes %d bytes, want 64", got)
	}
}
