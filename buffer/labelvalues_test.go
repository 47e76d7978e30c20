package buffer

import (
	"context"
	"math"
	"slices"
	"testing"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/strata-tsdb/strata/ingest"
)

// TestLabelValuesLimit: without matchers, LabelValuesLimit returns the
// limit smallest values of a label from the index, sorted, and all of
// them with a limit of 0 or less or of at least their number.
func TestLabelValuesLimit(t *testing.T) {
	h := newTestHead(t, Options{})
	vals := []string{"e", "c", "a", "d", "b"}
	for _, v := range vals {
		if err := h.Append(batchOf(labels.FromStrings("__name__", "m", "v", v), ingest.Sample{T: 1, V: 1})); err != nil {
			t.Fatal(err)
		}
	}
	all := slices.Sorted(slices.Values(vals))
	for _, c := range []struct {
		limit int
		want  []string
	}{{-1, all}, {0, all}, {1, all[:1]}, {2, all[:2]}, {4, all[:4]}, {5, all}, {6, all}} {
		got, err := h.LabelValuesLimit(context.Background(), "v", c.limit, math.MinInt64, math.MaxInt64)
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("LabelValuesLimit(v, %d) = %v, %v; want %v", c.limit, got, err, c.want)
		}
	}
}
