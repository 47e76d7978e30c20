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
// samples older than from once, in the order first seen, whatever the
// order and repeats of series, names and days in the batch.
func TestTouchedByOnceEach(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	const day = 86_400_000
	from := int64(10 * day)
	var b ingest.Batch
	for i := range 300 {
		lset := labels.FromStrings("__name__", fmt.Sprintf("m%d", rng.IntN(4)), "i", fmt.Sprint(i))
		var samples []ingest.Sample
		for range rng.IntN(4) {
			samples = append(samples, ingest.Sample{T: int64(rng.IntN(12)) * day / 2})
		}
		b.Series = append(b.Series, ingest.Series{Labels: lset, Samples: samples})
	}
	var want []query.Touched
	for _, s := range b.Series {
		for _, x := range s.Samples {
			k := query.Touched{Name: s.Labels.Get("__name__"), Day: query.DayOf(x.T)}
			if x.T < from && !slices.Contains(want, k) {
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
