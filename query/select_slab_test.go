package query

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/strata-tsdb/strata/ingest"
)

// TestSelectSeriesKeepTheirSources selects 150 series that four flushed
// segments and the head hold in different combinations (a series in none
// to all of them), so that the series and their segment sources, cut
// from the selection's slabs, fill several slabs of different sizes; every
// series must read exactly its own samples.
func TestSelectSeriesKeepTheirSources(t *testing.T) {
	store, set, _ := openTestStore(t)
	t0 := time.Date(2026, 1, 10, 0, 0, 0, 0, time.UTC).UnixMilli()
	want := map[string][]float64{}
	for part := range 5 { // four segments, then the head
		bt := &ingest.Batch{}
		for i := range 150 {
			if (i*7+part)%(part+2) == 0 {
				continue
			}
			name := fmt.Sprintf("s%03d", i)
			s := ingest.Series{Labels: labels.FromStrings("__name__", "x", "id", name)}
			for k := range 3 {
				v := float64(i*1000 + part*10 + k)
				s.Samples = append(s.Samples, ingest.Sample{T: t0 + int64(part)*3_600_000 + int64(k)*60_000, V: v})
				want[name] = append(want[name], v)
			}
			bt.Series = append(bt.Series, s)
		}
		if err := store.Append(bt); err != nil {
			t.Fatal(err)
		}
		if part < 4 {
			if err := store.Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
	}
	q, err := NewQueryable(store.Head(), set).Querier(t0, t0+5*3_600_000)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	ss := q.Select(context.Background(), true, nil, labels.MustNewMatcher(labels.MatchEqual, "__name__", "x"))
	var all []storage.Series // as the engine does, every series before reading any
	for ss.Next() {
		all = append(all, ss.At())
	}
	if err := ss.Err(); err != nil {
		t.Fatal(err)
	}
	got := map[string][]float64{}
	var it chunkenc.Iterator
	for _, s := range all {
		name := s.Labels().Get("id")
		it = s.Iterator(it)
		for it.Next() == chunkenc.ValFloat {
			_, v := it.At()
			got[name] = append(got[name], v)
		}
		if err := it.Err(); err != nil {
			t.Fatal(err)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("%d series selected, want %d", len(got), len(want))
	}
	for name, w := range want {
		g := got[name]
		if len(g) != len(w) {
			t.Fatalf("%s: %d samples, want %d", name, len(g), len(w))
		}
		for k := range w {
			if g[k] != w[k] && !(math.IsNaN(g[k]) && math.IsNaN(w[k])) {
				t.Fatalf("%s: sample %d is %v, want %v", name, k, g[k], w[k])
			}
		}
	}
}
