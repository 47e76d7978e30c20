package buffer

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/strata-tsdb/strata/ingest"
)

// TestMaxSeriesUnderConcurrentBatches races writers that each create new
// series, four a batch, until the head refuses them: the head then holds
// at most MaxSeries series, and no fewer than a batch could still add.
// Batches that pass the batch-level check at once (each adds four series
// to MaxSeries-4) are held to the limit as each series is created. (Before
// that, the head counted a series only after making it, and such writers
// made up to 7 series more than the limit.)
func TestMaxSeriesUnderConcurrentBatches(t *testing.T) {
	const rounds, writers, limit, perBatch = 500, 8, 16, 4
	procs := max(runtime.GOMAXPROCS(0), 4) // writers in parallel even on a small machine
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
	for round := range rounds {
		h := newTestHead(t, Options{MaxSeries: limit})
		var wg sync.WaitGroup
		start := make(chan struct{})
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				for i := 0; ; i++ {
					b := &ingest.Batch{}
					for j := range perBatch {
						b.Series = append(b.Series, ingest.Series{
							Labels:  labels.FromStrings("__name__", "m", "w", fmt.Sprint(w), "i", fmt.Sprint(i), "j", fmt.Sprint(j)),
							Samples: []ingest.Sample{{T: 1, V: 1}},
						})
					}
					err := h.Append(b)
					if errors.Is(err, ErrTooManySeries) {
						return
					}
					if err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		close(start)
		wg.Wait()
		if n := h.NumSeries(); n > limit || n <= limit-perBatch {
			t.Fatalf("round %d: %d series in the head, want %d to %d", round, n, limit-perBatch+1, limit)
		}
	}
}

// TestMaxSeriesAtCreation: the limit holds as each series is made, not
// only in resolve's check of a whole batch. getOrCreate, called as by
// batches that all passed that check together, makes series up to
// MaxSeries and refuses the next, leaving the count at the limit; a
// series already in the head is still found.
func TestMaxSeriesAtCreation(t *testing.T) {
	const limit = 3
	h := newTestHead(t, Options{MaxSeries: limit})
	lset := func(i int) labels.Labels { return labels.FromStrings("__name__", "m", "i", fmt.Sprint(i)) }
	for i := range limit {
		if _, created, err := h.getOrCreate(lset(i), 0); err != nil || !created {
			t.Fatalf("series %d of %d: created %v, %v", i+1, limit, created, err)
		}
	}
	if s, _, err := h.getOrCreate(lset(limit), 0); !errors.Is(err, ErrTooManySeries) || s != nil {
		t.Fatalf("series %d past a limit of %d: %v, want ErrTooManySeries", limit+1, limit, err)
	}
	if n := h.NumSeries(); n != limit {
		t.Fatalf("%d series counted, want %d", n, limit)
	}
	if s, created, err := h.getOrCreate(lset(0), 0); err != nil || created || s == nil {
		t.Fatalf("a series in the head at the limit: created %v, %v", created, err)
	}
}
