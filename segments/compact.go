package segments

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
)

// CompactOptions configures a Compactor.
type CompactOptions struct {
	// Ranges are the aligned windows, in milliseconds and ascending, that
	// raw segments are merged into: the first is the flush block duration
	// (overlapping segments of one block become one), each next one merges
	// whole windows of the previous once they are over. Empty means
	// [2h, 24h].
	Ranges []int64
	// ChunkSamples is the most samples in a chunk written by compaction
	// into a segment of one Ranges[0] window. Zero means 120.
	ChunkSamples int
	// WideChunkSamples is the most samples in a chunk of a segment
	// compacted over more than one Ranges[0] window (a day segment): longer
	// chunks repeat their 16-byte start (first timestamp and value) and
	// their index entry less often. Zero means 360; at most 65535 (a
	// chunk's sample count is 16 bits).
	WideChunkSamples int
	// Uncompressed writes wide segments in format version 1, as flushed
	// segments are; false (the default) writes them compressed (version 2,
	// WriterOptions.Compress).
	Uncompressed bool
}

// DefaultCompactOptions returns the options used for fields left zero.
func DefaultCompactOptions() CompactOptions {
	return CompactOptions{
		Ranges:           []int64{(2 * time.Hour).Milliseconds(), (24 * time.Hour).Milliseconds()},
		ChunkSamples:     120,
		WideChunkSamples: 360,
	}
}

// Validate reports the first option that is out of range.
func (o CompactOptions) Validate() error {
	for i, r := range o.Ranges {
		if r <= 0 {
			return fmt.Errorf("compaction range %d must be positive", r)
		}
		if i > 0 && r%o.Ranges[i-1] != 0 {
			return fmt.Errorf("compaction range %d must be a multiple of %d", r, o.Ranges[i-1])
		}
	}
	if o.ChunkSamples < 0 || o.ChunkSamples > math.MaxUint16 || o.WideChunkSamples < 0 || o.WideChunkSamples > math.MaxUint16 {
		return fmt.Errorf("chunk samples must be within [0, %d]", math.MaxUint16)
	}
	return nil
}

// Compactor merges raw segments of the same window into one: several
// segments flushed for one block (late data), then whole blocks into larger
// windows. Of samples with the same timestamp, the one from the segment
// written later (WriteOrder: the greater Seq) wins. It must not run
// concurrently with anything else that adds segments to its set: the
// output takes the greatest Seq of its inputs, which is right only while
// every segment of its window is among them.
type Compactor struct {
	logger *slog.Logger
	set    *Set
	opts   CompactOptions

	compactions, failures prometheus.Counter
	duration              prometheus.Histogram
}

// withDefaults returns o with DefaultCompactOptions' value for each of
// Ranges, ChunkSamples and WideChunkSamples left unset.
func (o CompactOptions) withDefaults() CompactOptions {
	d := DefaultCompactOptions()
	if len(o.Ranges) == 0 {
		o.Ranges = d.Ranges
	}
	if o.ChunkSamples == 0 {
		o.ChunkSamples = d.ChunkSamples
	}
	if o.WideChunkSamples == 0 {
		o.WideChunkSamples = d.WideChunkSamples
	}
	return o
}

// NewCompactor returns a compactor for set. Metrics are registered with reg
// when it is not nil.
func NewCompactor(logger *slog.Logger, set *Set, opts CompactOptions, reg prometheus.Registerer) (*Compactor, error) {
	opts = opts.withDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	c := &Compactor{
		logger:      logger,
		set:         set,
		opts:        opts,
		compactions: prometheus.NewCounter(prometheus.CounterOpts{Name: "strata_compactions_total", Help: "Segment compactions done."}),
		failures:    prometheus.NewCounter(prometheus.CounterOpts{Name: "strata_compaction_failures_total", Help: "Segment compactions that failed."}),
		duration:    prometheus.NewHistogram(prometheus.HistogramOpts{Name: "strata_compaction_duration_seconds", Help: "Time taken by one compaction.", Buckets: prometheus.ExponentialBuckets(0.01, 2, 14)}),
	}
	if reg != nil {
		reg.MustRegister(c.compactions, c.failures, c.duration)
	}
	return c, nil
}

// Compact runs compactions until none is due, and returns how many it ran.
func (c *Compactor) Compact(ctx context.Context) (int, error) {
	n := 0
	for range 10_000 { // a bound: each round removes at least one segment
		group := c.plan()
		if len(group) == 0 {
			return n, nil
		}
		start := time.Now()
		if err := c.merge(ctx, group); err != nil {
			c.failures.Inc()
			return n, err
		}
		c.duration.Observe(time.Since(start).Seconds())
		c.compactions.Inc()
		n++
	}
	return n, nil
}

// plan returns the IDs of the segments to merge next, or nil. A segment
// with tombstones is rewritten (with the rest of its block, if it fits one)
// so that deleted data leaves the disk.
func (c *Compactor) plan() []string {
	infos := c.set.Segments()
	var newest int64
	for _, in := range infos {
		newest = max(newest, in.Meta.MaxTime)
	}
	for _, in := range infos {
		if in.Meta.NumSeries == 0 || len(c.set.Tombstones(in.Meta.ID)) == 0 {
			continue // an empty segment has nothing a tombstone could hide
		}
		m, r := in.Meta, c.opts.Ranges[0]
		if m.Resolution != 0 {
			continue // rollups keep their tombstones, applied at read time
		}
		w := alignDown(m.MinTime, r)
		if alignDown(m.MaxTime, r) != w {
			return []string{m.ID}
		}
		var group []string
		for _, o := range infos {
			if o.Meta.Resolution == 0 && alignDown(o.Meta.MinTime, r) == w && alignDown(o.Meta.MaxTime, r) == w {
				group = append(group, o.Meta.ID)
			}
		}
		return group
	}
	for i, r := range c.opts.Ranges {
		windows := map[int64][]string{}
		var order []int64
		for _, in := range infos {
			m := in.Meta
			if m.Resolution != 0 {
				continue
			}
			w := alignDown(m.MinTime, r)
			if alignDown(m.MaxTime, r) != w {
				continue
			}
			if _, ok := windows[w]; !ok {
				order = append(order, w)
			}
			windows[w] = append(windows[w], m.ID)
		}
		slices.Sort(order)
		for _, w := range order {
			ids := windows[w]
			if len(ids) < 2 {
				continue
			}
			// Larger windows wait until they are over, so a day is merged
			// once rather than again with every new block.
			if i > 0 && w+r > newest-c.opts.Ranges[0] {
				continue
			}
			return ids
		}
	}
	return nil
}

func alignDown(t, r int64) int64 {
	if t >= 0 {
		return t - t%r
	}
	return -((-t + r - 1) / r * r)
}

// merge writes one segment holding the data of the segments ids and
// replaces them with it.
func (c *Compactor) merge(ctx context.Context, ids []string) error {
	all, releaseAll := c.set.Acquire(minInt64, maxInt64)
	released := false
	release := func() {
		if !released {
			released = true
			releaseAll()
		}
	}
	defer release()
	var segs []*Segment // in write order (WriteOrder): later segments win
	for _, s := range all {
		if slices.Contains(ids, s.meta.ID) {
			segs = append(segs, s)
		}
	}
	if len(segs) != len(ids) {
		return fmt.Errorf("compact: %d of %d segments are gone", len(ids)-len(segs), len(ids))
	}
	// The output holds the newest write of its inputs, and a window's
	// segments are all merged at once, so no segment outside the group
	// falls between its inputs in write order (Merge's Seq is right).
	out, err := mergeInto(ctx, c.set.Dir(), segs, c.set.Tombstones, "", c.opts, nil)
	if err != nil {
		return fmt.Errorf("compact %v: %w", ids, err)
	}
	release() // Replace deletes the inputs once nothing reads them.
	if err := c.set.Replace(ids, []Meta{out}); err != nil {
		return fmt.Errorf("compact: %w", err)
	}
	c.logger.Info("compacted segments", "inputs", len(ids), "output", out.ID, "level", out.Compaction.Level,
		"series", out.NumSeries, "samples", out.NumSamples, "min_time", out.MinTime, "max_time", out.MaxTime)
	return nil
}

const (
	minInt64 = -1 << 63
	maxInt64 = 1<<63 - 1
)

// cursor walks one input segment's series.
type cursor struct {
	seg *Segment
	it  SeriesIterator
	ok  bool
}

// writeMerged writes into w the series of segs merged, without the samples
// that tombs (by segment ID) hide, in chunks of at most chunkSamples.
func writeMerged(ctx context.Context, w *Writer, segs []*Segment, chunkSamples int, tombs func(id string) []Tombstone) error {
	curs := make([]*cursor, len(segs))
	for i, s := range segs {
		it, err := s.Select()
		if err != nil {
			return err
		}
		curs[i] = &cursor{seg: s, it: it, ok: it.Next()}
		if err := it.Err(); err != nil {
			return err
		}
	}
	enc := newChunkEncoder(chunkSamples)
	for n := 0; ; n++ {
		if n%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		// The smallest label set among the cursors, and every cursor on it.
		var (
			lset  labels.Labels
			found bool
		)
		for _, cu := range curs {
			if cu.ok && (!found || labels.Compare(cu.it.Labels(), lset) < 0) {
				lset, found = cu.it.Labels(), true
			}
		}
		if !found {
			return nil
		}
		var its []chunkenc.Iterator
		for _, cu := range curs {
			if !cu.ok || labels.Compare(cu.it.Labels(), lset) != 0 {
				continue
			}
			it, err := rawIterator(cu.seg, cu.it.Chunks())
			if err != nil {
				return err
			}
			if it != nil {
				its = append(its, NewDeletedIterator(it, DeletedRanges(tombs(cu.seg.meta.ID), lset)))
			}
			cu.ok = cu.it.Next()
			if err := cu.it.Err(); err != nil {
				return err
			}
		}
		chunks, err := enc.encode(NewMergeIterator(its))
		if err != nil {
			return fmt.Errorf("merge series %s: %w", lset, err)
		}
		if len(chunks) == 0 {
			continue
		}
		if err := w.AddSeries(lset, chunks); err != nil {
			return err
		}
	}
}

// rawIterator returns an iterator over a series' raw chunks in a segment,
// or nil if it has none.
func rawIterator(s *Segment, metas []ChunkMeta) (chunkenc.Iterator, error) {
	return s.KindIterator(metas, KindRaw)
}

// KindIterator returns an iterator over the chunks of one kind among a
// series' metas (as Select returns them, sorted by kind and time), or nil
// if there are none. The chunks are read, and their checksums verified, now;
// the iterator reads the mapping and must not outlive the segment's
// Acquire.
func (s *Segment) KindIterator(metas []ChunkMeta, kind ChunkKind) (chunkenc.Iterator, error) {
	var (
		chunks []chunkenc.Chunk
		maxTs  []int64
	)
	for _, m := range metas {
		if m.Kind != kind {
			continue
		}
		ch, err := s.ReadChunk(m.Ref)
		if err != nil {
			return nil, err
		}
		chunks = append(chunks, ch)
		maxTs = append(maxTs, m.MaxTime)
	}
	if len(chunks) == 0 {
		return nil, nil
	}
	return NewChainIterator(chunks, maxTs), nil
}

// chunkEncoder re-encodes a sample stream into chunks: XOR for floats,
// histogram chunks for native histograms.
type chunkEncoder struct{ max int }

func newChunkEncoder(max int) *chunkEncoder { return &chunkEncoder{max: max} }

func (e *chunkEncoder) encode(it chunkenc.Iterator) ([]ChunkMeta, error) {
	var (
		out        []ChunkMeta
		cur        chunkenc.Chunk
		app, prev  chunkenc.Appender
		mint, maxt int64
	)
	flush := func() {
		if cur != nil {
			cur.Compact()
			out = append(out, ChunkMeta{Kind: KindRaw, MinTime: mint, MaxTime: maxt, Chunk: cur})
			cur = nil
		}
	}
	for vt := it.Next(); vt != chunkenc.ValNone; vt = it.Next() {
		x := ReadSample(it, vt, nil, nil)
		// A chunk also ends on the hour (RunGrid), so that the chunks of
		// a day segment start on the hour whatever sample a series starts
		// its day with: an hourly window then covers whole chunks and
		// the first sample of the next, which statistics answer.
		if cur != nil && (ChunkFull(cur, e.max) || floorDiv(x.T, RunGrid) != floorDiv(mint, RunGrid)) {
			flush()
			prev = app
		}
		next, nextApp, cut := AppendSample(cur, app, prev, &x)
		prev = nil
		if cut {
			flush()
			mint = x.T
		}
		cur, app, maxt = next, nextApp, x.T
	}
	flush()
	return out, it.Err()
}

// floorDiv is a / b rounded down.
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

// numSeries returns how many series the writer holds so far.
func (w *Writer) numSeries() int { return len(w.series) }
