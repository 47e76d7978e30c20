package query

import (
	"slices"
	"testing"

	"github.com/strata-tsdb/strata/segments"
)

// TestFilterMetasLeavesInputAlone: overlapping and rollupChunks filter
// chunk metas that a segment's series cache shares with other queries
// (segments.Segment.SelectShared), so they must never write to their
// input: the input reads the same after any filter, and a filter that
// keeps everything returns it as it is.
func TestFilterMetasLeavesInputAlone(t *testing.T) {
	metas := []segments.ChunkMeta{
		{Kind: segments.KindRaw, MinTime: 0, MaxTime: 99},
		{Kind: segments.KindSum, MinTime: 0, MaxTime: 99},
		{Kind: segments.KindRaw, MinTime: 100, MaxTime: 199},
		{Kind: segments.KindCount, MinTime: 100, MaxTime: 199},
		{Kind: segments.KindRaw, MinTime: 200, MaxTime: 299},
	}
	orig := slices.Clone(metas)
	check := func(name string, got []segments.ChunkMeta, want ...int) {
		t.Helper()
		if !slices.Equal(metas, orig) {
			t.Fatalf("%s wrote to its input: %v", name, metas)
		}
		var w []segments.ChunkMeta
		for _, i := range want {
			w = append(w, orig[i])
		}
		if !slices.Equal(got, w) {
			t.Fatalf("%s = %v, want %v", name, got, w)
		}
	}
	check("overlapping [150, 250]", overlapping(metas, [][2]int64{{150, 250}}), 2, 4)
	check("overlapping [0, 50]", overlapping(metas, [][2]int64{{0, 50}}), 0)
	check("overlapping [400, 500]", overlapping(metas, [][2]int64{{400, 500}}))
	check("rollupChunks avg", rollupChunks(metas, rollupWindow{agg: aggAvg, to: 299}, 0), 1, 3)
	check("rollupChunks sum from 100", rollupChunks(metas, rollupWindow{agg: aggSum, to: 299}, 100))

	raw := []segments.ChunkMeta{metas[0], metas[2], metas[4]}
	if got := overlapping(raw, [][2]int64{{0, 300}}); &got[0] != &raw[0] || len(got) != 3 {
		t.Fatal("keeping every meta should return the input itself")
	}
	// Appending to a filtered slice must not reach the input either.
	got := overlapping(metas, [][2]int64{{0, 50}})
	_ = append(got, segments.ChunkMeta{Kind: segments.KindMax})
	check("after an append to a result", overlapping(metas, [][2]int64{{0, 50}}), 0)
}
