package query

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"

	"github.com/strata-tsdb/strata/downsample"
	"github.com/strata-tsdb/strata/ingest"
)

// TestHistogramQueriesReadRaw stores three days of a float counter and of
// a native histogram series, flushed, compacted and rolled up, and checks
// that a query that may read the histogram series reads raw data (rollups
// leave it out) and answers what the raw data says, while a float-only
// query still reads rollups.
func TestHistogramQueriesReadRaw(t *testing.T) {
	store, set, _ := openTestStore(t)
	end := time.Date(2026, 1, 31, 0, 0, 0, 0, time.UTC)
	start := end.Add(-3 * 24 * time.Hour)
	ctr := labels.FromStrings("__name__", "requests_total", "host", "a")
	lat := labels.FromStrings("__name__", "latency_seconds", "host", "a")
	for day := start; day.Before(end); day = day.Add(24 * time.Hour) {
		b := &ingest.Batch{Series: []ingest.Series{{Labels: ctr}, {Labels: lat}}}
		for ts := day; ts.Before(day.Add(24 * time.Hour)); ts = ts.Add(time.Minute) {
			i := uint64(ts.Sub(start) / time.Minute)
			b.Series[0].Samples = append(b.Series[0].Samples, ingest.Sample{T: ts.UnixMilli(), V: float64(i)})
			b.Series[1].Histograms = append(b.Series[1].Histograms, ingest.HistogramSample{T: ts.UnixMilli(), H: &histogram.Histogram{
				Schema: 0, Count: 3 * i, Sum: float64(i) * 0.5,
				PositiveSpans: []histogram.Span{{Offset: -2, Length: 3}}, PositiveBuckets: []int64{int64(i), 0, 0},
			}})
		}
		if err := store.Append(b); err != nil {
			t.Fatal(err)
		}
		if err := store.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if n := compactAndRollUp(t, set, downsample.Options{Now: func() time.Time { return end.Add(11 * 24 * time.Hour) }}); n == 0 {
		t.Fatal("no rollups written")
	}
	_, eng := newTestEngine(t, store, set)
	from := start.Add(2 * time.Hour)
	for _, tc := range []struct {
		qs   string
		want Resolution
	}{
		{"rate(requests_total[1h])", Resolution1h},
		{"histogram_quantile(0.9, rate(latency_seconds[1h]))", ResolutionRaw},
		{"histogram_count(latency_seconds)", ResolutionRaw},
		{`sum(rate({__name__=~"lat.*"}[1h]))`, ResolutionRaw},
		{`rate({host="a"}[1h])`, ResolutionRaw}, // may select the histogram series
		{"rate(requests_total[1h]) + on() group_left histogram_sum(latency_seconds)", ResolutionRaw},
	} {
		res, err := eng.ChooseResolution(tc.qs, from, end, time.Hour, ResolutionAuto)
		if err != nil || res != tc.want {
			t.Errorf("%s: chose %s (%v), want %s", tc.qs, res, err, tc.want)
		}
	}
	// Asked for a rollup explicitly, a histogram query still reads raw
	// data, and answers as raw data does.
	r := RangeQuery{Query: "histogram_quantile(0.9, rate(latency_seconds[1h]))", Start: from, End: end, Step: time.Hour, MaxSourceResolution: Resolution1h}
	got, err := eng.Range(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	r.MaxSourceResolution = ResolutionRaw
	want, err := eng.Range(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	gm, wm := got.Value.(promql.Matrix), want.Value.(promql.Matrix)
	if len(wm) != 1 || len(wm[0].Floats) < 60 || gm.String() != wm.String() {
		t.Fatalf("got %v\nwant %v", gm, wm)
	}
	cnt, err := eng.Range(context.Background(), RangeQuery{Query: "histogram_count(latency_seconds)", Start: from, End: end, Step: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if m := cnt.Value.(promql.Matrix); len(m) != 1 || m[0].Floats[0].F != 3*120 {
		t.Fatalf("histogram_count: %v", m)
	}
}
