package buffer

import (
	"testing"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/strata-tsdb/strata/ingest"
	"github.com/strata-tsdb/strata/segments"
)

// TestHeadFigures: the head's time bounds and out-of-order count follow
// every sample appended, floats and histograms alike, late ones included.
func TestHeadFigures(t *testing.T) {
	h := newTestHead(t, Options{})
	if err := h.Append(batchOf(labels.FromStrings("__name__", "f"), ingest.Sample{T: 100, V: 1}, ingest.Sample{T: 200, V: 2})); err != nil {
		t.Fatal(err)
	}
	check := func(what string, mint, maxt, ooo int64) {
		t.Helper()
		if a, b := h.Bounds(); a != mint || b != maxt {
			t.Errorf("%s: bounds [%d, %d], want [%d, %d]", what, a, b, mint, maxt)
		}
		if n := h.NumOutOfOrder(); n != ooo {
			t.Errorf("%s: %d out of order, want %d", what, n, ooo)
		}
	}
	check("in order", 100, 200, 0)
	if err := h.Append(batchOf(labels.FromStrings("__name__", "f"), ingest.Sample{T: 50, V: 3})); err != nil {
		t.Fatal(err)
	}
	check("a late float", 50, 200, 1)
	hl := labels.FromStrings("__name__", "h")
	if err := h.Append(histBatch(hl, segments.Sample{T: 300, H: testHistogram(1, false)})); err != nil {
		t.Fatal(err)
	}
	check("a newer histogram", 50, 300, 1)
	if err := h.Append(histBatch(hl, segments.Sample{T: 20, H: testHistogram(2, false)})); err != nil {
		t.Fatal(err)
	}
	check("a late histogram", 20, 300, 2)
}
