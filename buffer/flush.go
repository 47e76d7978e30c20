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

// flushItem records what one series held when a flush took its snapshot, so
// that exactly that, and nothing written since, is dropped from the head
// once it is durable in a segment.
type flushItem struct {
	s      *memSeries
	snap   *snapshot
	closed []*memChunk // closed in-order chunks
	head   *memChunk   // the open chunk, with headN samples at the time
	headN  int
	ooo    []*memChunk // out-of-order chunks (the buffer is sealed into one first)
}

// snapshotForFlush captures every series that holds data, sorted by labels.
func (h *Head) snapshotForFlush(ctx context.Context) ([]flushItem, error) {
	var items []flushItem
	var err error
	h.series.forEach(func(s *memSeries) {
		if err != nil {
			return
		}
		if err = ctx.Err(); err != nil {
			return
		}
		s.mtx.Lock()
		defer s.mtx.Unlock()
		h.inHeadCost.Add(s.cutOOOLocked(&h.opts)) // seal the unsorted buffer
		if len(s.chunks) == 0 && s.head == nil && len(s.oooChunks()) == 0 {
			return
		}
		it := flushItem{
			s:      s,
			snap:   s.snapshotLocked(math.MinInt64, math.MaxInt64),
			closed: slices.Clone(s.chunks),
			head:   s.head,
			ooo:    slices.Clone(s.oooChunks()),
		}
		if s.head != nil {
			it.headN = s.head.chunk.NumSamples()
		}
		items = append(items, it)
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(items, func(a, b flushItem) int { return labels.Compare(a.s.lset, b.s.lset) })
	return items, nil
}

// blockSeries is one series' chunks within one block.
type blockSeries struct {
	lset   labels.Labels
	chunks []segments.ChunkMeta
}

// encodeBlocks re-encodes the snapshot into chunks of at most chunkSamples
// samples, grouped by the blockDur-aligned block they fall in.
func encodeBlocks(ctx context.Context, items []flushItem, blockDur int64, chunkSamples int) (map[int64][]blockSeries, error) {
	blocks := map[int64][]blockSeries{}
	for i := range items {
		if i%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		var (
			cur      *memChunk
			app      chunkenc.Appender
			prev     chunkenc.Appender
			curBlock int64
			series   []segments.ChunkMeta
		)
		emit := func(c *memChunk) {
			c.chunk.Compact()
			series = append(series, segments.ChunkMeta{Kind: segments.KindRaw, MinTime: c.minT, MaxTime: c.maxT, Chunk: c.chunk})
		}
		finishBlock := func() {
			if cur != nil {
				emit(cur)
				cur, app = nil, nil
			}
			if len(series) > 0 {
				blocks[curBlock] = append(blocks[curBlock], blockSeries{lset: items[i].s.lset, chunks: series})
				series = nil
			}
		}
		it := items[i].snap.iterator()
		first := true
		for vt := it.Next(); vt != chunkenc.ValNone; vt = it.Next() {
			x := segments.ReadSample(it, vt, nil, nil)
			b := rangeStart(x.T, blockDur)
			if first || b != curBlock {
				finishBlock()
				curBlock, first = b, false
			}
			if cur != nil && segments.ChunkFull(cur.chunk, chunkSamples) {
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
			return nil, fmt.Errorf("read series %s: %w", items[i].s.lset, err)
		}
		finishBlock()
	}
	return blocks, nil
}

// writeBlocks writes one segment per block into the sink's directory and
// returns their metas. Each segment takes the next number of the sink's
// write sequence, which orders it after every segment written before;
// now only names it. On error it removes the segments it wrote: they were
// not published, and the retried flush writes them again.
func writeBlocks(ctx context.Context, sink SegmentSink, blocks map[int64][]blockSeries, now func() time.Time) (metas []segments.Meta, err error) {
	defer func() {
		if err != nil {
			for _, m := range metas {
				_ = os.RemoveAll(filepath.Join(sink.Dir(), m.ID))
			}
			metas = nil
		}
	}()
	starts := make([]int64, 0, len(blocks))
	for b := range blocks {
		starts = append(starts, b)
	}
	slices.Sort(starts)
	for _, b := range starts {
		if err := ctx.Err(); err != nil {
			return metas, err
		}
		seq, err := sink.NextSeq()
		if err != nil {
			return metas, fmt.Errorf("segment for block %d: %w", b, err)
		}
		w, err := segments.NewWriter(sink.Dir(), segments.Meta{ID: segments.NewID(now()), Seq: seq})
		if err != nil {
			return metas, fmt.Errorf("create segment for block %d: %w", b, err)
		}
		for _, bs := range blocks[b] {
			if err := w.AddSeries(bs.lset, bs.chunks); err != nil {
				_ = w.Abort()
				return metas, fmt.Errorf("write segment for block %d: %w", b, err)
			}
		}
		meta, err := w.Close()
		if err != nil {
			return metas, fmt.Errorf("finish segment for block %d: %w", b, err)
		}
		metas = append(metas, meta)
	}
	return metas, nil
}

// truncateFlushed drops from the head what the flush snapshot held and
// returns the number of samples dropped. Data written after the snapshot
// stays: if a chunk changed since (the open chunk grew, or out-of-order
// merging rebuilt the series), it is kept and flushed again next time,
// which readers and compaction resolve as duplicates.
func (h *Head) truncateFlushed(items []flushItem) int64 {
	var dropped, cost int64
	for i := range items {
		it := &items[i]
		s := it.s
		s.mtx.Lock()
		// Closed and out-of-order chunks are only ever appended to, unless a
		// rebuild replaced them all: the snapshot is then no longer a prefix.
		var n, c int64
		s.chunks, n, c = dropPrefix(s.chunks, it.closed)
		dropped += n
		cost += c
		if s.head != nil && s.head == it.head && s.head.chunk.NumSamples() == it.headN {
			dropped += int64(it.headN)
			cost += s.head.cost          // unchanged since the snapshot, as its samples are
			s.head, s.headApp = nil, nil // lastT stays: older samples remain out of order
		}
		if s.ooo != nil {
			s.ooo.chunks, n, c = dropPrefix(s.ooo.chunks, it.ooo)
			dropped += n
			cost += c
			s.dropOOOIfEmptyLocked()
		}
		s.mtx.Unlock()
	}
	h.inHead.Add(-dropped)
	h.inHeadCost.Add(-cost)
	return dropped
}

// dropPrefix removes prefix from list if list still starts with it, and
// returns the number of samples removed and their cost (memChunk.cost).
func dropPrefix(list, prefix []*memChunk) ([]*memChunk, int64, int64) {
	if len(prefix) == 0 || len(list) < len(prefix) || list[0] != prefix[0] || list[len(prefix)-1] != prefix[len(prefix)-1] {
		return list, 0, 0
	}
	var n, cost int64
	for _, c := range prefix {
		n += int64(c.chunk.NumSamples())
		cost += c.cost
	}
	rest := make([]*memChunk, len(list)-len(prefix))
	copy(rest, list[len(prefix):])
	return rest, n, cost
}
