package buffer

import (
	"fmt"
	"math/rand"
	"slices"
	"sync"
	"testing"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/strata-tsdb/strata/ingest"
)

// TestPostingsMatchModel builds an index the three ways the head does
// (new series in reference order, a replay's bulk add with references out
// of order, removal of idle series) and checks postingsForMatchers for
// random matchers of every type against a scan of the label sets.
func TestPostingsMatchModel(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	lsetOf := func(i int) labels.Labels {
		b := labels.NewScratchBuilder(4)
		b.Add("__name__", fmt.Sprintf("m%d", i%3))
		b.Add("a", fmt.Sprintf("v%d", rng.Intn(5)))
		if i%4 != 0 {
			b.Add("b", fmt.Sprintf("w%d", rng.Intn(40)))
		}
		b.Add("id", fmt.Sprint(i))
		b.Sort()
		return b.Labels()
	}
	model := map[uint64]labels.Labels{}
	syms := newSymbolTable()
	p := newPostingsIndex(syms)
	// New series: references from a counter, as the head makes them.
	var last uint64
	for i := range 3000 {
		lset := lsetOf(i)
		ref := p.addNew(syms.encode(lset), func() uint64 { last += 1 + uint64(rng.Intn(3)); return last })
		model[ref] = lset
	}
	// A replay: series from the log, in batches, references shuffled
	// (below and above the last one made).
	var bulk []*memSeries
	for i := range 3000 {
		ref := uint64(rng.Intn(20_000)) + 1
		if _, ok := model[ref]; ok {
			continue
		}
		lset := lsetOf(3000 + i)
		model[ref] = lset
		bulk = append(bulk, newMemSeries(ref, syms.encode(lset)))
	}
	b := p.newBulk()
	for len(bulk) > 0 {
		n := min(len(bulk), 1+rng.Intn(100))
		b.add(bulk[:n])
		bulk = bulk[n:]
	}
	b.finish()
	if p.resorted == 0 {
		t.Fatal("no list took late references: the test does not exercise finish")
	}
	// Idle series removed.
	gone := map[uint64]struct{}{}
	var lsets []seriesLabels
	for ref, lset := range model {
		if rng.Intn(3) == 0 {
			gone[ref] = struct{}{}
			lsets = append(lsets, syms.encode(lset))
		}
	}
	p.delete(gone, lsets)
	for ref := range gone {
		delete(model, ref)
	}

	values := []string{"", "v0", "v3", "w1", "w17", "m1", "nope"}
	names := []string{"__name__", "a", "b", "id", "missing"}
	types := []labels.MatchType{labels.MatchEqual, labels.MatchNotEqual, labels.MatchRegexp, labels.MatchNotRegexp}
	for q := range 500 {
		var ms []*labels.Matcher
		for range 1 + rng.Intn(3) {
			v := values[rng.Intn(len(values))]
			typ := types[rng.Intn(len(types))]
			if typ == labels.MatchRegexp || typ == labels.MatchNotRegexp {
				v = []string{"v[0-2]", "w1.*", ".*", "m0|m2", ""}[rng.Intn(5)]
			}
			ms = append(ms, labels.MustNewMatcher(typ, names[rng.Intn(len(names))], v))
		}
		var want []uint64
		for ref, lset := range model {
			ok := true
			for _, m := range ms {
				ok = ok && m.Matches(lset.Get(m.Name))
			}
			if ok {
				want = append(want, ref)
			}
		}
		slices.Sort(want)
		if got := p.postingsForMatchers(ms...); !slices.Equal(got, want) {
			t.Fatalf("query %d %v: %d references, want %d\ngot  %v\nwant %v", q, ms, len(got), len(want), got, want)
		}
	}
	if got := p.postingsForMatchers(); len(got) != len(model) {
		t.Fatalf("no matcher: %d references, want all %d", len(got), len(model))
	}
}

// TestPostingsBytesPerSeries: the lists of Kubernetes-like series (10
// labels, references made in order) take about a byte per label of a
// series, where []uint64 lists took eight and their append slack: at a
// million series that was ~90 of the head's 666 bytes per series.
func TestPostingsBytesPerSeries(t *testing.T) {
	const n = 50_000
	h := newTestHead(t, Options{})
	batch := &ingest.Batch{}
	for i := range n {
		batch.Series = append(batch.Series, ingest.Series{Labels: k8sLabels(i), Samples: []ingest.Sample{{T: 1000, V: 1}}})
		if len(batch.Series) == 2000 {
			if err := h.Append(batch); err != nil {
				t.Fatal(err)
			}
			batch.Series = batch.Series[:0]
		}
	}
	p := h.index
	size, lists := cap(p.all.b), 1
	for _, vals := range p.m {
		for _, l := range vals {
			size += cap(l.b)
			lists++
		}
	}
	// 11 references per series: its 10 labels and the list of all.
	if perRef := float64(size) / (11 * n); perRef > 2 {
		t.Fatalf("postings take %.2f bytes per reference (%d bytes, %d lists), want at most 2", perRef, size, lists)
	}
	t.Logf("postings: %.2f bytes per series in %d lists", float64(size)/n, lists)
}

// TestPostingsInOrderUnderConcurrentCreation: writers making new series
// at once each get references in the order they reach the postings, so
// every reference is appended at the end of its lists and none rewrites a
// list. (When the reference was made before the index was locked, two
// writers' series reached the lists in either order.)
func TestPostingsInOrderUnderConcurrentCreation(t *testing.T) {
	const writers, perWriter = 4, 5000
	h := newTestHead(t, Options{})
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			batch := &ingest.Batch{}
			for i := range perWriter {
				lset := labels.FromStrings("__name__", "up", "job", "j", "w", fmt.Sprint(w), "i", fmt.Sprint(i))
				batch.Series = append(batch.Series[:0], ingest.Series{Labels: lset, Samples: []ingest.Sample{{T: 1000, V: 1}}})
				if err := h.Append(batch); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if got := h.NumSeries(); got != writers*perWriter {
		t.Fatalf("%d series, want %d", got, writers*perWriter)
	}
	if moved := h.index.shifted; moved != 0 {
		t.Fatalf("references reached the postings out of order: %d moved", moved)
	}
	all := h.index.postingsForMatchers(labels.MustNewMatcher(labels.MatchEqual, "job", "j"))
	if len(all) != writers*perWriter || !slices.IsSorted(all) {
		t.Fatalf("job=j: %d references (sorted: %v), want %d", len(all), slices.IsSorted(all), writers*perWriter)
	}
}
