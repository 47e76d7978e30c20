package buffer

import (
	"context"
	"maps"
	"slices"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/strata-tsdb/strata/segments"
)

// Series is one series read from the head: its labels and a consistent
// copy of its samples in the range it was selected for (Select), or the
// series itself, copied by each Iterator call (SelectLazy).
type Series struct {
	Labels     labels.Labels
	snap       *snapshot    // nil: copied from s by Iterator
	s          *memSeries   // for SelectLazy
	syms       *symbolTable // for SelectRefs: s's labels are read through it
	mint, maxt int64
}

// Iterator returns a new iterator over the series' samples in time order,
// the last write winning for equal timestamps. It may be called any number
// of times and concurrently. For a series from SelectLazy each call reads
// the samples in the head at the time of the call.
func (s Series) Iterator() chunkenc.Iterator {
	snap := s.snap
	if snap == nil {
		s.s.mtx.Lock()
		snap = s.s.snapshotLocked(s.mint, s.maxt)
		s.s.mtx.Unlock()
	}
	return segments.NewBoundedIterator(snap.iterator(), s.mint, s.maxt)
}

// SeriesBytes is about what one series returned by SelectLazy or
// SelectRefs holds in memory besides its labels (LabelsSize() more once
// made: the head keeps label sets in a compact form, and a selection makes
// each a labels.Labels).
const SeriesBytes = 64

// SelectLazy is Select that copies no samples: each series refers to the
// head's series, and its Iterator copies what it reads when called. A
// selection costs SeriesBytes and its labels per series, whatever the
// series hold, and listing labels (Labels only) never touches a chunk. The head may drop
// flushed data before an Iterator call unless the caller registered its
// read with StartRead.
func (h *Head) SelectLazy(ctx context.Context, mint, maxt int64, ms ...*labels.Matcher) ([]Series, error) {
	out, err := h.SelectRefs(ctx, mint, maxt, ms...)
	if err != nil {
		return nil, err
	}
	for i := range out {
		out[i].MakeLabels()
	}
	return out, nil
}

// SelectRefs is SelectLazy without the labels: a series' Labels are made
// by MakeLabels, when the caller wants them, and CompareSeries and
// LabelsSize read them where the head keeps them. A caller that walks the
// series in order, keeping one at a time (a listing), then holds
// SeriesBytes per series and one label set.
func (h *Head) SelectRefs(ctx context.Context, mint, maxt int64, ms ...*labels.Matcher) ([]Series, error) {
	refs := h.index.postingsForMatchers(ms...)
	out := make([]Series, 0, len(refs)) // one allocation, not a doubling slice
	err := h.forEachRef(ctx, refs, mint, maxt, func(s *memSeries) {
		out = append(out, Series{s: s, syms: h.syms, mint: mint, maxt: maxt})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// MakeLabels sets and returns s.Labels, made from the head's compact form
// for a series of SelectRefs that has none yet (a new labels.Labels).
func (s *Series) MakeLabels() labels.Labels {
	if s.Labels.IsEmpty() && s.s != nil && s.syms != nil {
		sb := labels.NewScratchBuilder(0) // used only where labels.Labels is not its encoding
		s.Labels = s.syms.labels(s.s.lset, &sb)
	}
	return s.Labels
}

// CompareSeries orders series of SelectRefs or SelectLazy as
// labels.Compare orders their labels, without making them.
func CompareSeries(a, b Series) int {
	if a.syms == nil || b.syms == nil || a.syms != b.syms {
		return labels.Compare(a.MakeLabels(), b.MakeLabels())
	}
	return a.syms.compare(a.s.lset, b.s.lset)
}

// LabelsSize is about the memory s's labels take once made
// (Labels.ByteSize()), without making them.
func (s Series) LabelsSize() int {
	if s.syms == nil || s.s == nil {
		return int(s.Labels.ByteSize())
	}
	return s.syms.dataLen(s.s.lset)
}

// forEachMatching calls fn, with the series lock held, for every series
// matching ms that has data in [mint, maxt].
func (h *Head) forEachMatching(ctx context.Context, mint, maxt int64, ms []*labels.Matcher, fn func(*memSeries)) error {
	return h.forEachRef(ctx, h.index.postingsForMatchers(ms...), mint, maxt, fn)
}

// forEachRef calls fn, with the series lock held, for every series of refs
// that has data in [mint, maxt].
func (h *Head) forEachRef(ctx context.Context, refs []uint64, mint, maxt int64, fn func(*memSeries)) error {
	for i, ref := range refs {
		if i%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		s := h.series.getByRef(ref)
		if s == nil {
			continue
		}
		s.mtx.Lock()
		if s.hasDataLocked(mint, maxt) {
			fn(s)
		}
		s.mtx.Unlock()
	}
	return nil
}

// Select returns the series matching all matchers that have samples in
// [mint, maxt], sorted by labels when sorted is true. The returned data is a
// snapshot: later writes do not change it.
func (h *Head) Select(ctx context.Context, sorted bool, mint, maxt int64, ms ...*labels.Matcher) ([]Series, error) {
	var out []Series
	sb := labels.NewScratchBuilder(16)
	err := h.forEachMatching(ctx, mint, maxt, ms, func(s *memSeries) {
		out = append(out, Series{Labels: h.syms.labels(s.lset, &sb), snap: s.snapshotLocked(mint, maxt), mint: mint, maxt: maxt})
	})
	if err != nil {
		return nil, err
	}
	if sorted {
		slices.SortFunc(out, func(a, b Series) int { return labels.Compare(a.Labels, b.Labels) })
	}
	return out, nil
}

// LabelNames returns the sorted label names of series matching ms that have
// data in [mint, maxt]; with no matchers, all label names in the head.
func (h *Head) LabelNames(ctx context.Context, mint, maxt int64, ms ...*labels.Matcher) ([]string, error) {
	if len(ms) == 0 {
		return h.index.labelNames(), nil
	}
	set := map[string]struct{}{}
	err := h.forEachMatching(ctx, mint, maxt, ms, func(s *memSeries) {
		h.syms.rangeLabels(s.lset, func(name, _ string) { set[name] = struct{}{} })
	})
	if err != nil {
		return nil, err
	}
	return slices.Sorted(maps.Keys(set)), nil
}

// LabelValues returns the sorted values of label name over series matching
// ms that have data in [mint, maxt]; with no matchers, all values in the head.
func (h *Head) LabelValues(ctx context.Context, name string, mint, maxt int64, ms ...*labels.Matcher) ([]string, error) {
	return h.LabelValuesLimit(ctx, name, 0, mint, maxt, ms...)
}

// LabelValuesLimit is LabelValues returning only the limit smallest values
// (all when limit <= 0), in memory proportional to limit rather than to the
// number of values.
func (h *Head) LabelValuesLimit(ctx context.Context, name string, limit int, mint, maxt int64, ms ...*labels.Matcher) ([]string, error) {
	if len(ms) == 0 {
		return h.index.labelValues(name, limit), nil
	}
	vals := segments.NewSmallest(limit)
	err := h.forEachMatching(ctx, mint, maxt, ms, func(s *memSeries) {
		if v := h.syms.get(s.lset, name); v != "" {
			vals.Add(v)
		}
	})
	if err != nil {
		return nil, err
	}
	return vals.Sorted(), nil
}
