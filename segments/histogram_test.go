package segments

import (
	"context"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
)

// fixtureDir is a segment written by the writer as it was before chunks of
// histogram encodings were accepted (commit 568d65a): one XOR chunk of 10
// samples, t = 1,700,000,000,000 + i·15s, v = 1.5·i.
const fixtureDir = "testdata/before-histograms/01M8TF8TTP93TPEH5VAFA6KE4G"

func fixtureHistogram(i int) *histogram.Histogram {
	return &histogram.Histogram{
		Schema: 2, Count: uint64(3 + i), Sum: float64(i), ZeroCount: 1,
		PositiveSpans:   []histogram.Span{{Offset: 1, Length: 2}},
		PositiveBuckets: []int64{1, int64(i)},
	}
}

// histogramChunks encodes n histogram samples from t0 every 15s, integer or
// float, cutting chunks as the head does.
func histogramChunks(t testing.TB, t0 int64, n int, float bool) []ChunkMeta {
	t.Helper()
	var its []Sample
	for i := range n {
		x := Sample{T: t0 + int64(i)*15_000, H: fixtureHistogram(i)}
		if float {
			x.FH, x.H = x.H.ToFloat(nil), nil
		}
		its = append(its, x)
	}
	metas, err := newChunkEncoder(7).encode(NewSliceIterator(its))
	if err != nil {
		t.Fatal(err)
	}
	return metas
}

func readSeries(t testing.TB, seg *Segment, name string) []Sample {
	t.Helper()
	it, err := seg.Select(labels.MustNewMatcher(labels.MatchEqual, "__name__", name))
	if err != nil {
		t.Fatal(err)
	}
	var out []Sample
	for it.Next() {
		cit, err := seg.KindIterator(it.Chunks(), KindRaw)
		if err != nil {
			t.Fatal(err)
		}
		cit = NewDeletedIterator(cit, DeletedRanges(nil, it.Labels()))
		for vt := cit.Next(); vt != chunkenc.ValNone; vt = cit.Next() {
			out = append(out, ReadSample(cit, vt, nil, nil))
		}
		if err := cit.Err(); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// TestSegmentBeforeHistogramsOpens opens the checked-in segment written
// before this format carried histogram chunks, and compacts it with a new
// one holding histograms of the same series and of another: both kinds
// come out, in chunks of their own encodings, and a tombstone over some
// histograms removes exactly those.
func TestSegmentBeforeHistogramsOpens(t *testing.T) {
	dir := t.TempDir()
	copyDir(t, fixtureDir, filepath.Join(dir, filepath.Base(fixtureDir)))
	old := openT(t, filepath.Join(dir, filepath.Base(fixtureDir)))
	if err := old.Verify(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := readSeries(t, old, "old_metric")
	if len(got) != 10 || got[9].T != 1_700_000_135_000 || got[9].V != 13.5 {
		t.Fatalf("fixture reads %v", got)
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}

	const t0 = 1_700_000_150_000 // after the fixture's samples, in the same 2h block
	oldSeries := labels.FromStrings("__name__", "old_metric", "job", "v1")
	hist := labels.FromStrings("__name__", "latency", "job", "v1")
	if _, err := WriteSeries(dir, Meta{}, []SeriesData{
		{Labels: oldSeries, Chunks: histogramChunks(t, t0, 20, false)},
		{Labels: hist, Chunks: append(histogramChunks(t, t0, 5, true), histogramChunks(t, t0+5*15_000, 10, false)...)},
	}); err != nil {
		t.Fatal(err)
	}
	set, err := OpenSet(slog.New(slog.DiscardHandler), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	// Delete the 3rd and 4th histograms of latency.
	if _, err := set.AddTombstone([]*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "__name__", "latency")}, t0+2*15_000, t0+3*15_000); err != nil {
		t.Fatal(err)
	}
	c, err := NewCompactor(slog.New(slog.DiscardHandler), set, CompactOptions{ChunkSamples: 50}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := c.Compact(context.Background()); err != nil || n == 0 {
		t.Fatalf("compacted %d times: %v", n, err)
	}
	segs, release := set.Acquire(math.MinInt64, math.MaxInt64)
	defer release()
	if len(segs) != 1 {
		t.Fatalf("%d segments after compaction", len(segs))
	}
	if err := segs[0].Verify(context.Background()); err != nil {
		t.Fatal(err)
	}
	mixed := readSeries(t, segs[0], "old_metric")
	if len(mixed) != 30 || mixed[9].Type() != chunkenc.ValFloat || mixed[10].Type() != chunkenc.ValHistogram || !mixed[29].H.Equals(fixtureHistogram(19)) {
		t.Fatalf("old_metric after compaction: %d samples", len(mixed))
	}
	lat := readSeries(t, segs[0], "latency")
	if len(lat) != 13 || lat[0].Type() != chunkenc.ValFloatHistogram || lat[2].T != t0+4*15_000 || lat[3].Type() != chunkenc.ValHistogram {
		t.Fatalf("latency after compaction and delete: %d samples", len(lat))
	}
	if _, err := os.Stat(fixtureDir); err != nil {
		t.Fatal(err)
	}
}

// TestChunkRecordHistogramHeader checks that a histogram chunk record too
// short for its header is refused as corrupt rather than read.
func TestChunkRecordHistogramHeader(t *testing.T) {
	b := append(chunksHeader(), appendChunkRecord(nil, chunkenc.EncHistogram, []byte{0, 1})...)
	if _, _, err := decodeChunkRecord(b, chunksHeaderSize); err == nil {
		t.Fatal("a 2-byte histogram chunk was accepted")
	}
	c, _ := NewChunk(chunkenc.EncFloatHistogram)
	b = append(chunksHeader(), appendChunkRecord(nil, chunkenc.EncFloatHistogram, c.Bytes())...)
	if enc, _, err := decodeChunkRecord(b, chunksHeaderSize); err != nil || enc != chunkenc.EncFloatHistogram {
		t.Fatalf("empty float histogram chunk: %v %v", enc, err)
	}
}

// TestHistogramNamesInMeta: a segment's meta names the metrics of the
// series with histogram chunks, and only those.
func TestHistogramNamesInMeta(t *testing.T) {
	floats := []ChunkMeta{{Chunk: newXOR(t, []sample{{1000, 1}, {2000, 2}})}}
	meta, err := WriteSeries(t.TempDir(), Meta{}, []SeriesData{
		{Labels: labels.FromStrings("__name__", "a_float"), Chunks: floats},
		{Labels: labels.FromStrings("__name__", "b_hist"), Chunks: histogramChunks(t, 1000, 3, false)},
		{Labels: labels.FromStrings("__name__", "c_float_hist"), Chunks: histogramChunks(t, 1000, 3, true)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"b_hist", "c_float_hist"}; !slices.Equal(meta.HistogramNames, want) {
		t.Fatalf("HistogramNames %v, want %v", meta.HistogramNames, want)
	}
}
