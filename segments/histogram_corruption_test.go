package segments

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
)

// newHistogramCorruptionFixture is a segment of native histograms in
// several chunks files: a series of integer histograms, one of float
// histograms, and one that changes kind (floats, integer histograms, then
// floats again), so that chunks of all three encodings lie side by side.
func newHistogramCorruptionFixture(t *testing.T, opts WriterOptions) *corruptionFixture {
	const step = 15_000
	rng := rand.New(rand.NewPCG(13, 1))
	mixed := []ChunkMeta{{Kind: KindRaw, Chunk: newXOR(t, randomWalk(rng, testT0, step, 30, 1))}}
	mixed = append(mixed, histogramChunks(t, testT0+30*step, 60, false)...)
	mixed = append(mixed, ChunkMeta{Kind: KindRaw, Chunk: newXOR(t, randomWalk(rng, testT0+90*step, step, 30, 1))})
	data := []SeriesData{
		{Labels: labels.FromStrings("__name__", "a_latency_seconds"), Chunks: histogramChunks(t, testT0, 150, false)},
		{Labels: labels.FromStrings("__name__", "b_size_bytes"), Chunks: histogramChunks(t, testT0, 150, true)},
		{Labels: labels.FromStrings("__name__", "c_changes_kind"), Chunks: mixed},
	}
	opts.MaxChunkFileSize = 2 << 10
	f := writeCorruptionFixture(t, data, opts, readAllSamples, nil)
	s, err := Open(f.dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	want, err := readAllSamples(s)
	if err != nil {
		t.Fatal(err)
	}
	// What the segment holds before any damage: every kind of value, as
	// many as were written.
	kinds := map[chunkenc.ValueType]int{}
	for _, ss := range want.(map[string][]Sample) {
		for i := range ss {
			kinds[ss[i].Type()]++
		}
	}
	if wantKinds := map[chunkenc.ValueType]int{chunkenc.ValFloat: 60, chunkenc.ValHistogram: 210, chunkenc.ValFloatHistogram: 150}; !reflect.DeepEqual(kinds, wantKinds) {
		t.Fatalf("the fixture reads %v, want %v", kinds, wantKinds)
	}
	f.stride = 1 // small enough to damage every byte
	f.same = func(t *testing.T, got any) {
		t.Helper()
		if !reflect.DeepEqual(got, want) {
			t.Fatal("read back other samples than were written")
		}
	}
	return f
}

// readAllSamples reads every chunk of s, of any encoding, and returns the
// samples of each series by its labels.
func readAllSamples(s *Segment) (any, error) {
	it, err := s.Select()
	if err != nil {
		return nil, err
	}
	out := map[string][]Sample{}
	for it.Next() {
		key := it.Labels().String()
		for _, cm := range it.Chunks() {
			c, err := s.ReadChunk(cm.Ref)
			if err != nil {
				return nil, err
			}
			ci := c.Iterator(nil)
			first := len(out[key])
			for vt := ci.Next(); vt != chunkenc.ValNone; vt = ci.Next() {
				out[key] = append(out[key], ReadSample(ci, vt, nil, nil))
			}
			if err := ci.Err(); err != nil {
				return nil, err
			}
			got := out[key][first:]
			if len(got) == 0 || got[0].T != cm.MinTime || got[len(got)-1].T != cm.MaxTime {
				return nil, fmt.Errorf("series %s: chunk samples do not match meta %d..%d", key, cm.MinTime, cm.MaxTime)
			}
		}
	}
	return out, it.Err()
}
