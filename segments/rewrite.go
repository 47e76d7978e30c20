package segments

import (
	"context"
	"errors"
	"fmt"
	"slices"
)

// Rewrite writes under parent, as segment id, a copy of seg without the
// samples that ts hide: what a compaction of seg alone writes (the same
// sources and Seq, one level higher, so the copy replaces seg wherever
// both are found), in seg's format; when ts hide all of seg, an empty
// segment (see Merge). Only raw segments are rewritten: a rollup keeps its
// tombstones, applied at read time. opts gives the chunk lengths (zero
// fields: DefaultCompactOptions).
func Rewrite(ctx context.Context, parent string, seg *Segment, ts []Tombstone, id string, opts CompactOptions) (Meta, error) {
	m := seg.Meta()
	wopts := DefaultWriterOptions()
	wopts.Compress = m.Compressed()
	wopts.NoStats = m.Version == FormatVersionPlain || m.Version == FormatVersionCompressed
	wopts.NoRuns = m.Version == FormatVersionStats || m.Version == FormatVersionCompressedStats // version 5 is rewritten as 6
	return mergeInto(ctx, parent, []*Segment{seg}, func(string) []Tombstone { return ts }, id, opts, &wopts)
}

// Merge writes under parent, as segment id, the raw segments segs (in
// write order: of equal timestamps the later segment's sample wins)
// merged into one, without what tombs (by segment ID; nil: none) hide, as
// the compactor merges a window: the union of their sources, one level
// above the highest, the greatest Seq, so the output replaces each of
// them wherever both are found. That Seq is right only when no other
// segment of their time falls between them in write order: the caller
// makes sure.
//
// When nothing is left, the output is an empty segment over the inputs'
// time that still lists their sources: a rollup built from them judges
// its raw data complete by finding every source it was built from
// (downsample.CheckFreshness), and data deleted is not data gone, so later
// writes and deletes in its day are still rolled up again.
func Merge(ctx context.Context, parent string, segs []*Segment, tombs func(id string) []Tombstone, id string, opts CompactOptions) (Meta, error) {
	if tombs == nil {
		tombs = func(string) []Tombstone { return nil }
	}
	return mergeInto(ctx, parent, segs, tombs, id, opts, nil)
}

// mergeInto is Merge; wopts, when not nil, sets the output's format (else:
// the compactor's choice). An empty id is a new one.
func mergeInto(ctx context.Context, parent string, segs []*Segment, tombs func(id string) []Tombstone, id string, opts CompactOptions, wopts *WriterOptions) (Meta, error) {
	if len(segs) == 0 {
		return Meta{}, errors.New("merge: no segments")
	}
	opts = opts.withDefaults()
	out := Meta{ID: id}
	mint, maxt := segs[0].meta.MinTime, segs[0].meta.MaxTime
	for _, s := range segs {
		m := s.Meta()
		if m.Resolution != 0 {
			return Meta{}, fmt.Errorf("merge %s: a rollup segment is not rewritten", m.ID)
		}
		out.Compaction.Level = max(out.Compaction.Level, m.Compaction.Level+1)
		sources := m.Compaction.Sources
		if len(sources) == 0 {
			sources = []string{m.ID}
		}
		out.Compaction.Sources = append(out.Compaction.Sources, sources...)
		out.Seq = max(out.Seq, m.Seq)
		mint, maxt = min(mint, m.MinTime), max(maxt, m.MaxTime)
	}
	slices.Sort(out.Compaction.Sources)
	out.Compaction.Sources = slices.Compact(out.Compaction.Sources)
	wide := alignDown(mint, opts.Ranges[0]) != alignDown(maxt, opts.Ranges[0])
	chunkSamples := opts.ChunkSamples
	if wide {
		chunkSamples = opts.WideChunkSamples
	}
	if wopts == nil {
		w := DefaultWriterOptions()
		w.Compress = wide && !opts.Uncompressed
		wopts = &w
	}
	w, err := NewWriterWithOptions(parent, out, *wopts)
	if err != nil {
		return Meta{}, fmt.Errorf("merge into %s: %w", id, err)
	}
	if err := writeMerged(ctx, w, segs, chunkSamples, tombs); err != nil {
		_ = w.Abort()
		return Meta{}, fmt.Errorf("merge into %s: %w", w.meta.ID, err)
	}
	if w.numSeries() == 0 {
		_ = w.Abort()
		out.ID, out.MinTime, out.MaxTime = w.meta.ID, mint, maxt
		if w, err = NewWriterWithOptions(parent, out, DefaultWriterOptions()); err != nil {
			return Meta{}, fmt.Errorf("merge into %s: %w", out.ID, err)
		}
	}
	meta, err := w.Close()
	if err != nil {
		return Meta{}, fmt.Errorf("merge into %s: %w", w.meta.ID, err)
	}
	return meta, nil
}

// Hides reports whether ts hide a sample of seg, judged by chunk time
// ranges (a chunk that overlaps a tombstone's range of a series it
// matches counts, though the samples it holds there may be none).
func Hides(seg *Segment, ts []Tombstone) (bool, error) {
	for _, t := range ts {
		if t.MinTime > seg.meta.MaxTime || t.MaxTime < seg.meta.MinTime {
			continue
		}
		it, err := seg.Select(t.Matchers...)
		if err != nil {
			return false, err
		}
		for it.Next() {
			for _, c := range it.Chunks() {
				if c.MinTime <= t.MaxTime && c.MaxTime >= t.MinTime {
					return true, nil
				}
			}
		}
		if err := it.Err(); err != nil {
			return false, err
		}
	}
	return false, nil
}
