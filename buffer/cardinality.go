package buffer

import (
	"container/heap"
	"slices"
	"strings"

	"github.com/prometheus/prometheus/model/labels"
)

// CardinalityStat is one entry of a cardinality ranking: a metric name, a
// label name or a name=value pair, and its count.
type CardinalityStat struct {
	Name  string
	Value uint64
}

// Cardinality is what the head's index says about cardinality, in the
// terms of Prometheus' /api/v1/status/tsdb: each ranking holds the limit
// largest entries, largest first (ties by name).
type Cardinality struct {
	NumLabelPairs               int
	SeriesCountByMetricName     []CardinalityStat // series per metric name
	LabelValueCountByLabelName  []CardinalityStat // distinct values per label name
	MemoryInBytesByLabelName    []CardinalityStat // bytes of a label's name and values over its series (labels.SizeOfLabels)
	SeriesCountByLabelValuePair []CardinalityStat // series per name=value pair
}

// Cardinality ranks the head's metric names, label names and label pairs,
// as Prometheus' MemPostings.Stats does, in one pass over the index: time
// linear in the number of label pairs, memory in limit.
func (h *Head) Cardinality(limit int) Cardinality {
	metrics, names, bytes, pairs := newTopK(limit), newTopK(limit), newTopK(limit), newTopK(limit)
	p := h.index
	p.mtx.RLock()
	n := 0
	for name, values := range p.m {
		names.push(CardinalityStat{name, uint64(len(values))})
		n += len(values)
		var size uint64
		for value, refs := range values {
			c := uint64(refs.n)
			if name == labels.MetricName {
				metrics.push(CardinalityStat{value, c})
			}
			pairs.push(CardinalityStat{name + "=" + value, c})
			size += labels.SizeOfLabels(name, value, c)
		}
		bytes.push(CardinalityStat{name, size})
	}
	p.mtx.RUnlock()
	return Cardinality{
		NumLabelPairs:               n,
		SeriesCountByMetricName:     metrics.sorted(),
		LabelValueCountByLabelName:  names.sorted(),
		MemoryInBytesByLabelName:    bytes.sorted(),
		SeriesCountByLabelValuePair: pairs.sorted(),
	}
}

// topK keeps the k largest stats pushed: a min-heap whose root is the
// smallest kept.
type topK struct {
	k int
	h statHeap
}

func newTopK(k int) *topK { return &topK{k: k} }

func (t *topK) push(s CardinalityStat) {
	switch {
	case t.k <= 0:
	case len(t.h) < t.k:
		heap.Push(&t.h, s)
	case statLess(t.h[0], s):
		t.h[0] = s
		heap.Fix(&t.h, 0)
	}
}

// sorted returns the kept stats, largest first.
func (t *topK) sorted() []CardinalityStat {
	out := slices.Clone([]CardinalityStat(t.h))
	slices.SortFunc(out, func(a, b CardinalityStat) int {
		switch {
		case statLess(b, a):
			return -1
		case statLess(a, b):
			return 1
		}
		return 0
	})
	return out
}

// statLess orders by count, then by name descending, so that of equal
// counts the smaller name ranks higher.
func statLess(a, b CardinalityStat) bool {
	if a.Value != b.Value {
		return a.Value < b.Value
	}
	return strings.Compare(a.Name, b.Name) > 0
}

type statHeap []CardinalityStat

func (h statHeap) Len() int           { return len(h) }
func (h statHeap) Less(i, j int) bool { return statLess(h[i], h[j]) }
func (h statHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *statHeap) Push(x any)        { *h = append(*h, x.(CardinalityStat)) }
func (h *statHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
