package segments

import (
	"bytes"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
)

// layoutWalk makes a series of integer histograms whose layouts change the
// ways a scraped histogram's do: new buckets on either side and in gaps
// (forward inserts), buckets left out while empty (backward inserts), both
// at once, negative buckets and the zero bucket, counter resets, schema
// changes, and for gauge histograms counts that go down.
type layoutWalk struct {
	rng      *rand.Rand
	gauge    bool
	schema   int32
	pos, neg map[int32]int64
	zero     int64
	sum      float64
}

func (w *layoutWalk) next() *histogram.Histogram {
	r := w.rng
	switch {
	case r.IntN(60) == 0: // reset
		clear(w.pos)
		clear(w.neg)
		w.zero, w.sum = 0, 0
	case r.IntN(150) == 0:
		w.schema = int32(r.IntN(4))
		clear(w.pos)
		clear(w.neg)
	}
	if r.IntN(3) == 0 { // a new bucket
		m := w.pos
		if r.IntN(4) == 0 {
			m = w.neg
		}
		m[int32(r.IntN(40)-20)] += 0
	}
	for _, m := range []map[int32]int64{w.pos, w.neg} {
		var keys []int32
		for k := range m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			d := int64(r.IntN(4))
			if w.gauge {
				d = int64(r.IntN(7)) - 3
			}
			m[k] = max(0, m[k]+d)
		}
	}
	w.zero += int64(r.IntN(2))
	h := &histogram.Histogram{Schema: w.schema, ZeroThreshold: 0.001, ZeroCount: uint64(w.zero)}
	if w.gauge {
		h.CounterResetHint = histogram.GaugeType
	}
	var count int64
	h.PositiveSpans, h.PositiveBuckets, count = w.layout(w.pos)
	spans, buckets, n := w.layout(w.neg)
	h.NegativeSpans, h.NegativeBuckets = spans, buckets
	h.Count = uint64(count + n + w.zero)
	w.sum += float64(h.Count) / 8
	h.Sum = w.sum
	return h
}

// layout lays the buckets of m out in spans, leaving out some empty ones,
// and returns their deltas and total count.
func (w *layoutWalk) layout(m map[int32]int64) ([]histogram.Span, []int64, int64) {
	var all, idx []int32
	for k := range m {
		all = append(all, k)
	}
	slices.Sort(all) // the draws below in a fixed order
	for _, k := range all {
		if m[k] > 0 || w.rng.IntN(2) == 0 {
			idx = append(idx, k)
		}
	}
	var (
		spans  []histogram.Span
		deltas []int64
		prev   int64
		total  int64
		last   int32
	)
	for i, k := range idx {
		if i == 0 || k-last > 1 {
			off := k
			if i > 0 {
				off = k - last - 1
			}
			spans = append(spans, histogram.Span{Offset: off})
		}
		spans[len(spans)-1].Length++
		deltas = append(deltas, m[k]-prev)
		prev, last = m[k], k
		total += m[k]
	}
	return spans, deltas, total
}

// TestRecodeHistogramsSameBytes appends long random series of integer and
// float histograms through appendSample twice, recoding with recodeHistograms
// and with chunkenc, cutting chunks now and then as the head does: both
// must cut at the same samples and give byte-identical chunks, which read
// back every histogram appended.
func TestRecodeHistogramsSameBytes(t *testing.T) {
	recodes := 0
	floatRecodes := 0
	for seed := range uint64(60) {
		gauge := seed%4 == 3
		float := seed%3 == 1 // float histograms: their chunks recode the same way
		mk := func() *layoutWalk {
			return &layoutWalk{rng: rand.New(rand.NewPCG(seed, 7)), gauge: gauge, schema: 1, pos: map[int32]int64{}, neg: map[int32]int64{}}
		}
		wa, wb := mk(), mk()
		type state struct {
			chunks  []chunkenc.Chunk
			c       chunkenc.Chunk
			app     chunkenc.Appender
			prevApp chunkenc.Appender
		}
		var a, b state
		var want []*histogram.FloatHistogram
		for i := range 400 {
			ha, hb := wa.next(), wb.next()
			want = append(want, ha.ToFloat(nil))
			for _, s := range []struct {
				st  *state
				h   *histogram.Histogram
				own bool
			}{{&a, ha, true}, {&b, hb, false}} {
				st := s.st
				if st.c != nil && st.c.NumSamples() >= 25 { // cut as a full chunk: the next one starts with prev
					st.chunks = append(st.chunks, st.c)
					st.prevApp, st.c, st.app = st.app, nil, nil
				}
				before := st.c
				x := &Sample{T: int64(i) * 1000, H: s.h}
				if float {
					x.H, x.FH = nil, s.h.ToFloat(nil)
				}
				c, app, cut := appendSample(st.c, st.app, st.prevApp, x, s.own)
				if cut && before != nil {
					st.chunks = append(st.chunks, before)
				}
				if s.own && !cut && before != nil && c != before {
					recodes++
					if float {
						floatRecodes++
					}
				}
				if cut {
					st.prevApp = st.app
				}
				st.c, st.app = c, app
			}
		}
		a.chunks, b.chunks = append(a.chunks, a.c), append(b.chunks, b.c)
		if len(a.chunks) != len(b.chunks) {
			t.Fatalf("seed %d: %d chunks, chunkenc's recode gives %d", seed, len(a.chunks), len(b.chunks))
		}
		var got []*histogram.FloatHistogram
		for k := range a.chunks {
			if !bytes.Equal(a.chunks[k].Bytes(), b.chunks[k].Bytes()) {
				t.Fatalf("seed %d chunk %d (%v): bytes differ from chunkenc's recode", seed, k, a.chunks[k].Encoding())
			}
			it := a.chunks[k].Iterator(nil)
			for vt := it.Next(); vt != chunkenc.ValNone; vt = it.Next() {
				_, h := it.AtFloatHistogram(nil)
				got = append(got, h)
			}
			if it.Err() != nil {
				t.Fatal(it.Err())
			}
		}
		if len(got) != len(want) {
			t.Fatalf("seed %d: read %d histograms, appended %d", seed, len(got), len(want))
		}
		for k := range want {
			g, w := got[k].Copy(), want[k].Copy()
			g.CounterResetHint, w.CounterResetHint = 0, 0
			if !g.Compact(0).Equals(w.Compact(0)) {
				t.Fatalf("seed %d histogram %d: read %v, appended %v", seed, k, g, w)
			}
		}
	}
	if recodes-floatRecodes < 100 || floatRecodes < 100 {
		t.Fatalf("only %d recodes by recodeHistograms and %d by recodeFloatHistograms: the test does not exercise them", recodes-floatRecodes, floatRecodes)
	}
	t.Logf("%d recodes by recodeHistograms, %d by recodeFloatHistograms", recodes-floatRecodes, floatRecodes)
}

func TestExpandDeltas(t *testing.T) {
	f := func(spans []histogram.Span, deltas []int64, to []histogram.Span, want []int64, wantOK bool) {
		t.Helper()
		got, ok := expandDeltas(nil, spans, deltas, to)
		if ok != wantOK || (ok && !slices.Equal(got, want)) {
			t.Errorf("expandDeltas(%v, %v, %v) = %v, %v; want %v, %v", spans, deltas, to, got, ok, want, wantOK)
		}
	}
	sp := func(os ...int32) []histogram.Span { // offset, length pairs
		var out []histogram.Span
		for i := 0; i < len(os); i += 2 {
			out = append(out, histogram.Span{Offset: os[i], Length: uint32(os[i+1])})
		}
		return out
	}
	// counts 3 at -2, 5 at -1, 2 at 1
	f(sp(-2, 2, 1, 1), []int64{3, 2, -3}, sp(-2, 2, 1, 1), []int64{3, 2, -3}, true)
	f(sp(-2, 2, 1, 1), []int64{3, 2, -3}, sp(-3, 5), []int64{0, 3, 2, -5, 2}, true)           // gap and front filled
	f(sp(-2, 2, 1, 1), []int64{3, 2, -3}, sp(-2, 2, 0, 0, 1, 2), []int64{3, 2, -3, -2}, true) // empty span, bucket after
	f(sp(-2, 2, 1, 1), []int64{3, 2, -3}, sp(-2, 2), nil, false)                              // bucket 1 missing
	f(sp(-2, 2, 1, 1), []int64{3, 2, -3}, sp(-1, 3), nil, false)                              // bucket -2 missing
	f(nil, nil, sp(0, 2), []int64{0, 0}, true)
	f(nil, nil, nil, nil, true)

	// The same buckets as absolute float counts.
	g := func(spans []histogram.Span, counts []float64, to []histogram.Span, want []float64, wantOK bool) {
		t.Helper()
		got, ok := expandCounts(nil, spans, counts, to)
		if ok != wantOK || (ok && !slices.Equal(got, want)) {
			t.Errorf("expandCounts(%v, %v, %v) = %v, %v; want %v, %v", spans, counts, to, got, ok, want, wantOK)
		}
	}
	g(sp(-2, 2, 1, 1), []float64{3, 5, 2}, sp(-3, 5), []float64{0, 3, 5, 0, 2}, true)
	g(sp(-2, 2, 1, 1), []float64{3, 5, 2}, sp(-2, 2), nil, false)
	g(sp(-2, 2, 1, 1), []float64{3, 5}, sp(-3, 5), nil, false) // fewer counts than the spans say
	g(nil, nil, sp(0, 1), []float64{0}, true)
}
