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
	syms *symbolTable // the series' label sets are read through it

	mtx sync.RWMutex // mtx guards everything below.
	m   map[string]map[string]postingList
	all postingList // every series reference

	// shifted counts the references moved to make room for one inserted
	// before the end of a list: the cost that makes sorted insertion
	// quadratic when references do not arrive in order. Tests read it.
	shifted int64
	// resorted counts the lists bulkAdd.finish had to merge references
	// into that came out of order.
	resorted int64
}

func newPostingsIndex(syms *symbolTable) *postingsIndex {
	return &postingsIndex{syms: syms, m: map[string]map[string]postingList{}}
}

// addNew adds a new series with labels lset and returns its reference,
// which newRef makes while the index is locked: so references reach the
// lists in increasing order, and each is appended at the end of its lists
// (two series made at once by different writers would otherwise add their
// references in either order, and an out-of-order one rewrites its lists).
//
// The maps' keys are the strings rangeLabels gives: the symbol table's, or
// pieces of a series' label set, never of a caller's labels.Labels (a
// request's), which a key would keep in memory whole.
func (p *postingsIndex) addNew(lset seriesLabels, newRef func() uint64) uint64 {
	p.mtx.Lock()
	defer p.mtx.Unlock()
	ref := newRef()
	p.syms.rangeLabels(lset, func(name, value string) {
		vals := p.m[name]
		if vals == nil {
			vals = map[string]postingList{}
			p.m[name] = vals
		}
		list := vals[value]
		p.shifted += int64(list.add(ref))
		vals[value] = list
	})
	p.shifted += int64(p.all.add(ref))
	return ref
}

// bulkAdd adds many series to the postings at once, as replay does: a
// reference past the end of a list is appended to it, and the others are
// kept aside and merged into their lists once, at the end (finish).
// Sorted insertion would rewrite a list per series when references do not
// arrive in order (series records re-logged in stripe order did not),
// O(n²) for the head; this is O(n log n), and O(n) when they do arrive in
// order. Nothing may read the postings before finish returns.
type bulkAdd struct {
	p *postingsIndex
	// Series mostly carry the same label names in the same places: the
	// value map of the name at each place is remembered from the series
	// before, which saves looking the name up.
	names []string
	maps  []map[string]postingList
	// late holds, by label, the references that came before the end of
	// their list; lateAll those of the list of all series.
	late    map[labels.Label][]uint64
	lateAll []uint64
}

func (p *postingsIndex) newBulk() *bulkAdd { return &bulkAdd{p: p, late: map[labels.Label][]uint64{}} }

// add adds the references of series to their lists.
func (b *bulkAdd) add(series []*memSeries) {
	p := b.p
	p.mtx.Lock()
	defer p.mtx.Unlock()
	for _, s := range series {
		i := 0
		p.syms.rangeLabels(s.lset, func(name, value string) {
			l := labels.Label{Name: name, Value: value}
			var vals map[string]postingList
			if i < len(b.names) && b.names[i] == l.Name {
				vals = b.maps[i]
			} else {
				vals = p.m[l.Name]
				if vals == nil {
					vals = map[string]postingList{}
					p.m[l.Name] = vals
				}
				if i < len(b.names) {
					b.names[i], b.maps[i] = l.Name, vals
				} else {
					b.names, b.maps = append(b.names, l.Name), append(b.maps, vals)
				}
			}
			list := vals[l.Value]
			if list.n > 0 && s.ref <= list.last {
				b.late[l] = append(b.late[l], s.ref)
			} else {
				list.add(s.ref)
				vals[l.Value] = list
			}
			i++
		})
		if p.all.n > 0 && s.ref <= p.all.last {
			b.lateAll = append(b.lateAll, s.ref)
		} else {
			p.all.add(s.ref)
		}
	}
}

// finish merges the references that came out of order into their lists.
func (b *bulkAdd) finish() {
	p := b.p
	p.mtx.Lock()
	defer p.mtx.Unlock()
	for l, refs := range b.late {
		slices.Sort(refs)
		vals := p.m[l.Name]
		list := vals[l.Value]
		list.merge(refs)
		vals[l.Value] = list
		p.resorted++
	}
	if len(b.lateAll) > 0 {
		slices.Sort(b.lateAll)
		p.all.merge(b.lateAll)
		p.resorted++
	}
	b.late, b.lateAll = nil, nil
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
			result, started = l, true
			return
		}
		result = intersectSorted(result, l)
	}
	var subtract [][]uint64
	for _, m := range ms {
		if m.Matches("") {
			// Series whose value does not match are excluded; series without
			// the label match.
			var excl []postingList
			for v, l := range p.m[m.Name] {
				if !m.Matches(v) {
					excl = append(excl, l)
				}
			}
			subtract = append(subtract, mergeLists(excl))
			continue
		}
		if m.Type == labels.MatchEqual {
			l, ok := p.m[m.Name][m.Value]
			switch {
			case !ok:
				result, started = nil, true
			case !started:
				result, started = l.appendTo(nil), true
			default:
				result = l.intersect(result)
			}
			continue
		}
		var incl []postingList
		for v, l := range p.m[m.Name] {
			if m.Matches(v) {
				incl = append(incl, l)
			}
		}
		intersect(mergeLists(incl))
	}
	if !started {
		result = p.all.appendTo(nil)
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

// mergeLists returns the sorted union of the lists.
func mergeLists(lists []postingList) []uint64 {
	switch len(lists) {
	case 0:
		return nil
	case 1:
		return lists[0].appendTo(nil)
	}
	n := 0
	for i := range lists {
		n += lists[i].n
	}
	out := make([]uint64, 0, n)
	for i := range lists {
		out = lists[i].appendTo(out)
	}
	slices.Sort(out)
	return slices.Compact(out)
}
