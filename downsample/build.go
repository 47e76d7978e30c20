package downsample

import (
	"context"
	"errors"
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

// cursor walks the series of one segment in label order.
type cursor struct {
	seg   *segments.Segment
	it    segments.SeriesIterator
	ok    bool
	tombs []segments.Tombstone
}

func newCursor(set *segments.Set, seg *segments.Segment) (*cursor, error) {
	it, err := seg.Select()
	if err != nil {
		return nil, err
	}
	c := &cursor{seg: seg, it: it, tombs: set.Tombstones(seg.Meta().ID)}
	return c, c.next()
}

func (c *cursor) next() error {
	c.ok = c.it.Next()
	return c.it.Err()
}

// at reports whether c is positioned on lset.
func (c *cursor) at(lset labels.Labels) bool {
	return c.ok && labels.Compare(c.it.Labels(), lset) == 0
}

// deleted returns the ranges the segment's tombstones hide in lset.
func (c *cursor) deleted(lset labels.Labels) [][2]int64 {
	return segments.DeletedRanges(c.tombs, lset)
}

// smallest returns the smallest label set among the cursors.
func smallest(curs []*cursor) (labels.Labels, bool) {
	var (
		lset  labels.Labels
		found bool
	)
	for _, c := range curs {
		if c.ok && (!found || labels.Compare(c.it.Labels(), lset) < 0) {
			lset, found = c.it.Labels(), true
		}
	}
	return lset, found
}

// kindIterator returns an iterator over the chunks of one kind among metas
// that overlap [mint, maxt], or nil if there are none.
func kindIterator(seg *segments.Segment, metas []segments.ChunkMeta, kind segments.ChunkKind, mint, maxt int64) (chunkenc.Iterator, error) {
	var (
		chunks []chunkenc.Chunk
		maxTs  []int64
	)
	for _, m := range metas {
		if m.Kind != kind || m.MaxTime < mint || m.MinTime > maxt {
			continue
		}
		c, err := seg.ReadChunk(m.Ref)
		if err != nil {
			return nil, err
		}
		chunks = append(chunks, c)
		maxTs = append(maxTs, m.MaxTime)
	}
	if len(chunks) == 0 {
		return nil, nil
	}
	return segments.NewChainIterator(chunks, maxTs), nil
}

// lastCounter returns the last counter sample of a rollup series.
func lastCounter(c *cursor, lset labels.Labels) (t int64, v float64, ok bool, err error) {
	it, err := kindIterator(c.seg, c.it.Chunks(), segments.KindCounter, minTime, maxTime)
	if err != nil || it == nil {
		return 0, 0, false, err
	}
	it = segments.NewDeletedIterator(it, c.deleted(lset))
	for it.Next() == chunkenc.ValFloat {
		t, v = it.At()
		ok = true
	}
	return t, v, ok, it.Err()
}

// build5m writes the 5m rollup of window w from every raw segment that
// overlaps it, continuing the counters of the rollup prevID of the window
// before (if not empty). ok is false when there was nothing to read (the
// raw segments went away meanwhile).
func (d *Downsampler) build5m(ctx context.Context, w int64, prevID string, old *rollupInfo, now time.Time) (segments.Meta, bool, error) {
	lo := w + 1
	if prevID != "" {
		lo = w - Window + 1
	}
	segs, release := d.set.Acquire(lo, w+Window)
	defer release()

	var (
		raws    []*segments.Segment // in ID order: later ones win
		prevSeg *segments.Segment
		srcs    []string
	)
	for _, s := range segs {
		m := s.Meta()
		switch {
		case m.Resolution == 0:
			raws = append(raws, s)
			if overlaps(m, w+1, w+Window) {
				srcs = append(srcs, rawSources(m)...)
			}
		case m.ID == prevID:
			prevSeg = s
		}
	}
	if len(srcs) == 0 {
		return segments.Meta{}, false, nil
	}
	slices.Sort(srcs)
	lin := lineage{raw: slices.Compact(srcs)}
	if prevSeg != nil {
		lin.link = prevID
	}

	rawCurs := make([]*cursor, 0, len(raws))
	for _, s := range raws {
		c, err := newCursor(d.set, s)
		if err != nil {
			return segments.Meta{}, false, err
		}
		rawCurs = append(rawCurs, c)
	}
	var prevCur *cursor
	if prevSeg != nil {
		var err error
		if prevCur, err = newCursor(d.set, prevSeg); err != nil {
			return segments.Meta{}, false, err
		}
	}

	meta := d.rollupMeta(Res5m, w, lin, old, now)
	wr, err := segments.NewWriterWithOptions(d.set.Dir(), meta, rollupWriterOptions())
	if err != nil {
		return segments.Meta{}, false, err
	}
	if err := d.write5m(ctx, wr, w, rawCurs, prevCur); err != nil {
		_ = wr.Abort()
		return segments.Meta{}, false, err
	}
	out, err := wr.Close()
	return out, err == nil, err
}

func (d *Downsampler) write5m(ctx context.Context, wr *segments.Writer, w int64, rawCurs []*cursor, prevCur *cursor) error {
	agg := newRawAggregator(Res5m)
	all := rawCurs
	if prevCur != nil {
		all = append(slices.Clip(rawCurs), prevCur)
	}
	var its []chunkenc.Iterator
	for n := 0; ; n++ {
		if n%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		lset, ok := smallest(all)
		if !ok {
			return nil
		}
		var cr *carry
		if prevCur != nil && prevCur.at(lset) {
			t, v, ok, err := lastCounter(prevCur, lset)
			if err != nil {
				return err
			}
			if ok && !math.IsNaN(v) {
				cr = &carry{from: w, t: t, adj: v}
			}
			if err := prevCur.next(); err != nil {
				return err
			}
		}
		lo := w + 1
		if cr != nil {
			// The raw samples of the bucket the carried value stands for.
			lo = max(cr.t-Res5m+1, w-Window+1)
		}
		its = its[:0]
		for _, c := range rawCurs {
			if !c.at(lset) {
				continue
			}
			it, err := kindIterator(c.seg, c.it.Chunks(), segments.KindRaw, lo, w+Window)
			if err != nil {
				return err
			}
			if it != nil {
				its = append(its, segments.NewDeletedIterator(it, c.deleted(lset)))
			}
			if err := c.next(); err != nil {
				return err
			}
		}
		if len(its) == 0 {
			continue
		}
		it := segments.NewBoundedIterator(segments.NewMergeIterator(its), lo, w+Window)
		chunks, err := agg.run(it, cr)
		if errors.Is(err, errHistogramSeries) {
			// Rollups hold floats: a series with native histograms is
			// left out whole, and queries that may read it read raw data.
			continue
		}
		if err != nil {
			return fmt.Errorf("series %s: %w", lset, err)
		}
		if len(chunks) == 0 {
			continue
		}
		if err := wr.AddSeries(lset, chunks); err != nil {
			return err
		}
	}
}

// build1h writes the 1h rollup of window w from the 5m rollup srcID. ok is
// false when that rollup went away meanwhile.
func (d *Downsampler) build1h(ctx context.Context, w int64, srcID string, old *rollupInfo, now time.Time) (segments.Meta, bool, error) {
	segs, release := d.set.Acquire(w+1, w+Window)
	defer release()
	i := slices.IndexFunc(segs, func(s *segments.Segment) bool { return s.Meta().ID == srcID })
	if i < 0 {
		return segments.Meta{}, false, nil
	}
	src, err := newCursor(d.set, segs[i])
	if err != nil {
		return segments.Meta{}, false, err
	}
	meta := d.rollupMeta(Res1h, w, lineage{link: srcID}, old, now)
	wr, err := segments.NewWriterWithOptions(d.set.Dir(), meta, rollupWriterOptions())
	if err != nil {
		return segments.Meta{}, false, err
	}
	if err := d.write1h(ctx, wr, src); err != nil {
		_ = wr.Abort()
		return segments.Meta{}, false, err
	}
	out, err := wr.Close()
	return out, err == nil, err
}

func (d *Downsampler) write1h(ctx context.Context, wr *segments.Writer, src *cursor) error {
	for n := 0; src.ok; n++ {
		if n%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		lset := src.it.Labels()
		metas := src.it.Chunks() // a fresh slice per series
		for i := range metas {
			c, err := src.seg.ReadChunk(metas[i].Ref)
			if err != nil {
				return err
			}
			metas[i].Chunk = c
		}
		chunks, err := aggregateRollup(metas, Res1h, src.deleted(lset))
		if err != nil {
			return fmt.Errorf("series %s: %w", lset, err)
		}
		if len(chunks) > 0 {
			if err := wr.AddSeries(lset, chunks); err != nil {
				return err
			}
		}
		if err := src.next(); err != nil {
			return err
		}
	}
	return nil
}

// rollupMeta returns the meta of a rollup of res for window w built from
// lin, in place of old when not nil.
func (d *Downsampler) rollupMeta(res, w int64, lin lineage, old *rollupInfo, now time.Time) segments.Meta {
	srcs := lin.sources()
	hashed := srcs
	if old != nil {
		// A rollup rebuilt for a delete has the lineage of the one it
		// replaces: the replaced ID keeps their IDs apart.
		hashed = append(slices.Clip(srcs), "replaces"+lineageSep+old.meta.ID)
	}
	return segments.Meta{
		ID:         rollupID(now, res, w, hashed),
		MinTime:    w + 1,
		MaxTime:    w + Window,
		Resolution: res,
		Compaction: segments.CompactionMeta{Level: 1, Sources: srcs},
	}
}

// discard removes a rollup written but not published. It is renamed first
// so that a crash midway leaves a temporary directory, which OpenAll
// removes, rather than a damaged segment.
func discard(parent, id string) {
	dir := filepath.Join(parent, id)
	tmp := dir + ".tmp-discard"
	if err := os.Rename(dir, tmp); err == nil {
		_ = os.RemoveAll(tmp)
	}
}

// rollupWriterOptions are the options rollup segments are written with. A
// rollup covers a day, as a day-compacted raw segment does, and is written
// once and read for weeks: it is compressed (format version 2, zstd pages
// read through the set's page cache) as day segments are.
func rollupWriterOptions() segments.WriterOptions {
	o := segments.DefaultWriterOptions()
	o.Compress = true
	return o
}
