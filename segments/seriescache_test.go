package segments

import (
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"unsafe"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/prometheus/model/labels"
)

// selected is what an iterator gives for one series.
type selected struct {
	lset labels.Labels
	chks []ChunkMeta
}

func selectAll(t testing.TB, s *Segment, shared bool, ms ...*labels.Matcher) []selected {
	t.Helper()
	sel := s.Select
	if shared {
		sel = s.SelectShared
	}
	it, err := sel(ms...)
	if err != nil {
		t.Fatal(err)
	}
	var out []selected
	for it.Next() {
		out = append(out, selected{it.Labels(), it.Chunks()})
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestSeriesCache: SelectShared gives what Select gives, in every format,
// whether an entry is decoded or found in the cache (the second Select
// finds every series: as many hits as series, no new miss); closing the
// segment drops its entries; a small bound holds (evictions, size within
// it) and the answers stay the same; and Select, for the jobs that read
// every series once, neither reads nor fills the cache.
func TestSeriesCache(t *testing.T) {
	series := genSeries(7, 60, 3)
	for _, f := range formats {
		t.Run(f.name, func(t *testing.T) {
			dir := t.TempDir()
			m := writeTestSegmentWith(t, dir, Meta{ID: "seg"}, series, f.opts)
			cache := NewPageCache(0)
			seg, err := OpenWithCache(filepath.Join(dir, m.ID), cache)
			if err != nil {
				t.Fatal(err)
			}
			sc := cache.series
			want := selectAll(t, seg, false)
			if len(want) != len(series) {
				t.Fatalf("Select gave %d series, want %d", len(want), len(series))
			}
			if testutil.ToFloat64(sc.misses)+testutil.ToFloat64(sc.hits) != 0 || sc.entries.size() != 0 {
				t.Fatal("Select used the series cache")
			}
			for round := range 2 {
				got := selectAll(t, seg, true)
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("round %d: SelectShared differs from Select", round)
				}
			}
			if h, m := testutil.ToFloat64(sc.hits), testutil.ToFloat64(sc.misses); h != float64(len(want)) || m != float64(len(want)) {
				t.Fatalf("%v hits and %v misses, want %d of each", h, m, len(want))
			}
			// Matchers select from the cache too.
			ms := labels.MustNewMatcher(labels.MatchEqual, "job", "db")
			if got, w := selectAll(t, seg, true, ms), selectAll(t, seg, false, ms); !reflect.DeepEqual(got, w) || len(w) == 0 {
				t.Fatalf("job=db: SelectShared gave %d series, Select %d", len(got), len(w))
			}
			avg := sc.entries.size() / int64(len(want))
			if avg == 0 {
				t.Fatal("nothing cached")
			}
			// The bytes counted are each entry's labels, metas and bookkeeping.
			var size int64
			for _, w := range want {
				size += seriesEntryOverhead + int64(w.lset.ByteSize()) + int64(len(w.chks))*int64(unsafe.Sizeof(ChunkMeta{}))
			}
			if n := sc.entries.size(); n != size {
				t.Fatalf("series cache counts %d bytes, want %d", n, size)
			}
			if err := seg.Close(); err != nil {
				t.Fatal(err)
			}
			if n := sc.entries.size(); n != 0 {
				t.Fatalf("%d bytes cached after the segment closed", n)
			}

			// A bound of two or three entries a shard (of about four
			// series each).
			small := NewPageCache(2 * seriesCacheShards * (5 * avg / 2))
			seg, err = OpenWithCache(filepath.Join(dir, m.ID), small)
			if err != nil {
				t.Fatal(err)
			}
			defer seg.Close()
			for round := range 3 {
				if got := selectAll(t, seg, true); !reflect.DeepEqual(got, want) {
					t.Fatalf("small cache, round %d: SelectShared differs from Select", round)
				}
			}
			if testutil.ToFloat64(small.series.evictions) == 0 {
				t.Fatal("no eviction from a cache smaller than the segment's series")
			}
			for i := range small.series.entries.shards {
				if sh := &small.series.entries.shards[i]; sh.size > sh.max {
					t.Fatalf("shard %d holds %d bytes, bound %d", i, sh.size, sh.max)
				}
			}
		})
	}
}

// TestSeriesCacheConcurrent: queries selecting the same segments at once
// (under -race) all get Select's answer while the cache fills, evicts and
// drops entries; two segments never share an entry.
func TestSeriesCacheConcurrent(t *testing.T) {
	dir := t.TempDir()
	a := writeTestSegment(t, dir, Meta{ID: "a"}, genSeries(1, 50, 2))
	b := writeTestSegment(t, dir, Meta{ID: "b"}, genSeries(2, 50, 2))
	cache := NewPageCache(2 * seriesCacheShards * 4 * (seriesEntryOverhead + 600)) // evicts
	var segs []*Segment
	var want [][]selected
	for _, m := range []Meta{a, b} {
		s, err := OpenWithCache(filepath.Join(dir, m.ID), cache)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		segs = append(segs, s)
		want = append(want, selectAll(t, s, false))
	}
	if reflect.DeepEqual(want[0], want[1]) {
		t.Fatal("the two segments hold the same series: the test would not see entries mixed up")
	}
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				k := (g + i) % 2
				if got := selectAll(t, segs[k], true); !reflect.DeepEqual(got, want[k]) {
					errs <- "a concurrent SelectShared differs from Select"
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
	if testutil.ToFloat64(cache.series.hits) == 0 {
		t.Fatal("no hit: the test exercised nothing")
	}
}
