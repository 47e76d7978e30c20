package downsample

import (
	"math"
	"testing"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/strata-tsdb/strata/segments"
)

// TestRunLeavesOutHistogramSeries writes a day of a float series next to a
// series that holds native histograms for part of the day: the rollup holds
// the float series exactly as without the other, and nothing of the
// histogram series, and the raw segments name it in their meta.
func TestRunLeavesOutHistogramSeries(t *testing.T) {
	dir := t.TempDir()
	set := newTestSet(t, dir)
	series := testData()[:1]
	hist := lbls("__name__", "latency", "job", "h")
	writeBlocks(t, set, series, math.MinInt64, day0+Window)
	// The histogram series: floats first, then histograms, in one segment.
	var ss []segments.Sample
	for i := range 100 {
		x := segments.Sample{T: day0 + int64(i+1)*60_000, V: float64(i)}
		if i >= 50 {
			x = segments.Sample{T: x.T, H: &histogram.Histogram{Count: uint64(i), ZeroCount: uint64(i), Sum: 1}}
		}
		ss = append(ss, x)
	}
	var chunks []segments.ChunkMeta
	var (
		cur      chunkenc.Chunk
		app      chunkenc.Appender
		mint     int64
		lastTime int64
	)
	for i := range ss {
		next, nextApp, cut := segments.AppendSample(cur, app, nil, &ss[i])
		if cut && cur != nil {
			chunks = append(chunks, segments.ChunkMeta{Kind: segments.KindRaw, MinTime: mint, MaxTime: lastTime, Chunk: cur})
		}
		if cut {
			mint = ss[i].T
		}
		cur, app, lastTime = next, nextApp, ss[i].T
	}
	chunks = append(chunks, segments.ChunkMeta{Kind: segments.KindRaw, MinTime: mint, MaxTime: lastTime, Chunk: cur})
	m, err := segments.WriteSeries(set.Dir(), segments.Meta{}, []segments.SeriesData{{Labels: hist, Chunks: chunks}})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.HistogramNames) != 1 || m.HistogramNames[0] != "latency" {
		t.Fatalf("histogram names %v", m.HistogramNames)
	}
	if err := set.Publish([]segments.Meta{m}); err != nil {
		t.Fatal(err)
	}
	clock := newClock(day0 + Window + 40*Res1h + 1)
	d, _ := newTestDownsampler(t, set, clock)
	run(t, d, 1)
	got := readRollup(t, set, rollupOf(t, set, Res5m, day0).meta.ID)
	if _, ok := got[hist.String()]; ok || len(got) != 1 {
		t.Fatalf("rollup holds %d series, the histogram series among them: %v", len(got), ok)
	}
	checkWindow(t, got, series, Res5m, day0, false)
}
