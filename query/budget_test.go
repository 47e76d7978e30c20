package query

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/strata-tsdb/strata/buffer"
	"github.com/strata-tsdb/strata/ingest"
	"github.com/strata-tsdb/strata/segments"
)

// budgetHead returns a head with n series qp_v{i=…} of 10 samples each,
// the last at now.
func budgetHead(t testing.TB, n int, now time.Time) *buffer.Head {
	t.Helper()
	head, err := buffer.NewHead(buffer.Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var b ingest.Batch
	for i := range n {
		s := ingest.Series{Labels: labels.FromStrings("__name__", "qp_v", "i", fmt.Sprint(i))}
		for j := range 10 {
			s.Samples = append(s.Samples, ingest.Sample{T: now.Add(-time.Duration(9-j) * time.Minute).UnixMilli(), V: float64(j)})
		}
		b.Series = append(b.Series, s)
	}
	if err := head.Append(&b); err != nil {
		t.Fatal(err)
	}
	return head
}

var qpMatcher = labels.MustNewMatcher(labels.MatchEqual, "__name__", "qp_v")

// openTestStore opens a store and its segment set in a temporary data
// dir, both closed when the test ends.
func openTestStore(tb testing.TB) (*buffer.Store, *segments.Set, string) {
	tb.Helper()
	dir := tb.TempDir()
	logger := slog.New(slog.DiscardHandler)
	set, err := segments.OpenSet(logger, filepath.Join(dir, "segments"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { set.Close() })
	store, err := buffer.OpenStore(logger, dir, buffer.StoreOptions{}, set, nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { store.Close(context.Background()) })
	return store, set, dir
}

// TestSelectBudget holds a querier to Queryable.MaxSelectBytes while it
// selects: the Select that goes past it fails with ErrSelectLimit naming
// query.max_select_bytes, the sets selected before it fail too (the engine
// selects for every selector before it evaluates one), the queriers of one
// WithSelectBudget context share the budget, and a querier gives its share
// back when it closes.
func TestSelectBudget(t *testing.T) {
	now := time.Now()
	qb := NewQueryable(budgetHead(t, 100, now), nil)
	qb.MaxSelectBytes = 250 * SelectedSeriesBytes // two selections of 100 series fit, three do not
	ctx := WithSelectBudget(context.Background())
	q1, _ := qb.Querier(0, now.UnixMilli())
	first := q1.Select(ctx, false, nil, qpMatcher)
	second := q1.Select(ctx, false, nil, qpMatcher)
	q2, _ := qb.Querier(0, now.UnixMilli()) // the same request: the same budget
	third := q2.Select(ctx, false, nil, qpMatcher)
	if third.Next() || !errors.Is(third.Err(), ErrSelectLimit) || !strings.Contains(third.Err().Error(), "query.max_select_bytes") {
		t.Fatalf("third selection over the shared budget: err %v, want ErrSelectLimit naming query.max_select_bytes", third.Err())
	}
	// q2 went over: its other sets fail at once; q1's did not go over and
	// still read.
	if s := q2.Select(ctx, false, nil, qpMatcher); s.Next() || !errors.Is(s.Err(), ErrSelectLimit) {
		t.Fatalf("a selection after the budget was exceeded: %v", s.Err())
	}
	n := 0
	for first.Next() {
		n++
	}
	if n != 100 || first.Err() != nil {
		t.Fatalf("first selection: %d series, %v", n, first.Err())
	}
	_ = second // holds its share until q1 closes
	q2.Close()
	q1.Close()
	// Everything was given back: a new querier of the same request fits.
	q3, _ := qb.Querier(0, now.UnixMilli())
	defer q3.Close()
	if s := q3.Select(ctx, false, nil, qpMatcher); !s.Next() || s.Err() != nil {
		t.Fatalf("after the queriers closed: %v", s.Err())
	}

	// Without the context's budget, each querier has its own.
	q4, _ := qb.Querier(0, now.UnixMilli())
	defer q4.Close()
	q5, _ := qb.Querier(0, now.UnixMilli())
	defer q5.Close()
	for _, q := range []storage.Querier{q4, q4, q5, q5} {
		if s := q.Select(context.Background(), false, nil, qpMatcher); !s.Next() || s.Err() != nil {
			t.Fatalf("separate budgets: %v", s.Err())
		}
	}
	// A selection of series without chunks costs about what is charged.
	unlimited := NewQueryable(budgetHead(t, 2000, now), nil)
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	before := ms.HeapAlloc
	q6, _ := unlimited.Querier(0, now.UnixMilli())
	defer q6.Close()
	var keep []storage.SeriesSet
	for range 50 {
		keep = append(keep, q6.Select(context.Background(), false, nil, qpMatcher))
	}
	runtime.GC()
	runtime.ReadMemStats(&ms)
	heap, charged := int64(ms.HeapAlloc)-int64(before), q6.(*querier).selected.Load()
	runtime.KeepAlive(keep)
	t.Logf("100,000 series selected: heap +%d bytes, charged %d", heap, charged)
	if heap > 2*charged {
		t.Errorf("a selection takes %d bytes of heap, more than twice the %d charged for it", heap, charged)
	}
}

// TestManySelectorsFailFast runs issue 16's hostile query through the
// engine, 3,000 selectors of 2,000 series each: it must fail with
// ErrSelectLimit (before, it held 4.7 GB), and without evaluating the
// selectors that fit (the engine's cost per series grows with the depth of
// the expression, so evaluating them took a minute).
func TestManySelectorsFailFast(t *testing.T) {
	now := time.Now()
	qb := NewQueryable(budgetHead(t, 2000, now), nil)
	qb.MaxSelectBytes = 128 << 20
	eng, err := NewEngine(nil, nil, qb, Options{})
	if err != nil {
		t.Fatal(err)
	}
	q := strings.TrimSuffix(strings.Repeat("qp_v + ", 3000), " + ")
	if _, err := eng.Instant(context.Background(), q, now); !errors.Is(err, ErrSelectLimit) {
		t.Fatalf("3,000 selectors of 2,000 series: %v, want ErrSelectLimit", err)
	}
	if _, err := eng.Instant(context.Background(), strings.TrimSuffix(strings.Repeat(`qp_v{i="3"} + `, 3000), " + "), now); err != nil {
		t.Fatalf("3,000 selectors of one series: %v", err)
	}
}

// TestSeriesListingReadsNoChunk lists series the way /api/v1/series does
// (hints.Func "series", labels only) over a segment whose chunk bytes are
// damaged after it was opened: the listing must succeed, because it reads
// index entries and head references only, while reading the samples finds
// the damage.
func TestSeriesListingReadsNoChunk(t *testing.T) {
	store, set, dir := openTestStore(t)
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	var b ingest.Batch
	for i := range 20 {
		s := ingest.Series{Labels: labels.FromStrings("__name__", "qp_v", "i", fmt.Sprint(i))}
		for j := range 200 {
			s.Samples = append(s.Samples, ingest.Sample{T: t0.Add(time.Duration(j) * 15 * time.Second).UnixMilli(), V: float64(i*j) + 0.5})
		}
		b.Series = append(b.Series, s)
	}
	if err := store.Append(&b); err != nil {
		t.Fatal(err)
	}
	if err := store.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	chunkFiles, err := filepath.Glob(filepath.Join(dir, "segments", "*", "chunks", "*"))
	if err != nil || len(chunkFiles) == 0 {
		t.Fatalf("no chunk files: %v", err)
	}
	for _, f := range chunkFiles { // damage every chunk file in the middle, in place
		fh, err := os.OpenFile(f, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		st, _ := fh.Stat()
		junk := bytes.Repeat([]byte{0xA5}, int(st.Size()/2))
		if _, err := fh.WriteAt(junk, st.Size()/4); err != nil {
			t.Fatal(err)
		}
		fh.Close()
	}
	qb := NewQueryable(store.Head(), set)
	q, _ := qb.Querier(math.MinInt64, math.MaxInt64)
	defer q.Close()
	ss := q.Select(context.Background(), false, &storage.SelectHints{Start: math.MinInt64, End: math.MaxInt64, Func: "series"}, qpMatcher)
	n := 0
	var listed []storage.Series
	for ss.Next() {
		n++
		listed = append(listed, ss.At())
	}
	if ss.Err() != nil || n != 20 {
		t.Fatalf("listing over damaged chunks: %d series, %v", n, ss.Err())
	}
	for _, s := range listed {
		it := s.Iterator(nil)
		if it.Next() != chunkenc.ValNone || it.Err() == nil {
			t.Fatalf("a series listed for its labels gave samples: %v", it.Err())
		}
	}
	damaged := 0
	read := q.Select(context.Background(), false, &storage.SelectHints{Start: math.MinInt64, End: math.MaxInt64}, qpMatcher)
	for read.Next() {
		it := read.At().Iterator(nil)
		for it.Next() != chunkenc.ValNone {
		}
		if it.Err() != nil {
			damaged++
		}
	}
	if damaged == 0 {
		t.Fatal("reading the samples found no damage: the test damaged nothing")
	}
}

// TestSelectLimitTakesTheSmallest lists series with a limit (as
// /api/v1/series?limit= and the Explore page do) over two segments and the
// head holding overlapping series: the answer must be the limit smallest
// label sets of the unlimited answer, and it must fit a select budget that
// the unlimited listing does not (each source gives only its limit
// smallest).
func TestSelectLimitTakesTheSmallest(t *testing.T) {
	store, set, _ := openTestStore(t)
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	write := func(from, to int, ts int64) {
		var b ingest.Batch
		for i := from; i < to; i++ {
			b.Series = append(b.Series, ingest.Series{Labels: labels.FromStrings("__name__", "qp_v", "i", fmt.Sprintf("%04d", i*7%1000)),
				Samples: []ingest.Sample{{T: ts, V: 1}}})
		}
		if err := store.Append(&b); err != nil {
			t.Fatal(err)
		}
	}
	write(0, 600, t0)
	if err := store.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	write(300, 900, t0+1000)
	if err := store.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	write(500, 1000, t0+2000) // the head
	qb := NewQueryable(store.Head(), set)
	list := func(limit int) ([]string, error) {
		q, _ := qb.Querier(math.MinInt64, math.MaxInt64)
		defer q.Close()
		ss := q.Select(context.Background(), false, &storage.SelectHints{Start: math.MinInt64, End: math.MaxInt64, Func: "series", Limit: limit}, qpMatcher)
		var out []string
		for ss.Next() {
			out = append(out, ss.At().Labels().String())
		}
		return out, ss.Err()
	}
	all, err := list(0)
	if err != nil || len(all) != 1000 {
		t.Fatalf("unlimited: %d series, %v", len(all), err)
	}
	for _, limit := range []int{1, 7, 250, 999, 1000, 2000} {
		got, err := list(limit)
		if err != nil {
			t.Fatal(err)
		}
		want := all[:min(limit, len(all))]
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("limit %d: %d series, not the %d smallest", limit, len(got), len(want))
		}
	}
	// A labels-only listing holds nothing per series it streams but the
	// head's references: it fits a budget that a selection for the engine,
	// which keeps every series, does not.
	qb.MaxSelectBytes = 600 * SelectedSeriesBytes
	if got, err := list(0); err != nil || len(got) != 1000 {
		t.Fatalf("unlimited listing within a budget of 600 series: %d, %v", len(got), err)
	}
	q, _ := qb.Querier(math.MinInt64, math.MaxInt64)
	defer q.Close()
	ss := q.Select(context.Background(), false, &storage.SelectHints{Start: math.MinInt64, End: math.MaxInt64}, qpMatcher)
	for ss.Next() {
	}
	if !errors.Is(ss.Err(), ErrSelectLimit) {
		t.Fatalf("selecting 1000 series for the engine over a budget of 600: %v, want ErrSelectLimit", ss.Err())
	}
}
