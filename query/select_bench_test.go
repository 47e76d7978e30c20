package query

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"

	"github.com/strata-tsdb/strata/buffer"
	"github.com/strata-tsdb/strata/ingest"
)

// BenchmarkSelect selects 20,000 series that live in two segments and the
// head (each series in two of the three), for the engine (every series,
// each iterated for one sample), as a listing (/api/v1/series: labels
// only), and as a listing with limit 100.
func BenchmarkSelect(b *testing.B) {
	store, set, _ := openTestStore(b)
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	const n = 20000
	write := func(from, to int, ts int64) {
		var batch ingest.Batch
		for i := from; i < to; i++ {
			batch.Series = append(batch.Series, ingest.Series{Labels: labels.FromStrings("__name__", "qp_v", "job", "bench", "i", fmt.Sprintf("%05d", i*7919%n)),
				Samples: []ingest.Sample{{T: ts, V: 1}, {T: ts + 15000, V: 2}}})
		}
		if err := store.Append(&batch); err != nil {
			b.Fatal(err)
		}
	}
	write(0, n*2/3, t0)
	if err := store.Flush(context.Background()); err != nil {
		b.Fatal(err)
	}
	write(n/3, n, t0+60000)
	if err := store.Flush(context.Background()); err != nil {
		b.Fatal(err)
	}
	write(0, n/3, t0+120000)
	write(n*2/3, n, t0+120000)
	qb := NewQueryable(store.Head(), set)
	run := func(b *testing.B, hints *storage.SelectHints, iterate bool, want int) {
		b.ReportAllocs()
		for b.Loop() {
			q, _ := qb.Querier(math.MinInt64, math.MaxInt64)
			ss := q.Select(context.Background(), false, hints, qpMatcher)
			got := 0
			for ss.Next() {
				got++
				if iterate {
					it := ss.At().Iterator(nil)
					it.Next()
				}
			}
			if ss.Err() != nil || got != want {
				b.Fatalf("%d series, %v", got, ss.Err())
			}
			q.Close()
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(want), "ns/series")
	}
	all := &storage.SelectHints{Start: math.MinInt64, End: math.MaxInt64}
	b.Run("engine", func(b *testing.B) { run(b, all, true, n) })
	b.Run("listing", func(b *testing.B) {
		run(b, &storage.SelectHints{Start: math.MinInt64, End: math.MaxInt64, Func: "series"}, false, n)
	})
	b.Run("listing-limit-100", func(b *testing.B) {
		run(b, &storage.SelectHints{Start: math.MinInt64, End: math.MaxInt64, Func: "series", Limit: 100}, false, 100)
	})
}

// BenchmarkListHeadLimit lists 10,000 of 200,000 head series, as issue 20's
// `/api/v1/series?match[]=up&limit=10000` did.
func BenchmarkListHeadLimit(b *testing.B) {
	head, err := buffer.NewHead(buffer.Options{}, nil)
	if err != nil {
		b.Fatal(err)
	}
	const n = 200000
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	for from := 0; from < n; from += 20000 {
		var batch ingest.Batch
		for i := from; i < from+20000; i++ {
			batch.Series = append(batch.Series, ingest.Series{Labels: labels.FromStrings("__name__", "up", "instance", fmt.Sprintf("host-%06d", i*7919%n), "job", "node"),
				Samples: []ingest.Sample{{T: t0, V: 1}}})
		}
		if err := head.Append(&batch); err != nil {
			b.Fatal(err)
		}
	}
	qb := NewQueryable(head, nil)
	up := labels.MustNewMatcher(labels.MatchEqual, "__name__", "up")
	hints := &storage.SelectHints{Start: math.MinInt64, End: math.MaxInt64, Func: "series", Limit: 10001}
	b.ReportAllocs()
	for b.Loop() {
		q, _ := qb.Querier(math.MinInt64, math.MaxInt64)
		ss := q.Select(context.Background(), false, hints, up)
		got := 0
		for ss.Next() {
			got++
		}
		if ss.Err() != nil || got != 10001 {
			b.Fatalf("%d series, %v", got, ss.Err())
		}
		q.Close()
	}
}
