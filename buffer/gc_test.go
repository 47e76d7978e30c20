package buffer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/strata-tsdb/strata/ingest"
	"github.com/strata-tsdb/strata/segments"
)

// TestIdleSeriesLeaveTheHead: a series that two flushes in a row find
// empty leaves the head (series count, postings, label values, the series
// limit), one written to between the flushes stays, and a removed series
// that is written again comes back with its new samples.
func TestIdleSeriesLeaveTheHead(t *testing.T) {
	dir := t.TempDir()
	s := openTestStore(t, dir, StoreOptions{Head: Options{MaxSeries: 2}}, nopSink{filepath.Join(dir, "segments")})
	defer s.wal.Close()
	h := s.Head()
	pod := func(name string) labels.Labels { return labels.FromStrings("__name__", "up", "pod", name) }
	name := labels.MustNewMatcher(labels.MatchEqual, "__name__", "up")

	mustAppend(t, s, pod("a"), 1000, 1)
	mustAppend(t, s, pod("b"), 1000, 1)
	if err := s.Append(batchOf(pod("c"), ingest.Sample{T: 1000, V: 1})); err == nil {
		t.Fatal("a third series was accepted under a limit of 2")
	}
	mustFlush(t, s) // both emptied: marked idle, still there
	if got := h.NumSeries(); got != 2 {
		t.Fatalf("after the first flush: %d series, want 2", got)
	}
	mustAppend(t, s, pod("b"), 2000, 2) // b is active again
	mustFlush(t, s)                     // a: empty twice, removed; b: kept
	if got := h.NumSeries(); got != 1 {
		t.Fatalf("after the second flush: %d series, want 1", got)
	}
	vals, err := h.LabelValues(context.Background(), "pod", math.MinInt64, math.MaxInt64)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(vals, []string{"b"}) {
		t.Fatalf("label values of pod after removing a: %q", vals)
	}
	if refs := h.index.postingsForMatchers(name); len(refs) != 1 {
		t.Fatalf("postings for up: %v, want only b's", refs)
	}

	// The removed series frees its place under the limit, which is full again.
	mustAppend(t, s, pod("c"), 3000, 3)
	if err := s.Append(batchOf(pod("a"), ingest.Sample{T: 4000, V: 4})); !errors.Is(err, ErrTooManySeries) {
		t.Fatalf("a fourth series under a limit of 2 with b and c: %v", err)
	}
	mustFlush(t, s) // b: found empty by two flushes in a row, removed; c: kept
	mustAppend(t, s, pod("a"), 4000, 4)
	// a again: new series, only its new sample in the head.
	got := readAll(t, h, math.MinInt64, math.MaxInt64, labels.MustNewMatcher(labels.MatchEqual, "pod", "a"))
	if len(got) != 1 || got[0].T != 4000 || got[0].V != 4 {
		t.Fatalf("a after coming back: %v", got)
	}
	if got := h.NumSeries(); got != 2 {
		t.Fatalf("with a and c: %d series, want 2", got)
	}
}

// TestGCKeepsEveryAcknowledgedSample appends to series with gaps longer
// than the time between flushes, while flushes remove idle series
// concurrently: every acknowledged sample must end up in a segment. Half
// the writers decode remote write with the head's help (handles).
func TestGCKeepsEveryAcknowledgedSample(t *testing.T) {
	dir := t.TempDir()
	set, err := segments.OpenSet(slog.New(slog.DiscardHandler), filepath.Join(dir, "segments"))
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	s := openTestStore(t, dir, StoreOptions{}, set)
	defer s.wal.Close()

	const (
		writers   = 4
		perWriter = 25 // series each
		rounds    = 60
	)
	series := func(i int) labels.Labels { return labels.FromStrings("__name__", "job_up", "job", fmt.Sprint(i)) }
	want := map[string][]int64{}
	var (
		mu      sync.Mutex
		wg      sync.WaitGroup
		writing atomic.Bool
		flushes atomic.Int64 // flushes completed while writing
		failed  atomic.Bool  // the flusher stopped on an error
	)
	writing.Store(true)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range rounds {
				if r%4 == 0 {
					// Let four flushes complete, the first started after
					// the last round: each series written in it is then
					// flushed, found empty, found idle and removed before
					// its next write, whatever the scheduling. The flusher
					// runs throughout, concurrently with the other rounds.
					for want := flushes.Load() + 4; flushes.Load() < want && !failed.Load(); {
						time.Sleep(100 * time.Microsecond)
					}
				}
				for i := w * perWriter; i < (w+1)*perWriter; i++ {
					if (i+r)%4 != 0 { // each series is written every fourth round
						continue
					}
					ts := int64(r*1000 + i)
					b := batchOf(series(i), ingest.Sample{T: ts, V: float64(ts)})
					if w%2 == 0 {
						// Half the writers decode remote write with the
						// head's help: the handles of their batches may
						// name series a flush removes before the append.
						b = decodeKnown(t, s, series(i), ts, float64(ts))
					}
					if err := s.Append(b); err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					want[series(i).String()] = append(want[series(i).String()], ts)
					mu.Unlock()
				}
				time.Sleep(200 * time.Microsecond)
			}
		}()
	}
	flushed := make(chan int)
	go func() {
		n := 0
		for writing.Load() {
			if err := s.Flush(context.Background()); err != nil {
				t.Error(err)
				failed.Store(true)
				break
			}
			n++
			flushes.Add(1)
		}
		flushed <- n
	}()
	wg.Wait()
	writing.Store(false)
	n := <-flushed
	mustFlush(t, s)
	removed := testutil.ToFloat64(s.metrics.seriesRemoved)
	t.Logf("%d flushes while writing; %v idle series removed", n, removed)
	if n < rounds || removed == 0 {
		t.Fatalf("%d flushes while writing removed %v idle series: the test meant to remove series between their writes", n, removed)
	}

	// Two more flushes (each needs data, hence the keeper) remove the rest.
	keeper := labels.FromStrings("__name__", "keeper")
	for ts := range int64(2) {
		mustAppend(t, s, keeper, rounds*1000+ts, 0)
		mustFlush(t, s)
	}
	if got := s.Head().NumSeries(); got != 1 {
		t.Errorf("after the writers stopped and two flushes: %d series in the head, want only the keeper", got)
	}

	got := map[string][]int64{}
	segs, release := set.Acquire(math.MinInt64, math.MaxInt64)
	defer release()
	for _, seg := range segs {
		it, err := seg.Select(labels.MustNewMatcher(labels.MatchEqual, "__name__", "job_up"))
		if err != nil {
			t.Fatal(err)
		}
		for it.Next() {
			key := it.Labels().String()
			for _, m := range it.Chunks() {
				c, err := seg.ReadChunk(m.Ref)
				if err != nil {
					t.Fatal(err)
				}
				ci := c.Iterator(nil)
				for ci.Next() == chunkenc.ValFloat {
					ts, v := ci.At()
					if v != float64(ts) {
						t.Fatalf("%s@%d = %v", key, ts, v)
					}
					got[key] = append(got[key], ts)
				}
			}
		}
		if err := it.Err(); err != nil {
			t.Fatal(err)
		}
	}
	if len(want) != writers*perWriter {
		t.Fatalf("wrote %d series, want %d", len(want), writers*perWriter)
	}
	for key, ts := range want {
		slices.Sort(ts)
		have := slices.Compact(slices.Sorted(slices.Values(got[key])))
		if !slices.Equal(ts, have) {
			t.Errorf("%s: acknowledged %d samples, segments hold %d: %v vs %v", key, len(ts), len(have), ts, have)
		}
	}
}

// TestOutOfOrderWriteDuringFlushKeepsSeries: a series written during a
// flush, after the flush took its data, is not empty when the flush
// sweeps the head, also when all it holds then is out of order (sorted
// into a chunk, or still in the buffer): it is kept after the next flush,
// as a series written between two flushes is.
func TestOutOfOrderWriteDuringFlushKeepsSeries(t *testing.T) {
	dir := t.TempDir()
	s := openTestStore(t, dir, StoreOptions{Head: Options{OOOBufferSize: 2}}, nopSink{filepath.Join(dir, "segments")})
	defer s.wal.Close()
	h := s.Head()
	a, b := labels.FromStrings("__name__", "a"), labels.FromStrings("__name__", "b")
	mustAppend(t, s, a, 10_000, 1)
	mustAppend(t, s, b, 10_000, 1)
	done := false
	h.testHookFlushedSeries = func(n int) {
		if done || n < 2 {
			return
		}
		done = true
		// Older than what the flush took: a's two samples fill the
		// buffer and are sorted into a chunk, b's one stays in it.
		mustAppend(t, s, a, 1000, 2)
		mustAppend(t, s, a, 2000, 3)
		mustAppend(t, s, b, 1000, 2)
	}
	mustFlush(t, s)
	h.testHookFlushedSeries = nil
	for _, c := range []struct {
		lset          labels.Labels
		chunks, inBuf int
	}{{a, 1, 0}, {b, 0, 1}} {
		ms := h.series.getByHash(c.lset.Hash(), c.lset)
		ms.mtx.Lock()
		chunks, inBuf, inOrder := len(ms.oooChunks()), len(ms.oooBuf()), len(ms.chunks) > 0 || ms.head != nil
		ms.mtx.Unlock()
		if chunks != c.chunks || inBuf != c.inBuf || inOrder {
			t.Fatalf("%s after the flush: %d out-of-order chunks, %d buffered, in-order data %v; want %d, %d, none", c.lset, chunks, inBuf, inOrder, c.chunks, c.inBuf)
		}
	}
	mustFlush(t, s) // takes the out-of-order data
	if n := h.NumSeries(); n != 2 {
		t.Fatalf("%d series after the flush after the writes, want both kept", n)
	}
}
