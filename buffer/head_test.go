package buffer

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand"
	"slices"
	"sync"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/strata-tsdb/strata/ingest"
)

func newTestHead(t testing.TB, opts Options) *Head {
	t.Helper()
	h, err := NewHead(opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func batchOf(lset labels.Labels, samples ...ingest.Sample) *ingest.Batch {
	return &ingest.Batch{Series: []ingest.Series{{Labels: lset, Samples: samples}}}
}

// readAll returns the samples of the one series matching ms in [mint, maxt].
func readAll(t testing.TB, h *Head, mint, maxt int64, ms ...*labels.Matcher) []ingest.Sample {
	t.Helper()
	ss, err := h.Select(context.Background(), true, mint, maxt, ms...)
	if err != nil {
		t.Fatal(err)
	}
	if len(ss) == 0 {
		return nil
	}
	if len(ss) != 1 {
		t.Fatalf("want 1 series, got %d", len(ss))
	}
	return drain(t, ss[0].Iterator())
}

func drain(t testing.TB, it chunkenc.Iterator) []ingest.Sample {
	t.Helper()
	var out []ingest.Sample
	for it.Next() == chunkenc.ValFloat {
		ts, v := it.At()
		out = append(out, ingest.Sample{T: ts, V: v})
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

var metricA = labels.FromStrings("__name__", "a", "job", "x")

func TestAppendInOrderCutsChunks(t *testing.T) {
	h := newTestHead(t, Options{ChunkSamples: 10, ChunkRange: 100_000})
	var want []ingest.Sample
	for i := range 1000 {
		want = append(want, ingest.Sample{T: int64(i) * 1000, V: float64(i)})
	}
	if err := h.Append(batchOf(metricA, want...)); err != nil {
		t.Fatal(err)
	}
	s := h.series.getByRef(1)
	if len(s.chunks) < 99 {
		t.Fatalf("want chunks cut every 10 samples, got %d closed chunks", len(s.chunks))
	}
	for _, c := range s.chunks {
		if rangeStart(c.minT, 100_000) != rangeStart(c.maxT, 100_000) {
			t.Fatalf("chunk [%d,%d] crosses a chunk range boundary", c.minT, c.maxT)
		}
	}
	got := readAll(t, h, math.MinInt64, math.MaxInt64)
	if !slices.Equal(got, want) {
		t.Fatalf("read back %d samples, want %d; first diff at %v", len(got), len(want), firstDiff(got, want))
	}
	// A sub-range is trimmed exactly.
	got = readAll(t, h, 10_500, 20_000)
	if !slices.Equal(got, want[11:21]) {
		t.Fatalf("range read: got %v", got)
	}
}

func firstDiff(a, b []ingest.Sample) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestOutOfOrderMatchesModel appends random timestamps, many of them late
// or repeated, and compares every read with a map where the last write
// wins.
func TestOutOfOrderMatchesModel(t *testing.T) {
	for _, seed := range []int64{1, 2, 3, 4, 5} {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			rng := rand.New(rand.NewSource(seed))
			h := newTestHead(t, Options{ChunkSamples: 16, ChunkRange: 50_000, OOOBufferSize: 8, MaxOOOChunks: 3})
			model := map[int64]float64{}
			for step := range 300 {
				var batch []ingest.Sample
				for range 1 + rng.Intn(20) {
					ts := int64(rng.Intn(2000)) * 100
					if rng.Intn(3) == 0 {
						ts = int64(1000+step*5+rng.Intn(5)) * 100 // mostly increasing
					}
					v := float64(rng.Intn(1000))
					batch = append(batch, ingest.Sample{T: ts, V: v})
					model[ts] = v
				}
				if err := h.Append(batchOf(metricA, batch...)); err != nil {
					t.Fatal(err)
				}
				mint := int64(rng.Intn(3000)) * 100
				maxt := mint + int64(rng.Intn(1000))*100
				got := readAll(t, h, mint, maxt)
				want := modelRange(model, mint, maxt)
				if !samplesEqual(got, want) {
					t.Fatalf("step %d [%d,%d]: got %d samples, want %d, first diff at %d", step, mint, maxt, len(got), len(want), firstDiff(got, want))
				}
			}
			if h.NumOutOfOrder() == 0 {
				t.Fatal("the test appended no out-of-order samples")
			}
		})
	}
}

func modelRange(m map[int64]float64, mint, maxt int64) []ingest.Sample {
	var out []ingest.Sample
	for ts, v := range m {
		if ts >= mint && ts <= maxt {
			out = append(out, ingest.Sample{T: ts, V: v})
		}
	}
	slices.SortFunc(out, func(a, b ingest.Sample) int { return int(a.T - b.T) })
	return out
}

func samplesEqual(a, b []ingest.Sample) bool {
	return slices.EqualFunc(a, b, func(x, y ingest.Sample) bool {
		return x.T == y.T && (x.V == y.V || math.IsNaN(x.V) && math.IsNaN(y.V))
	})
}

func TestDuplicateTimestampLastWriteWins(t *testing.T) {
	h := newTestHead(t, Options{})
	must := func(s ...ingest.Sample) {
		t.Helper()
		if err := h.Append(batchOf(metricA, s...)); err != nil {
			t.Fatal(err)
		}
	}
	must(ingest.Sample{T: 1000, V: 1}, ingest.Sample{T: 2000, V: 2})
	must(ingest.Sample{T: 2000, V: 20}) // same timestamp as the head's last
	must(ingest.Sample{T: 1000, V: 10}, ingest.Sample{T: 1000, V: 11})
	must(ingest.Sample{T: 1500, V: math.NaN()})
	got := readAll(t, h, 0, 10_000)
	want := []ingest.Sample{{T: 1000, V: 11}, {T: 1500, V: math.NaN()}, {T: 2000, V: 20}}
	if !samplesEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestMatchers(t *testing.T) {
	h := newTestHead(t, Options{})
	sets := []labels.Labels{
		labels.FromStrings("__name__", "cpu", "host", "a", "mode", "user"),
		labels.FromStrings("__name__", "cpu", "host", "b", "mode", "system"),
		labels.FromStrings("__name__", "cpu", "host", "c"),
		labels.FromStrings("__name__", "mem", "host", "a"),
		labels.FromStrings("__name__", "mem", "host", "bb", "dc", "eu"),
	}
	for i, ls := range sets {
		if err := h.Append(batchOf(ls, ingest.Sample{T: int64(i), V: 1})); err != nil {
			t.Fatal(err)
		}
	}
	cases := [][]*labels.Matcher{
		{labels.MustNewMatcher(labels.MatchEqual, "__name__", "cpu")},
		{labels.MustNewMatcher(labels.MatchEqual, "__name__", "cpu"), labels.MustNewMatcher(labels.MatchEqual, "mode", "")},
		{labels.MustNewMatcher(labels.MatchNotEqual, "mode", "")},
		{labels.MustNewMatcher(labels.MatchNotEqual, "host", "a")},
		{labels.MustNewMatcher(labels.MatchRegexp, "host", "b.*")},
		{labels.MustNewMatcher(labels.MatchRegexp, "host", "a|c"), labels.MustNewMatcher(labels.MatchNotRegexp, "__name__", "mem")},
		{labels.MustNewMatcher(labels.MatchRegexp, "dc", ".*")},
		{labels.MustNewMatcher(labels.MatchRegexp, "dc", ".+")},
		{labels.MustNewMatcher(labels.MatchNotRegexp, "dc", "eu|us")},
		{labels.MustNewMatcher(labels.MatchEqual, "nope", "x")},
		{labels.MustNewMatcher(labels.MatchEqual, "__name__", "cpu"), labels.MustNewMatcher(labels.MatchEqual, "host", "zzz")},
	}
	for _, ms := range cases {
		t.Run(fmt.Sprint(ms), func(t *testing.T) {
			var want []labels.Labels
			for _, ls := range sets {
				ok := true
				for _, m := range ms {
					ok = ok && m.Matches(ls.Get(m.Name))
				}
				if ok {
					want = append(want, ls)
				}
			}
			slices.SortFunc(want, labels.Compare)
			ss, err := h.Select(context.Background(), true, math.MinInt64, math.MaxInt64, ms...)
			if err != nil {
				t.Fatal(err)
			}
			var got []labels.Labels
			for _, s := range ss {
				got = append(got, s.Labels)
			}
			if !slices.EqualFunc(got, want, labels.Equal) {
				t.Fatalf("got %v, want %v", got, want)
			}
		})
	}
}

func TestSelectSkipsSeriesWithoutDataInRange(t *testing.T) {
	h := newTestHead(t, Options{})
	if err := h.Append(batchOf(metricA, ingest.Sample{T: 5000, V: 1})); err != nil {
		t.Fatal(err)
	}
	ss, err := h.Select(context.Background(), false, 6000, 9000)
	if err != nil {
		t.Fatal(err)
	}
	if len(ss) != 0 {
		t.Fatalf("got %d series for a range without data", len(ss))
	}
	names, err := h.LabelValues(context.Background(), "job", 0, 10_000, labels.MustNewMatcher(labels.MatchEqual, "__name__", "a"))
	if err != nil || !slices.Equal(names, []string{"x"}) {
		t.Fatalf("label values: %v %v", names, err)
	}
}

func TestMaxSeriesRefusesWholeBatch(t *testing.T) {
	h := newTestHead(t, Options{MaxSeries: 2})
	if err := h.Append(batchOf(metricA, ingest.Sample{T: 1, V: 1})); err != nil {
		t.Fatal(err)
	}
	b := &ingest.Batch{Series: []ingest.Series{
		{Labels: labels.FromStrings("__name__", "b"), Samples: []ingest.Sample{{T: 1, V: 1}}},
		{Labels: labels.FromStrings("__name__", "c"), Samples: []ingest.Sample{{T: 1, V: 1}}},
	}}
	if err := h.Append(b); !errors.Is(err, ErrTooManySeries) {
		t.Fatalf("want ErrTooManySeries, got %v", err)
	}
	if h.NumSeries() != 1 {
		t.Fatalf("refused batch created series: %d", h.NumSeries())
	}
	// Existing series keep ingesting.
	if err := h.Append(batchOf(metricA, ingest.Sample{T: 2, V: 2})); err != nil {
		t.Fatal(err)
	}
}

// TestConcurrentAppendAndRead runs writers and readers at once; with -race
// it checks that snapshots are isolated from appends.
func TestConcurrentAppendAndRead(t *testing.T) {
	h := newTestHead(t, Options{ChunkSamples: 20, OOOBufferSize: 4, MaxOOOChunks: 2})
	var wg sync.WaitGroup
	const writers, perWriter = 4, 500
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lset := labels.FromStrings("__name__", "c", "w", fmt.Sprint(w%2))
			for i := range perWriter {
				ts := int64(i*writers+w) * 10
				if err := h.Append(batchOf(lset, ingest.Sample{T: ts, V: float64(ts)})); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	stop := make(chan struct{})
	var rwg sync.WaitGroup
	rwg.Add(1)
	go func() {
		defer rwg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			ss, err := h.Select(context.Background(), false, 0, math.MaxInt64)
			if err != nil {
				t.Error(err)
				return
			}
			for _, s := range ss {
				prev := int64(-1)
				for _, x := range drain(t, s.Iterator()) {
					if x.T <= prev || x.V != float64(x.T) {
						t.Errorf("bad sample %v after %d", x, prev)
						return
					}
					prev = x.T
				}
			}
		}
	}()
	wg.Wait()
	close(stop)
	rwg.Wait()
	total := 0
	ss, _ := h.Select(context.Background(), false, 0, math.MaxInt64)
	for _, s := range ss {
		total += len(drain(t, s.Iterator()))
	}
	if total != writers*perWriter {
		t.Fatalf("read %d samples, want %d", total, writers*perWriter)
	}
}

// TestLateDuplicatesLastWriteWins appends, at default options, late
// batches of 13 to 40 samples that repeat a handful of timestamps, and
// compares every read with a model where the last write wins. Batches this
// long fill the default out-of-order buffer (32) past the size at which an
// unstable sort stops behaving like a stable one (12), both in the sorted
// chunks cut from the buffer and in the unsorted buffer sorted at read time.
func TestLateDuplicatesLastWriteWins(t *testing.T) {
	for n := 13; n <= 40; n++ {
		t.Run(fmt.Sprint("dups", n), func(t *testing.T) {
			rng := rand.New(rand.NewSource(int64(n)))
			h := newTestHead(t, Options{})
			model := map[int64]float64{}
			var inOrder []ingest.Sample
			for i := range 50 {
				s := ingest.Sample{T: int64(i+1) * 1000, V: float64(i)}
				inOrder = append(inOrder, s)
				model[s.T] = s.V
			}
			if err := h.Append(batchOf(metricA, inOrder...)); err != nil {
				t.Fatal(err)
			}
			v := 1000.0
			for batch := range 4 {
				// Late: at or before the newest in-order sample, on at most
				// three distinct timestamps so that most samples repeat one.
				ts := []int64{int64(1+rng.Intn(50)) * 1000, int64(1+rng.Intn(50)) * 1000, int64(1+rng.Intn(50)) * 1000}
				var late []ingest.Sample
				for range n {
					v++
					s := ingest.Sample{T: ts[rng.Intn(len(ts))], V: v}
					late = append(late, s)
					model[s.T] = s.V
				}
				if err := h.Append(batchOf(metricA, late...)); err != nil {
					t.Fatal(err)
				}
				got := readAll(t, h, math.MinInt64, math.MaxInt64)
				want := modelRange(model, math.MinInt64, math.MaxInt64)
				if i := firstDiff(got, want); i < len(want) || len(got) != len(want) {
					t.Fatalf("batch %d of %d late samples: got %d samples, want %d; first diff at %d (got %v, want %v)",
						batch, n, len(got), len(want), i, at(got, i), at(want, i))
				}
			}
			if h.NumOutOfOrder() < int64(4*n) {
				t.Fatalf("out-of-order count %d, want at least %d: the late samples were not late", h.NumOutOfOrder(), 4*n)
			}
		})
	}
}

func at(ss []ingest.Sample, i int) any {
	if i < len(ss) {
		return ss[i]
	}
	return "none"
}
