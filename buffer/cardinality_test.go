package buffer

import (
	"fmt"
	"slices"
	"testing"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/strata-tsdb/strata/ingest"
)

func TestCardinality(t *testing.T) {
	h := newTestHead(t, DefaultOptions())
	// a: 4 series (pod p0..p3), b: 2 series (pod p0, p1), c: 1 series.
	var b ingest.Batch
	add := func(name, pod string) {
		b.Series = append(b.Series, ingest.Series{Labels: labels.FromStrings("__name__", name, "pod", pod, "ns", "prod"), Samples: []ingest.Sample{{T: 1000, V: 1}}})
	}
	for i := range 4 {
		add("a", fmt.Sprintf("p%d", i))
	}
	add("b", "p0")
	add("b", "p1")
	add("c", "p9")
	if err := h.Append(&b); err != nil {
		t.Fatal(err)
	}
	f := func(got, want []CardinalityStat) {
		t.Helper()
		if !slices.Equal(got, want) {
			t.Errorf("got %v, want %v", got, want)
		}
	}
	c := h.Cardinality(3)
	// Label pairs: __name__ a b c, pod p0 p1 p2 p3 p9, ns prod.
	if c.NumLabelPairs != 9 {
		t.Errorf("NumLabelPairs %d, want 9", c.NumLabelPairs)
	}
	f(c.SeriesCountByMetricName, []CardinalityStat{{"a", 4}, {"b", 2}, {"c", 1}})
	f(c.LabelValueCountByLabelName, []CardinalityStat{{"pod", 5}, {"__name__", 3}, {"ns", 1}})
	// Ties rank the smaller name first: pod=p0 and pod=p1 (2 series) both
	// outrank pod=p2 and __name__=c, cut by the limit.
	f(c.SeriesCountByLabelValuePair, []CardinalityStat{{"ns=prod", 7}, {"__name__=a", 4}, {"__name__=b", 2}})
	size := func(name string, vals map[string]uint64) uint64 {
		var n uint64
		for v, c := range vals {
			n += labels.SizeOfLabels(name, v, c)
		}
		return n
	}
	f(c.MemoryInBytesByLabelName, []CardinalityStat{
		{"__name__", size("__name__", map[string]uint64{"a": 4, "b": 2, "c": 1})},
		{"ns", size("ns", map[string]uint64{"prod": 7})},
		{"pod", size("pod", map[string]uint64{"p0": 2, "p1": 2, "p2": 1, "p3": 1, "p9": 1})},
	})
	all := h.Cardinality(100)
	if len(all.SeriesCountByLabelValuePair) != 9 || all.SeriesCountByLabelValuePair[3] != (CardinalityStat{"pod=p0", 2}) || all.SeriesCountByLabelValuePair[4] != (CardinalityStat{"pod=p1", 2}) {
		t.Errorf("all pairs: %v", all.SeriesCountByLabelValuePair)
	}
	if z := h.Cardinality(0); len(z.SeriesCountByMetricName) != 0 {
		t.Errorf("limit 0: %v", z.SeriesCountByMetricName)
	}
}
