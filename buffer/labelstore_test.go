package buffer

import (
	"fmt"
	"math/rand"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
)

// randomLabels returns a label set drawn from a few names with values of
// every kind the encoding has: shared ones (interned), per-series ones
// (kept inline once their name reached maxInternedValues), empty and long
// strings, and strings that are prefixes of each other.
func randomLabels(rng *rand.Rand, i int) labels.Labels {
	b := labels.NewScratchBuilder(8)
	names := []string{"__name__", "a", "ab", "b", "id", "long", "x"}
	for _, n := range names {
		if n != "__name__" && rng.Intn(3) == 0 {
			continue
		}
		var v string
		switch n {
		case "id":
			v = fmt.Sprintf("series-%d", i) // one value a series
		case "long":
			v = strings.Repeat("v", rng.Intn(300))
		default:
			v = []string{"", "a", "ab", "abc", "b", "é", "\x00"}[rng.Intn(7)]
		}
		if v == "" {
			continue // labels.Labels holds no empty values
		}
		b.Add(n, v)
	}
	return b.Labels()
}

// TestSeriesLabelsRoundTrip: whatever the encoding interned or kept
// inline, a label set reads back equal, equal() and get() agree with
// labels.Labels, and compare() orders as labels.Compare. Past
// maxInternedValues the per-series values are kept inline, and the table
// stops growing with them.
func TestSeriesLabelsRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	syms := newSymbolTable()
	const n = 2 * maxInternedValues
	lsets := make([]labels.Labels, n)
	enc := make([]seriesLabels, n)
	for i := range lsets {
		lsets[i] = randomLabels(rng, i)
		enc[i] = syms.encode(lsets[i])
	}
	sb := labels.NewScratchBuilder(0)
	for i := range lsets {
		if got := syms.labels(enc[i], &sb); !labels.Equal(got, lsets[i]) {
			t.Fatalf("series %d reads back as %s, want %s", i, got, lsets[i])
		}
		if !syms.equal(enc[i], lsets[i]) {
			t.Fatalf("series %d: not equal to its own labels %s", i, lsets[i])
		}
		for _, name := range []string{"__name__", "a", "ab", "id", "long", "missing"} {
			if got, want := syms.get(enc[i], name), lsets[i].Get(name); got != want {
				t.Fatalf("series %d: get(%q) = %q, want %q", i, name, got, want)
			}
		}
		j := rng.Intn(n)
		if got, want := syms.equal(enc[i], lsets[j]), labels.Equal(lsets[i], lsets[j]); got != want {
			t.Fatalf("equal(%s, %s) = %v, want %v", lsets[i], lsets[j], got, want)
		}
		if got, want := sign(syms.compare(enc[i], enc[j])), sign(labels.Compare(lsets[i], lsets[j])); got != want {
			t.Fatalf("compare(%s, %s) = %d, want %d", lsets[i], lsets[j], got, want)
		}
	}
	// Series whose labels are a prefix of each other's, or differ in the
	// last label only.
	pairs := [][2]labels.Labels{
		{labels.FromStrings("a", "1"), labels.FromStrings("a", "1", "b", "2")},
		{labels.FromStrings("a", "1", "b", "2"), labels.FromStrings("a", "1", "b", "22")},
		{labels.FromStrings("a", "1", "b", "2"), labels.FromStrings("a", "1", "bb", "2")},
		{labels.EmptyLabels(), labels.FromStrings("a", "1")},
	}
	for _, p := range pairs {
		a, b := syms.encode(p[0]), syms.encode(p[1])
		if syms.equal(a, p[1]) || syms.equal(b, p[0]) {
			t.Fatalf("%s and %s are equal", p[0], p[1])
		}
		if got, want := sign(syms.compare(a, b)), sign(labels.Compare(p[0], p[1])); got != want || got != -1 || sign(syms.compare(b, a)) != 1 {
			t.Fatalf("compare(%s, %s) = %d, want %d", p[0], p[1], got, want)
		}
	}
	// The per-series values went inline once their name had
	// maxInternedValues: the table holds fewer symbols than there are
	// values.
	syms.mtx.Lock()
	size := syms.lenLocked()
	syms.mtx.Unlock()
	if size > maxInternedValues+500 { // the ids past the limit, about 1,300, are not there
		t.Fatalf("%d symbols for %d series: per-series values were all interned", size, n)
	}
	if s := syms.encode(labels.FromStrings("id", "series-new")); !strings.Contains(string(s), "series-new") {
		t.Fatalf("a new id was interned, past the limit: %q", s)
	}
}

func sign(x int) int {
	switch {
	case x < 0:
		return -1
	case x > 0:
		return 1
	}
	return 0
}

// TestSeriesLabelsShareSymbols: a Kubernetes-like series keeps its label
// names and shared values as one-byte or two-byte references; only the
// values few series share are kept in it.
func TestSeriesLabelsShareSymbols(t *testing.T) {
	syms := newSymbolTable()
	var total int
	const n = 20_000
	for i := range n {
		lset := k8sLabels(i)
		s := syms.encode(lset)
		total += len(s)
		if i == n-1 && len(s)*2 > len(lset.String()) {
			t.Fatalf("series %s takes %d bytes", lset, len(s))
		}
	}
	t.Logf("%.1f bytes per label set", float64(total)/n)
}

// TestSymbolTableConcurrent: label sets made by concurrent writers, past
// the first page of symbols, read back equal from concurrent readers
// while the table grows (run with -race).
func TestSymbolTableConcurrent(t *testing.T) {
	syms := newSymbolTable()
	const writers, perWriter = 4, 3000
	var (
		mtx  sync.Mutex
		made []seriesLabels
		want []labels.Labels
		wg   sync.WaitGroup
	)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWriter {
				// Values of "v" are interned (fewer than the limit), a page
				// of symbols every few hundred series.
				lset := labels.FromStrings("__name__", "m", "v", fmt.Sprintf("%d-%d", w, i))
				s := syms.encode(lset)
				mtx.Lock()
				made, want = append(made, s), append(want, lset)
				mtx.Unlock()
			}
		}()
	}
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sb := labels.NewScratchBuilder(2)
			for seen := 0; seen < writers*perWriter; {
				mtx.Lock()
				s, lset := slices.Clone(made[seen:]), slices.Clone(want[seen:])
				mtx.Unlock()
				for i := range s {
					if got := syms.labels(s[i], &sb); !labels.Equal(got, lset[i]) {
						t.Errorf("read %s, want %s", got, lset[i])
						return
					}
				}
				seen += len(s)
			}
		}()
	}
	wg.Wait()
}

// TestLabelsData: the encoding seriesLabels is made of is the one
// labels.Labels holds in the default build (the head compares and makes
// labels.Labels on these bytes): a label set made from a series' encoding
// equals the original, hashes alike, and its bytes are the original's.
// Long strings (255 bytes and more) take the other length form.
func TestLabelsData(t *testing.T) {
	rng := rand.New(rand.NewSource(2))
	syms := newSymbolTable()
	var buf []byte
	sb := labels.NewScratchBuilder(0)
	for i := range 3000 {
		lset := randomLabels(rng, i)
		if i%100 == 0 {
			lset = labels.FromStrings("__name__", strings.Repeat("n", 254+i/100), "x", strings.Repeat("é", 130+i/50))
		}
		s := syms.encode(lset)
		got := syms.overwrite(s, &buf, &sb)
		if !labels.Equal(got, lset) || got.Hash() != lset.Hash() {
			t.Fatalf("series %d: %s reads back as %s", i, lset, got)
		}
		if made := syms.labels(s, &sb); !labels.Equal(made, lset) || made.Hash() != lset.Hash() {
			t.Fatalf("series %d: %s made as %s", i, lset, made)
		}
		if labelsAreData {
			if string(syms.appendData(nil, s)) != labelsData(lset) {
				t.Fatalf("series %d: encoding %q, labels.Labels holds %q", i, syms.appendData(nil, s), labelsData(lset))
			}
			if syms.dataLen(s) != len(labelsData(lset)) {
				t.Fatalf("series %d: dataLen %d, want %d", i, syms.dataLen(s), len(labelsData(lset)))
			}
		}
	}
}

// TestSymbolTableLimits: a label name's labels are interned until exactly
// maxInternedValues of them, and the table stops at exactly maxSymbols
// fragments; past either limit label sets keep their strings inline, of
// any length (the uvarint of an item's length takes two bytes from 64 on,
// a string's length four from 255 on), and read back, compare and look
// up as they were.
func TestSymbolTableLimits(t *testing.T) {
	syms := newSymbolTable()
	size := func() int {
		syms.mtx.Lock()
		defer syms.mtx.Unlock()
		return syms.lenLocked()
	}
	check := func(lset labels.Labels, s seriesLabels) {
		t.Helper()
		sb := labels.NewScratchBuilder(0)
		if got := syms.labels(s, &sb); !labels.Equal(got, lset) {
			t.Fatalf("%s reads back as %s", lset, got)
		}
		if !syms.equal(s, lset) {
			t.Fatalf("%s: not equal to its own labels", lset)
		}
		lset.Range(func(l labels.Label) {
			if got := syms.get(s, l.Name); got != l.Value {
				t.Fatalf("%s: get(%q) = %q", lset, l.Name, got)
			}
		})
	}
	for i := range maxInternedValues + 10 {
		lset := labels.FromStrings("__name__", "m", "id", fmt.Sprint(i))
		check(lset, syms.encode(lset))
	}
	// "__name__", "m", "id" and maxInternedValues labels of id.
	if got, want := size(), 3+maxInternedValues; got != want {
		t.Fatalf("%d symbols after %d values of one name, want %d", got, maxInternedValues+10, want)
	}
	var inline []seriesLabels
	var lsets []labels.Labels
	for n := 1; n <= 300; n++ {
		lset := labels.FromStrings("__name__", "m", "id", strings.Repeat("x", n))
		lsets, inline = append(lsets, lset), append(inline, syms.encode(lset))
	}
	if got, want := size(), 3+maxInternedValues; got != want {
		t.Fatalf("%d symbols after inline values, want %d", got, want)
	}
	for i := range lsets {
		check(lsets[i], inline[i])
		if j := (i + 1) % len(lsets); sign(syms.compare(inline[i], inline[j])) != sign(labels.Compare(lsets[i], lsets[j])) {
			t.Fatalf("compare(%s, %s) = %d", lsets[i], lsets[j], syms.compare(inline[i], inline[j]))
		}
	}

	// Label sets alike up to an inline value, or up to the middle of one,
	// order by what follows, not by the labels after it.
	for _, n := range []int{10, 62, 63, 64, 127, 128, 300} {
		v := strings.Repeat("x", n)
		for _, p := range [][2]labels.Labels{
			{labels.FromStrings("id", v, "z", "1"), labels.FromStrings("id", v, "z", "2")},
			{labels.FromStrings("id", v+"A"+v, "z", "2"), labels.FromStrings("id", v+"B"+v, "z", "1")},
			{labels.FromStrings("id", v+"A", "z", "2"), labels.FromStrings("id", v+"B", "z", "1")},
		} {
			a, b := syms.encode(p[0]), syms.encode(p[1])
			check(p[0], a)
			check(p[1], b)
			if sign(syms.compare(a, b)) != -1 || sign(syms.compare(b, a)) != 1 || syms.compare(a, a) != 0 {
				t.Fatalf("compare(%s, %s) = %d, want -1", p[0], p[1], syms.compare(a, b))
			}
		}
	}

	// Fill the table: each label of a new name is two fragments (the name
	// and the label), whose references take three bytes from 8,192 on.
	lsets, inline = lsets[:0], inline[:0]
	for i := 0; size() < maxSymbols; i++ {
		lset := labels.FromStrings(fmt.Sprintf("n%d", i), "v")
		lsets, inline = append(lsets, lset), append(inline, syms.encode(lset))
	}
	if got := size(); got != maxSymbols {
		t.Fatalf("%d symbols, want at most %d", got, maxSymbols)
	}
	for i := range lsets {
		check(lsets[i], inline[i])
	}
	for _, lset := range []labels.Labels{
		labels.FromStrings("__name__", "m", "id", "7"),                         // interned before
		labels.FromStrings("__name__", "new", "new", strings.Repeat("y", 300)), // a new name, in full
		labels.FromStrings("n0", "v2", "zz", "1"),
	} {
		check(lset, syms.encode(lset))
	}
	if got := size(); got != maxSymbols {
		t.Fatalf("%d symbols after the table filled, want %d", got, maxSymbols)
	}
}
