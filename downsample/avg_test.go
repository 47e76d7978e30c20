package downsample

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/strata-tsdb/strata/segments"
)

// rollupAverages returns sum/count of every bucket of the rollup of
// samples at res, as a querier reads a rollup's averages: Aggregate at
// 5m, then AggregateRollup for 1h.
func rollupAverages(t *testing.T, samples []segments.Sample, res int64) []segments.Sample {
	t.Helper()
	chunks, err := Aggregate(segments.NewSliceIterator(samples), Res5m)
	if err != nil {
		t.Fatal(err)
	}
	if res == Res1h && chunks != nil {
		if chunks, err = AggregateRollup(chunks, Res1h); err != nil {
			t.Fatal(err)
		}
	}
	read := func(k segments.ChunkKind) []segments.Sample {
		var out []segments.Sample
		for _, c := range chunks {
			if c.Kind != k {
				continue
			}
			it := c.Chunk.Iterator(nil)
			for it.Next() == chunkenc.ValFloat {
				ts, v := it.At()
				out = append(out, segments.Sample{T: ts, V: v})
			}
		}
		return out
	}
	sums, counts := read(segments.KindSum), read(segments.KindCount)
	if len(sums) != len(counts) {
		t.Fatalf("%d sums, %d counts", len(sums), len(counts))
	}
	for i := range sums {
		sums[i].V /= counts[i].V
	}
	return sums
}

// TestAvgIteratorEqualsRollup: the bucket averages NewAvgIterator makes
// of raw samples are those a rollup of the same samples holds, bit for
// bit, at 5m and 1h: random gaps, values of any size (sums that round),
// stale markers (dropped), NaN and infinities; by Next and by Seek.
func TestAvgIteratorEqualsRollup(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	for round := range 300 {
		var samples []segments.Sample
		ts := int64(1_700_000_000_000) + rng.Int64N(3_600_000)
		for range rng.IntN(400) {
			ts += 1 + rng.Int64N([]int64{15_000, 60_000, 3_600_000}[rng.IntN(3)])
			v := rng.NormFloat64() * math.Pow(10, float64(rng.IntN(30)-10))
			switch rng.IntN(60) {
			case 0:
				v = math.Float64frombits(value.StaleNaN)
			case 1:
				v = math.NaN()
			case 2:
				v = math.Inf(1 - 2*rng.IntN(2))
			}
			samples = append(samples, segments.Sample{T: ts, V: v})
		}
		for _, res := range []int64{Res5m, Res1h} {
			want := rollupAverages(t, samples, res)
			name := fmt.Sprintf("round %d, %d samples, resolution %d", round, len(samples), res)
			it := NewAvgIterator(segments.NewSliceIterator(samples), res)
			var got []segments.Sample
			for it.Next() == chunkenc.ValFloat {
				ts, v := it.At()
				got = append(got, segments.Sample{T: ts, V: v})
			}
			if err := it.Err(); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if len(got) != len(want) {
				t.Fatalf("%s: %d buckets, want %d", name, len(got), len(want))
			}
			for i := range got {
				same := math.Float64bits(got[i].V) == math.Float64bits(want[i].V) || math.IsNaN(got[i].V) && math.IsNaN(want[i].V)
				if got[i].T != want[i].T || !same {
					t.Fatalf("%s: bucket %d is %v at %d, want %v at %d", name, i, got[i].V, got[i].T, want[i].V, want[i].T)
				}
			}
			if len(want) == 0 {
				continue
			}
			// A Seek to a bucket's end, or just after the one before, lands on it.
			k := rng.IntN(len(want))
			target := want[k].T
			if k > 0 && rng.IntN(2) == 0 {
				target = want[k-1].T + 1
			}
			it = NewAvgIterator(segments.NewSliceIterator(samples), res)
			if it.Seek(target) != chunkenc.ValFloat || it.AtT() != want[k].T {
				t.Fatalf("%s: Seek(%d) at %d, want %d", name, target, it.AtT(), want[k].T)
			}
		}
	}
}

// TestAvgIteratorRefusesHistograms: a histogram sample is an error, as
// rollups leave such series out.
func TestAvgIteratorRefusesHistograms(t *testing.T) {
	it := NewAvgIterator(segments.NewSliceIterator([]segments.Sample{{T: 1, V: 1}, {T: 2, H: &histogram.Histogram{Count: 1, Sum: 1}}}), Res5m)
	for it.Next() != chunkenc.ValNone {
	}
	if it.Err() == nil {
		t.Fatal("no error for a histogram sample")
	}
}
