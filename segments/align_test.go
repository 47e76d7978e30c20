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

// TestCompactOptionsValidate: ranges must be positive and each a multiple
// of the one before; chunk sizes must fit a chunk's 16-bit sample count.
func TestCompactOptionsValidate(t *testing.T) {
	for _, tc := range []struct {
		o  CompactOptions
		ok bool
	}{
		{CompactOptions{}, true},
		{CompactOptions{Ranges: []int64{1}}, true},
		{CompactOptions{Ranges: []int64{0}}, false},
		{CompactOptions{Ranges: []int64{-10}}, false},
		{CompactOptions{Ranges: []int64{10, 20, 60}}, true},
		{CompactOptions{Ranges: []int64{10, 25}}, false},
		{CompactOptions{Ranges: []int64{10, 20, 30}}, false},
		{CompactOptions{ChunkSamples: 65535, WideChunkSamples: 65535}, true},
		{CompactOptions{ChunkSamples: 65536}, false},
		{CompactOptions{ChunkSamples: -1}, false},
		{CompactOptions{WideChunkSamples: 65536}, false},
		{CompactOptions{WideChunkSamples: -1}, false},
	} {
		if err := tc.o.Validate(); (err == nil) != tc.ok {
			t.Errorf("%+v: Validate() = %v, want ok %v", tc.o, err, tc.ok)
		}
	}
	d, set := CompactOptions{}.withDefaults(), CompactOptions{Ranges: []int64{5}, ChunkSamples: 7, WideChunkSamples: 9}
	if len(d.Ranges) != 2 || d.Ranges[0] != 7_200_000 || d.Ranges[1] != 86_400_000 || d.ChunkSamples != 120 || d.WideChunkSamples != 360 {
		t.Errorf("defaults %+v", d)
	}
	if got := set.withDefaults(); len(got.Ranges) != 1 || got.Ranges[0] != 5 || got.ChunkSamples != 7 || got.WideChunkSamples != 9 {
		t.Errorf("set options changed by withDefaults: %+v", got)
	}
}
