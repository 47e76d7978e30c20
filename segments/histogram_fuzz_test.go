package segments

import (
	"math/rand/v2"
	"testing"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
)

// FuzzHistogramChunks appends a random series of integer or float
// histograms (any
// mix of new, vanishing and negative buckets, resets, schema changes,
// gauges) through AppendSample, cutting chunks as the head does, stores
// each chunk as a chunk record and reads it back: every histogram comes
// back, and any one damaged byte of a record is a checksum error.
func FuzzHistogramChunks(f *testing.F) {
	f.Add(uint64(1), uint16(300), false, uint32(7))
	f.Add(uint64(2), uint16(50), true, uint32(0))
	f.Add(uint64(3), uint16(1000), false, uint32(123456))
	f.Fuzz(func(t *testing.T, seed uint64, n uint16, gauge bool, damage uint32) {
		w := &layoutWalk{rng: rand.New(rand.NewPCG(seed, 3)), gauge: gauge, schema: int32(seed % 5), pos: map[int32]int64{}, neg: map[int32]int64{}}
		var (
			want      []*histogram.FloatHistogram
			chunks    []chunkenc.Chunk
			c         chunkenc.Chunk
			app, prev chunkenc.Appender
		)
		for i := range int(n % 2000) {
			h := w.next()
			want = append(want, h.ToFloat(nil))
			if c != nil && ChunkFull(c, 120) {
				chunks, prev, c, app = append(chunks, c), app, nil, nil
			}
			before := c
			var cut bool
			x := &Sample{T: int64(i) * 15_000, H: h}
			if seed%2 == 1 {
				x.H, x.FH = nil, h.ToFloat(nil)
			}
			c, app, cut = AppendSample(c, app, prev, x)
			if cut && before != nil {
				chunks = append(chunks, before)
			}
			if cut {
				prev = nil
			}
		}
		if c != nil {
			chunks = append(chunks, c)
		}
		var got []*histogram.FloatHistogram
		for k, chk := range chunks {
			rec := appendChunkRecord(make([]byte, chunksHeaderSize), chk.Encoding(), chk.Bytes())
			enc, data, err := decodeChunkRecord(rec, chunksHeaderSize)
			if err != nil {
				t.Fatalf("chunk %d: %v", k, err)
			}
			back, err := chunkenc.FromData(enc, data)
			if err != nil {
				t.Fatalf("chunk %d: %v", k, err)
			}
			it := back.Iterator(nil)
			for vt := it.Next(); vt != chunkenc.ValNone; vt = it.Next() {
				if vt != chunkenc.ValHistogram && vt != chunkenc.ValFloatHistogram {
					t.Fatalf("chunk %d: a %v", k, vt)
				}
				_, h := it.AtFloatHistogram(nil)
				got = append(got, h)
			}
			if it.Err() != nil {
				t.Fatalf("chunk %d: %v", k, it.Err())
			}
			// One damaged byte after the length is always found.
			off := chunksHeaderSize + 1 + int(damage)%(len(rec)-chunksHeaderSize-1)
			bad := append([]byte(nil), rec...)
			bad[off] ^= 1 << (damage % 8)
			if _, _, err := decodeChunkRecord(bad, chunksHeaderSize); err == nil {
				t.Fatalf("chunk %d: byte %d damaged, record decodes", k, off)
			}
		}
		if len(got) != len(want) {
			t.Fatalf("read %d histograms, appended %d", len(got), len(want))
		}
		for k := range want {
			g, w := got[k].Copy(), want[k].Copy()
			g.CounterResetHint, w.CounterResetHint = 0, 0
			if !g.Compact(0).Equals(w.Compact(0)) {
				t.Fatalf("histogram %d: read %v, appended %v", k, g, w)
			}
		}
	})
}
