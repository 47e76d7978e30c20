package buffer

import (
	"math"
	"sort"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/strata-tsdb/strata/ingest"
	"github.com/strata-tsdb/strata/segments"
)

// memChunk is a chunk of samples sorted by time, without duplicate
// timestamps. Once a memChunk is closed it is never modified again, so
// readers may iterate it without holding the series lock.
//
// A float chunk takes 32 bytes (a size class), as there is one or more a
// series: its cost is its number of samples. A histogram chunk is the
// first field of a histMemChunk, which keeps its cost.
type memChunk struct {
	minT, maxT int64
	chunk      chunkenc.Chunk // XOR, histogram or float histogram; its encoding never changes
}

// histMemChunk is a memChunk of histograms with their cost.
type histMemChunk struct {
	memChunk
	cost int64
}

// newMemChunk returns a memChunk holding ch, whose first sample is at minT.
func newMemChunk(minT int64, ch chunkenc.Chunk) *memChunk {
	if ch.Encoding() == chunkenc.EncXOR {
		return &memChunk{minT: minT, chunk: ch}
	}
	return &(&histMemChunk{memChunk: memChunk{minT: minT, chunk: ch}}).memChunk
}

// hist returns the histMemChunk of a histogram chunk.
func (c *memChunk) hist() *histMemChunk {
	// c is the first field of a histMemChunk: newMemChunk made it so for
	// every chunk not XOR-encoded, and a chunk keeps its encoding.
	return (*histMemChunk)(unsafe.Pointer(c))
}

// cost is the sum of sampleCost of the samples appended to the chunk: what
// they count against Options.MaxHeadSamples (StoreOptions).
func (c *memChunk) cost() int64 {
	if c.chunk.Encoding() == chunkenc.EncXOR {
		return int64(c.chunk.NumSamples()) // a float costs 1
	}
	return c.hist().cost
}

// addCost adds the cost of a sample appended to the chunk.
func (c *memChunk) addCost(n int64) {
	if c.chunk.Encoding() != chunkenc.EncXOR {
		c.hist().cost += n
	}
}

// sampleCost is what x counts against the head's sample budget
// (StoreOptions.MaxHeadSamples): 1 for a float, and a native histogram
// by its size, as the write and query limits count it
// (ingest.HistogramCost).
func sampleCost(x *sample) int64 {
	if x.H == nil && x.FH == nil {
		return 1
	}
	return int64(ingest.HistogramCost(x.H, x.FH))
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
	ref  uint64
	lset seriesLabels // read through Head.syms
	// loggedIn is the log epoch (Head.logEpoch, its low 32 bits) in which
	// a series record for it was made durable; 0: never. A record logged
	// before the epoch's cut may be truncated away with the segments below
	// it. Only equality is asked of it, and of the tickets below, so 32
	// bits that wrap around do: an epoch 2³² flushes old, or 2³² batches
	// of one series in flight at once, do not happen. (Half the size makes
	// memSeries fit a smaller size class.)
	loggedIn atomic.Uint32

	// Apply order: each batch that writes the series takes the next
	// logTicket when it is handed to the log (under Head.orderMtx), and
	// applies its samples once applied equals its ticket, so that the head
	// applies the series' writes in log order and a replay rebuilds the
	// same head (last write wins alike for equal timestamps).
	logTicket uint32 // guarded by Head.orderMtx
	applied   atomic.Uint32

	mtx sync.Mutex // mtx guards everything below.

	// idle is set by a flush that found the series empty, and cleared by
	// every append: a series still idle and empty at the next flush is
	// removed from the head (see Head.gcIdleSeries). (Here, beside mtx,
	// it fills what would be padding.)
	idle bool
	// xorBits and xor are the appender of the open chunk when it holds
	// floats (appendXORLocked); a histogram chunk's is ooo.histApp.
	xorBits xorBits

	chunks []*memChunk // closed in-order chunks, by time
	head   *memChunk   // open in-order chunk; nil if none
	xor    xorState
	lastT  int64 // latest in-order timestamp; math.MinInt64 when empty

	// ooo holds the out-of-order data, and the appender of an open
	// histogram chunk; nil when there are none, which is most series: the
	// two lists and the appender would take 64 bytes in each.
	ooo *oooData

	// openAt and openTail say where the bytes of the open float chunk
	// are, for Head.Append to prefetch them a few series ahead
	// (prefetchAhead), which it reads without the lock: the address of
	// the first byte (0: none yet), and the offset of a byte in the
	// cache line of the last one. Set by appendXORLocked; a hint only,
	// stale after the chunk is closed.
	openAt   atomic.Uintptr
	openTail atomic.Uint32
}

type sample = segments.Sample

// oooData is a series' out-of-order data, and the appender of its open
// histogram chunk.
type oooData struct {
	chunks  []*memChunk // sorted out-of-order chunks, in cut order
	buf     []sample    // unsorted out-of-order samples, in arrival order
	histApp chunkenc.Appender
}

// histApp returns the appender of the open histogram chunk; nil if the open
// chunk holds floats or there is none.
func (s *memSeries) histApp() chunkenc.Appender {
	if s.ooo == nil {
		return nil
	}
	return s.ooo.histApp
}

// setHistAppLocked sets the appender of the open histogram chunk.
func (s *memSeries) setHistAppLocked(app chunkenc.Appender) {
	if app == nil && s.ooo == nil {
		return
	}
	if s.ooo == nil {
		s.ooo = &oooData{}
	}
	s.ooo.histApp = app
	s.dropOOOIfEmptyLocked()
}

// dropHeadLocked lets the open chunk go (it was closed or flushed).
func (s *memSeries) dropHeadLocked() {
	s.head = nil
	s.setHistAppLocked(nil)
}

// oooChunks returns the sorted out-of-order chunks, in cut order.
func (s *memSeries) oooChunks() []*memChunk {
	if s.ooo == nil {
		return nil
	}
	return s.ooo.chunks
}

// oooBuf returns the unsorted out-of-order samples, in arrival order.
func (s *memSeries) oooBuf() []sample {
	if s.ooo == nil {
		return nil
	}
	return s.ooo.buf
}

// dropOOOIfEmptyLocked lets the out-of-order data go once it holds nothing.
func (s *memSeries) dropOOOIfEmptyLocked() {
	if s.ooo != nil && len(s.ooo.chunks) == 0 && len(s.ooo.buf) == 0 && s.ooo.histApp == nil {
		s.ooo = nil
	}
}

func newMemSeries(ref uint64, lset seriesLabels) *memSeries {
	return &memSeries{ref: ref, lset: lset, lastT: math.MinInt64}
}

// appendLocked adds one sample, a float or a histogram (which the series
// then owns). It reports whether the sample was out of order. A series may
// hold floats and histograms at different times; out-of-order samples of
// either kind follow the same rules. cost is how much the weight of what
// the series holds (memChunk.cost() of its chunks plus sampleCost of its
// unsorted buffer) changed, for Head.inHeadCost.
func (s *memSeries) appendLocked(x sample, o *Options) (ooo bool, cost int64) {
	cost = sampleCost(&x)
	if x.T > s.lastT {
		s.appendInOrderLocked(&x, o)
		return false, cost
	}
	if s.ooo == nil {
		s.ooo = &oooData{}
	}
	s.ooo.buf = append(s.ooo.buf, x)
	if len(s.ooo.buf) >= o.OOOBufferSize {
		cost += s.cutOOOLocked(o)
	}
	return true, cost
}

func (s *memSeries) appendInOrderLocked(x *sample, o *Options) {
	var prev chunkenc.Appender
	if s.head != nil && (segments.ChunkFull(s.head.chunk, o.ChunkSamples) || rangeStart(x.T, o.ChunkRange) != rangeStart(s.head.minT, o.ChunkRange)) {
		prev = s.histApp()
		s.closeHeadLocked()
	}
	if x.H == nil && x.FH == nil {
		// A float: the series appends it itself (appendXORLocked).
		if s.head != nil && s.head.chunk.Encoding() != chunkenc.EncXOR {
			s.closeHeadLocked() // histograms end
		}
		if s.head == nil {
			s.head = newOpenMemChunk(x.T)
			s.xorBits, s.xor = newXORBits, xorState{}
		}
		s.appendXORLocked(x.T, x.V)
		s.head.maxT = x.T
		s.lastT = x.T
		return
	}
	var app chunkenc.Appender
	if s.head != nil && s.head.chunk.Encoding() != chunkenc.EncXOR {
		app = s.histApp()
	}
	head, app, done := appendToChunk(s.head, app, prev, x)
	if done != nil {
		s.head = done
		s.closeHeadLocked()
	}
	s.head = head
	s.setHistAppLocked(app)
	s.lastT = x.T
}

func (s *memSeries) closeHeadLocked() {
	if s.head == nil {
		return
	}
	s.head.chunk.Compact()
	s.chunks = append(s.chunks, s.head)
	s.dropHeadLocked()
}

// cutOOOLocked sorts the unsorted buffer into a new out-of-order chunk, and
// merges everything back into in-order chunks once there are too many
// out-of-order chunks. It returns how much the weight of what the series
// holds changed (at most 0: duplicates go, and a rebuild may recode
// histograms with more buckets, which weighs them more).
func (s *memSeries) cutOOOLocked(o *Options) int64 {
	if s.ooo == nil || len(s.ooo.buf) == 0 {
		return 0
	}
	d := s.ooo
	var cost int64
	for i := range d.buf {
		cost -= sampleCost(&d.buf[i])
	}
	sorted := sortDedup(d.buf)
	cut := encodeChunks(sorted, o.ChunkSamples)
	cost += chunksCost(cut)
	d.chunks = append(d.chunks, cut...)
	clear(d.buf) // drop histogram references
	d.buf = d.buf[:0]
	if len(d.chunks) > o.MaxOOOChunks && !o.flushRunning() { // else at the flush's end
		cost += s.rebuildLocked(o)
	}
	return cost
}

// chunksCost returns the sum of the chunks' memChunk.cost().
func chunksCost(cs []*memChunk) int64 {
	var n int64
	for _, c := range cs {
		n += c.cost()
	}
	return n
}

// chunksCostLocked returns the weight of the series' chunks.
func (s *memSeries) chunksCostLocked() int64 {
	n := chunksCost(s.chunks) + chunksCost(s.oooChunks())
	if s.head != nil {
		n += s.head.cost()
	}
	return n
}

// rebuildLocked re-encodes all data of the series into in-order chunks,
// leaving no out-of-order data behind (the unsorted buffer is cut
// already), and returns how much the weight of the series' chunks changed.
func (s *memSeries) rebuildLocked(o *Options) int64 {
	before := s.chunksCostLocked()
	it := s.iteratorLocked(math.MinInt64, math.MaxInt64)
	s.chunks, s.head, s.ooo = nil, nil, nil
	s.lastT = math.MinInt64
	for vt := it.Next(); vt != chunkenc.ValNone; vt = it.Next() {
		x := segments.ReadSample(it, vt, nil, nil)
		s.appendInOrderLocked(&x, o)
	}
	return s.chunksCostLocked() - before
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

// encodeChunks encodes samples sorted by time without duplicates into
// chunks that do not overlap: one, unless the samples change kind, a
// histogram needs a new chunk, or a chunk fills up.
func encodeChunks(ss []sample, maxSamples int) []*memChunk {
	var (
		out  []*memChunk
		cur  *memChunk
		app  chunkenc.Appender
		prev chunkenc.Appender
		done *memChunk
	)
	for i := range ss {
		if cur != nil && segments.ChunkFull(cur.chunk, maxSamples) {
			cur.chunk.Compact()
			out = append(out, cur)
			cur, prev = nil, app
		}
		cur, app, done = appendToChunk(cur, app, prev, &ss[i])
		prev = nil
		if done != nil {
			done.chunk.Compact()
			out = append(out, done)
		}
	}
	if cur != nil {
		cur.chunk.Compact()
		out = append(out, cur)
	}
	return out
}

// openChunkBytes is the capacity an open chunk starts with. chunkenc's
// NewXORChunk starts at 128 bytes, four times what a series scraped a few
// times before a flush needs (header, first sample, then 1-2 bytes a
// sample): at a million series that was 96 MB of empty capacity. The
// stream grows by append as samples come.
const openChunkBytes = 32

// xorMemChunk is a float chunk's memChunk and its XOR chunk in one
// allocation of 64 bytes (two of 32 apart): every series starts a float
// chunk at every cut, and at its first append after each flush, which
// seals its open chunk (sealForFlushLocked).
type xorMemChunk struct {
	memChunk
	xor chunkenc.XORChunk
}

// newOpenMemChunk returns a memChunk holding an empty XOR chunk with
// openChunkBytes of capacity, whose first sample will be at minT.
func newOpenMemChunk(minT int64) *memChunk {
	c := &xorMemChunk{}
	c.xor.Reset(make([]byte, 2, openChunkBytes)) // the 2-byte sample count, 0
	c.memChunk = memChunk{minT: minT, chunk: &c.xor}
	return &c.memChunk
}

// rangeStart returns the start of the ChunkRange-aligned range holding t.
func rangeStart(t, r int64) int64 {
	if t >= 0 {
		return t - t%r
	}
	return -((-t + r - 1) / r * r)
}
