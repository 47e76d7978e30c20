package buffer

import (
	"slices"
	"testing"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/strata-tsdb/strata/ingest"
)

// TestHistogramNames: the head lists the metric names of the series given
// native histograms, and only those (the query layer reads the histogram
// series of these names raw), whether a batch holds floats, histograms or
// both.
func TestHistogramNames(t *testing.T) {
	h := newTestHead(t, Options{})
	b := &ingest.Batch{Series: []ingest.Series{
		{Labels: labels.FromStrings("__name__", "floats"), Samples: []ingest.Sample{{T: 1, V: 1}}},
		{Labels: labels.FromStrings("__name__", "hists"), Histograms: []ingest.HistogramSample{{T: 1, H: testHistogram(1, false)}}},
		{Labels: labels.FromStrings("__name__", "both"), Samples: []ingest.Sample{{T: 1, V: 1}},
			Histograms: []ingest.HistogramSample{{T: 2, H: testHistogram(2, false)}}},
	}}
	if err := h.Append(b); err != nil {
		t.Fatal(err)
	}
	if err := h.Append(batchOf(labels.FromStrings("__name__", "floats", "x", "y"), ingest.Sample{T: 1, V: 1})); err != nil {
		t.Fatal(err)
	}
	if got, want := h.HistogramNames(), []string{"both", "hists"}; !slices.Equal(got, want) {
		t.Errorf("histogram names %v, want %v", got, want)
	}
}
