package buffer

import (
	"slices"
	"testing"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/strata-tsdb/strata/ingest"
)

// TestStartTimeZeros: a start (created) timestamp adds a zero sample where
// Prometheus 3 adds one: once, before the first sample after the start,
// never at or before what the series already holds, never at or after the
// sample itself; the batch given to Append is not changed.
func TestStartTimeZeros(t *testing.T) {
	h := newTestHead(t, DefaultOptions())
	lset := labels.FromStrings("__name__", "c_total")
	m := labels.MustNewMatcher(labels.MatchEqual, "__name__", "c_total")
	smp := func(t int64, v float64) ingest.Sample { return ingest.Sample{T: t, V: v} }
	f := func(samples []ingest.Sample, starts []int64, want []ingest.Sample) {
		t.Helper()
		b := &ingest.Batch{Series: []ingest.Series{{Labels: lset, Samples: slices.Clone(samples), StartTimes: starts}}}
		if err := h.Append(b); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(b.Series[0].Samples, samples) {
			t.Fatalf("Append changed the batch: %v", b.Series[0].Samples)
		}
		if got := readAll(t, h, 0, 1000, m); !slices.Equal(got, want) {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
	// A new counter: zero at its start, once for two samples sharing it.
	f([]ingest.Sample{smp(20, 5), smp(30, 7)}, []int64{10, 10}, []ingest.Sample{smp(10, 0), smp(20, 5), smp(30, 7)})
	// The same start again adds nothing (it is before the newest sample).
	f([]ingest.Sample{smp(40, 9)}, []int64{10}, []ingest.Sample{smp(10, 0), smp(20, 5), smp(30, 7), smp(40, 9)})
	// A reset: a new start after the newest sample.
	f([]ingest.Sample{smp(60, 1)}, []int64{50}, []ingest.Sample{smp(10, 0), smp(20, 5), smp(30, 7), smp(40, 9), smp(50, 0), smp(60, 1)})
	// A start equal to the sample's time, or none, adds nothing.
	f([]ingest.Sample{smp(70, 2), smp(80, 3)}, []int64{70, 0}, []ingest.Sample{smp(10, 0), smp(20, 5), smp(30, 7), smp(40, 9), smp(50, 0), smp(60, 1), smp(70, 2), smp(80, 3)})
}
