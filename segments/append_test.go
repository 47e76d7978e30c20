package segments

import (
	"math/rand"
	"testing"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
)

// TestChunkFull: a chunk is full at maxSamples samples, not one before
// nor one after; a histogram chunk also once it holds 10 samples and
// 1 KiB, and a float chunk never for its size alone.
func TestChunkFull(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	c, app := NewChunk(chunkenc.EncXOR)
	for i := range 200 {
		app.Append(0, int64(i)*1000, rng.NormFloat64()) // values that take bytes
	}
	if len(c.Bytes()) < 1024 {
		t.Fatalf("float chunk of %d bytes: the test wants at least 1 KiB", len(c.Bytes()))
	}
	for _, m := range []struct {
		max  int
		full bool
	}{{199, true}, {200, true}, {201, false}, {1000, false}} {
		if got := ChunkFull(c, m.max); got != m.full {
			t.Errorf("float chunk of 200 samples, %d bytes, max %d: full %v, want %v", len(c.Bytes()), m.max, got, m.full)
		}
	}

	// 60 buckets of counts that only grow, by random amounts: no counter
	// reset, and many bytes a sample.
	abs := make([]int64, 60)
	big := func(i int) *histogram.Histogram { return growingHistogram(rng, abs, 1_000_000, i) }
	var hc chunkenc.Chunk
	var happ chunkenc.Appender
	for i := range 10 {
		if i == 9 {
			if len(hc.Bytes()) < 1024 {
				t.Fatalf("histogram chunk of %d bytes at 9 samples: the test wants at least 1 KiB", len(hc.Bytes()))
			}
			if ChunkFull(hc, 120) {
				t.Errorf("histogram chunk of 9 samples, %d bytes: full", len(hc.Bytes()))
			}
		}
		var cut bool
		hc, happ, cut = AppendSample(hc, happ, nil, &Sample{T: int64(i) * 1000, H: big(i)})
		if cut != (i == 0) {
			t.Fatalf("histogram sample %d cut a chunk", i)
		}
	}
	if !ChunkFull(hc, 120) {
		t.Errorf("histogram chunk of 10 samples, %d bytes: not full", len(hc.Bytes()))
	}
	small, sapp := NewChunk(chunkenc.EncHistogram)
	for i := range 10 {
		small, sapp, _ = AppendSample(small, sapp, nil, &Sample{T: int64(i) * 1000, H: &histogram.Histogram{Count: uint64(i), Sum: 1}})
	}
	if len(small.Bytes()) >= 1024 || ChunkFull(small, 120) {
		t.Errorf("histogram chunk of 10 samples, %d bytes: full %v, want not full under 1 KiB", len(small.Bytes()), ChunkFull(small, 120))
	}
}

// growingHistogram returns the i-th sample of a schema 3 histogram whose
// len(abs) buckets' counts (abs, kept between calls) each grow by a random
// amount below step: no counter reset, and many bytes a sample.
func growingHistogram(rng *rand.Rand, abs []int64, step int64, i int) *histogram.Histogram {
	h := &histogram.Histogram{Schema: 3, Sum: float64(i), PositiveSpans: []histogram.Span{{Offset: 0, Length: uint32(len(abs))}}}
	var prev int64
	for k := range abs {
		abs[k] += rng.Int63n(step)
		h.PositiveBuckets = append(h.PositiveBuckets, abs[k]-prev)
		h.Count += uint64(abs[k])
		prev = abs[k]
	}
	return h
}
