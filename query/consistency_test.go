package query

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/strata-tsdb/strata/buffer"
	"github.com/strata-tsdb/strata/ingest"
	"github.com/strata-tsdb/strata/segments"
)

// TestReadsSeeEveryAcknowledgedSampleOnce runs writers, a flusher that
// flushes the whole head and compacts after every flush, and readers that
// query all series over all time, concurrently. Every read must find every
// sample acknowledged before its querier was opened, exactly once, with its
// value: a flush moves data from the head into a segment and a compaction
// replaces segments while the reads run, and neither may make a read miss
// data (a read that took the segment set before a flush published and the
// head after it dropped the data once did) or see it twice.
// Writers write one series set each: in-order samples at even seconds and,
// lagging 40 s behind, late samples at odd seconds, into blocks already
// flushed; the value of each sample is its timestamp. At each quarter of
// its batches a writer waits until a flush (and compaction) begun after it
// got there has ended and a read has ended since, so that every run
// flushes and reads while the writes go on, however the goroutines are
// scheduled (on a loaded machine the writers once finished before the
// flusher had ended its second flush, and the run exercised nothing).
func TestReadsSeeEveryAcknowledgedSampleOnce(t *testing.T) {
	const (
		writers, seriesPerWriter = 2, 40
		readers                  = 3
		batches                  = 300 // per writer
		lag                      = 20  // batches between a sample and its late neighbour
		block                    = int64(time.Minute / time.Millisecond)
	)
	if testing.Short() {
		t.Skip("concurrent soak")
	}
	dir := t.TempDir()
	logger := slog.New(slog.DiscardHandler)
	set, err := segments.OpenSet(logger, filepath.Join(dir, "segments"))
	if err != nil {
		t.Fatal(err)
	}
	store, err := buffer.OpenStore(logger, dir, buffer.StoreOptions{
		Head: buffer.Options{ChunkRange: block, ChunkSamples: 16}, BlockDuration: block,
	}, set, nil)
	if err != nil {
		t.Fatal(err)
	}
	comp, err := segments.NewCompactor(logger, set, segments.CompactOptions{Ranges: []int64{block, 10 * block}, ChunkSamples: 16}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := store.Close(context.Background()); err != nil {
			t.Error(err)
		}
		if err := set.Close(); err != nil {
			t.Error(err)
		}
	})
	qb := NewQueryable(store.Head(), set)
	base := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	// Batch i writes ts 2i s and, from i = lag on, ts 2(i-lag)+1 s.
	acked := make([]atomic.Int64, writers) // batches acknowledged, per writer
	lset := func(w, k int) labels.Labels {
		return labels.FromStrings("__name__", "c", "w", fmt.Sprint(w), "k", fmt.Sprint(k))
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var (
		wg          sync.WaitGroup
		writersWG   sync.WaitGroup
		flushStarts atomic.Int64
		flushes     = newProgress() // flushes and compactions ended
		reads       = newProgress()
	)
	// checkpoint waits until a flush begun after it was called has ended,
	// and a read has ended since it was called.
	checkpoint := func(w, i int) bool {
		f, r := flushStarts.Load()+1, reads.load()+1
		if err := flushes.waitFor(ctx, f); err != nil {
			if ctx.Err() == nil {
				t.Errorf("writer %d at batch %d: waiting for flush %d: %v", w, i, f, err)
			}
			return false
		}
		if err := reads.waitFor(ctx, r); err != nil {
			if ctx.Err() == nil {
				t.Errorf("writer %d at batch %d: waiting for read %d: %v", w, i, r, err)
			}
			return false
		}
		return true
	}
	for w := range writers {
		writersWG.Add(1)
		go func() {
			defer writersWG.Done()
			for i := range batches {
				if i > 0 && i%(batches/4) == 0 && !checkpoint(w, i) {
					return
				}
				var b ingest.Batch
				for k := range seriesPerWriter {
					ts := []int64{base + int64(2*i)*1000}
					if i >= lag {
						ts = append(ts, base+int64(2*(i-lag)+1)*1000)
					}
					s := ingest.Series{Labels: lset(w, k)}
					for _, x := range ts {
						s.Samples = append(s.Samples, ingest.Sample{T: x, V: float64(x)})
					}
					b.Series = append(b.Series, s)
				}
				if err := store.Append(&b); err != nil {
					t.Errorf("writer %d batch %d: %v", w, i, err)
					return
				}
				acked[w].Store(int64(i + 1))
			}
		}()
	}
	wg.Add(1)
	go func() { // flusher
		defer wg.Done()
		for ctx.Err() == nil {
			flushStarts.Add(1)
			if err := store.Flush(ctx); err != nil && ctx.Err() == nil {
				t.Errorf("flush: %v", err)
				cancel() // the writers wait for flushes
				return
			}
			store.Exclusive(func() {
				if _, err := comp.Compact(ctx); err != nil && ctx.Err() == nil {
					t.Errorf("compact: %v", err)
				}
			})
			flushes.add()
			time.Sleep(time.Millisecond) // pacing only: a flush of an empty head returns at once
		}
	}()
	// want reports whether sample ts (ms) of a writer is acknowledged
	// after n batches.
	want := func(n int64, ts int64) bool {
		sec := (ts - base) / 1000
		if sec%2 == 0 {
			return sec/2 < n
		}
		return sec/2+lag < n
	}
	check := func(ctx context.Context, r int) error {
		var n [writers]int64
		for w := range writers {
			n[w] = acked[w].Load()
		}
		q, err := qb.Querier(base, base+int64(2*batches)*1000)
		if err != nil {
			return err
		}
		defer q.Close()
		ss := q.Select(ctx, false, nil, labels.MustNewMatcher(labels.MatchEqual, "__name__", "c"))
		seen := map[string]bool{}
		var it chunkenc.Iterator
		for ss.Next() {
			s := ss.At()
			var w, k int
			if _, err := fmt.Sscan(s.Labels().Get("w"), &w); err != nil {
				return err
			}
			if _, err := fmt.Sscan(s.Labels().Get("k"), &k); err != nil {
				return err
			}
			seen[s.Labels().String()] = true
			it = s.Iterator(it)
			got := make([]bool, 2*batches)
			prev := int64(-1 << 63)
			for vt := it.Next(); vt != chunkenc.ValNone; vt = it.Next() {
				ts, v := it.At()
				if ts <= prev {
					return fmt.Errorf("reader %d: %s: sample at %d after %d (twice or out of order)", r, s.Labels(), ts, prev)
				}
				if v != float64(ts) {
					return fmt.Errorf("reader %d: %s: sample at %d has value %v", r, s.Labels(), ts, v)
				}
				prev = ts
				if sec := (ts - base) / 1000; (ts-base)%1000 != 0 || sec < 0 || sec >= 2*batches {
					return fmt.Errorf("reader %d: %s: sample at %d was never written", r, s.Labels(), ts)
				} else {
					got[sec] = true
				}
			}
			if err := it.Err(); err != nil {
				return err
			}
			for sec := int64(0); sec < 2*batches; sec++ {
				if want(n[w], base+sec*1000) && !got[sec] {
					return fmt.Errorf("reader %d: %s: acknowledged sample at +%ds is missing (writer at batch %d, %d flushes so far)", r, s.Labels(), sec, n[w], flushes.load())
				}
			}
		}
		if err := ss.Err(); err != nil {
			return err
		}
		for w := range writers {
			if n[w] == 0 {
				continue
			}
			for k := range seriesPerWriter {
				if !seen[lset(w, k).String()] {
					return fmt.Errorf("reader %d: series %s with %d acknowledged batches is missing", r, lset(w, k), n[w])
				}
			}
		}
		return nil
	}
	for r := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				if err := check(ctx, r); err != nil {
					if ctx.Err() == nil {
						t.Error(err)
						cancel()
					}
					return
				}
				reads.add()
			}
		}()
	}
	writersWG.Wait()
	cancel()
	wg.Wait()
	if err := check(context.Background(), -1); err != nil { // quiet: everything
		t.Error(err)
	}
	t.Logf("%d reads during %d flushes and compactions, %d segments", reads.load(), flushes.load(), len(set.Segments()))
	if !t.Failed() && (reads.load() == 0 || flushes.load() < 2) {
		t.Fatalf("the test exercised nothing: %d reads, %d flushes", reads.load(), flushes.load())
	}
}

// progress counts events (flushes, reads) that goroutines wait for.
type progress struct {
	mu sync.Mutex
	n  int64
	ch chan struct{} // closed and replaced at each event
}

func newProgress() *progress { return &progress{ch: make(chan struct{})} }

func (p *progress) add() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n++
	close(p.ch)
	p.ch = make(chan struct{})
}

func (p *progress) load() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n
}

// progressBound bounds a wait for an event: only a hung run reaches it.
const progressBound = 2 * time.Minute

// waitFor waits until n events have happened, ctx is done or
// progressBound has passed.
func (p *progress) waitFor(ctx context.Context, n int64) error {
	timer := time.NewTimer(progressBound)
	defer timer.Stop()
	for {
		p.mu.Lock()
		got, ch := p.n, p.ch
		p.mu.Unlock()
		if got >= n {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
			return fmt.Errorf("%d of %d events after %v", got, n, progressBound)
		}
	}
}
