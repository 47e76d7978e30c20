package segments

import "testing"

// TestAlignDown: compaction windows start at multiples of their range,
// before 1970 too (a window holds [start, start+r)).
func TestAlignDown(t *testing.T) {
	for _, tc := range []struct{ t, r, want int64 }{
		{0, 10, 0}, {9, 10, 0}, {10, 10, 10}, {19, 10, 10},
		{-1, 10, -10}, {-10, 10, -10}, {-11, 10, -20}, {-20, 10, -20},
		{-1, 7_200_000, -7_200_000}, {1_700_000_000_123, 7_200_000, 1_699_999_200_000},
	} {
		if got := alignDown(tc.t, tc.r); got != tc.want {
			t.Errorf("alignDown(%d, %d) = %d, want %d", tc.t, tc.r, got, tc.want)
		}
	}
}
