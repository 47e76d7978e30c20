package api

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/strata-tsdb/strata/ingest"
	"github.com/strata-tsdb/strata/query"
)

// TestPutBodyDropsLargeBuffers checks that a buffer grown by a large
// request is not kept in the pool, while a small one is reused.
func TestPutBodyDropsLargeBuffers(t *testing.T) {
	small := bytes.NewBuffer(make([]byte, 0, 64<<10))
	if !putBody(small) {
		t.Error("a 64 KiB buffer was not pooled")
	}
	big := bytes.NewBuffer(make([]byte, 0, 32<<20))
	if putBody(big) {
		t.Errorf("a %d-byte buffer was pooled; the limit is %d", big.Cap(), maxPooledBody)
	}
}

// TestTouchedByOnceEach: touchedBy lists each metric name and day of the
// samples, histograms and start times older than from once, in the
// order first seen, whatever the order and repeats of series, names and
// days in the batch, and whatever the series carry (some only
// histograms, or only a start time before from).
func TestTouchedByOnceEach(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	const day = 86_400_000
	from := int64(10 * day)
	ts := func() int64 { return int64(rng.IntN(12)) * day / 2 }
	var b ingest.Batch
	for i := range 300 {
		lset := labels.FromStrings("__name__", fmt.Sprintf("m%d", rng.IntN(4)), "i", fmt.Sprint(i))
		s := ingest.Series{Labels: lset}
		kind := rng.IntN(4)
		for range rng.IntN(4) {
			switch kind {
			case 0, 1:
				s.Samples = append(s.Samples, ingest.Sample{T: ts()})
			case 2:
				s.Histograms = append(s.Histograms, ingest.HistogramSample{T: ts()})
			case 3:
				// Start times, 0 (none) or another time, for samples
				// at from or later.
				s.Samples = append(s.Samples, ingest.Sample{T: from + day})
				s.StartTimes = append(s.StartTimes, ts()*int64(rng.IntN(2)))
				s.Histograms = append(s.Histograms, ingest.HistogramSample{T: from + day})
				s.HistogramStartTimes = append(s.HistogramStartTimes, ts()*int64(rng.IntN(2)))
			}
		}
		b.Series = append(b.Series, s)
	}
	var want []query.Touched
	for _, s := range b.Series {
		var times []int64
		for _, x := range s.Samples {
			times = append(times, x.T)
		}
		for _, x := range s.Histograms {
			times = append(times, x.T)
		}
		for _, st := range append(slices.Clone(s.StartTimes), s.HistogramStartTimes...) {
			if st != 0 {
				times = append(times, st)
			}
		}
		for _, x := range times {
			k := query.Touched{Name: s.Labels.Get("__name__"), Day: query.DayOf(x)}
			if x < from && !slices.Contains(want, k) {
				want = append(want, k)
			}
		}
	}
	if got := touchedBy(&b, from); !slices.Equal(got, want) {
		t.Fatalf("touchedBy: %v, want %v", got, want)
	}
	if len(want) < 10 {
		t.Fatalf("only %d keys: the batch does not test much", len(want))
	}
}
