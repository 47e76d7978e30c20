package exemplars

import (
	"fmt"
	"math"
	"slices"
	"sync"
	"testing"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/strata-tsdb/strata/ingest"
)

func ex(t int64, v float64, kv ...string) ingest.Exemplar {
	return ingest.Exemplar{Labels: labels.FromStrings(kv...), T: t, V: v}
}

func sameExemplars(a, b []ingest.SeriesExemplars) bool {
	return slices.EqualFunc(a, b, func(x, y ingest.SeriesExemplars) bool {
		return labels.Equal(x.Labels, y.Labels) && slices.EqualFunc(x.Exemplars, y.Exemplars, func(p, q ingest.Exemplar) bool {
			return labels.Equal(p.Labels, q.Labels) && p.T == q.T && (p.V == q.V || (math.IsNaN(p.V) && math.IsNaN(q.V)))
		})
	})
}

var (
	sa = labels.FromStrings("__name__", "req_total", "job", "a")
	sb = labels.FromStrings("__name__", "req_total", "job", "b")
	sc = labels.FromStrings("__name__", "other")
)

// TestStore: exemplars are selected by matchers and time, sorted; a repeat
// of a series' newest is not stored twice; past the bound the oldest of all
// go, series and all; All rebuilds the store.
func TestStore(t *testing.T) {
	s := New(5)
	s.Add([]ingest.SeriesExemplars{
		{Labels: sa, Exemplars: []ingest.Exemplar{ex(20, 2, "trace_id", "t2"), ex(10, 1, "trace_id", "t1")}},
		{Labels: sb, Exemplars: []ingest.Exemplar{ex(15, 5, "trace_id", "t5")}},
	})
	s.Add([]ingest.SeriesExemplars{{Labels: sb, Exemplars: []ingest.Exemplar{ex(15, 5, "trace_id", "t5")}}}) // a repeat
	if s.Len() != 3 {
		t.Fatalf("%d exemplars, want 3", s.Len())
	}
	job := func(re string) [][]*labels.Matcher {
		return [][]*labels.Matcher{{labels.MustNewMatcher(labels.MatchEqual, "__name__", "req_total"), labels.MustNewMatcher(labels.MatchRegexp, "job", re)}}
	}
	f := func(mint, maxt int64, sets [][]*labels.Matcher, want ...ingest.SeriesExemplars) {
		t.Helper()
		if got := s.Select(mint, maxt, sets...); !sameExemplars(got, want) {
			t.Errorf("Select(%d, %d, %v):\n got %v\nwant %v", mint, maxt, sets, got, want)
		}
	}
	f(0, 100, job(".*"),
		ingest.SeriesExemplars{Labels: sa, Exemplars: []ingest.Exemplar{ex(10, 1, "trace_id", "t1"), ex(20, 2, "trace_id", "t2")}},
		ingest.SeriesExemplars{Labels: sb, Exemplars: []ingest.Exemplar{ex(15, 5, "trace_id", "t5")}})
	f(12, 20, job("a"), ingest.SeriesExemplars{Labels: sa, Exemplars: []ingest.Exemplar{ex(20, 2, "trace_id", "t2")}})
	f(0, 9, job(".*"))
	f(0, 100, [][]*labels.Matcher{{labels.MustNewMatcher(labels.MatchEqual, "__name__", "nope")}})

	// Three more: the oldest of all (t2, added first) goes; then t1,
	// then t5 and 30: series a leaves with its last exemplar.
	s.Add([]ingest.SeriesExemplars{
		{Labels: sc, Exemplars: []ingest.Exemplar{ex(30, 3), ex(31, math.NaN())}},
		{Labels: sb, Exemplars: []ingest.Exemplar{ex(40, 4, "trace_id", "t6")}},
	})
	if s.Len() != 5 {
		t.Fatalf("%d exemplars, want 5", s.Len())
	}
	s.Add([]ingest.SeriesExemplars{{Labels: sc, Exemplars: []ingest.Exemplar{ex(50, 6)}}})
	if s.Len() != 5 {
		t.Fatalf("%d exemplars, want 5", s.Len())
	}
	s.Add([]ingest.SeriesExemplars{{Labels: sc, Exemplars: []ingest.Exemplar{ex(60, 7), ex(61, 8)}}})
	all := s.Select(math.MinInt64, math.MaxInt64, job(".*")...)
	want := []ingest.SeriesExemplars{{Labels: sb, Exemplars: []ingest.Exemplar{ex(40, 4, "trace_id", "t6")}}}
	if !sameExemplars(all, want) {
		t.Errorf("after eviction: %v, want %v", all, want)
	}
	if s.Len() != 5 {
		t.Fatalf("%d exemplars, want 5", s.Len())
	}
	r := New(5)
	r.Add(s.All())
	if !sameExemplars(r.All(), s.All()) || r.Len() != 5 {
		t.Errorf("rebuilt from All: %v, want %v", r.All(), s.All())
	}
	r.Reset()
	if r.Len() != 0 || len(r.All()) != 0 {
		t.Error("Reset left exemplars")
	}
	z := New(0)
	z.Add(s.All())
	if z.Enabled() || z.Len() != 0 {
		t.Error("a store of size 0 keeps exemplars")
	}
}

// TestStoreMatchesModel adds random exemplars to a small store and checks
// it against the last N added (run with -race: readers run alongside).
func TestStoreMatchesModel(t *testing.T) {
	const size = 7
	s := New(size)
	var model []ingest.SeriesExemplars // one exemplar each, in order
	series := []labels.Labels{sa, sb, sc}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
				_ = s.Select(0, 1000, []*labels.Matcher{labels.MustNewMatcher(labels.MatchRegexp, "__name__", ".+")})
				_ = s.All()
			}
		}
	}()
	for i := range 200 {
		se := ingest.SeriesExemplars{Labels: series[(i*7)%3], Exemplars: []ingest.Exemplar{ex(int64(i), float64(i), "i", fmt.Sprint(i))}}
		s.Add([]ingest.SeriesExemplars{se})
		model = append(model, se)
		want := model[max(0, len(model)-size):]
		got := s.All()
		var flat []ingest.SeriesExemplars
		for _, g := range got {
			for _, e := range g.Exemplars {
				flat = append(flat, ingest.SeriesExemplars{Labels: g.Labels, Exemplars: []ingest.Exemplar{e}})
			}
		}
		if !sameExemplars(flat, want) {
			t.Fatalf("after %d adds:\n got %v\nwant %v", i+1, flat, want)
		}
	}
	close(stop)
	wg.Wait()
}
