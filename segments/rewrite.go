package segments

import (
	"context"
	"errors"
	"fmt"
)

// Rewrite writes under parent, as segment id, a copy of seg without the
// samples that ts hide: what a compaction of seg alone writes (the same
// sources and Seq, one level higher, so the copy replaces seg wherever
// both are found), in seg's format. ok is false, and nothing is written,
// when ts hide all of seg. Only raw segments are rewritten: a rollup keeps
// its tombstones, applied at read time. opts gives the chunk lengths (zero
// fields: DefaultCompactOptions).
func Rewrite(ctx context.Context, parent string, seg *Segment, ts []Tombstone, id string, opts CompactOptions) (meta Meta, ok bool, err error) {
	m := seg.Meta()
	if m.Resolution != 0 {
		return Meta{}, false, errors.New("rewrite: a rollup segment is not rewritten")
	}
	d := DefaultCompactOptions()
	if len(opts.Ranges) == 0 {
		opts.Ranges = d.Ranges
	}
	if opts.ChunkSamples == 0 {
		opts.ChunkSamples = d.ChunkSamples
	}
	if opts.WideChunkSamples == 0 {
		opts.WideChunkSamples = d.WideChunkSamples
	}
	out := Meta{ID: id, Seq: m.Seq, Compaction: CompactionMeta{Level: m.Compaction.Level + 1, Sources: m.Compaction.Sources}}
	if len(out.Compaction.Sources) == 0 {
		out.Compaction.Sources = []string{m.ID}
	}
	wopts := DefaultWriterOptions()
	wopts.Compress = m.Version == FormatVersionCompressed || m.Version == FormatVersionCompressedStats
	wopts.NoStats = m.Version == FormatVersionPlain || m.Version == FormatVersionCompressed
	chunkSamples := opts.ChunkSamples
	if alignDown(m.MinTime, opts.Ranges[0]) != alignDown(m.MaxTime, opts.Ranges[0]) {
		chunkSamples = opts.WideChunkSamples
	}
	w, err := NewWriterWithOptions(parent, out, wopts)
	if err != nil {
		return Meta{}, false, fmt.Errorf("rewrite %s: %w", m.ID, err)
	}
	if err := writeMerged(ctx, w, []*Segment{seg}, chunkSamples, func(string) []Tombstone { return ts }); err != nil {
		_ = w.Abort()
		return Meta{}, false, fmt.Errorf("rewrite %s: %w", m.ID, err)
	}
	if w.numSeries() == 0 {
		return Meta{}, false, w.Abort()
	}
	meta, err = w.Close()
	if err != nil {
		return Meta{}, false, fmt.Errorf("rewrite %s: %w", m.ID, err)
	}
	return meta, true, nil
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
