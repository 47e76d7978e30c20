package buffer

import (
	"bytes"
	"math"
	"math/rand"
	"testing"
	"unsafe"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
)

// TestXORAppendMatchesChunkenc: the series' own float appender writes
// every chunk byte for byte as chunkenc's xorAppender does, over
// timestamp steps in every size class of the encoding (equal, small,
// 14/17/20-bit and larger, negative, at each class's edges) and values of
// every kind (repeats, small and large changes, integers, NaN, stale
// markers, infinities, -0, deltas of one bit about the 32nd), with chunks cut by size and by a histogram in
// between.
func TestXORAppendMatchesChunkenc(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	// Steps of the delta of delta: each class's edges, in and out (a
	// class of n bits takes -(2^(n-1)-1) to 2^(n-1)).
	steps := []int64{0, 1, 15_000, 8_191, -8_191, 8_192, -8_192, 8_193, 65_535, -65_535, 65_536, -65_536, 65_537,
		524_287, -524_287, 524_288, -524_288, 524_289, 1 << 40}
	values := func(prev float64) float64 {
		switch rng.Intn(10) {
		case 0:
			return prev
		case 1:
			return prev + rng.NormFloat64()
		case 2:
			return float64(rng.Intn(1000))
		case 3:
			return math.NaN()
		case 4:
			return math.Float64frombits(value.StaleNaN)
		case 5:
			return math.Inf(1 - 2*rng.Intn(2))
		case 6:
			return math.Copysign(0, -1)
		case 7:
			return prev * (1 + 1e-12)
		case 8:
			// A delta of one bit, 30 to 34 zeros before it: the 5 bits of
			// leading zeros hold at most 31.
			return math.Float64frombits(math.Float64bits(prev) ^ 1<<(29+rng.Intn(5)))
		}
		return rng.ExpFloat64() * 1e300
	}
	for round := range 200 {
		o := Options{ChunkSamples: 1 + rng.Intn(150)}.withDefaults()
		s := newMemSeries(1, newSymbolTable().encode(labels.FromStrings("a", "b")))
		var (
			want     []*chunkenc.XORChunk
			cur      *chunkenc.XORChunk
			app      chunkenc.Appender
			tm, tDel = int64(rng.Intn(1e6)), int64(10_000)
			v        float64
		)
		n := 1 + rng.Intn(600)
		for i := range n {
			if i > 0 && rng.Intn(200) == 0 {
				// A histogram ends the float chunk.
				tm += 1000
				h := &histogram.Histogram{Count: 1, Sum: 1, PositiveSpans: []histogram.Span{{Length: 1}}, PositiveBuckets: []int64{1}}
				s.appendLocked(sample{T: tm, H: h}, &o)
				cur = nil
			}
			tDel += steps[rng.Intn(len(steps))] * int64(rng.Intn(2))
			tm += max(1, tDel)
			v = values(v)
			s.appendLocked(sample{T: tm, V: v}, &o)
			checkOpenHints(t, s)
			if cur == nil || cur.NumSamples() >= o.ChunkSamples || rangeStart(tm, o.ChunkRange) != rangeStart(firstT(cur), o.ChunkRange) {
				cur = chunkenc.NewXORChunk()
				app, _ = cur.Appender()
				want = append(want, cur)
			}
			app.Append(0, tm, v)
		}
		var got [][]byte
		for _, c := range append(s.chunks, s.head) {
			if c != nil && c.chunk.Encoding() == chunkenc.EncXOR {
				got = append(got, c.chunk.Bytes())
			}
		}
		if len(got) != len(want) {
			t.Fatalf("round %d: %d float chunks, want %d", round, len(got), len(want))
		}
		for i := range want {
			if !bytes.Equal(got[i], want[i].Bytes()) {
				t.Fatalf("round %d, chunk %d of %d: bytes differ\ngot  %x\nwant %x", round, i, len(want), got[i], want[i].Bytes())
			}
		}
		// And the open chunk reads back through chunkenc, as queries and
		// flushes read it.
		if s.head != nil && s.head.chunk.Encoding() == chunkenc.EncXOR {
			it := s.head.chunk.Iterator(nil)
			k := 0
			for it.Next() != chunkenc.ValNone {
				k++
			}
			if it.Err() != nil || k != s.head.chunk.NumSamples() {
				t.Fatalf("round %d: the open chunk reads %d of %d samples: %v", round, k, s.head.chunk.NumSamples(), it.Err())
			}
		}
	}
}

// checkOpenHints fails unless the prefetch hints of s (memSeries.openAt,
// openTail) name the first byte of its open float chunk and the cache
// line of its last one.
func checkOpenHints(t *testing.T, s *memSeries) {
	t.Helper()
	b := s.head.chunk.Bytes()
	at, last := uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)-1)
	if got := s.openAt.Load(); got != at {
		t.Fatalf("openAt %#x, want %#x", got, at)
	}
	if tail := uintptr(s.openTail.Load()); tail > last || (at+tail)/cacheLine != (at+last)/cacheLine {
		t.Fatalf("openTail %d, last byte %d: another cache line", tail, last)
	}
}

func firstT(c *chunkenc.XORChunk) int64 {
	it := c.Iterator(nil)
	it.Next()
	return it.AtT()
}
