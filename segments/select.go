package segments

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/prometheus/prometheus/model/labels"
)

// SeriesIterator iterates series in label order. It is not safe for
// concurrent use, and must not be used after its segment is closed.
type SeriesIterator interface {
	// Next advances to the next series.
	Next() bool
	// Labels returns the current series' label set (a copy, safe to keep).
	Labels() labels.Labels
	// Chunks returns the current series' chunk metas, sorted by (Kind,
	// MinTime), with Ref set and Chunk nil. The slice is freshly allocated
	// for each series and belongs to the caller.
	Chunks() []ChunkMeta
	// Err returns the error that stopped iteration, if any (a
	// *CorruptionError for damaged bytes).
	Err() error
}

// Select returns the series matching all of ms, in label order. Matchers
// follow Prometheus semantics: a missing label has the empty value, so
// foo="" selects series without foo and foo!="bar" selects series without
// foo too. With no matchers Select returns every series.
func (s *Segment) Select(ms ...*labels.Matcher) (SeriesIterator, error) {
	return s.sel(false, ms)
}

// SelectShared is Select for a query: the label sets and chunk metas the
// iterator gives are shared with the segment set's series cache (and with
// other queries), so the caller must not modify them (filter metas into a
// new slice, not in place). A series read again, by this query or a later
// one, is not decoded again while the cache holds it. Compaction and the
// other jobs that read every series once use Select.
func (s *Segment) SelectShared(ms ...*labels.Matcher) (SeriesIterator, error) {
	return s.sel(true, ms)
}

func (s *Segment) sel(shared bool, ms []*labels.Matcher) (SeriesIterator, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	p, err := s.index.postingsForMatchers(s.context(), ms)
	if err != nil {
		return nil, fmt.Errorf("segment %s: %w", s.dir, err)
	}
	if s.src != nil && s.index.seriesPages != nil {
		refs, err := s.prefetchSeries(p)
		if err != nil {
			return nil, err
		}
		p = &slicePostings{refs: refs, i: -1}
	}
	it := &seriesIterator{ctx: s.context(), dir: s.dir, r: s.index, p: p, b: labels.NewScratchBuilder(8)}
	if shared {
		it.cache = s.index.cache
	}
	if s.index.src != nil {
		// Postings read by range have no checksum of their own: a
		// series they name that the matchers reject is damage, and so
		// may be one that does not decode. Both may be damage on the
		// way or in the Source's cache, so the lists are read once more.
		it.check = ms
		it.reselect = func() ([]uint64, error) {
			sec := s.index.toc[secPostings]
			s.index.src.forget(sec.off, sec.end())
			p, err := s.index.postingsForMatchers(it.ctx, ms)
			if err != nil {
				return nil, fmt.Errorf("segment %s: %w", s.dir, err)
			}
			return s.prefetchSeries(p)
		}
	}
	return it, nil
}

var errNilMatcher = errors.New("nil matcher")

// postingsForMatchers returns the postings of the series matching all of
// ms. The lists it needs are asked for at once from a Source (ctx is
// passed to it), before they are read.
func (r *indexReader) postingsForMatchers(ctx context.Context, ms []*labels.Matcher) (postings, error) {
	var its, nots [][]uint64 // offsets of the lists of each union
	for _, m := range ms {
		if m == nil {
			return nil, errNilMatcher
		}
		if m.Matches("") {
			// m also selects series without the label: subtract the
			// series whose value m rejects.
			if offs := r.postingsForValues(m.Name, m, true); offs != nil {
				nots = append(nots, offs)
			}
			continue
		}
		offs := r.postingsForValues(m.Name, m, false)
		if offs == nil {
			return emptyPostings, nil
		}
		its = append(its, offs)
	}
	if len(its) == 0 {
		its = append(its, []uint64{r.allOff})
	}
	if r.src != nil {
		if err := r.prefetchPostings(ctx, slices.Concat(slices.Concat(its...), slices.Concat(nots...))); err != nil {
			return nil, fmt.Errorf("read the index's postings: %w", err)
		}
	}
	union := func(offs []uint64) postings {
		ps := make([]postings, len(offs))
		for i, off := range offs {
			ps[i] = r.postingsAt(ctx, off)
		}
		return merge(ps...)
	}
	ps := make([]postings, len(its))
	for i, offs := range its {
		ps[i] = union(offs)
	}
	p := intersect(ps...)
	if len(nots) > 0 {
		ns := make([]postings, len(nots))
		for i, offs := range nots {
			ns[i] = union(offs)
		}
		p = without(p, merge(ns...))
	}
	return p, nil
}

// postingsForValues returns the offsets of the postings lists of the
// values of name that m accepts (or, with invert, rejects); nil when there
// are none.
func (r *indexReader) postingsForValues(name string, m *labels.Matcher, invert bool) []uint64 {
	lv := r.values[name]
	if lv == nil {
		return nil
	}
	var its []uint64
	// Equality and set-of-alternatives regexes look values up directly
	// instead of running the matcher on every value.
	var set []string
	switch {
	case m.Type == labels.MatchEqual && !invert, m.Type == labels.MatchNotEqual && invert:
		set = []string{m.Value}
	case m.Type == labels.MatchRegexp && !invert, m.Type == labels.MatchNotRegexp && invert:
		set = m.SetMatches()
	}
	if set != nil {
		for _, v := range set {
			if off, ok := lv.lookup(v); ok {
				its = append(its, off)
			}
		}
	} else {
		for i, v := range lv.values {
			if m.Matches(v) != invert {
				its = append(its, lv.offs[i])
			}
		}
	}
	if len(its) == 0 {
		return nil
	}
	return its
}

type seriesIterator struct {
	ctx   context.Context
	check []*labels.Matcher // matchers every series must match, or nil
	// reselect reads the postings of a segment read from a Source once
	// more, after telling the Source to forget them, and returns their
	// refs; nil for a segment on disk, and once called.
	reselect func() ([]uint64, error)
	last     uint64       // the ref of the last series returned; 0 before the first
	cache    *seriesCache // for SelectShared, or nil
	dir      string
	r        *indexReader
	p        postings
	b        labels.ScratchBuilder
	refs     []uint64
	lset     labels.Labels
	chks     []ChunkMeta
	err      error
}

func (it *seriesIterator) Next() bool {
	if it.err != nil {
		return false
	}
	if !it.p.Next() {
		it.err = withDir(it.p.Err(), it.dir)
		return false
	}
	ref := it.p.At()
	key := seriesKey{it.r.cacheKey, ref}
	if it.cache != nil {
		if lset, chks, ok := it.cache.get(key); ok {
			it.lset, it.chks = lset, chks
			if !it.checkMatchers(ref, nil) {
				return it.retry()
			}
			it.last = ref
			return true
		}
	}
	var chks []ChunkMeta
	refs, err := it.r.series(it.ctx, ref, it.refs[:0], &chks)
	it.refs = refs
	if err == nil {
		it.lset, err = it.r.labels(&it.b, refs)
	}
	if !it.checkMatchers(ref, err) {
		return it.retry()
	}
	if it.cache != nil {
		chks = slices.Clip(chks)         // an append by a query copies
		it.cache.put(key, it.lset, chks) // checked above: a damaged entry is never cached
	}
	it.chks = chks
	it.last = ref
	return true
}

// retry is called when the series at a ref failed its checks (it.err is
// set): where the postings were read by range, it reads them once more
// and goes on after the last series returned. The error stays when the
// lists read the same, or when it is not corruption (a Source's error, a
// cancelled context).
func (it *seriesIterator) retry() bool {
	var ce *CorruptionError
	if it.reselect == nil || !errors.As(it.err, &ce) {
		return false
	}
	refs, err := it.reselect()
	it.reselect = nil
	if err != nil {
		it.err = withDir(err, it.dir)
		return false
	}
	i, _ := slices.BinarySearch(refs, it.last+1)
	it.p, it.err = &slicePostings{refs: refs[i:], i: -1}, nil
	return it.Next()
}

// checkMatchers fails the iterator with err, or when the series it is at
// does not match a matcher it must (postings read by range, which have no
// checksum of their own).
func (it *seriesIterator) checkMatchers(ref uint64, err error) bool {
	if err == nil {
		err = matchSelected(ref, it.lset, it.check)
	}
	if err != nil {
		it.err = withDir(err, it.dir)
		return false
	}
	return true
}

func (it *seriesIterator) Labels() labels.Labels { return it.lset }
func (it *seriesIterator) Chunks() []ChunkMeta   { return it.chks }
func (it *seriesIterator) Err() error            { return it.err }

// labels resolves symbol ref pairs into a label set that does not alias the
// index.
func (r *indexReader) labels(b *labels.ScratchBuilder, refs []uint64) (labels.Labels, error) {
	b.Reset()
	for i := 0; i+1 < len(refs); i += 2 {
		n, err := r.symbol(refs[i])
		if err != nil {
			return labels.EmptyLabels(), err
		}
		v, err := r.symbol(refs[i+1])
		if err != nil {
			return labels.EmptyLabels(), err
		}
		if !labelsCopy {
			n, v = strings.Clone(n), strings.Clone(v)
		}
		b.Add(n, v)
	}
	return b.Labels(), nil
}

// LabelNames returns the sorted label names of the series matching ms, or of
// all series when ms is empty.
func (s *Segment) LabelNames(ms ...*labels.Matcher) ([]string, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	r := s.index
	if len(ms) == 0 {
		return cloneStrings(r.names), nil
	}
	seen := map[uint64]struct{}{} // name symbol refs
	err := r.forEachSeriesLabels(s.context(), ms, func(refs []uint64) {
		for i := 0; i < len(refs); i += 2 {
			seen[refs[i]] = struct{}{}
		}
	})
	if err != nil {
		return nil, withDir(err, s.dir)
	}
	names := make([]string, 0, len(seen))
	for ref := range seen {
		n, err := r.symbol(ref)
		if err != nil {
			return nil, withDir(err, s.dir)
		}
		names = append(names, strings.Clone(n))
	}
	slices.Sort(names)
	return names, nil
}

// LabelValues returns the sorted values of label name among the series
// matching ms, or among all series when ms is empty.
func (s *Segment) LabelValues(name string, ms ...*labels.Matcher) ([]string, error) {
	return s.LabelValuesLimit(name, 0, ms...)
}

// LabelValuesLimit is LabelValues returning only the limit smallest values
// (all of them when limit <= 0), without copying the others.
func (s *Segment) LabelValuesLimit(name string, limit int, ms ...*labels.Matcher) ([]string, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	r := s.index
	lv := r.values[name]
	if lv == nil {
		return nil, nil
	}
	if len(ms) == 0 {
		vals := lv.values
		if limit > 0 && len(vals) > limit {
			vals = vals[:limit]
		}
		return cloneStrings(vals), nil
	}
	seen := map[uint64]struct{}{} // value symbol refs
	var nameRef uint64
	var symErr error
	err := r.forEachSeriesLabels(s.context(), ms, func(refs []uint64) {
		for i := 0; i+1 < len(refs); i += 2 {
			if nameRef == 0 {
				// Symbols are unique, so once name's ref is known a
				// comparison of refs finds it.
				n, err := r.symbol(refs[i])
				if err != nil {
					symErr = err
					return
				}
				if n != name {
					continue
				}
				nameRef = refs[i]
			}
			if refs[i] == nameRef {
				seen[refs[i+1]] = struct{}{}
				return
			}
		}
	})
	if err == nil {
		err = symErr
	}
	if err != nil {
		return nil, withDir(err, s.dir)
	}
	vals := NewSmallest(limit)
	for ref := range seen {
		v, err := r.symbol(ref)
		if err != nil {
			return nil, withDir(err, s.dir)
		}
		vals.Add(v) // aliases the index until cloned below
	}
	return cloneStrings(vals.Sorted()), nil
}

// forEachSeriesLabels calls f with the label symbol refs of each series
// matching ms. refs is reused between calls. Where the postings are read
// by range from a Source, a series that fails to decode may be damage to
// them on the way or in the Source's cache: they are forgotten and the
// walk made once more, calling f again for the series already seen.
func (r *indexReader) forEachSeriesLabels(ctx context.Context, ms []*labels.Matcher, f func(refs []uint64)) error {
	err := r.forEachSeriesLabelsOnce(ctx, ms, f)
	if ce := (*CorruptionError)(nil); r.src != nil && errors.As(err, &ce) {
		sec := r.toc[secPostings]
		r.src.forget(sec.off, sec.end())
		err = r.forEachSeriesLabelsOnce(ctx, ms, f)
	}
	return err
}

func (r *indexReader) forEachSeriesLabelsOnce(ctx context.Context, ms []*labels.Matcher, f func(refs []uint64)) error {
	p, err := r.postingsForMatchers(ctx, ms)
	if err != nil {
		return err
	}
	var refs []uint64
	var b labels.ScratchBuilder
	for p.Next() {
		refs, err = r.series(ctx, p.At(), refs[:0], nil)
		if err == nil && r.src != nil {
			// Postings read by range: the series must be one they select.
			var lset labels.Labels
			if lset, err = r.labels(&b, refs); err == nil {
				err = matchSelected(p.At(), lset, ms)
			}
		}
		if err != nil {
			return err
		}
		f(refs)
	}
	return p.Err()
}

// matchSelected returns a *CorruptionError unless lset, the series at ref
// that the postings of ms selected, matches every one of ms.
func matchSelected(ref uint64, lset labels.Labels, ms []*labels.Matcher) error {
	for _, m := range ms {
		if !m.Matches(lset.Get(m.Name)) {
			return indexErr(ref, "series %s, selected by the postings of %s, does not match it: postings damaged", lset, m)
		}
	}
	return nil
}

func cloneStrings(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strings.Clone(s)
	}
	return out
}
