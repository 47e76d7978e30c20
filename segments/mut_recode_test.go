package segments

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
)

// TestRecodeWhereChunkencRecodes: wherever an append fails for new
// buckets (forward inserts: the appender has widened the histogram's
// spans with the chunk's), recodeHistograms and recodeFloatHistograms recode
// the chunk themselves (ok), to the bytes chunkenc's recode gives, and
// leave the chunk they were given as it was. Falling back to chunkenc
// gives the same bytes too, so TestRecodeHistogramsSameBytes cannot tell
// whether they recode at all: that is what they are for (chunkenc
// allocates every sample's buckets again).
func TestRecodeWhereChunkencRecodes(t *testing.T) {
	clone := func(c chunkenc.Chunk) (chunkenc.Chunk, chunkenc.Appender) {
		cc, err := chunkenc.FromData(c.Encoding(), bytes.Clone(c.Bytes()))
		if err != nil {
			t.Fatal(err)
		}
		app, err := cc.Appender()
		if err != nil {
			t.Fatal(err)
		}
		return cc, app
	}
	// appendOnly appends x to a copy of c without recoding, and returns the
	// copy, x as the failed append left it, and whether it failed for new
	// buckets (forward inserts; a gauge histogram that also lacks buckets
	// of the chunk fails for those first, its spans not widened: recoding
	// is then left to chunkenc).
	appendOnly := func(c chunkenc.Chunk, x *Sample) (chunkenc.Chunk, chunkenc.Appender, *Sample, bool) {
		cc, app := clone(c)
		y := &Sample{T: x.T}
		var err error
		if x.H != nil {
			y.H = x.H.Copy()
			_, _, _, err = app.AppendHistogram(nil, 0, y.T, y.H, true)
		} else {
			y.FH = x.FH.Copy()
			_, _, _, err = app.AppendFloatHistogram(nil, 0, y.T, y.FH, true)
		}
		return cc, app, y, err != nil && strings.Contains(err.Error(), "layout change with") && strings.Contains(err.Error(), "forwards inserts")
	}
	recodes := [2]int{}
	for seed := range uint64(16) {
		float := seed%2 == 1
		w := &layoutWalk{rng: rand.New(rand.NewPCG(seed, 11)), gauge: seed%4 == 3, schema: 1, pos: map[int32]int64{}, neg: map[int32]int64{}}
		var (
			c         chunkenc.Chunk
			app, prev chunkenc.Appender
		)
		for i := range 300 {
			h := w.next()
			x := &Sample{T: int64(i) * 1000, H: h}
			if float {
				x.H, x.FH = nil, h.ToFloat(nil)
			}
			if c != nil && c.NumSamples() > 0 && c.NumSamples() < 30 {
				if cc, _, y, changed := appendOnly(c, x); changed {
					before := bytes.Clone(cc.Bytes())
					var (
						rc chunkenc.Chunk
						ok bool
					)
					if float {
						rc, _, ok = recodeFloatHistograms(cc, y.T, y.FH)
					} else {
						rc, _, ok = recodeHistograms(cc, y.T, y.H)
					}
					if !ok {
						t.Fatalf("seed %d sample %d: a chunk of %d samples not recoded for new buckets", seed, i, c.NumSamples())
					}
					if !bytes.Equal(cc.Bytes(), before) {
						t.Fatalf("seed %d sample %d: the chunk recoded was changed", seed, i)
					}
					// chunkenc's recode, from the same widened sample.
					_, capp := clone(c)
					var (
						nc      chunkenc.Chunk
						recoded bool
						err     error
					)
					if float {
						nc, recoded, _, err = capp.AppendFloatHistogram(nil, 0, y.T, y.FH.Copy(), false)
					} else {
						nc, recoded, _, err = capp.AppendHistogram(nil, 0, y.T, y.H.Copy(), false)
					}
					if err != nil || nc == nil || !recoded {
						t.Fatalf("seed %d sample %d: chunkenc did not recode (%v)", seed, i, err)
					}
					if !bytes.Equal(rc.Bytes(), nc.Bytes()) {
						t.Fatalf("seed %d sample %d: recoded bytes differ from chunkenc's", seed, i)
					}
					recodes[btoi(float)]++
				}
			}
			if c != nil && c.NumSamples() >= 30 {
				prev, c, app = app, nil, nil
			}
			nc, napp, cut := appendSample(c, app, prev, x, false)
			if cut {
				prev = app
			}
			c, app = nc, napp
		}
	}
	if recodes[0] < 100 || recodes[1] < 100 {
		t.Fatalf("%d integer and %d float recodes: the test does not exercise them", recodes[0], recodes[1])
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestRecodeRefuses: recodeHistograms and recodeFloatHistograms decline
// (false, the chunk left as it was; the caller lets chunkenc recode) a
// chunk of another kind, an empty chunk, and a histogram whose layout
// lacks a bucket of the chunk's.
func TestRecodeRefuses(t *testing.T) {
	sp := []histogram.Span{{Offset: 0, Length: 2}}
	h := &histogram.Histogram{Count: 3, Sum: 1, Schema: 0, PositiveSpans: sp, PositiveBuckets: []int64{1, 1}}
	narrow := &histogram.Histogram{Count: 5, Sum: 2, Schema: 0, PositiveSpans: []histogram.Span{{Offset: 1, Length: 2}}, PositiveBuckets: []int64{2, 1}}
	c, app := NewChunk(chunkenc.EncHistogram)
	if _, _, ok := recodeHistograms(c, 1, narrow); ok {
		t.Fatal("an empty histogram chunk recoded")
	}
	if _, _, _, err := app.AppendHistogram(nil, 0, 1, h, true); err != nil {
		t.Fatal(err)
	}
	before := bytes.Clone(c.Bytes())
	if _, _, ok := recodeHistograms(c, 2, narrow); ok || !bytes.Equal(c.Bytes(), before) {
		t.Fatalf("bucket 0 missing from the new layout: recoded %v, chunk changed %v", ok, !bytes.Equal(c.Bytes(), before))
	}
	if _, _, ok := recodeFloatHistograms(c, 2, narrow.ToFloat(nil)); ok {
		t.Fatal("an integer histogram chunk recoded as a float one")
	}
	fc, fapp := NewChunk(chunkenc.EncFloatHistogram)
	if _, _, ok := recodeFloatHistograms(fc, 1, narrow.ToFloat(nil)); ok {
		t.Fatal("an empty float histogram chunk recoded")
	}
	if _, _, _, err := fapp.AppendFloatHistogram(nil, 0, 1, h.ToFloat(nil), true); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := recodeFloatHistograms(fc, 2, narrow.ToFloat(nil)); ok {
		t.Fatal("bucket 0 missing from the new float layout: recoded")
	}
	if _, _, ok := recodeHistograms(fc, 2, narrow); ok {
		t.Fatal("a float histogram chunk recoded as an integer one")
	}
	x, _ := NewChunk(chunkenc.EncXOR)
	if _, _, ok := recodeHistograms(x, 1, h); ok {
		t.Fatal("an XOR chunk recoded")
	}
}
