package buffer

import (
	"context"
	"log/slog"
	"math"
	"math/rand"
	"path/filepath"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/strata-tsdb/strata/segments"
)

// wantStats returns the statistics a raw chunk holding ss must carry,
// worked out from its samples as docs/format.md states them.
func wantStats(ss []segments.Sample) segments.ChunkStats {
	var st segments.ChunkStats
	integer := true
	maxAbs := 0.0
	for i, x := range ss {
		if x.H != nil || x.FH != nil || value.IsStaleNaN(x.V) {
			return segments.ChunkStats{}
		}
		v := x.V
		if i == 0 {
			st.Min, st.Max, st.First = v, v, v
		} else {
			if v < st.Min || math.IsNaN(st.Min) {
				st.Min = v
			}
			if v > st.Max || math.IsNaN(st.Max) {
				st.Max = v
			}
		}
		st.Last = v
		st.Count++
		if v != math.Trunc(v) || math.Abs(v) > segments.MaxExactSum || v == 0 && math.Signbit(v) {
			integer = false
		} else {
			maxAbs = max(maxAbs, math.Abs(v))
			st.Sum += v
		}
	}
	if st.Count == 0 {
		return segments.ChunkStats{}
	}
	if integer && maxAbs*float64(st.Count) <= segments.MaxExactSum {
		st.Kind = segments.StatsInteger
		return st
	}
	// Segments with statistics now give a float chunk's first value too
	// (format versions 6 and 7); its hour run is checked in segments.
	return segments.ChunkStats{Kind: segments.StatsFloat, Count: st.Count, Min: st.Min, Max: st.Max, First: st.First}
}

func sameStats(a, b segments.ChunkStats) bool {
	eq := func(x, y float64) bool { return x == y || math.IsNaN(x) && math.IsNaN(y) }
	return a.Kind == b.Kind && a.Count == b.Count && eq(a.Min, b.Min) && eq(a.Max, b.Max) &&
		eq(a.First, b.First) && eq(a.Last, b.Last) && eq(a.Sum, b.Sum)
}

// TestFlushWritesChunkStatistics flushes series that take each way
// through a flush (in-order chunks written as they are, the open one
// copied; out-of-order data, histograms and stale markers re-encoded from a
// snapshot) into real segments, twice, with writes in between, and checks
// that every raw chunk in them carries the statistics of the samples it
// holds, that the segments are of a version with statistics, and that
// together they hold exactly what was written.
func TestFlushWritesChunkStatistics(t *testing.T) {
	dir := t.TempDir()
	set, err := segments.OpenSet(slog.New(slog.DiscardHandler), filepath.Join(dir, "segments"))
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	const block = 7_200_000
	opts := StoreOptions{Head: Options{ChunkSamples: 8, ChunkRange: 3_600_000}, BlockDuration: block}
	s := openTestStore(t, dir, opts, set)
	rng := rand.New(rand.NewSource(20))
	kinds := []string{"integer", "fraction", "nan", "stale", "late", "histogram", "huge"}
	models := map[string]map[int64]segments.Sample{}
	for _, k := range kinds {
		models[k] = map[int64]segments.Sample{}
	}
	write := func(from, to int) {
		for i := from; i < to; i++ {
			ts := int64(i) * 60_000
			for _, k := range kinds {
				x := segments.Sample{T: ts, V: float64(rng.Intn(2000) - 1000)}
				switch k {
				case "fraction":
					x.V += rng.Float64()
				case "nan":
					if i%7 == 3 {
						x.V = math.NaN()
					}
				case "stale":
					if i%23 == 5 {
						x.V = math.Float64frombits(value.StaleNaN)
					}
				case "late":
					if i%5 == 4 && i > 0 {
						x.T = int64(rng.Intn(i)) * 60_000
					}
				case "histogram":
					x = histSample(rng, ts, i)
				case "huge":
					x.V = float64(1<<51 + i)
				}
				models[k][x.T] = copySample(x)
				if err := s.Append(histBatch(labels.FromStrings("__name__", "m", "kind", k), x)); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	write(0, 250) // about two blocks
	mustFlush(t, s)
	write(250, 300)
	mustFlush(t, s)
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}

	segs, release := set.Acquire(math.MinInt64, math.MaxInt64)
	defer release()
	if len(segs) < 3 {
		t.Fatalf("%d segments, want at least 3 (two flushes, two blocks in the first)", len(segs))
	}
	statsKinds := map[segments.StatsKind]int{}
	for _, k := range kinds {
		var its []chunkenc.Iterator
		for _, seg := range segs {
			if v := seg.Meta().Version; v != segments.FormatVersionStatsFirst && v != segments.FormatVersionCompressedStatsFirst {
				t.Fatalf("segment %s has format version %d, want one with chunk statistics", seg.Meta().ID, v)
			}
			sit, err := seg.Select(labels.MustNewMatcher(labels.MatchEqual, "kind", k))
			if err != nil {
				t.Fatal(err)
			}
			for sit.Next() {
				for _, m := range sit.Chunks() {
					c, err := seg.ReadChunk(m.Ref)
					if err != nil {
						t.Fatal(err)
					}
					got := drainAll(t, c.Iterator(nil))
					want := wantStats(got)
					if !sameStats(m.Stats, want) {
						t.Fatalf("%s: chunk %d..%d in %s has statistics %+v, want %+v", k, m.MinTime, m.MaxTime, seg.Meta().ID, m.Stats, want)
					}
					if got[0].T != m.MinTime || got[len(got)-1].T != m.MaxTime {
						t.Fatalf("%s: chunk meta says %d..%d, its samples span %d..%d", k, m.MinTime, m.MaxTime, got[0].T, got[len(got)-1].T)
					}
					statsKinds[m.Stats.Kind]++
				}
				it, err := seg.KindIterator(sit.Chunks(), segments.KindRaw)
				if err != nil {
					t.Fatal(err)
				}
				its = append(its, it)
			}
			if err := sit.Err(); err != nil {
				t.Fatal(err)
			}
		}
		sameSamples(t, drainAll(t, segments.NewMergeIterator(its)), modelSamples(models[k], math.MinInt64, math.MaxInt64))
	}
	for _, sk := range []segments.StatsKind{segments.StatsNone, segments.StatsFloat, segments.StatsInteger} {
		if statsKinds[sk] == 0 {
			t.Errorf("no chunk with statistics of kind %d (%v): the test does not cover it", sk, statsKinds)
		}
	}
}
