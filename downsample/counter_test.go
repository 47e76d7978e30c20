package downsample

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/strata-tsdb/strata/segments"
)

// TestCounterIterator checks that raw samples continued after a rollup's
// last counter value give, with the rollup's counter samples, the raw
// increase between any two of their timestamps.
func TestCounterIterator(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	for i := range 30 {
		ss := genSeries(rng, day0, 10*sec, 4000, true)
		if i%3 == 0 { // a reset right after the seam
			for j := range len(ss) - 1 {
				if ss[j].T > day0+5*Res1h {
					ss[j].V, ss[j+1].V = 0.5, 0.75
					break
				}
			}
		}
		rows := aggregate(t, inRange(ss, math.MinInt64, day0+5*Res1h), Res5m)
		last := rows[len(rows)-1]
		var cont []sample
		it := NewCounterIterator(segments.NewSliceIterator(inRange(ss, last.T-Res5m+1, math.MaxInt64)), last.T, last.Counter)
		for it.Next() == chunkenc.ValFloat {
			ts, v := it.At()
			cont = append(cont, sample{T: ts, V: v})
		}
		if err := it.Err(); err != nil {
			t.Fatal(err)
		}
		all := append(counterSamples(rows), cont...)
		for j := 1; j < len(all); j++ {
			if all[j].V < all[j-1].V || all[j].T <= all[j-1].T {
				t.Fatalf("spliced counter goes from %v to %v", all[j-1], all[j])
			}
		}
		for range 200 {
			a := all[rng.IntN(len(all))].T
			b := all[rng.IntN(len(all))].T
			if a > b {
				a, b = b, a
			}
			if got, want := increase(all, a, b), increase(ss, a, b); !sameFloat(got, want, 1e-9) {
				t.Fatalf("increase (%d, %d]: spliced %g, raw %g", a, b, got, want)
			}
		}
		// Seek lands on the first sample at or after its argument.
		it = NewCounterIterator(segments.NewSliceIterator(inRange(ss, last.T-Res5m+1, math.MaxInt64)), last.T, last.Counter)
		if len(cont) > 10 {
			if it.Seek(cont[10].T-1) != chunkenc.ValFloat || it.AtT() != cont[10].T {
				t.Fatalf("Seek to %d landed on %d", cont[10].T-1, it.AtT())
			}
			if _, v := it.At(); v != cont[10].V {
				t.Fatalf("value after Seek %g, want %g", v, cont[10].V)
			}
			if it.Seek(0) != chunkenc.ValFloat || it.AtT() != cont[10].T {
				t.Fatal("Seek backwards moved")
			}
		}
	}
}
