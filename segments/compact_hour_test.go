package segments

import "testing"

// TestChunkEncoderCutsOnTheHour: compaction's encoder ends a chunk on
// every UTC hour as well as at its sample limit, so that a series whose
// day starts mid-hour still gets hour-aligned chunks (which hourly windows
// over hour runs need to read no chunk).
func TestChunkEncoderCutsOnTheHour(t *testing.T) {
	t0 := int64(1_700_000_000_000) - 1_700_000_000_000%RunGrid + 55*60_000 // hh:55
	var smp []Sample
	for ts := t0; ts < t0+3*RunGrid; ts += 10_000 {
		smp = append(smp, Sample{T: ts, V: float64(ts%7) + 0.5})
	}
	metas, err := newChunkEncoder(360).encode(NewSliceIterator(smp))
	if err != nil {
		t.Fatal(err)
	}
	if len(metas) != 4 {
		t.Fatalf("%d chunks, want 4 (the 5 minutes before the first hour, then one an hour)", len(metas))
	}
	for i, m := range metas {
		if floorDiv(m.MinTime, RunGrid) != floorDiv(m.MaxTime, RunGrid) {
			t.Fatalf("chunk %d spans %d..%d, across an hour", i, m.MinTime, m.MaxTime)
		}
		if i > 0 && m.MinTime%RunGrid != 0 {
			t.Fatalf("chunk %d starts at %d, not on the hour", i, m.MinTime)
		}
	}
	for _, c := range []struct{ a, b, want int64 }{{7, 3, 2}, {-7, 3, -3}, {-6, 3, -2}, {0, 3, 0}} {
		if got := floorDiv(c.a, c.b); got != c.want {
			t.Fatalf("floorDiv(%d, %d) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}
