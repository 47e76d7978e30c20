package buffer

import (
	"io"
	"log/slog"
	"math"
	"testing"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/strata-tsdb/strata/buffer/wal"
)

// TestReplayUnknownRefsNotCounted: samples whose series record is missing
// (lost to a repaired log) are dropped by replay, and the head's figures
// count only the samples it holds, so that a flush of everything brings
// SamplesInHead back to 0 (it was left at the count of dropped samples,
// and every later flush, finding it above 0, cut the log of an empty head).
func TestReplayUnknownRefsNotCounted(t *testing.T) {
	h := newTestHead(t, Options{})
	r := h.NewReplayer(slog.New(slog.NewTextHandler(io.Discard, nil)))
	recs := [][]byte{
		wal.EncodeSeries(nil, []wal.RefSeries{{Ref: 1, Labels: labels.FromStrings("__name__", "a")}}),
		wal.EncodeSamples(nil, []wal.RefSample{{Ref: 1, T: 10, V: 1}, {Ref: 7, T: 5, V: 2}, {Ref: 1, T: 20, V: 3}, {Ref: 8, T: 30, V: 4}}),
		wal.EncodeHistograms(nil, []wal.RefHistogramSample{{Ref: 9, T: 40, H: &histogram.Histogram{Count: 1, Sum: 1}}}),
	}
	for _, rec := range recs {
		if err := r.Apply(rec); err != nil {
			t.Fatal(err)
		}
	}
	r.Finish()
	if st := r.Stats(); st.Samples != 2 || st.UnknownRefs != 3 {
		t.Fatalf("replay stats %+v, want 2 samples and 3 unknown refs", st)
	}
	if n, in := h.NumSamples(), h.SamplesInHead(); n != 2 || in != 2 {
		t.Errorf("NumSamples %d, SamplesInHead %d after replaying 2 samples of known series, want 2 and 2", n, in)
	}
	if mint, maxt := h.Bounds(); mint != 10 || maxt != 20 {
		t.Errorf("head bounds [%d, %d], want [10, 20]: the dropped samples' times are not the head's", mint, maxt)
	}
	if got := readAll(t, h, math.MinInt64, math.MaxInt64, labels.MustNewMatcher(labels.MatchEqual, "__name__", "a")); len(got) != 2 {
		t.Errorf("series a holds %v, want its 2 samples", got)
	}
}

// TestReplaySeriesLoggedUnderTwoRefs: labels logged under two references
// (a restart between two creations of the series) replay as one series,
// with the samples logged under either reference; and a replayed
// histogram names its metric in HistogramNames, a float does not.
func TestReplaySeriesLoggedUnderTwoRefs(t *testing.T) {
	h := newTestHead(t, Options{})
	r := h.NewReplayer(slog.New(slog.NewTextHandler(io.Discard, nil)))
	a := labels.FromStrings("__name__", "a")
	for _, rec := range [][]byte{
		wal.EncodeSeries(nil, []wal.RefSeries{{Ref: 1, Labels: a}}),
		wal.EncodeSamples(nil, []wal.RefSample{{Ref: 1, T: 10, V: 1}}),
		wal.EncodeSeries(nil, []wal.RefSeries{{Ref: 5, Labels: a}}),
		wal.EncodeSamples(nil, []wal.RefSample{{Ref: 5, T: 20, V: 2}, {Ref: 1, T: 30, V: 3}}),
		wal.EncodeSeries(nil, []wal.RefSeries{{Ref: 9, Labels: labels.FromStrings("__name__", "h")}}),
		wal.EncodeHistograms(nil, []wal.RefHistogramSample{{Ref: 9, T: 40, H: &histogram.Histogram{Count: 1, Sum: 1}}}),
	} {
		if err := r.Apply(rec); err != nil {
			t.Fatal(err)
		}
	}
	r.Finish()
	if st := r.Stats(); st.Samples != 4 || st.UnknownRefs != 0 {
		t.Fatalf("replay stats %+v, want 4 samples and no unknown ref", st)
	}
	if n := h.NumSeries(); n != 2 {
		t.Fatalf("%d series, want 2", n)
	}
	if mint, maxt := h.Bounds(); mint != 10 || maxt != 40 {
		t.Errorf("head bounds [%d, %d], want [10, 40] (records of one sample count)", mint, maxt)
	}
	if names := h.HistogramNames(); len(names) != 1 || names[0] != "h" {
		t.Errorf("HistogramNames() = %v, want [h]", names)
	}
	got := readAll(t, h, math.MinInt64, math.MaxInt64, labels.MustNewMatcher(labels.MatchEqual, "__name__", "a"))
	if len(got) != 3 || got[0].V != 1 || got[1].V != 2 || got[2].V != 3 {
		t.Fatalf("series a holds %v, want the samples of both references", got)
	}
}
