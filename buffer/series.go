package buffer

import (
	"math"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/strata-tsdb/strata/segments"
)

// memChunk is a chunk of samples sorted by time, without duplicate
// timestamps. Once a memChunk is closed it is never modified again, so
// readers may iterate it without holding the series lock.
type memChunk struct {
	minT, maxT int64
	chunk      *chunkenc.XORChunk
}

// memSeries is one series in the head.
//
// Data lives in three places, ordered from oldest write to newest: the
// in-order chunks (closed, then head), the sorted out-of-order chunks in the
// order they were cut, and the unsorted out-of-order buffer. A sample with a
// timestamp at or before lastT is out of order. For equal timestamps a later
// place wins, which makes the last write win: an in-order sample is always
// the first write of its timestamp, because anything written afterwards at
// that timestamp is out of order.
type memSeries struct {
	ref    uint64
	logged atomic.Bool // a series record for it is in the log
	lset   labels.Labels

	// Apply order: each batch that writes the series takes the next
	// logTicket when it is handed to the log (under Head.orderMtx), and
	// applies its samples once applied equals its ticket, so that the head
	// applies the series' writes in log order and a replay rebuilds the
	// same head (last write wins alike for equal timestamps).
	logTicket uint64 // guarded by Head.orderMtx
	applied   atomic.Uint64

	mtx sync.Mutex // mtx guards everything below.

	chunks  []*memChunk // closed in-order chunks, by time
	head    *memChunk   // open in-order chunk; nil if none
	headApp chunkenc.Appender
	lastT   int64 // latest in-order timestamp; math.MinInt64 when empty

	oooChunks []*memChunk // sorted out-of-order chunks, in cut order
	ooo       []sample    // unsorted out-of-order samples, in arrival order

	// idle is set by a flush that found the series empty, and cleared by
	// every append: a series still idle and empty at the next flush is
	// removed from the head (see Head.gcIdleSeries).
	idle bool
}

type sample = segments.Sample

func newMemSeries(ref uint64, lset labels.Labels) *memSeries {
	return &memSeries{ref: ref, lset: lset, lastT: math.MinInt64}
}

// appendLocked adds one sample. It reports whether the sample was out of
// order.
func (s *memSeries) appendLocked(t int64, v float64, o *Options) bool {
	if t > s.lastT {
		s.appendInOrderLocked(t, v, o)
		return false
	}
	s.ooo = append(s.ooo, sample{T: t, V: v})
	if len(s.ooo) >= o.OOOBufferSize {
		s.cutOOOLocked(o)
	}
	return true
}

func (s *memSeries) appendInOrderLocked(t int64, v float64, o *Options) {
	if s.head != nil && (s.head.chunk.NumSamples() >= o.ChunkSamples || rangeStart(t, o.ChunkRange) != rangeStart(s.head.minT, o.ChunkRange)) {
		s.closeHeadLocked()
	}
	if s.head == nil {
		c := newOpenChunk()
		app, _ := c.Appender() // A new XOR chunk never fails to give an appender.
		s.head = &memChunk{minT: t, maxT: t, chunk: c}
		s.headApp = app
	}
	s.headApp.Append(0, t, v)
	s.head.maxT = t
	s.lastT = t
}

func (s *memSeries) closeHeadLocked() {
	if s.head == nil {
		return
	}
	s.head.chunk.Compact()
	s.chunks = append(s.chunks, s.head)
	s.head, s.headApp = nil, nil
}

// cutOOOLocked sorts the unsorted buffer into a new out-of-order chunk, and
// merges everything back into in-order chunks once there are too many
// out-of-order chunks.
func (s *memSeries) cutOOOLocked(o *Options) {
	if len(s.ooo) == 0 {
		return
	}
	sorted := sortDedup(s.ooo)
	s.oooChunks = append(s.oooChunks, encodeChunk(sorted))
	s.ooo = s.ooo[:0]
	if len(s.oooChunks) > o.MaxOOOChunks {
		s.rebuildLocked(o)
	}
}

// rebuildLocked re-encodes all data of the series into in-order chunks,
// leaving no out-of-order data behind.
func (s *memSeries) rebuildLocked(o *Options) {
	it := s.iteratorLocked(math.MinInt64, math.MaxInt64)
	s.chunks, s.head, s.headApp, s.oooChunks, s.ooo = nil, nil, nil, nil, s.ooo[:0]
	s.lastT = math.MinInt64
	for it.Next() == chunkenc.ValFloat {
		t, v := it.At()
		s.appendInOrderLocked(t, v, o)
	}
}

// sortDedup sorts samples by time; of samples with equal timestamps the one
// that came last in the input is kept. The input is reordered.
func sortDedup(in []sample) []sample {
	sort.SliceStable(in, func(i, j int) bool { return in[i].T < in[j].T })
	out := in[:0]
	for i, x := range in {
		if i+1 < len(in) && in[i+1].T == x.T {
			continue
		}
		out = append(out, x)
	}
	return out
}

// encodeChunk encodes samples sorted by time without duplicates.
func encodeChunk(ss []sample) *memChunk {
	c := chunkenc.NewXORChunk()
	app, _ := c.Appender()
	for _, x := range ss {
		app.Append(0, x.T, x.V)
	}
	c.Compact()
	return &memChunk{minT: ss[0].T, maxT: ss[len(ss)-1].T, chunk: c}
}

// openChunkBytes is the capacity an open chunk starts with. chunkenc's
// NewXORChunk starts at 128 bytes, four times what a series scraped a few
// times before a flush needs (header, first sample, then 1-2 bytes a
// sample): at a million series that was 96 MB of empty capacity. The
// stream grows by append as samples come.
const openChunkBytes = 32

// newOpenChunk returns an empty XOR chunk with openChunkBytes of capacity.
func newOpenChunk() *chunkenc.XORChunk {
	c := &chunkenc.XORChunk{}
	c.Reset(make([]byte, 2, openChunkBytes)) // the 2-byte sample count, 0
	return c
}

// rangeStart returns the start of the ChunkRange-aligned range holding t.
func rangeStart(t, r int64) int64 {
	if t >= 0 {
		return t - t%r
	}
	return -((-t + r - 1) / r * r)
}
