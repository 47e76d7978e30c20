package query

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/prometheus/promql"
)

// TestRetentionBoundaryAtRead checks that a read never returns data older
// than the retention bound, whether the data is in a segment still on disk
// or in the head.
func TestRetentionBoundaryAtRead(t *testing.T) {
	store, set, _ := openTestStore(t)
	end := time.Unix(1_700_000_000, 0)
	loadCounters(t, store.Head(), "x", 3, end.Add(-4*time.Hour), end.Add(-2*time.Hour))
	if err := store.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	loadCounters(t, store.Head(), "x", 3, end.Add(-2*time.Hour+10*time.Second), end) // head
	bound := end.Add(-3 * time.Hour).UnixMilli()
	q := NewQueryable(store.Head(), set)
	q.MinTime = func(int64) int64 { return bound }
	eng, err := NewEngine(nil, nil, q, Options{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := eng.Instant(context.Background(), "x[5h]", end)
	if err != nil {
		t.Fatal(err)
	}
	m := res.Value.(promql.Matrix)
	if len(m) != 3 {
		t.Fatalf("%d series", len(m))
	}
	for _, s := range m {
		if s.Floats[0].T != bound {
			t.Fatalf("%s: oldest sample at %d, want the bound %d", s.Metric, s.Floats[0].T, bound)
		}
		if got, want := len(s.Floats), 3*360+1; got != want {
			t.Fatalf("%s: %d samples, want %d (3 h at 10 s)", s.Metric, got, want)
		}
	}
}
