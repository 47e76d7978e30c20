package buffer

import "testing"

// TestRangeStart: the ChunkRange-aligned range holding a timestamp, on
// both sides of 1970 (negative timestamps are valid samples; the head cuts
// a chunk where a sample crosses into the next range).
func TestRangeStart(t *testing.T) {
	for _, c := range []struct{ t, r, want int64 }{
		{0, 10, 0}, {9, 10, 0}, {10, 10, 10}, {15, 10, 10},
		{-1, 10, -10}, {-9, 10, -10}, {-10, 10, -10}, {-11, 10, -20}, {-20, 10, -20},
		{-7_200_001, 7_200_000, -14_400_000},
	} {
		if got := rangeStart(c.t, c.r); got != c.want {
			t.Errorf("rangeStart(%d, %d) = %d, want %d", c.t, c.r, got, c.want)
		}
	}
}
