package buffer

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"math/rand"
	"path/filepath"
	"slices"
	"testing"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/strata-tsdb/strata/ingest"
	"github.com/strata-tsdb/strata/segments"
)

// testHistogram returns an integer histogram whose counts grow with i, with
// more buckets as i grows (so appending in order recodes chunks), schema
// 3 or the custom-bucket schema.
func testHistogram(i int, custom bool) *histogram.Histogram {
	n := 1 + min(i, 20)/3
	h := &histogram.Histogram{
		Schema:          3,
		ZeroThreshold:   0.001,
		ZeroCount:       uint64(i),
		Sum:             float64(i) * 1.25,
		PositiveSpans:   []histogram.Span{{Offset: -1, Length: uint32(n)}},
		PositiveBuckets: make([]int64, n),
		NegativeSpans:   []histogram.Span{{Offset: 2, Length: 1}},
		NegativeBuckets: []int64{int64(i)},
	}
	if custom {
		h.Schema, h.ZeroThreshold, h.ZeroCount = histogram.CustomBucketsSchema, 0, 0
		h.NegativeSpans, h.NegativeBuckets = nil, nil
		h.PositiveSpans[0].Offset = 0
		h.CustomValues = []float64{0.1, 0.2, 0.5, 1, 2, 5, 10}
	}
	h.PositiveBuckets[0] = int64(i + 1)
	h.Count = h.ZeroCount + uint64(i+1)*uint64(n)
	if !custom {
		h.Count += uint64(i)
	}
	return h
}

// histSample returns a random sample of one of the three kinds.
func histSample(rng *rand.Rand, t int64, i int) segments.Sample {
	switch rng.Intn(4) {
	case 0:
		return segments.Sample{T: t, V: float64(rng.Intn(1000))}
	case 1:
		h := testHistogram(i, false).ToFloat(nil)
		h.Sum = rng.Float64()
		return segments.Sample{T: t, FH: h}
	case 2:
		return segments.Sample{T: t, H: testHistogram(i, true)}
	}
	return segments.Sample{T: t, H: testHistogram(i, false)}
}

func histBatch(lset labels.Labels, ss ...segments.Sample) *ingest.Batch {
	s := ingest.Series{Labels: lset}
	for _, x := range ss {
		if x.H == nil && x.FH == nil {
			s.Samples = append(s.Samples, ingest.Sample{T: x.T, V: x.V})
		} else {
			s.Histograms = append(s.Histograms, ingest.HistogramSample{T: x.T, H: x.H, FH: x.FH})
		}
	}
	return &ingest.Batch{Series: []ingest.Series{s}}
}

// copySample returns x with its histogram copied: the head owns what it is
// given.
func copySample(x segments.Sample) segments.Sample {
	if x.H != nil {
		x.H = x.H.Copy()
	}
	if x.FH != nil {
		x.FH = x.FH.Copy()
	}
	return x
}

// drainAll reads every sample of it, of any kind.
func drainAll(t testing.TB, it chunkenc.Iterator) []segments.Sample {
	t.Helper()
	var out []segments.Sample
	for vt := it.Next(); vt != chunkenc.ValNone; vt = it.Next() {
		out = append(out, segments.ReadSample(it, vt, nil, nil))
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// sameSamples compares samples of any kind. Histograms are compared with
// empty buckets removed (recoding adds some) and without counter-reset
// hints, which chunks set on read.
func sameSamples(t testing.TB, got, want []segments.Sample) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d samples, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		ok := g.T == w.T && g.Type() == w.Type()
		if ok {
			switch w.Type() {
			case chunkenc.ValHistogram:
				a, b := g.H.Copy().Compact(0), w.H.Copy().Compact(0)
				a.CounterResetHint, b.CounterResetHint = 0, 0
				ok = a.Equals(b)
			case chunkenc.ValFloatHistogram:
				a, b := g.FH.Copy().Compact(0), w.FH.Copy().Compact(0)
				a.CounterResetHint, b.CounterResetHint = 0, 0
				ok = a.Equals(b)
			default:
				ok = g.V == w.V || math.IsNaN(g.V) && math.IsNaN(w.V)
			}
		}
		if !ok {
			t.Fatalf("sample %d: got %d %v %v %v, want %d %v %v %v", i, g.T, g.V, g.H, g.FH, w.T, w.V, w.H, w.FH)
		}
	}
}

func modelSamples(m map[int64]segments.Sample, mint, maxt int64) []segments.Sample {
	var out []segments.Sample
	for ts, x := range m {
		if ts >= mint && ts <= maxt {
			out = append(out, x)
		}
	}
	slices.SortFunc(out, func(a, b segments.Sample) int { return int(a.T - b.T) })
	return out
}

// TestHistogramsMatchModel appends floats, integer and float histograms
// (custom buckets included) to one series in random order, many late or
// repeated, so that the series changes kind often, and compares reads with a
// map where the last write wins, as for floats.
func TestHistogramsMatchModel(t *testing.T) {
	for _, seed := range []int64{1, 2, 3} {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			rng := rand.New(rand.NewSource(seed))
			h := newTestHead(t, Options{ChunkSamples: 16, ChunkRange: 50_000, OOOBufferSize: 8, MaxOOOChunks: 3})
			model := map[int64]segments.Sample{}
			for step := range 200 {
				var batch []segments.Sample
				for range 1 + rng.Intn(10) {
					ts := int64(rng.Intn(2000)) * 100
					if rng.Intn(2) == 0 {
						ts = int64(1000+step*5+rng.Intn(5)) * 100
					}
					x := histSample(rng, ts, step)
					batch = append(batch, x)
				}
				// Within a batch floats are applied before histograms.
				slices.SortStableFunc(batch, func(a, b segments.Sample) int {
					return boolInt(a.H != nil || a.FH != nil) - boolInt(b.H != nil || b.FH != nil)
				})
				for _, x := range batch {
					model[x.T] = copySample(x)
				}
				if err := h.Append(histBatch(metricA, batch...)); err != nil {
					t.Fatal(err)
				}
				mint := int64(rng.Intn(3000)) * 100
				maxt := mint + int64(rng.Intn(1000))*100
				ss, err := h.Select(context.Background(), true, mint, maxt)
				if err != nil {
					t.Fatal(err)
				}
				var got []segments.Sample
				if len(ss) == 1 {
					got = drainAll(t, ss[0].Iterator())
				}
				sameSamples(t, got, modelSamples(model, mint, maxt))
			}
			if h.NumOutOfOrder() == 0 {
				t.Fatal("the test appended no out-of-order samples")
			}
		})
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestHistogramChunks checks the chunks the head cuts: a new one when the
// kind changes or a counter resets, a recoded one when buckets appear.
func TestHistogramChunks(t *testing.T) {
	h := newTestHead(t, Options{ChunkSamples: 1000, ChunkRange: 1 << 40})
	var in []segments.Sample
	for i := range 20 {
		in = append(in, segments.Sample{T: int64(i), H: testHistogram(i, false)}) // buckets grow: recoded
	}
	in = append(in, segments.Sample{T: 20, H: testHistogram(0, false)}) // counter reset
	in = append(in, segments.Sample{T: 21, V: 5})                       // floats
	in = append(in, segments.Sample{T: 22, FH: testHistogram(3, false).ToFloat(nil)})
	want := make([]segments.Sample, len(in))
	for i, x := range in {
		want[i] = copySample(x)
		if err := h.Append(histBatch(metricA, x)); err != nil {
			t.Fatal(err)
		}
	}
	s := h.series.getByRef(1)
	var encs []string
	for _, c := range append(slices.Clone(s.chunks), s.head) {
		encs = append(encs, fmt.Sprintf("%s:%d", c.chunk.Encoding(), c.chunk.NumSamples()))
	}
	if fmt.Sprint(encs) != "[histogram:20 histogram:1 XOR:1 floathistogram:1]" || s.chunks[0].maxT != 19 || s.chunks[1].minT != 20 {
		t.Errorf("chunks %v", encs)
	}
	sameSamples(t, readAllSamples(t, h), want)
	// The counter reset is in the chunk header, where Prometheus keeps it.
	if hdr := s.chunks[1].chunk.(*chunkenc.HistogramChunk).GetCounterResetHeader(); hdr != chunkenc.CounterReset {
		t.Errorf("counter reset header %v", hdr)
	}
}

func readAllSamples(t testing.TB, h *Head) []segments.Sample {
	t.Helper()
	ss, err := h.Select(context.Background(), true, math.MinInt64, math.MaxInt64)
	if err != nil {
		t.Fatal(err)
	}
	if len(ss) != 1 {
		t.Fatalf("%d series", len(ss))
	}
	return drainAll(t, ss[0].Iterator())
}

// TestHistogramsReplayAndFlush writes histograms and floats through a
// store, replays its log as after a crash, then flushes into real segments
// and reads them back from there: the same samples each time.
func TestHistogramsReplayAndFlush(t *testing.T) {
	dir := t.TempDir()
	set, err := segments.OpenSet(slog.New(slog.DiscardHandler), filepath.Join(dir, "segments"))
	if err != nil {
		t.Fatal(err)
	}
	opts := StoreOptions{Head: Options{ChunkSamples: 8, ChunkRange: 3_600_000}, BlockDuration: 7_200_000}
	s := openTestStore(t, dir, opts, set)
	rng := rand.New(rand.NewSource(7))
	model := map[int64]segments.Sample{}
	for i := range 300 {
		ts := int64(i) * 60_000
		if i%10 == 9 {
			ts = int64(rng.Intn(i)) * 60_000 // late: rewrites an earlier one
		}
		x := histSample(rng, ts, i)
		model[ts] = copySample(x)
		if err := s.Append(histBatch(metricA, x)); err != nil {
			t.Fatal(err)
		}
	}
	want := modelSamples(model, math.MinInt64, math.MaxInt64)
	if err := s.wal.Close(); err != nil { // a crash: nothing flushed
		t.Fatal(err)
	}
	s = openTestStore(t, dir, opts, set)
	sameSamples(t, readAllSamples(t, s.Head()), want)
	mustFlush(t, s)
	if ss, err := s.Head().Select(context.Background(), false, math.MinInt64, math.MaxInt64); err != nil || len(ss) != 0 {
		t.Fatalf("the head still holds %d series after a flush (%v)", len(ss), err)
	}
	segs, release := set.Acquire(math.MinInt64, math.MaxInt64)
	defer release()
	if len(segs) < 2 {
		t.Fatalf("%d segments, want one per 2h block", len(segs))
	}
	var its []chunkenc.Iterator
	encs := map[chunkenc.Encoding]bool{}
	for _, seg := range segs {
		sit, err := seg.Select(labels.MustNewMatcher(labels.MatchEqual, "__name__", "a"))
		if err != nil {
			t.Fatal(err)
		}
		for sit.Next() {
			for _, m := range sit.Chunks() {
				c, err := seg.ReadChunk(m.Ref)
				if err != nil {
					t.Fatal(err)
				}
				encs[c.Encoding()] = true
			}
			it, err := seg.KindIterator(sit.Chunks(), segments.KindRaw)
			if err != nil {
				t.Fatal(err)
			}
			its = append(its, it)
		}
		if err := seg.Verify(context.Background()); err != nil {
			t.Fatalf("verify %s: %v", seg.Meta().ID, err)
		}
	}
	if !encs[chunkenc.EncXOR] || !encs[chunkenc.EncHistogram] || !encs[chunkenc.EncFloatHistogram] {
		t.Errorf("segments hold chunks of encodings %v, want all three", encs)
	}
	sameSamples(t, drainAll(t, segments.NewMergeIterator(its)), want)
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}
