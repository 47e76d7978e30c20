package segments

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
)

// randomSeriesData returns n series of random content: float series of
// several shapes (random walks, integers, constants, stale markers and
// NaNs), integer and float native histograms, series that change from
// floats to histograms, and rollup series with all five aggregate kinds.
// Every chunk starts at or after t0.
func randomSeriesData(t testing.TB, rng *rand.Rand, t0 int64, n int) []SeriesData {
	t.Helper()
	var out []SeriesData
	for i := range n {
		lset := labels.FromStrings("__name__", fmt.Sprintf("m%d", rng.IntN(5)), "i", fmt.Sprint(i), "z", fmt.Sprint(rng.IntN(3)))
		step := int64(1+rng.IntN(30)) * 1000
		var chunks []ChunkMeta
		switch i % 5 {
		case 0, 1: // floats
			var smp []sample
			v := rng.Float64() * 100
			for j := range 1 + rng.IntN(400) {
				switch rng.IntN(4) {
				case 0:
					v += rng.NormFloat64()
				case 1:
					v = math.Round(v + float64(rng.IntN(5)-2))
				case 2:
				default:
					if rng.IntN(20) == 0 {
						v = []float64{math.Float64frombits(value.StaleNaN), math.NaN(), math.Inf(1), 0}[rng.IntN(4)]
					}
				}
				smp = append(smp, sample{T: t0 + int64(j)*step, V: v})
			}
			for j := 0; j < len(smp); j += 120 {
				chunks = append(chunks, ChunkMeta{Chunk: newXOR(t, smp[j:min(j+120, len(smp))])})
			}
		case 2: // native histograms, integer or float
			chunks = histogramChunks(t, t0, 1+rng.IntN(60), rng.IntN(2) == 0)
		case 3: // floats, then histograms
			smp := randomWalk(rng, t0, 15_000, 1+rng.IntN(50), 1)
			chunks = append(chunks, ChunkMeta{Chunk: newXOR(t, smp)})
			chunks = append(chunks, histogramChunks(t, smp[len(smp)-1].T+15_000, 1+rng.IntN(30), false)...)
		default: // a rollup: five kinds side by side
			nb := 1 + rng.IntN(100)
			for kind := KindCount; kind <= KindCounter; kind++ {
				chunks = append(chunks, ChunkMeta{Kind: kind, Chunk: newXOR(t, randomWalk(rng, t0+300_000, 300_000, nb, float64(kind)))})
			}
		}
		out = append(out, SeriesData{Labels: lset, Chunks: chunks})
	}
	return out
}

// segmentContent reads everything a segment holds: per series its labels,
// chunk metas and each chunk's encoding and bytes.
func segmentContent(t testing.TB, s *Segment) []string {
	t.Helper()
	it, err := s.Select()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for it.Next() {
		var b bytes.Buffer
		fmt.Fprintf(&b, "%s:", it.Labels())
		for _, cm := range it.Chunks() {
			c, err := s.ReadChunk(cm.Ref)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&b, " %s %d..%d %s %x", cm.Kind, cm.MinTime, cm.MaxTime, c.Encoding(), c.Bytes())
		}
		out = append(out, b.String())
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestCompressedEqualsPlain writes randomized segments (floats with NaNs and
// stale markers, integer and float histograms, rollups) both plain and
// compressed, and requires every chunk read back, byte for byte, to be the
// same, with the same selections, label names and values.
func TestCompressedEqualsPlain(t *testing.T) {
	for seed := range uint64(8) {
		rng := rand.New(rand.NewPCG(seed, 99))
		data := randomSeriesData(t, rng, testT0, 1+rng.IntN(300))
		parent := t.TempDir()
		// Small files and pages, so refs cross files and pages.
		plain, err := WriteSeriesWithOptions(parent, Meta{}, data, WriterOptions{MaxChunkFileSize: 64 << 10})
		if err != nil {
			t.Fatal(err)
		}
		comp, err := WriteSeriesWithOptions(parent, Meta{}, data, WriterOptions{MaxChunkFileSize: 64 << 10, Compress: true})
		if err != nil {
			t.Fatal(err)
		}
		if plain.Version != FormatVersionStatsFirst || comp.Version != FormatVersionCompressedStatsFirst {
			t.Fatalf("versions %d, %d", plain.Version, comp.Version)
		}
		ps, cs := openT(t, filepath.Join(parent, plain.ID)), openT(t, filepath.Join(parent, comp.ID))
		want, got := segmentContent(t, ps), segmentContent(t, cs)
		if len(want) != len(data) || !slices.Equal(want, got) {
			t.Fatalf("seed %d: compressed segment reads differently (%d series, plain %d)", seed, len(got), len(want))
		}
		if err := cs.Verify(t.Context()); err != nil {
			t.Fatal(err)
		}
		ms := []*labels.Matcher{labels.MustNewMatcher(labels.MatchRegexp, "__name__", "m[13]"), labels.MustNewMatcher(labels.MatchNotEqual, "z", "1")}
		pn, _ := ps.LabelValues("i", ms...)
		cn, _ := cs.LabelValues("i", ms...)
		if !slices.Equal(pn, cn) || len(pn) == 0 && seed == 0 {
			t.Fatalf("seed %d: label values %v, plain %v", seed, cn, pn)
		}
		if cs.Size() >= ps.Size() && len(data) > 20 {
			t.Fatalf("seed %d: compressed %d bytes, plain %d", seed, cs.Size(), ps.Size())
		}
	}
}

// TestCompactedCompressedEqualsPlain compacts the same randomized 2 h
// blocks into a day segment, once compressed (the default) and once not,
// and requires the same chunks from both, and from a compaction of the
// compressed day segment again (a rewrite after a delete reads compressed
// input).
func TestCompactedCompressedEqualsPlain(t *testing.T) {
	const block = 2 * 3600 * 1000
	day0 := testT0 - testT0%(24*3600*1000)
	rng := rand.New(rand.NewPCG(5, 5))
	var blocks [][]SeriesData
	for b := range 4 {
		blocks = append(blocks, randomSeriesData(t, rng, day0+int64(b)*block, 60))
	}
	compactDay := func(opts CompactOptions) []string {
		set, err := OpenSet(slog.New(slog.DiscardHandler), t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		defer set.Close()
		var metas []Meta
		for i, bl := range blocks {
			m, err := WriteSeries(set.Dir(), Meta{Seq: uint64(i + 1)}, bl)
			if err != nil {
				t.Fatal(err)
			}
			metas = append(metas, m)
		}
		if err := set.Publish(metas); err != nil {
			t.Fatal(err)
		}
		// A later block in the set, so that the day is over.
		late, err := WriteSeries(set.Dir(), Meta{Seq: 9}, []SeriesData{{Labels: labels.FromStrings("__name__", "late"),
			Chunks: []ChunkMeta{{Chunk: newXOR(t, []sample{{T: day0 + 30*3600*1000, V: 1}})}}}})
		if err != nil {
			t.Fatal(err)
		}
		if err := set.Publish([]Meta{late}); err != nil {
			t.Fatal(err)
		}
		c, err := NewCompactor(nil, set, opts, nil)
		if err != nil {
			t.Fatal(err)
		}
		if n, err := c.Compact(context.Background()); err != nil || n != 1 {
			t.Fatalf("%d compactions: %v", n, err)
		}
		segs, release := set.Acquire(day0, day0+block)
		defer release()
		if len(segs) != 1 {
			t.Fatalf("%d segments", len(segs))
		}
		wantVersion := FormatVersionCompressedStatsFirst
		if opts.Uncompressed {
			wantVersion = FormatVersionStatsFirst
		}
		if v := segs[0].Meta().Version; v != wantVersion {
			t.Fatalf("day segment of version %d, want %d", v, wantVersion)
		}
		if err := segs[0].Verify(t.Context()); err != nil {
			t.Fatal(err)
		}
		content := segmentContent(t, segs[0])
		if opts.Uncompressed {
			return content
		}
		// Compact the compressed day segment again, as a delete does.
		if _, err := set.AddTombstone([]*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "__name__", "none")}, day0, day0+1); err != nil {
			t.Fatal(err)
		}
		if n, err := c.Compact(context.Background()); err != nil || n != 1 {
			t.Fatalf("%d compactions of the tombstoned segment: %v", n, err)
		}
		again, release2 := set.Acquire(day0, day0+block)
		defer release2()
		if got := segmentContent(t, again[0]); !slices.Equal(got, content) {
			t.Fatal("the rewritten compressed day segment reads differently")
		}
		return content
	}
	plain := compactDay(CompactOptions{Uncompressed: true})
	comp := compactDay(CompactOptions{})
	if len(plain) < 60 || !slices.Equal(plain, comp) {
		t.Fatalf("compressed day segment reads differently (%d series, plain %d)", len(comp), len(plain))
	}
}

// TestPageCacheBounded reads a compressed segment from many goroutines
// through a cache much smaller than its pages: every read returns what the
// plain segment holds, and the cache never holds more than its bound.
func TestPageCacheBounded(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	data := randomSeriesData(t, rng, testT0, 400)
	parent := t.TempDir()
	plain, err := WriteSeries(parent, Meta{}, data)
	if err != nil {
		t.Fatal(err)
	}
	comp, err := WriteSeriesWithOptions(parent, Meta{}, data, WriterOptions{Compress: true})
	if err != nil {
		t.Fatal(err)
	}
	want := segmentContent(t, openT(t, filepath.Join(parent, plain.ID)))
	cache := NewPageCache(3 * defaultPageSize)
	s, err := OpenWithCache(filepath.Join(parent, comp.ID), cache)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			for range 3 {
				if got := segmentContent(t, s); !slices.Equal(got, want) {
					errs <- fmt.Errorf("a concurrent read differs from the plain segment")
					return
				}
				if n := cache.Size(); n > 3*defaultPageSize {
					errs <- fmt.Errorf("cache holds %d bytes, bound %d", n, 3*defaultPageSize)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if hits, misses := counterValue(t, cache.hits), counterValue(t, cache.misses); hits == 0 || misses == 0 {
		t.Fatalf("hits %v, misses %v", hits, misses)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if n := cache.Size(); n != 0 {
		t.Fatalf("cache holds %d bytes of a closed segment", n)
	}
}

func counterValue(t testing.TB, c prometheus.Counter) float64 {
	t.Helper()
	return testutil.ToFloat64(c)
}

// The format fixtures: the same randomized series (randomSeriesData, seed
// 11, 25 series), written as a version 1 segment by the writer before
// version 2 existed (commit 7bad43d), as a version 2 segment, as a version
// 3 segment (uncompressed, with chunk statistics), as a version 4 segment
// (compressed, with chunk statistics), as a version 5 segment (with hour
// runs, written by the writer of commit b65e834, which no writer writes
// any more) and as version 6 and 7 segments (uncompressed and compressed,
// with hour runs and first values).
const (
	fixtureV1Dir = "testdata/v1-plain/01KBFMT1P1A1N0000000000000"
	fixtureV2Dir = "testdata/v2-compressed/01KBFMT2C0MPRE55ED00000000"
	fixtureV3Dir = "testdata/v3-stats/01KBFMT3STAT50000000000000"
	fixtureV4Dir = "testdata/v4-stats/01KBFMT4STAT50000000000000"
	fixtureV5Dir = "testdata/v5-runs/01KBFMT5RVNS50000000000000"
	fixtureV6Dir = "testdata/v6-first/01KBFMT6F1RST0000000000000"
	fixtureV7Dir = "testdata/v7-first/01KBFMT7F1RST0000000000000"
)

func fixtureData(t testing.TB) []SeriesData {
	return randomSeriesData(t, rand.New(rand.NewPCG(11, 11)), testT0, 25)
}

// TestFormatFixtures opens the checked-in segments of both format versions
// and requires each to read exactly what the data written now reads, and
// compacts them together with a segment written now.
func TestFormatFixtures(t *testing.T) {
	parent := t.TempDir()
	now, err := WriteSeries(parent, Meta{}, fixtureData(t))
	if err != nil {
		t.Fatal(err)
	}
	want := segmentContent(t, openT(t, filepath.Join(parent, now.ID)))
	for _, fx := range []struct {
		dir     string
		version int
	}{{fixtureV1Dir, FormatVersionPlain}, {fixtureV2Dir, FormatVersionCompressed}, {fixtureV3Dir, FormatVersionStats}, {fixtureV4Dir, FormatVersionCompressedStats}, {fixtureV5Dir, FormatVersionStatsRuns}, {fixtureV6Dir, FormatVersionStatsFirst}, {fixtureV7Dir, FormatVersionCompressedStatsFirst}} {
		s := openT(t, fx.dir)
		if v := s.Meta().Version; v != fx.version {
			t.Fatalf("%s: version %d, want %d", fx.dir, v, fx.version)
		}
		if err := s.Verify(t.Context()); err != nil {
			t.Fatal(err)
		}
		if got := segmentContent(t, s); !slices.Equal(got, want) {
			t.Fatalf("%s reads differently from the same data written now", fx.dir)
		}
	}
}

// TestWriteFormatFixture rewrites the version 2, 3, 4, 6 and 7 fixtures when
// STRATA_WRITE_FIXTURES is set; otherwise it checks that what the writer
// writes now reads as the fixtures do, chunk statistics included. (The
// bytes may differ with another version of the zstd encoder; the format
// does not.)
func TestWriteFormatFixture(t *testing.T) {
	for _, fx := range []struct {
		dir  string
		opts WriterOptions
	}{{fixtureV2Dir, WriterOptions{Compress: true, NoStats: true}}, {fixtureV3Dir, WriterOptions{NoRuns: true}}, {fixtureV4Dir, WriterOptions{Compress: true, NoRuns: true}}, {fixtureV6Dir, WriterOptions{}}, {fixtureV7Dir, WriterOptions{Compress: true}}} {
		parent := t.TempDir()
		m, err := WriteSeriesWithOptions(parent, Meta{ID: filepath.Base(fx.dir), Seq: 3}, fixtureData(t), fx.opts)
		if err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(parent, m.ID)
		if os.Getenv("STRATA_WRITE_FIXTURES") != "" {
			if err := os.RemoveAll(fx.dir); err != nil {
				t.Fatal(err)
			}
			copyDir(t, dir, fx.dir)
			continue
		}
		got, want := openT(t, dir), openT(t, fx.dir)
		if !slices.Equal(segmentContent(t, got), segmentContent(t, want)) {
			t.Fatalf("a segment written now reads differently from the fixture %s", fx.dir)
		}
		if !slices.Equal(chunkMetas(t, got), chunkMetas(t, want)) {
			t.Fatalf("a segment written now has other chunk metas than the fixture %s", fx.dir)
		}
	}
}

// chunkMetas returns the chunk metas of every series of s, statistics
// included, as text (NaN statistics compare equal).
func chunkMetas(t testing.TB, s *Segment) []string {
	t.Helper()
	it, err := s.Select()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for it.Next() {
		for _, cm := range it.Chunks() {
			out = append(out, fmt.Sprintf("%+v", cm))
		}
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
