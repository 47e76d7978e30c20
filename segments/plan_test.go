package segments

import (
	"log/slog"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
)

// TestCompactionPlan checks which segments the compactor merges next, with
// windows of 10 and 100 ms: segments wholly inside one window of the first
// range, two or more; then whole windows of the next range once that
// window is over (it ends at or before the newest sample less the first
// range); a tombstoned segment first, with the rest of its window; never
// rollups.
func TestCompactionPlan(t *testing.T) {
	type span struct {
		mint, maxt int64
		res        int64
	}
	for _, tc := range []struct {
		name string
		segs []span
		tomb int   // index of the segment given a tombstone, or -1
		want []int // indexes of the segments planned
	}{
		{"two in a window", []span{{0, 5, 0}, {3, 9, 0}}, -1, []int{0, 1}},
		{"one alone", []span{{0, 5, 0}}, -1, nil},
		{"two windows, the larger not over", []span{{0, 5, 0}, {10, 15, 0}}, -1, nil},
		{"two windows, the larger over", []span{{0, 5, 0}, {10, 15, 0}, {200, 205, 0}}, -1, []int{0, 1}},
		{"the larger just over", []span{{0, 5, 0}, {10, 15, 0}, {105, 110, 0}}, -1, []int{0, 1}},
		{"the larger a millisecond short", []span{{0, 5, 0}, {10, 15, 0}, {105, 109, 0}}, -1, nil},
		{"across two windows", []span{{5, 15, 0}, {6, 8, 0}}, -1, nil},
		{"rollups", []span{{0, 5, 300_000}, {3, 9, 300_000}}, -1, nil},
		{"tombstone, with its window", []span{{0, 5, 0}, {3, 9, 0}, {20, 25, 0}}, 0, []int{0, 1}},
		{"tombstone, alone in its window", []span{{0, 5, 0}, {3, 9, 0}, {20, 25, 0}}, 2, []int{2}},
		{"tombstone, across windows", []span{{5, 15, 0}, {6, 8, 0}}, 0, []int{0}},
		{"tombstone on a rollup", []span{{0, 5, 300_000}, {20, 25, 0}}, 0, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "segments")
			set, err := OpenSet(slog.New(slog.DiscardHandler), dir)
			if err != nil {
				t.Fatal(err)
			}
			defer set.Close()
			lset := labels.FromStrings("__name__", "m")
			var metas []Meta
			now := time.Now()
			for i, sp := range tc.segs {
				m := writeTestSegment(t, dir, Meta{ID: NewID(now.Add(time.Duration(i) * time.Millisecond)), Seq: uint64(i + 1), Resolution: sp.res},
					[]testSeries{{lset: lset, chunks: []testChunk{{kind: KindRaw, samples: []sample{{T: sp.mint, V: 1}, {T: sp.maxt, V: 2}}}}}})
				metas = append(metas, m)
			}
			if err := set.Publish(metas); err != nil {
				t.Fatal(err)
			}
			if tc.tomb >= 0 {
				m := metas[tc.tomb]
				if _, err := set.AddTombstone([]*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "__name__", "x")}, m.MinTime, m.MaxTime); err != nil {
					t.Fatal(err)
				}
				// Only that segment: the others keep no tombstone.
				for i, o := range metas {
					if i != tc.tomb && len(set.Tombstones(o.ID)) > 0 {
						set.mtx.Lock()
						delete(set.tombstones, o.ID)
						set.mtx.Unlock()
					}
				}
			}
			c, err := NewCompactor(nil, set, CompactOptions{Ranges: []int64{10, 100}}, nil)
			if err != nil {
				t.Fatal(err)
			}
			got := c.plan()
			var want []string
			for _, i := range tc.want {
				want = append(want, metas[i].ID)
			}
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("planned %v, want %v", got, want)
			}
		})
	}
}
