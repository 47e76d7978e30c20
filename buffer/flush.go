package buffer

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/strata-tsdb/strata/segments"
)

// A flush streams the head into segments series by series: it takes the
// series that hold data, sorted by labels, and for each one in turn copies
// what it holds (a snapshot: the open chunk's bytes, the closed chunks by
// reference), re-encodes it into chunks per block and hands them to that
// block's segment writer, which writes them to disk at once. Only one
// series' copy exists at a time; what the flush keeps for all series is a
// flushItem each (about 50 bytes), to drop exactly what it wrote once the
// segments are published. (It built the whole copy first, which doubled
// the process's memory during a flush.)

// flushItem records what one series held when the flush copied it, so that
// exactly that, and nothing written since, is dropped from the head once
// it is durable in a segment. The flush seals the open chunk first
// (sealForFlushLocked), so what it takes is a prefix of each chunk list:
// chunk lists are only appended to, or replaced whole by a rebuild (new
// chunks), and the list still starts with what was flushed when its n-th
// chunk is the one the flush saw last.
type flushItem struct {
	s          *memSeries
	lastClosed *memChunk // the last of the closedN closed in-order chunks
	lastOOO    *memChunk // the last of the oooN out-of-order chunks
	closedN    int32
	oooN       int32
}

// seriesWithData returns the series that hold data, sorted by labels.
func (h *Head) seriesWithData() []*memSeries {
	var out []*memSeries
	h.series.forEach(func(s *memSeries) {
		s.mtx.Lock()
		if !s.emptyLocked() {
			out = append(out, s)
		}
		s.mtx.Unlock()
	})
	slices.SortFunc(out, func(a, b *memSeries) int { return h.syms.compare(a.lset, b.lset) })
	return out
}

// sealForFlushLocked closes the series' open in-order chunk: it becomes
// the last closed chunk, which the flush takes whole, and the next append
// starts a new chunk. A flush that copied the open chunk instead could
// drop it afterwards only if nothing had been appended to it since, which
// under continuous writes is never: every flush then wrote the whole head
// again and dropped nothing (issue 20: at 5M series three flushes in a
// row wrote 52 M, 103 M and 163 M samples and dropped 290 k, 0 and 0).
// Closing changes nothing else: lastT stays, so what is in order stays in
// order, and the next chunk starts as one cut at ChunkSamples does (a
// float chunk from a fresh XOR state; a histogram chunk without the
// previous appender, so its counter-reset header is "unknown", which
// readers resolve by comparing, as after any flush that dropped the head).
// Unlike closeHeadLocked it does not compact the chunk (copy its bytes
// into a right-sized slice): the flush drops it once it is published, and
// copying every open chunk was garbage the size of the head
// (TestFlushHoldsNoCopy).
func sealForFlushLocked(s *memSeries) {
	if s.head == nil {
		return
	}
	s.chunks = append(s.chunks, s.head)
	s.dropHeadLocked()
}

// snapshotForFlushLocked seals the series' open chunk and its unsorted
// out-of-order buffer into chunks and returns a copy of what the series
// holds and the item that tells truncateFlushed what to drop; nil when it
// holds nothing.
func (h *Head) snapshotForFlushLocked(s *memSeries) (*snapshot, flushItem) {
	h.inHeadCost.Add(s.cutOOOLocked(&h.opts)) // first: a rebuild opens a chunk
	sealForFlushLocked(s)
	if len(s.chunks) == 0 && len(s.oooChunks()) == 0 {
		return nil, flushItem{}
	}
	return s.snapshotLocked(math.MinInt64, math.MaxInt64), h.flushItemLocked(s)
}

// flushItemLocked returns the item that tells truncateFlushed what the
// flush takes of s now: every chunk it holds, the open one sealed.
func (h *Head) flushItemLocked(s *memSeries) flushItem {
	ooo := s.oooChunks()
	it := flushItem{s: s, closedN: int32(len(s.chunks)), oooN: int32(len(ooo))}
	if n := len(s.chunks); n > 0 {
		it.lastClosed = s.chunks[n-1]
	}
	if n := len(ooo); n > 0 {
		it.lastOOO = ooo[n-1]
	}
	return it
}

// blockWriters are the segment writers of one flush, one per block,
// opened as the first series with data in a block comes.
type blockWriters struct {
	sink SegmentSink
	now  func() time.Time
	ws   map[int64]*segments.Writer
}

// get returns the writer of the block starting at b, opening it if needed.
// Each takes the next number of the sink's write sequence, which orders
// it after every segment written before (the segments of one flush do not
// overlap in time, so their order among themselves decides nothing); now
// only names it.
func (bw *blockWriters) get(b int64) (*segments.Writer, error) {
	if w := bw.ws[b]; w != nil {
		return w, nil
	}
	seq, err := bw.sink.NextSeq()
	if err != nil {
		return nil, fmt.Errorf("segment for block %d: %w", b, err)
	}
	w, err := segments.NewWriter(bw.sink.Dir(), segments.Meta{ID: segments.NewID(bw.now()), Seq: seq})
	if err != nil {
		return nil, fmt.Errorf("create segment for block %d: %w", b, err)
	}
	bw.ws[b] = w
	return w, nil
}

// close finishes the writers in block order and returns their metas. On
// error, and with abort, nothing written stays on disk.
func (bw *blockWriters) close(abort bool) (metas []segments.Meta, err error) {
	starts := slices.Sorted(func(yield func(int64) bool) {
		for b := range bw.ws {
			if !yield(b) {
				return
			}
		}
	})
	for _, b := range starts {
		w := bw.ws[b]
		if abort || err != nil {
			_ = w.Abort()
			continue
		}
		meta, cerr := w.Close()
		if cerr != nil {
			err = fmt.Errorf("finish segment for block %d: %w", b, cerr)
			continue
		}
		metas = append(metas, meta)
	}
	if err != nil {
		for _, m := range metas {
			_ = os.RemoveAll(filepath.Join(bw.sink.Dir(), m.ID))
		}
		return nil, err
	}
	return metas, nil
}

// writeFlush writes what the series hold into one segment per block,
// series by series in label order, and returns the segments' metas and
// what truncateFlushed is to drop. On error nothing it wrote stays on disk,
// and the items of the series it took are returned for endFlush.
func (h *Head) writeFlush(ctx context.Context, sink SegmentSink, blockDur int64, now func() time.Time) ([]segments.Meta, []flushItem, error) {
	series := h.seriesWithData()
	items := make([]flushItem, 0, len(series))
	bw := &blockWriters{sink: sink, now: now, ws: map[int64]*segments.Writer{}}
	enc := blockEncoder{blockDur: blockDur, chunkSamples: h.opts.ChunkSamples}
	sb := labels.NewScratchBuilder(16)
	for i, s := range series {
		if i%1024 == 0 {
			if err := ctx.Err(); err != nil {
				_, _ = bw.close(true)
				return nil, items, err
			}
		}
		s.mtx.Lock()
		var err error
		if enc.takeInOrderLocked(s) {
			// The common case: only in-order chunks, each within one
			// block. They are written as they are (the open one sealed),
			// with nothing copied, decoded, re-encoded or left behind.
			it := h.flushItemLocked(s)
			s.mtx.Unlock()
			items = append(items, it)
			err = enc.writeTaken(h.syms.labels(s.lset, &sb), bw)
		} else {
			snap, it := h.snapshotForFlushLocked(s)
			s.mtx.Unlock()
			if snap == nil {
				continue
			}
			items = append(items, it)
			err = enc.write(h.syms.labels(s.lset, &sb), snap, bw)
		}
		if err != nil {
			_, _ = bw.close(true)
			return nil, items, err
		}
		if h.testHookFlushedSeries != nil {
			h.testHookFlushedSeries(len(items))
		}
	}
	metas, err := bw.close(false)
	if err != nil {
		return nil, items, err
	}
	return metas, items, nil
}

// blockEncoder re-encodes one series' snapshot into chunks of at most
// chunkSamples samples, cut at the blockDur-aligned block boundaries, and
// adds each block's chunks to that block's writer. Its buffers are reused
// from series to series.
type blockEncoder struct {
	blockDur     int64
	chunkSamples int
	chunks       []segments.ChunkMeta

	// What takeInOrderLocked took: the series' chunks.
	taken []segments.ChunkMeta
}

// takeInOrderLocked seals the series' open chunk and takes its chunks as
// they are when it holds only in-order data (no out-of-order chunk or
// buffer, no open histogram chunk) and each chunk lies within one block;
// it reports whether it did. The head cuts in-order chunks at
// ChunkSamples and at ChunkRange boundaries, which divide the block, so
// they are what re-encoding would make (or, when ChunkRange is shorter
// than a block, smaller). Closed chunks never change: they are
// referenced, not copied.
func (e *blockEncoder) takeInOrderLocked(s *memSeries) bool {
	if s.ooo != nil || (len(s.chunks) == 0 && s.head == nil) {
		return false
	}
	sealForFlushLocked(s)
	clear(e.taken)
	e.taken = e.taken[:0]
	for _, c := range s.chunks {
		if rangeStart(c.minT, e.blockDur) != rangeStart(c.maxT, e.blockDur) {
			return false
		}
		e.taken = append(e.taken, segments.ChunkMeta{Kind: segments.KindRaw, MinTime: c.minT, MaxTime: c.maxT, Chunk: c.chunk})
	}
	return true
}

// writeTaken adds the chunks takeInOrderLocked took to the writers of
// their blocks.
func (e *blockEncoder) writeTaken(lset labels.Labels, bw *blockWriters) error {
	for i := 0; i < len(e.taken); {
		b := rangeStart(e.taken[i].MinTime, e.blockDur)
		j := i + 1
		for j < len(e.taken) && rangeStart(e.taken[j].MinTime, e.blockDur) == b {
			j++
		}
		w, err := bw.get(b)
		if err != nil {
			return err
		}
		if err := w.AddSeries(lset, e.taken[i:j]); err != nil {
			return fmt.Errorf("write segment for block %d: %w", b, err)
		}
		i = j
	}
	return nil
}

func (e *blockEncoder) write(lset labels.Labels, snap *snapshot, bw *blockWriters) error {
	var (
		cur      *memChunk
		app      chunkenc.Appender
		prev     chunkenc.Appender
		curBlock int64
		first    = true
	)
	emit := func(c *memChunk) {
		c.chunk.Compact()
		e.chunks = append(e.chunks, segments.ChunkMeta{Kind: segments.KindRaw, MinTime: c.minT, MaxTime: c.maxT, Chunk: c.chunk})
	}
	finishBlock := func() error {
		if cur != nil {
			emit(cur)
			cur, app = nil, nil
		}
		if len(e.chunks) == 0 {
			return nil
		}
		defer func() {
			clear(e.chunks)
			e.chunks = e.chunks[:0]
		}()
		w, err := bw.get(curBlock)
		if err != nil {
			return err
		}
		if err := w.AddSeries(lset, e.chunks); err != nil {
			return fmt.Errorf("write segment for block %d: %w", curBlock, err)
		}
		return nil
	}
	it := snap.iterator()
	for vt := it.Next(); vt != chunkenc.ValNone; vt = it.Next() {
		x := segments.ReadSample(it, vt, nil, nil)
		b := rangeStart(x.T, e.blockDur)
		if first || b != curBlock {
			if err := finishBlock(); err != nil {
				return err
			}
			curBlock, first = b, false
		}
		if cur != nil && segments.ChunkFull(cur.chunk, e.chunkSamples) {
			emit(cur)
			cur, prev = nil, app
		}
		var done *memChunk
		cur, app, done = appendToChunk(cur, app, prev, &x)
		prev = nil
		if done != nil {
			emit(done)
		}
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("read series %s: %w", lset, err)
	}
	return finishBlock()
}

// truncateFlushed drops from the head what the flush wrote and returns the
// number of samples dropped. Data written after the flush copied a series
// stays: it is in chunks after those the flush took (the open chunk was
// sealed), or, if out-of-order merging rebuilt the series since, the whole
// series stays and is flushed again next time, which readers and
// compaction resolve as duplicates.
func (h *Head) truncateFlushed(items []flushItem) int64 {
	var dropped, cost int64
	for i := range items {
		it := &items[i]
		s := it.s
		s.mtx.Lock()
		var n, c int64
		s.chunks, n, c = dropPrefix(s.chunks, int(it.closedN), it.lastClosed)
		dropped += n
		cost += c
		if s.ooo != nil {
			s.ooo.chunks, n, c = dropPrefix(s.ooo.chunks, int(it.oooN), it.lastOOO)
			dropped += n
			cost += c
			s.dropOOOIfEmptyLocked()
		}
		cost -= h.rebuildIfDueLocked(s)
		s.mtx.Unlock()
	}
	h.inHead.Add(-dropped)
	h.inHeadCost.Add(-cost)
	return dropped
}

// rebuildIfDueLocked makes the out-of-order rebuild that waited for the
// flush (cutOOOLocked), if it is still due, and returns how the weight of
// what the series holds changed.
func (h *Head) rebuildIfDueLocked(s *memSeries) int64 {
	if s.ooo == nil || len(s.ooo.chunks) <= h.opts.MaxOOOChunks {
		return 0
	}
	cost := s.cutOOOLocked(&h.opts) // which rebuilds only once no flush runs
	if s.ooo != nil && len(s.ooo.chunks) > h.opts.MaxOOOChunks {
		cost += s.rebuildLocked(&h.opts)
	}
	return cost
}

// startFlush marks a flush as running: from now until endFlush, a series
// whose out-of-order chunks reach MaxOOOChunks keeps them as they are
// rather than merging everything into new in-order chunks (a rebuild,
// which replaces the chunk lists whole: the flush could then drop nothing
// of the series). truncateFlushed makes the rebuilds that waited in the
// series it took; any other series makes its own at its next
// out-of-order cut.
func (h *Head) startFlush() { h.opts.flushing.Store(true) }

// endFlush ends what startFlush began. A flush that failed drops nothing;
// it makes the rebuilds that waited in the series it took.
func (h *Head) endFlush(items []flushItem, failed bool) {
	h.opts.flushing.Store(false)
	if !failed {
		return
	}
	var cost int64
	for i := range items {
		s := items[i].s
		s.mtx.Lock()
		cost += h.rebuildIfDueLocked(s)
		s.mtx.Unlock()
	}
	h.inHeadCost.Add(cost)
}

// keptChunkList is the largest capacity of a chunk list that dropPrefix
// keeps when it empties it: a series written between flushes has one or
// two chunks at each (its sealed open chunk, and a chunk cut at
// ChunkSamples), and a list of one would be allocated again at the next
// seal; a larger one (a series that held hours, after a restart) goes.
const keptChunkList = 4

// dropPrefix removes the first n chunks of list if list still starts with
// what the flush saw (its n-th chunk is last), and returns the number of
// samples removed and their cost (memChunk.cost()).
func dropPrefix(list []*memChunk, n int, last *memChunk) ([]*memChunk, int64, int64) {
	if n == 0 || len(list) < n || list[n-1] != last {
		return list, 0, 0
	}
	var samples, cost int64
	for _, c := range list[:n] {
		samples += int64(c.chunk.NumSamples())
		cost += c.cost()
	}
	if len(list) == n {
		if cap(list) <= keptChunkList {
			// The series' next seal appends to it again.
			clear(list)
			return list[:0], samples, cost
		}
		return nil, samples, cost
	}
	rest := make([]*memChunk, len(list)-n)
	copy(rest, list[n:])
	return rest, samples, cost
}
