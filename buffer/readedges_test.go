package buffer

import (
	"context"
	"fmt"
	"testing"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/strata-tsdb/strata/ingest"
)

// TestReadsIncludeRangeEdges: a read of [mint, maxt] finds a sample at
// exactly mint or maxt wherever the head holds it: at the start or end of
// the open chunk, in an out-of-order chunk, or in the unsorted
// out-of-order buffer; Select, LabelNames and LabelValues agree on which
// series have data there.
func TestReadsIncludeRangeEdges(t *testing.T) {
	ctx := context.Background()
	h := newTestHead(t, Options{OOOBufferSize: 2})
	app := func(name string, ts ...int64) {
		t.Helper()
		for _, x := range ts {
			if err := h.Append(batchOf(labels.FromStrings("__name__", name), ingest.Sample{T: x, V: float64(x)})); err != nil {
				t.Fatal(err)
			}
		}
	}
	app("open", 1000, 2000)            // the open chunk: [1000, 2000]
	app("buffered", 5000, 3000)        // 3000 in the out-of-order buffer
	app("ooo", 9000, 7000, 7500, 7200) // 7000 and 7500 sorted into an out-of-order chunk, 7200 buffered
	// The test's point: where each series holds its samples.
	for name, want := range map[string][2]int{"open": {0, 0}, "buffered": {0, 1}, "ooo": {1, 1}} {
		refs := h.index.postingsForMatchers(labels.MustNewMatcher(labels.MatchEqual, "__name__", name))
		s := h.series.getByRef(refs[0])
		s.mtx.Lock()
		got := [2]int{len(s.oooChunks()), len(s.oooBuf())}
		s.mtx.Unlock()
		if got != want {
			t.Fatalf("%s: %d out-of-order chunks, %d buffered samples; want %v", name, got[0], got[1], want)
		}
	}
	for _, c := range []struct {
		name       string
		mint, maxt int64
		want       []int64
	}{
		{"open", 2000, 3000, []int64{2000}},
		{"open", 0, 1000, []int64{1000}},
		{"open", 1000, 1000, []int64{1000}},
		{"buffered", 3000, 3000, []int64{3000}},
		{"buffered", 2000, 3000, []int64{3000}},
		{"buffered", 3000, 4000, []int64{3000}},
		{"ooo", 7000, 7000, []int64{7000}},
		{"ooo", 7500, 8000, []int64{7500}},
		{"ooo", 7100, 7200, []int64{7200}},
		{"open", 2001, 2999, nil},
		{"buffered", 3001, 4999, nil},
	} {
		what := fmt.Sprintf("%s in [%d, %d]", c.name, c.mint, c.maxt)
		m := labels.MustNewMatcher(labels.MatchEqual, "__name__", c.name)
		var got []int64
		for _, s := range readAll(t, h, c.mint, c.maxt, m) {
			got = append(got, s.T)
		}
		if fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("%s: read %v, want %v", what, got, c.want)
		}
		names, err := h.LabelNames(ctx, c.mint, c.maxt, m)
		if err != nil {
			t.Fatal(err)
		}
		vals, err := h.LabelValues(ctx, "__name__", c.mint, c.maxt, m)
		if err != nil {
			t.Fatal(err)
		}
		if has := len(c.want) > 0; (len(names) > 0) != has || (len(vals) > 0) != has {
			t.Errorf("%s: LabelNames %q, LabelValues %q; want some: %v", what, names, vals, has)
		}
	}
}
