package buffer

import (
	"math"
	"slices"
	"testing"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/strata-tsdb/strata/ingest"
)

// TestSortedChunksAreFull: out-of-order samples sorted into a chunk, and a
// series' data merged back into in-order chunks when it has too many
// out-of-order ones, fill chunks up to ChunkSamples: a chunk is cut when
// full, not at every sample (the reads would be the same, the head many
// times larger).
func TestSortedChunksAreFull(t *testing.T) {
	h := newTestHead(t, Options{ChunkSamples: 10, OOOBufferSize: 4, MaxOOOChunks: 2})
	lset := labels.FromStrings("__name__", "full")
	var want []ingest.Sample
	app := func(ts ...int64) {
		t.Helper()
		for _, x := range ts {
			smp := ingest.Sample{T: x, V: float64(x)}
			if err := h.Append(batchOf(lset, smp)); err != nil {
				t.Fatal(err)
			}
			want = append(want, smp)
		}
	}
	for i := range 30 {
		app(100_000 + 1000*int64(i))
	}
	s := h.series.getByRef(1)
	counts := func() (ooo, inOrder []int) {
		s.mtx.Lock()
		defer s.mtx.Unlock()
		for _, c := range s.oooChunks() {
			ooo = append(ooo, c.chunk.NumSamples())
		}
		for _, c := range s.chunks {
			inOrder = append(inOrder, c.chunk.NumSamples())
		}
		if s.head != nil {
			inOrder = append(inOrder, s.head.chunk.NumSamples())
		}
		return ooo, inOrder
	}
	app(1000, 2000, 3000, 4000) // the buffer's 4: sorted into one chunk
	if ooo, _ := counts(); !slices.Equal(ooo, []int{4}) {
		t.Fatalf("4 out-of-order samples sorted: chunks of %v samples, want one of 4", ooo)
	}
	app(5000, 6000, 7000, 8000, 9000, 10_000, 11_000, 12_000) // two chunks more: merged back
	ooo, inOrder := counts()
	if len(ooo) != 0 || !slices.Equal(inOrder, []int{10, 10, 10, 10, 2}) {
		t.Fatalf("42 samples merged back: out-of-order chunks of %v, in-order chunks of %v samples; want none, and 10, 10, 10, 10, 2", ooo, inOrder)
	}
	slices.SortFunc(want, func(a, b ingest.Sample) int { return int(a.T - b.T) })
	if got := readAll(t, h, math.MinInt64, math.MaxInt64); !slices.Equal(got, want) {
		t.Fatalf("read %v, want %v", got, want)
	}
}
