package buffer

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/strata-tsdb/strata/buffer/wal"
	"github.com/strata-tsdb/strata/ingest"
)

// expectStore opens a store whose group commits wait for announced
// appends as long as they are outstanding (no time limit), so that an
// announcement that is never ended hangs the test instead of costing a
// few milliseconds.
func expectStore(t *testing.T) *Store {
	t.Helper()
	dir := t.TempDir()
	opts := StoreOptions{WAL: wal.DefaultOptions()}
	opts.WAL.ExpectWait = time.Hour
	s := openTestStore(t, dir, opts, nopSink{filepath.Join(dir, "segments")})
	t.Cleanup(func() {
		if err := s.Close(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return s
}

// TestAppendExpectedBeforeFlush checks the case that would deadlock: an
// append in flight waits in its group commit for an announced append
// (ExpectAppend) while a flush waits for the appends in flight to end,
// and the announced append reaches the store's append lock behind the
// flush. AppendExpected must end its announcement before it waits for
// the lock, so that the commit, the first append, the flush and then the
// announced append all complete.
func TestAppendExpectedBeforeFlush(t *testing.T) {
	s := expectStore(t)
	mustAppend(t, s, labels.FromStrings("__name__", "before"), 0, 0) // something to flush
	x := s.ExpectAppend()
	first := make(chan error, 1)
	go func() { first <- s.Append(batchOf(labels.FromStrings("__name__", "first"), ingest.Sample{T: 1, V: 1})) }()
	// The first append holds the append lock once it has made its series.
	for s.head.NumSeries() < 2 {
		time.Sleep(100 * time.Microsecond)
	}
	flushed := make(chan error, 1)
	go func() { flushed <- s.Flush(context.Background()) }()
	// The flush waits for the append lock: readers are refused now.
	for s.appendMtx.TryRLock() {
		s.appendMtx.RUnlock()
		select {
		case err := <-flushed:
			t.Fatalf("the flush ended (err %v) while an append was in flight", err)
		default:
			time.Sleep(100 * time.Microsecond)
		}
	}
	if err := s.AppendExpected(x, batchOf(labels.FromStrings("__name__", "second"), ingest.Sample{T: 2, V: 2})); err != nil {
		t.Fatal(err)
	}
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if err := <-flushed; err != nil {
		t.Fatal(err)
	}
}

// TestAppendExpectedConcurrent appends announced batches from several
// writers at once, some announcements ended without an append (a request
// that did not decode), under commits that wait for announcements without
// a time limit: every append must complete, and every sample acknowledged
// be in the head and, after a crash (the log closed, nothing flushed), in
// the replayed head.
func TestAppendExpectedConcurrent(t *testing.T) {
	dir := t.TempDir()
	opts := StoreOptions{WAL: wal.DefaultOptions()}
	opts.WAL.ExpectWait = time.Hour
	sink := nopSink{filepath.Join(dir, "segments")}
	s := openTestStore(t, dir, opts, sink)
	const writers, rounds, series = 4, 60, 20
	skipped := func(i int) bool { return i%7 == 3 }
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range rounds {
				x := s.ExpectAppend()
				if skipped(i) {
					x.Done()
					continue
				}
				b := &ingest.Batch{}
				for k := range series {
					b.Series = append(b.Series, ingest.Series{
						Labels:  labels.FromStrings("__name__", "m", "k", fmt.Sprint(k)),
						Samples: []ingest.Sample{{T: int64(i*writers + w), V: float64(w)}},
					})
				}
				if err := s.AppendExpected(x, b); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	check := func(h *Head) {
		t.Helper()
		for k := range series {
			got := readAll(t, h, 0, 1<<40, labels.MustNewMatcher(labels.MatchEqual, "k", fmt.Sprint(k)))
			var want []ingest.Sample
			for i := range rounds {
				for w := range writers {
					if !skipped(i) {
						want = append(want, ingest.Sample{T: int64(i*writers + w), V: float64(w)})
					}
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("series %d: got %v, want %v", k, got, want)
			}
		}
	}
	check(s.head)
	if err := s.wal.Close(); err != nil { // as after a crash: nothing flushed
		t.Fatal(err)
	}
	s = openTestStore(t, dir, opts, sink)
	defer s.Close(context.Background())
	check(s.head)
}
