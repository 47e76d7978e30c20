package buffer

import (
	"slices"
	"sort"
	"sync"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/strata-tsdb/strata/segments"
)

// postingsIndex is the head's inverted index: for each label name and value
// the sorted list of references of the series that carry it.
type postingsIndex struct {
	mtx sync.RWMutex // mtx guards everything below.
	m   map[string]map[string][]uint64
	all []uint64 // every series reference, sorted

	// shifted counts the references moved to make room for one inserted
	// before the end of a list: the cost that makes sorted insertion
	// quadratic when references do not arrive in order. Tests read it.
	shifted int64
	// resorted counts the lists addBulk found out of order and sorted.
	resorted int64
}

func newPostingsIndex() *postingsIndex {
	return &postingsIndex{m: map[string]map[string][]uint64{}}
}

func (p *postingsIndex) insertSortedLocked(list []uint64, ref uint64) []uint64 {
	if n := len(list); n == 0 || list[n-1] < ref {
		return append(list, ref)
	}
	i, found := slices.BinarySearch(list, ref)
	if found {
		return list
	}
	p.shifted += int64(len(list) - i)
	return slices.Insert(list, i, ref)
}

func (p *postingsIndex) add(ref uint64, lset labels.Labels) {
	p.mtx.Lock()
	defer p.mtx.Unlock()
	lset.Range(func(l labels.Label) {
		vals := p.m[l.Name]
		if vals == nil {
			vals = map[string][]uint64{}
			p.m[l.Name] = vals
		}
		vals[l.Value] = p.insertSortedLocked(vals[l.Value], ref)
	})
	p.all = p.insertSortedLocked(p.all, ref)
}

// bulkAdd adds many series to the postings at once, as replay does: every
// reference is appended to its lists, and each list is sorted once at the
// end (finish). Sorted insertion would move O(n) references per series when
// they do not arrive in reference order (series records re-logged in
// stripe order did not), O(n²) for the head; this is O(n log n), and O(n)
// when they do arrive in order. Nothing may read the postings before
// finish returns.
type bulkAdd struct {
	p *postingsIndex
	// Series mostly carry the same label names in the same places: the
	// value map of the name at each place is remembered from the series
	// before, which saves looking the name up.
	names []string
	maps  []map[string][]uint64
}

func (p *postingsIndex) newBulk() *bulkAdd { return &bulkAdd{p: p} }

// add appends the references of series to their lists.
func (b *bulkAdd) add(series []*memSeries) {
	p := b.p
	p.mtx.Lock()
	defer p.mtx.Unlock()
	for _, s := range series {
		i := 0
		s.lset.Range(func(l labels.Label) {
			var vals map[string][]uint64
			if i < len(b.names) && b.names[i] == l.Name {
				vals = b.maps[i]
			} else {
				vals = p.m[l.Name]
				if vals == nil {
					vals = map[string][]uint64{}
					p.m[l.Name] = vals
				}
				if i < len(b.names) {
					b.names[i], b.maps[i] = l.Name, vals
				} else {
					b.names, b.maps = append(b.names, l.Name), append(b.maps, vals)
				}
			}
			vals[l.Value] = append(vals[l.Value], s.ref)
			i++
		})
		p.all = append(p.all, s.ref)
	}
}

// finish sorts the lists that are out of order.
func (b *bulkAdd) finish() {
	p := b.p
	p.mtx.Lock()
	defer p.mtx.Unlock()
	sortList := func(l []uint64) []uint64 {
		if slices.IsSorted(l) {
			return l
		}
		p.resorted++
		slices.Sort(l)
		return slices.Compact(l)
	}
	for _, vals := range p.m {
		for v, l := range vals {
			vals[v] = sortList(l)
		}
	}
	p.all = sortList(p.all)
}

// postingsForMatchers returns the sorted references of series matching all
// matchers, with Prometheus semantics: a matcher that matches the empty
// string also matches series that lack the label.
func (p *postingsIndex) postingsForMatchers(ms ...*labels.Matcher) []uint64 {
	p.mtx.RLock()
	defer p.mtx.RUnlock()

	var (
		result  []uint64
		started bool
	)
	intersect := func(l []uint64) {
		if !started {
			result, started = slices.Clone(l), true
			return
		}
		result = intersectSorted(result, l)
	}
	var subtract [][]uint64
	for _, m := range ms {
		if m.Matches("") {
			// Series whose value does not match are excluded; series without
			// the label match.
			var excl [][]uint64
			for v, l := range p.m[m.Name] {
				if !m.Matches(v) {
					excl = append(excl, l)
				}
			}
			subtract = append(subtract, mergeSorted(excl))
			continue
		}
		if m.Type == labels.MatchEqual {
			intersect(p.m[m.Name][m.Value])
			continue
		}
		var incl [][]uint64
		for v, l := range p.m[m.Name] {
			if m.Matches(v) {
				incl = append(incl, l)
			}
		}
		intersect(mergeSorted(incl))
	}
	if !started {
		result = slices.Clone(p.all)
	}
	for _, l := range subtract {
		result = subtractSorted(result, l)
	}
	return result
}

func (p *postingsIndex) labelNames() []string {
	p.mtx.RLock()
	defer p.mtx.RUnlock()
	names := make([]string, 0, len(p.m))
	for n := range p.m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// labelValues returns the sorted values of name, only the limit smallest
// when limit > 0 (in memory proportional to limit).
func (p *postingsIndex) labelValues(name string, limit int) []string {
	p.mtx.RLock()
	defer p.mtx.RUnlock()
	if limit <= 0 || limit >= len(p.m[name]) {
		vals := make([]string, 0, len(p.m[name]))
		for v := range p.m[name] {
			vals = append(vals, v)
		}
		sort.Strings(vals)
		return vals
	}
	vals := segments.NewSmallest(limit)
	for v := range p.m[name] {
		vals.Add(v)
	}
	return vals.Sorted()
}

func intersectSorted(a, b []uint64) []uint64 {
	out := a[:0]
	for i, j := 0, 0; i < len(a) && j < len(b); {
		switch {
		case a[i] < b[j]:
			i++
		case a[i] > b[j]:
			j++
		default:
			out = append(out, a[i])
			i++
			j++
		}
	}
	return out
}

func subtractSorted(a, b []uint64) []uint64 {
	out := a[:0]
	j := 0
	for _, x := range a {
		for j < len(b) && b[j] < x {
			j++
		}
		if j < len(b) && b[j] == x {
			continue
		}
		out = append(out, x)
	}
	return out
}

// mergeSorted returns the sorted union of sorted lists.
func mergeSorted(lists [][]uint64) []uint64 {
	switch len(lists) {
	case 0:
		return nil
	case 1:
		return slices.Clone(lists[0])
	}
	n := 0
	for _, l := range lists {
		n += len(l)
	}
	out := make([]uint64, 0, n)
	for _, l := range lists {
		out = append(out, l...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}
