package metadata

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/common/model"

	"github.com/strata-tsdb/strata/ingest"
)

func fm(family string, typ model.MetricType, help string) ingest.FamilyMetadata {
	return ingest.FamilyMetadata{Family: family, Metadata: ingest.Metadata{Type: typ, Help: help}}
}

// TestStore: changes are what is new; repeats change nothing; a family
// keeps its distinct entries (newest first in answers, at most
// MaxPerFamily); the family bound drops and counts; limits work as in
// Prometheus.
func TestStore(t *testing.T) {
	s := New(3)
	in := []ingest.FamilyMetadata{fm("a_total", model.MetricTypeCounter, "A."), fm("b", model.MetricTypeGauge, "B.")}
	if ch := s.Changes(in, nil); !slices.Equal(ch, in) {
		t.Fatalf("changes %v, want %v", ch, in)
	}
	s.Add(in)
	if ch := s.Changes(in, nil); len(ch) != 0 {
		t.Fatalf("repeat changes %v", ch)
	}
	s.Add([]ingest.FamilyMetadata{fm("a_total", model.MetricTypeCounter, "A, again."), fm("c", "", "")})
	// A fourth family does not fit.
	if ch := s.Changes([]ingest.FamilyMetadata{fm("d", model.MetricTypeGauge, "D.")}, nil); len(ch) != 0 || s.Dropped() != 1 {
		t.Fatalf("over the bound: changes %v, dropped %d", ch, s.Dropped())
	}
	s.Add([]ingest.FamilyMetadata{fm("d", model.MetricTypeGauge, "D.")})
	want := []ingest.FamilyMetadata{fm("a_total", model.MetricTypeCounter, "A, again."), fm("a_total", model.MetricTypeCounter, "A."), fm("b", model.MetricTypeGauge, "B."), fm("c", model.MetricTypeUnknown, "")}
	if got := s.Query("", -1, -1); !slices.Equal(got, want) {
		t.Fatalf("query all:\n got %v\nwant %v", got, want)
	}
	f := func(metric string, limit, perMetric int, want ...ingest.FamilyMetadata) {
		t.Helper()
		if got := s.Query(metric, limit, perMetric); !slices.Equal(got, want) {
			t.Errorf("Query(%q, %d, %d) = %v, want %v", metric, limit, perMetric, got, want)
		}
	}
	f("b", -1, -1, fm("b", model.MetricTypeGauge, "B."))
	f("nope", -1, -1)
	f("", 1, -1, want[:2]...)
	f("", 0, -1)
	f("", -1, 1, want[0], want[2], want[3])
	f("a_total", -1, 1, want[0])

	// Rebuilt from All, as replay rebuilds it.
	r := New(3)
	r.Add(s.All())
	if !slices.Equal(r.Query("", -1, -1), want) {
		t.Errorf("rebuilt from All: %v", r.Query("", -1, -1))
	}

	// At most MaxPerFamily entries, the oldest go.
	for i := range MaxPerFamily + 2 {
		s.Add([]ingest.FamilyMetadata{fm("b", model.MetricTypeGauge, fmt.Sprint(i))})
	}
	got := s.Query("b", -1, -1)
	if len(got) != MaxPerFamily || got[0].Help != fmt.Sprint(MaxPerFamily+1) || got[MaxPerFamily-1].Help != "2" {
		t.Errorf("family past MaxPerFamily: %v", got)
	}
	// A long help is cut.
	s.Add([]ingest.FamilyMetadata{fm("c", model.MetricTypeGauge, strings.Repeat("é", MaxHelpBytes))})
	if h := s.Query("c", -1, 1)[0].Help; len(h) != MaxHelpBytes {
		t.Errorf("help of %d bytes kept", len(h))
	}
	// Zero families: nothing kept.
	z := New(0)
	z.Add(in)
	if z.Len() != 0 || len(z.Changes(in, nil)) != 0 {
		t.Error("a store of zero families keeps metadata")
	}
}

// TestStoreConcurrent adds and reads from many goroutines (run with -race).
func TestStoreConcurrent(t *testing.T) {
	s := New(1000)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				in := []ingest.FamilyMetadata{fm(fmt.Sprintf("m%d", i%50), model.MetricTypeGauge, fmt.Sprint(g))}
				s.Add(s.Changes(in, nil))
				_ = s.Query("", 10, 1)
				_ = s.All()
			}
		}()
	}
	wg.Wait()
	if s.Len() != 50 {
		t.Fatalf("%d families, want 50", s.Len())
	}
	for _, e := range s.Query("", -1, -1) {
		if n := len(s.Query(e.Family, -1, -1)); n != 4 {
			t.Fatalf("family %s has %d entries, want one per writer", e.Family, n)
		}
	}
}
