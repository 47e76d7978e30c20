package segments

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
)

// iterStep is one call made on an iterator and what it returned: the type,
// and the sample it was then on (when the type is not ValNone).
type iterStep struct {
	seek bool
	arg  int64 // Seek's argument
	vt   chunkenc.ValueType
	s    Sample
}

// modelCursor is what an iterator over want (sorted, without duplicate
// timestamps) must do: Next moves one sample on; Seek(t) stays on the
// current sample if it is at or after t, else moves to the first sample at
// or after t; once past the end, it stays there.
type modelCursor struct {
	want []Sample
	i    int // -1 before the first call
}

func (m *modelCursor) next() chunkenc.ValueType {
	if m.i < len(m.want) {
		m.i++
	}
	return m.at()
}

func (m *modelCursor) seek(t int64) chunkenc.ValueType {
	m.i = max(m.i, 0)
	for m.i < len(m.want) && m.want[m.i].T < t {
		m.i++
	}
	return m.at()
}

func (m *modelCursor) at() chunkenc.ValueType {
	if m.i >= len(m.want) {
		return chunkenc.ValNone
	}
	return m.want[m.i].Type()
}

// sameSample reports whether got and want hold the same timestamp and
// value (histograms compared by value, with their counter reset hints).
func sameSample(got, want Sample) bool {
	switch {
	case got.T != want.T:
		return false
	case want.H != nil:
		return got.H != nil && got.H.Equals(want.H) && got.H.CounterResetHint == want.H.CounterResetHint
	case want.FH != nil:
		return got.FH != nil && got.FH.Equals(want.FH) && got.FH.CounterResetHint == want.FH.CounterResetHint
	}
	return got.H == nil && got.FH == nil && math.Float64bits(got.V) == math.Float64bits(want.V)
}

// checkAgainstModel makes the calls of ops on it (a Next for -1, else a
// Seek to the value) and compares each result with the model over want.
func checkAgainstModel(t *testing.T, name string, it chunkenc.Iterator, want []Sample, ops []int64) {
	t.Helper()
	m := &modelCursor{want: want, i: -1}
	for k, op := range ops {
		var got, exp chunkenc.ValueType
		if op < 0 {
			got, exp = it.Next(), m.next()
		} else {
			got, exp = it.Seek(op), m.seek(op)
		}
		if got != exp {
			t.Fatalf("%s: call %d (op %d) returned %v, want %v", name, k, op, got, exp)
		}
		if exp == chunkenc.ValNone {
			continue
		}
		if at := it.AtT(); at != m.want[m.i].T {
			t.Fatalf("%s: call %d (op %d): AtT %d, want %d", name, k, op, at, m.want[m.i].T)
		}
		if s := ReadSample(it, got, nil, nil); !sameSample(s, m.want[m.i]) {
			t.Fatalf("%s: call %d (op %d): sample %+v, want %+v", name, k, op, s, m.want[m.i])
		}
	}
	if err := it.Err(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

// chainOf encodes samples into chunks of at most max samples and returns a
// chain iterator over them.
func chainOf(t *testing.T, samples []Sample, max int) chunkenc.Iterator {
	t.Helper()
	metas, err := newChunkEncoder(max).encode(NewSliceIterator(samples))
	if err != nil {
		t.Fatal(err)
	}
	chunks, maxTs := make([]chunkenc.Chunk, len(metas)), make([]int64, len(metas))
	for i, m := range metas {
		chunks[i], maxTs[i] = m.Chunk, m.MaxTime
	}
	return NewChainIterator(chunks, maxTs)
}

// randomOps returns n calls: Next (-1) or a Seek to a time in [lo-2, hi+2].
func randomOps(rng *rand.Rand, n int, lo, hi int64) []int64 {
	ops := make([]int64, n)
	for i := range ops {
		if rng.IntN(3) == 0 {
			ops[i] = max(0, lo-2+rng.Int64N(hi-lo+5))
		} else {
			ops[i] = -1
		}
	}
	return ops
}

// TestMergeIteratorLastWins: merges of 2-5 sources that overlap in time
// hold every timestamp of any source once, with the value of the last
// source listed that holds it (callers list sources from oldest write to
// newest), for any mix of Next and Seek, on slices and on chains of
// chunks.
func TestMergeIteratorLastWins(t *testing.T) {
	rng := rand.New(rand.NewPCG(22, 3))
	for round := range 400 {
		k := 2 + rng.IntN(4)
		srcs := make([][]Sample, k)
		last := map[int64]Sample{}
		for i := range srcs {
			ts := int64(rng.IntN(6))
			for range rng.IntN(24) {
				ts += 1 + rng.Int64N(3)
				s := Sample{T: ts, V: float64(1000*i) + float64(ts)}
				srcs[i] = append(srcs[i], s)
				last[ts] = s
			}
		}
		var want []Sample
		for _, s := range last {
			want = append(want, s)
		}
		slices.SortFunc(want, func(a, b Sample) int { return int(a.T - b.T) })
		its := func() []chunkenc.Iterator {
			out := make([]chunkenc.Iterator, k)
			for i, s := range srcs {
				if rng.IntN(2) == 0 {
					out[i] = NewSliceIterator(s)
				} else {
					out[i] = chainOf(t, s, 1+rng.IntN(6))
				}
			}
			return out
		}
		hi := int64(0)
		if len(want) > 0 {
			hi = want[len(want)-1].T
		}
		nexts := make([]int64, len(want)+2)
		for i := range nexts {
			nexts[i] = -1
		}
		checkAgainstModel(t, fmt.Sprintf("round %d, Next only", round), NewMergeIterator(its()), want, nexts)
		for j := range 3 {
			checkAgainstModel(t, fmt.Sprintf("round %d, mix %d", round, j), NewMergeIterator(its()), want, randomOps(rng, 3*len(want)+4, 0, hi))
		}
	}
}

// TestMergeIteratorSources: the merge of no source is empty, and of one
// source is that source.
func TestMergeIteratorSources(t *testing.T) {
	if vt := NewMergeIterator(nil).Next(); vt != chunkenc.ValNone {
		t.Fatalf("merge of nothing: %v", vt)
	}
	one := NewSliceIterator([]Sample{{T: 1, V: 1}})
	if it := NewMergeIterator([]chunkenc.Iterator{one}); it != one {
		t.Fatalf("merge of one source: %T, want the source", it)
	}
}

// TestMergeIteratorLeadEdges: the fast path that keeps taking samples from
// one source while they stay below every other source's next timestamp
// stops at exactly that timestamp: a duplicate there is still resolved,
// last source winning, whichever source leads.
func TestMergeIteratorLeadEdges(t *testing.T) {
	run := func(name string, srcs [][]Sample, want []Sample) {
		t.Helper()
		its := make([]chunkenc.Iterator, len(srcs))
		for i, s := range srcs {
			its[i] = NewSliceIterator(s)
		}
		ops := make([]int64, len(want)+1)
		for i := range ops {
			ops[i] = -1
		}
		checkAgainstModel(t, name, NewMergeIterator(its), want, ops)
	}
	f := func(ts int64, v float64) Sample { return Sample{T: ts, V: v} }
	run("first leads into a duplicate",
		[][]Sample{{f(1, 1), f(2, 1), f(3, 1), f(5, 1)}, {f(3, 2), f(4, 2)}},
		[]Sample{f(1, 1), f(2, 1), f(3, 2), f(4, 2), f(5, 1)})
	run("last leads into a duplicate",
		[][]Sample{{f(3, 1), f(4, 1)}, {f(1, 2), f(2, 2), f(3, 2), f(5, 2)}},
		[]Sample{f(1, 2), f(2, 2), f(3, 2), f(4, 1), f(5, 2)})
	run("three sources, the middle one's duplicates lose to the last",
		[][]Sample{{f(1, 1), f(4, 1), f(7, 1)}, {f(2, 2), f(4, 2), f(6, 2)}, {f(4, 3), f(6, 3), f(8, 3)}},
		[]Sample{f(1, 1), f(2, 2), f(4, 3), f(6, 3), f(7, 1), f(8, 3)})
	run("equal sources",
		[][]Sample{{f(1, 1), f(2, 1)}, {f(1, 2), f(2, 2)}},
		[]Sample{f(1, 2), f(2, 2)})
	run("one source empty",
		[][]Sample{{}, {f(1, 2), f(2, 2)}},
		[]Sample{f(1, 2), f(2, 2)})
	// Before any lead is chosen (and after duplicates, which choose none)
	// no source may be taken without comparing it with the others, even
	// below the zero the lead's bound starts at.
	run("negative timestamps, the second source's first",
		[][]Sample{{f(-10, 1), f(-8, 1)}, {f(-5, 2)}},
		[]Sample{f(-10, 1), f(-8, 1), f(-5, 2)})
	run("negative timestamps after a duplicate",
		[][]Sample{{f(-10, 1), f(-8, 1)}, {f(-10, 2), f(-5, 2)}},
		[]Sample{f(-10, 2), f(-8, 1), f(-5, 2)})
	// The same from a Seek.
	m := NewMergeIterator([]chunkenc.Iterator{NewSliceIterator([]Sample{f(-10, 1), f(-8, 1)}), NewSliceIterator([]Sample{f(-5, 2)})})
	var got []int64
	for vt := m.Seek(-20); vt != chunkenc.ValNone; vt = m.Next() {
		got = append(got, m.AtT())
	}
	if !slices.Equal(got, []int64{-10, -8, -5}) {
		t.Fatalf("negative timestamps from a Seek: %v", got)
	}
	run("sources at the ends of int64",
		[][]Sample{{f(math.MinInt64, 1), f(0, 1)}, {f(0, 2), f(math.MaxInt64-1, 2)}},
		[]Sample{f(math.MinInt64, 1), f(0, 2), f(math.MaxInt64-1, 2)})
}

// TestMergeIteratorSeekEdges: Seek stays on the current sample when it is
// at or after the target, moves sources that are behind only, and after
// the end stays at the end.
func TestMergeIteratorSeekEdges(t *testing.T) {
	f := func(ts int64, v float64) Sample { return Sample{T: ts, V: v} }
	srcs := [][]Sample{{f(10, 1), f(20, 1), f(30, 1)}, {f(15, 2), f(20, 2), f(40, 2)}}
	want := []Sample{f(10, 1), f(15, 2), f(20, 2), f(30, 1), f(40, 2)}
	for _, ops := range [][]int64{
		{20, 20, 19, -1, 30, 31, -1, -1, 41, -1, 0},
		{0, 10, 11, -1, -1, 5},
		{15, -1, 20, 40, 40, -1, 40},
		{41, 0, -1},
		{-1, 10, -1, 15, 16, 21, 39, 40},
	} {
		its := []chunkenc.Iterator{NewSliceIterator(srcs[0]), NewSliceIterator(srcs[1])}
		checkAgainstModel(t, fmt.Sprintf("ops %v", ops), NewMergeIterator(its), want, ops)
	}
}

// failingIterator yields its samples, then fails.
type failingIterator struct {
	chunkenc.Iterator
	err error
	end bool
}

func (f *failingIterator) Next() chunkenc.ValueType {
	vt := f.Iterator.Next()
	f.end = vt == chunkenc.ValNone
	return vt
}

func (f *failingIterator) Seek(t int64) chunkenc.ValueType {
	vt := f.Iterator.Seek(t)
	f.end = vt == chunkenc.ValNone
	return vt
}

func (f *failingIterator) Err() error {
	if f.end {
		return f.err
	}
	return nil
}

// TestMergeIteratorError: a source that fails ends the merge, which
// reports the source's error, whether the failure comes first or after
// other samples, by Next or by Seek.
func TestMergeIteratorError(t *testing.T) {
	boom := errors.New("boom")
	f := func(ts int64) Sample { return Sample{T: ts, V: float64(ts)} }
	for _, seek := range []bool{false, true} {
		for _, failing := range [][]Sample{nil, {f(1), f(2)}} {
			good := NewSliceIterator([]Sample{f(1), f(3), f(5), f(7)})
			bad := &failingIterator{Iterator: NewSliceIterator(failing), err: boom}
			m := NewMergeIterator([]chunkenc.Iterator{good, bad})
			n := 0
			vt := chunkenc.ValNone
			if seek {
				vt = m.Seek(0)
			} else {
				vt = m.Next()
			}
			for ; vt != chunkenc.ValNone && n < 10; vt = m.Next() {
				n++
			}
			if !errors.Is(m.Err(), boom) {
				t.Fatalf("seek %v, failing after %d samples: Err %v after %d samples", seek, len(failing), m.Err(), n)
			}
			if n > len(failing)+1 {
				t.Fatalf("seek %v, failing after %d samples: %d samples before the error", seek, len(failing), n)
			}
			if m.Next() != chunkenc.ValNone || m.Seek(0) != chunkenc.ValNone {
				t.Fatal("the merge went on after an error")
			}
		}
	}
}

// TestMergeIteratorHistograms: histograms merge as floats do, the last
// source winning; a histogram taken from another source than the sample
// before it loses its NotCounterReset hint (it no longer follows that
// sample), one from the same source keeps it. Integer histograms are also
// read as float histograms.
func TestMergeIteratorHistograms(t *testing.T) {
	h := func(ts int64, count uint64, hint histogram.CounterResetHint) Sample {
		x := fixtureHistogram(int(count))
		x.CounterResetHint = hint
		return Sample{T: ts, H: x}
	}
	nc, unk := histogram.NotCounterReset, histogram.UnknownCounterReset
	a := []Sample{h(1, 1, unk), h(2, 2, nc), h(3, 3, nc), h(5, 5, nc)}
	b := []Sample{h(3, 7, nc), h(4, 8, nc)}
	want := []Sample{h(1, 1, unk), h(2, 2, nc), h(3, 7, unk), h(4, 8, nc), h(5, 5, unk)}
	for _, float := range []bool{false, true} {
		srcs := [][]Sample{slices.Clone(a), slices.Clone(b)}
		exp := slices.Clone(want)
		if float {
			for _, s := range [][]Sample{srcs[0], srcs[1], exp} {
				for i := range s {
					s[i] = Sample{T: s[i].T, FH: s[i].H.ToFloat(nil)}
				}
			}
		}
		for _, chain := range []bool{false, true} {
			its := make([]chunkenc.Iterator, 2)
			for i, s := range srcs {
				if chain {
					its[i] = chainOf(t, s, 2)
				} else {
					its[i] = NewSliceIterator(s)
				}
			}
			if chain {
				// The chunks hold their own hints (the first sample of a
				// chunk is Unknown); compare values only, here.
				m := NewMergeIterator(its)
				var got []int64
				for vt := m.Next(); vt != chunkenc.ValNone; vt = m.Next() {
					s := ReadSample(m, vt, nil, nil)
					got = append(got, s.T)
					w := exp[len(got)-1]
					if (s.H == nil) != (w.H == nil) || s.H != nil && !equalIgnoringHint(s.H, w.H) ||
						(s.FH == nil) != (w.FH == nil) || s.FH != nil && !equalIgnoringFloatHint(s.FH, w.FH) {
						t.Fatalf("float %v, chain: sample %d: %+v, want %+v", float, len(got)-1, s, w)
					}
				}
				if len(got) != len(exp) || m.Err() != nil {
					t.Fatalf("float %v, chain: %v, %v", float, got, m.Err())
				}
				continue
			}
			ops := []int64{-1, -1, -1, -1, -1, -1}
			checkAgainstModel(t, fmt.Sprintf("float %v", float), NewMergeIterator(its), exp, ops)
		}
	}
	// The first sample of all, from the second source: nothing is before
	// it in the merge, so it continues nothing.
	first := NewMergeIterator([]chunkenc.Iterator{NewSliceIterator([]Sample{h(5, 1, nc)}), NewSliceIterator([]Sample{h(1, 2, nc)})})
	if first.Next() != chunkenc.ValHistogram {
		t.Fatal("no first sample")
	}
	if _, x := first.AtHistogram(nil); x.CounterResetHint != unk {
		t.Fatalf("first sample of the merge, from the second source: hint %v, want unknown", x.CounterResetHint)
	}
	// A slice of integer histograms read as float histograms.
	sl := NewSliceIterator(a)
	for i := 0; sl.Next() != chunkenc.ValNone; i++ {
		if ts, fh := sl.AtFloatHistogram(nil); ts != a[i].T || !fh.Equals(a[i].H.ToFloat(nil)) {
			t.Fatalf("slice sample %d as a float histogram: %d %v", i, ts, fh)
		}
	}
	// Read as float histograms.
	m := NewMergeIterator([]chunkenc.Iterator{NewSliceIterator(a), NewSliceIterator(b)})
	for i := 0; m.Next() != chunkenc.ValNone; i++ {
		ts, fh := m.AtFloatHistogram(nil)
		if w := want[i].H.ToFloat(nil); ts != want[i].T || !fh.Equals(w) {
			t.Fatalf("sample %d as a float histogram: %d %v, want %d %v", i, ts, fh, want[i].T, w)
		}
	}
}

func equalIgnoringHint(a, b *histogram.Histogram) bool {
	a, b = a.Copy(), b.Copy()
	a.CounterResetHint, b.CounterResetHint = 0, 0
	return a.Equals(b)
}

func equalIgnoringFloatHint(a, b *histogram.FloatHistogram) bool {
	a, b = a.Copy(), b.Copy()
	a.CounterResetHint, b.CounterResetHint = 0, 0
	return a.Equals(b)
}

// TestChainIteratorSeek: Seek over a chain of chunks skips whole chunks
// that end before the target, stays on the current sample when it is at or
// after it, and Next goes on from where Seek left, across chunk ends.
func TestChainIteratorSeek(t *testing.T) {
	var samples []Sample
	for i := range 40 {
		samples = append(samples, Sample{T: int64(10 * i), V: float64(i)})
	}
	rng := rand.New(rand.NewPCG(22, 4))
	for round := range 200 {
		per := 1 + rng.IntN(8)
		ops := randomOps(rng, 30, 0, 390)
		checkAgainstModel(t, fmt.Sprintf("round %d, %d a chunk, ops %v", round, per, ops), chainOf(t, samples, per), samples, ops)
	}
	// Every edge of every chunk, from a fresh iterator and after a Next.
	for per := 1; per <= 5; per++ {
		for target := int64(-1); target <= 400; target++ {
			checkAgainstModel(t, fmt.Sprintf("%d a chunk, Seek(%d)", per, target), chainOf(t, samples, per), samples, []int64{max(target, 0), -1, -1})
			checkAgainstModel(t, fmt.Sprintf("%d a chunk, Next, Seek(%d)", per, target), chainOf(t, samples, per), samples, []int64{-1, max(target, 0), -1})
		}
	}
	// Exhausted by Next, then sought back: it stays exhausted.
	for per := 1; per <= 5; per++ {
		ops := make([]int64, len(samples)+1)
		for i := range ops {
			ops[i] = -1
		}
		ops = append(ops, 0, 390, 391, -1)
		checkAgainstModel(t, fmt.Sprintf("%d a chunk, to the end, then back", per), chainOf(t, samples, per), samples, ops)
	}
	if vt := NewChainIterator(nil, nil).Seek(0); vt != chunkenc.ValNone {
		t.Fatalf("empty chain: %v", vt)
	}
}

// TestBoundedIteratorEdges: samples exactly at mint and maxt are kept,
// those one off are not, by Next and by Seek.
func TestBoundedIteratorEdges(t *testing.T) {
	var samples []Sample
	for i := range 10 {
		samples = append(samples, Sample{T: int64(i), V: float64(i)})
	}
	for mint := int64(-1); mint <= 10; mint++ {
		for maxt := mint - 1; maxt <= 10; maxt++ {
			var want []Sample
			for _, s := range samples {
				if s.T >= mint && s.T <= maxt {
					want = append(want, s)
				}
			}
			name := fmt.Sprintf("[%d, %d]", mint, maxt)
			checkAgainstModel(t, name+" by Next", NewBoundedIterator(NewSliceIterator(samples), mint, maxt), want, []int64{-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1})
			for target := int64(0); target <= 11; target++ {
				b := NewBoundedIterator(NewSliceIterator(samples), mint, maxt)
				m := &modelCursor{want: want, i: -1}
				got, exp := b.Seek(target), m.seek(target)
				if got != exp || exp != chunkenc.ValNone && b.AtT() != want[m.i].T {
					t.Fatalf("%s: Seek(%d) = %v, want %v", name, target, got, exp)
				}
				if got, exp := b.Next(), m.next(); got != exp || exp != chunkenc.ValNone && b.AtT() != want[m.i].T {
					t.Fatalf("%s: Next after Seek(%d) = %v, want %v", name, target, got, exp)
				}
			}
		}
	}
}

// nextOnly is an iterator that moves by Next only, its Seek SeekByNext's.
type nextOnly struct {
	chunkenc.Iterator
	cur chunkenc.ValueType
}

func (n *nextOnly) Next() chunkenc.ValueType { n.cur = n.Iterator.Next(); return n.cur }

func (n *nextOnly) Seek(t int64) chunkenc.ValueType {
	n.cur = SeekByNext(n, n.cur, t)
	return n.cur
}

// TestSeekByNext: a Seek made of Next calls stays on the current sample
// when it is at or after the target (also on a first Seek, and on a
// histogram), moves to the first sample at or after it otherwise, and
// once past the end stays there.
func TestSeekByNext(t *testing.T) {
	var samples []Sample
	for i := range 20 {
		s := Sample{T: int64(10 * i), V: float64(i)}
		if i%7 == 3 {
			s = Sample{T: s.T, H: &histogram.Histogram{Count: uint64(i), Sum: 1}}
		}
		samples = append(samples, s)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	for round := range 200 {
		ops := randomOps(rng, 25, 0, 200)
		checkAgainstModel(t, fmt.Sprintf("round %d, ops %v", round, ops), &nextOnly{Iterator: NewSliceIterator(samples)}, samples, ops)
	}
	for target := int64(0); target <= 200; target++ {
		checkAgainstModel(t, fmt.Sprintf("Seek(%d)", target), &nextOnly{Iterator: NewSliceIterator(samples)}, samples, []int64{target, target, -1, target})
		checkAgainstModel(t, fmt.Sprintf("Next, Seek(%d)", target), &nextOnly{Iterator: NewSliceIterator(samples)}, samples, []int64{-1, target, -1})
	}
	if vt := (&nextOnly{Iterator: NewSliceIterator(nil)}).Seek(0); vt != chunkenc.ValNone {
		t.Fatalf("empty: %v", vt)
	}
}
