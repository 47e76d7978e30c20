package buffer

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"path/filepath"
	"sync"
	"testing"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/strata-tsdb/strata/ingest"
	"github.com/strata-tsdb/strata/segments"
)

// recordingSink is a segments.Set that keeps the metas of each Publish.
type recordingSink struct {
	*segments.Set
	mu        sync.Mutex
	published [][]segments.Meta
}

func (r *recordingSink) Publish(metas []segments.Meta) error {
	if err := r.Set.Publish(metas); err != nil {
		return err
	}
	r.mu.Lock()
	r.published = append(r.published, metas)
	r.mu.Unlock()
	return nil
}

// lastWritten returns the number of samples the last Publish wrote.
func (r *recordingSink) lastWritten() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var n uint64
	if len(r.published) > 0 {
		for _, m := range r.published[len(r.published)-1] {
			n += m.NumSamples
		}
	}
	return n
}

func openRecordingSink(t *testing.T, dir string) *recordingSink {
	t.Helper()
	set, err := segments.OpenSet(slog.New(slog.DiscardHandler), filepath.Join(dir, "segments"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = set.Close() })
	return &recordingSink{Set: set}
}

// flushSeries returns n series labelled for these tests.
func flushSeries(n int) []labels.Labels {
	out := make([]labels.Labels, n)
	for i := range out {
		out[i] = labels.FromStrings("__name__", "m", "i", fmt.Sprint(i))
	}
	return out
}

// appendNext appends to each series of idx its next sample: the k-th
// sample of a series is at k seconds with value k; next counts them.
func appendNext(s *Store, lsets []labels.Labels, next []int, idx []int) error {
	b := &ingest.Batch{}
	for _, i := range idx {
		next[i]++
		k := next[i]
		b.Series = append(b.Series, ingest.Series{Labels: lsets[i], Samples: []ingest.Sample{{T: int64(k) * 1000, V: float64(k)}}})
	}
	return s.Append(b)
}

// checkExactlyOnce reads every series from the segments and from the
// head and fails unless together they hold each written sample (1..next[i]
// of series i) exactly once. It returns how many samples are in each.
func checkExactlyOnce(t *testing.T, sink *recordingSink, s *Store, lsets []labels.Labels, next []int) (inSegs, inHead int) {
	t.Helper()
	seen := map[string]map[int64]string{}
	add := func(where string, lset labels.Labels, ts int64, v float64) {
		key := lset.Get("i")
		if seen[key] == nil {
			seen[key] = map[int64]string{}
		}
		if prev, ok := seen[key][ts]; ok {
			t.Fatalf("series %s: sample at %d read twice, from %s and from %s", key, ts, prev, where)
		}
		if v != float64(ts/1000) {
			t.Fatalf("series %s: sample at %d has value %v", key, ts, v)
		}
		seen[key][ts] = where
	}
	segs, release := sink.Acquire(math.MinInt64, math.MaxInt64)
	defer release()
	for _, seg := range segs {
		sit, err := seg.Select(labels.MustNewMatcher(labels.MatchEqual, "__name__", "m"))
		if err != nil {
			t.Fatal(err)
		}
		for sit.Next() {
			it, err := seg.KindIterator(sit.Chunks(), segments.KindRaw)
			if err != nil {
				t.Fatal(err)
			}
			for _, x := range drainAll(t, it) {
				add("segment "+seg.Meta().ID, sit.Labels(), x.T, x.V)
				inSegs++
			}
		}
		if err := sit.Err(); err != nil {
			t.Fatal(err)
		}
	}
	ss, err := s.Head().Select(context.Background(), true, math.MinInt64, math.MaxInt64)
	if err != nil {
		t.Fatal(err)
	}
	for _, hs := range ss {
		for _, x := range drainAll(t, hs.Iterator()) {
			add("the head", hs.Labels, x.T, x.V)
			inHead++
		}
	}
	for i, lset := range lsets {
		if got := len(seen[lset.Get("i")]); got != next[i] {
			t.Fatalf("series %d: %d samples read, %d written", i, got, next[i])
		}
	}
	if got := s.Head().SamplesInHead(); got != int64(inHead) {
		t.Fatalf("the head counts %d samples, %d read from it", got, inHead)
	}
	return inSegs, inHead
}

// TestFlushDropsWhatItWroteUnderWrites flushes while writers append to
// every series: before the flush takes a series, while it writes the
// rest, and, once it has taken every series, at least two more samples to
// each. After the flush the head holds only what the flush did not write
// (the samples appended after it took the series), the segments the rest,
// each sample once. The flush used to copy each open chunk and drop it
// only if nothing had been appended to it since: under writes it dropped
// nothing, and every flush wrote the whole head again (issue 20).
func TestFlushDropsWhatItWroteUnderWrites(t *testing.T) {
	dir := t.TempDir()
	sink := openRecordingSink(t, dir)
	s := openTestStore(t, dir, StoreOptions{}, sink)
	defer s.wal.Close()
	const nSeries, writers, preRounds = 400, 4, 20
	lsets := flushSeries(nSeries)
	next := make([]int, nSeries)
	mine := make([][]int, writers) // each writer appends to its own series
	for i := range nSeries {
		mine[i%writers] = append(mine[i%writers], i)
	}
	for w := range writers {
		for range 3 {
			if err := appendNext(s, lsets, next, mine[w]); err != nil {
				t.Fatal(err)
			}
		}
	}

	// The writers append rounds (a sample to each of their series) until
	// the flush has taken every series, or preRounds, then two rounds more.
	taken := make(chan struct{})
	var post, done sync.WaitGroup
	post.Add(writers)
	done.Add(writers)
	errs := make(chan error, writers)
	for w := range writers {
		go func() {
			defer done.Done()
			posted := false
			defer func() {
				if !posted {
					post.Done()
				}
			}()
		rounds:
			for r := 0; ; r++ {
				select {
				case <-taken:
					break rounds
				default:
				}
				if r >= preRounds {
					<-taken
					break
				}
				if err := appendNext(s, lsets, next, mine[w]); err != nil {
					errs <- err
					return
				}
			}
			for range 2 {
				if err := appendNext(s, lsets, next, mine[w]); err != nil {
					errs <- err
					return
				}
			}
			posted = true
			post.Done()
		}()
	}
	s.head.testHookFlushedSeries = func(n int) {
		if n == nSeries { // every series taken: let the writers append after it
			close(taken)
			post.Wait()
		}
	}
	mustFlush(t, s)
	s.head.testHookFlushedSeries = nil
	done.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	inSegs, inHead := checkExactlyOnce(t, sink, s, lsets, next)
	if uint64(inSegs) != sink.lastWritten() {
		t.Fatalf("%d samples read from the segments, the flush wrote %d", inSegs, sink.lastWritten())
	}
	if inHead < 2*nSeries {
		t.Fatalf("%d samples in the head after the flush, want at least the %d appended after it took every series", inHead, 2*nSeries)
	}

	// A second flush writes only what the first left, and leaves nothing.
	mustFlush(t, s)
	if got := sink.lastWritten(); got != uint64(inHead) {
		t.Fatalf("the second flush wrote %d samples, want the %d the first left in the head", got, inHead)
	}
	if _, h := checkExactlyOnce(t, sink, s, lsets, next); h != 0 {
		t.Fatalf("%d samples in the head after a flush with no writes", h)
	}
}

// TestSecondFlushWritesOnlyNewSamples appends one sample to every series
// after the flush has taken them all (from the flush's own hook, so
// deterministically): the next flush writes that one sample a series, not
// again what the first wrote, and a third flush writes nothing.
func TestSecondFlushWritesOnlyNewSamples(t *testing.T) {
	dir := t.TempDir()
	sink := openRecordingSink(t, dir)
	s := openTestStore(t, dir, StoreOptions{Head: Options{ChunkSamples: 8}}, sink)
	defer s.wal.Close()
	const nSeries = 50
	lsets := flushSeries(nSeries)
	next := make([]int, nSeries)
	all := make([]int, nSeries)
	for i := range all {
		all[i] = i
	}
	for range 11 { // a closed chunk of 8 and an open one of 3 a series
		if err := appendNext(s, lsets, next, all); err != nil {
			t.Fatal(err)
		}
	}
	s.head.testHookFlushedSeries = func(n int) {
		if n == nSeries {
			if err := appendNext(s, lsets, next, all); err != nil {
				t.Error(err)
			}
		}
	}
	mustFlush(t, s)
	s.head.testHookFlushedSeries = nil
	if got, want := sink.lastWritten(), uint64(11*nSeries); got != want {
		t.Fatalf("the first flush wrote %d samples, want %d", got, want)
	}
	if got := s.Head().SamplesInHead(); got != nSeries {
		t.Fatalf("%d samples in the head after the first flush, want the %d appended after it took the series", got, nSeries)
	}
	checkExactlyOnce(t, sink, s, lsets, next)
	mustFlush(t, s)
	if got := sink.lastWritten(); got != nSeries {
		t.Fatalf("the second flush wrote %d samples, want the %d written since the first took the series", got, nSeries)
	}
	if _, h := checkExactlyOnce(t, sink, s, lsets, next); h != 0 {
		t.Fatalf("%d samples in the head after a flush with no writes", h)
	}
	n := len(sink.published)
	mustFlush(t, s)
	if len(sink.published) != n {
		t.Fatalf("a flush of an empty head published %v", sink.published[n:])
	}
}

// TestFlushDropsWhatItWroteDespiteRebuild writes out-of-order samples to
// a series after the flush took it, enough to reach MaxOOOChunks, which
// makes the series merge everything into new in-order chunks (a rebuild).
// The rebuild waits for the flush's end, so the flush still drops exactly
// what it wrote: a rebuild during the flush replaced the chunk lists the
// flush had taken, and it dropped nothing of the series.
func TestFlushDropsWhatItWroteDespiteRebuild(t *testing.T) {
	dir := t.TempDir()
	sink := openRecordingSink(t, dir)
	s := openTestStore(t, dir, StoreOptions{Head: Options{OOOBufferSize: 2, MaxOOOChunks: 2}}, sink)
	defer s.wal.Close()
	lsets := flushSeries(1)
	write := func(ks ...int) error {
		for _, k := range ks {
			if err := s.Append(batchOf(lsets[0], ingest.Sample{T: int64(k) * 1000, V: float64(k)})); err != nil {
				return err
			}
		}
		return nil
	}
	if err := write(20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 1, 2, 3, 4); err != nil {
		t.Fatal(err) // in order, then two out-of-order chunks
	}
	s.head.testHookFlushedSeries = func(int) {
		// Three out-of-order chunks more and one sample buffered: a
		// rebuild due now, and still due once the flush has dropped the
		// two chunks it took.
		if err := write(5, 6, 7, 8, 9, 10, 11); err != nil {
			t.Error(err)
		}
	}
	mustFlush(t, s)
	s.head.testHookFlushedSeries = nil
	if got := sink.lastWritten(); got != 15 {
		t.Fatalf("the flush wrote %d samples, want 15", got)
	}
	next := []int{22}
	if _, h := checkExactlyOnce(t, sink, s, lsets, next); h != 7 {
		t.Fatalf("%d samples in the head after the flush, want the 7 written after it took the series", h)
	}
	ms := s.Head().series.getByHash(lsets[0].Hash(), lsets[0])
	ms.mtx.Lock()
	ooo := len(ms.oooChunks())
	ms.mtx.Unlock()
	if flushing := s.head.opts.flushRunning(); flushing || ooo != 0 {
		t.Fatalf("after the flush: flush running %v, %d out-of-order chunks (want 0: the rebuild that waited is made)", flushing, ooo)
	}
	mustFlush(t, s)
	if got := sink.lastWritten(); got != 7 {
		t.Fatalf("the second flush wrote %d samples, want 7", got)
	}
}

// failingPublish is a sink whose Publish fails.
type failingPublish struct{ *recordingSink }

func (failingPublish) Publish([]segments.Meta) error { return fmt.Errorf("publish refused") }

// TestFailedFlushReleasesSeries: a flush that fails (here at publishing)
// keeps everything in the head, ends (out-of-order writes rebuild series
// again as they come), and makes the rebuilds that waited for it.
func TestFailedFlushReleasesSeries(t *testing.T) {
	dir := t.TempDir()
	s := openTestStore(t, dir, StoreOptions{Head: Options{OOOBufferSize: 2, MaxOOOChunks: 2}}, failingPublish{openRecordingSink(t, dir)})
	defer s.wal.Close()
	lsets := flushSeries(3)
	next := make([]int, len(lsets))
	for range 5 {
		if err := appendNext(s, lsets, next, []int{0, 1, 2}); err != nil {
			t.Fatal(err)
		}
	}
	a := lsets[0]
	oooChunks := func() int {
		ms := s.Head().series.getByHash(a.Hash(), a)
		ms.mtx.Lock()
		defer ms.mtx.Unlock()
		return len(ms.oooChunks())
	}
	s.head.testHookFlushedSeries = func(n int) {
		if n == 1 { // three out-of-order chunks: a rebuild waits
			for _, k := range []int{1, 2, 1, 2, 1, 2} {
				if err := s.Append(batchOf(a, ingest.Sample{T: int64(k) * 1000, V: float64(k)})); err != nil {
					t.Error(err)
				}
			}
			if got := oooChunks(); got != 3 {
				t.Errorf("%d out-of-order chunks during the flush, want 3 (the rebuild waiting)", got)
			}
		}
	}
	if err := s.Flush(context.Background()); err == nil {
		t.Fatal("a flush whose publish failed returned no error")
	}
	s.head.testHookFlushedSeries = nil
	if s.head.opts.flushRunning() {
		t.Fatal("a failed flush is still running")
	}
	if got := oooChunks(); got != 0 {
		t.Fatalf("%d out-of-order chunks after the failed flush, want 0 (rebuilt)", got)
	}
	if got := s.Head().SampleCostInHead(); got != 15 {
		t.Fatalf("the head weighs %d after a failed flush, want 15 (its samples, the rewrites of 1 s and 2 s gone)", got)
	}
	got := readAll(t, s.Head(), math.MinInt64, math.MaxInt64, labels.MustNewMatcher(labels.MatchEqual, "i", "0"))
	if len(got) != 5 || got[0].T != 1000 || got[4].T != 5000 {
		t.Fatalf("series 0 after the failed flush: %v", got)
	}
}

// TestFlushDueScalesWithSeries: the size trigger is MaxHeadSamples, or
// FlushSamplesPerSeries a series where that is more, so that a head of
// many series is not flushed again and again for a few samples a series
// (a flush costs mostly by series). A negative FlushSamplesPerSeries
// leaves MaxHeadSamples alone.
func TestFlushDueScalesWithSeries(t *testing.T) {
	for _, c := range []struct {
		perSeries int64
		wantSize  int64
	}{{0, 32 * 10}, {50, 50 * 10}, {-1, 100}} {
		t.Run(fmt.Sprint(c.perSeries), func(t *testing.T) {
			dir := t.TempDir()
			s := openTestStore(t, dir, StoreOptions{MaxHeadSamples: 100, FlushSamplesPerSeries: c.perSeries}, nopSink{filepath.Join(dir, "segments")})
			defer s.wal.Close()
			lsets := flushSeries(10)
			next := make([]int, len(lsets))
			all := []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}
			for s.Head().SamplesInHead() < c.wantSize {
				if s.FlushDue() {
					t.Fatalf("flush due at %d samples in 10 series, want it at more than %d", s.Head().SamplesInHead(), c.wantSize)
				}
				if err := appendNext(s, lsets, next, all); err != nil {
					t.Fatal(err)
				}
			}
			if s.FlushDue() { // exactly FlushSize: not more
				t.Fatalf("flush due at exactly %d samples in 10 series", s.Head().SamplesInHead())
			}
			if got := s.FlushSize(); got != c.wantSize {
				t.Fatalf("FlushSize %d, want %d", got, c.wantSize)
			}
			if err := appendNext(s, lsets, next, all); err != nil {
				t.Fatal(err)
			}
			if !s.FlushDue() {
				t.Fatalf("no flush due at %d samples in 10 series", s.Head().SamplesInHead())
			}
		})
	}
}
