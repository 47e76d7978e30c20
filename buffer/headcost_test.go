package buffer

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand"
	"path/filepath"
	"sync"
	"testing"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/strata-tsdb/strata/ingest"
	"github.com/strata-tsdb/strata/segments"
)

// TestFlushDueWeighsHistograms: head.max_samples weighs a native histogram
// by its size (ingest.HistogramCost), a float by 1. A head of 150 floats
// and a handful of histograms is due once their weight passes the limit,
// although it holds far fewer samples than the limit. The plain count
// (SamplesInHead) stays a count.
func TestFlushDueWeighsHistograms(t *testing.T) {
	const limit = 200
	dir := t.TempDir()
	set, err := segments.OpenSet(slog.New(slog.DiscardHandler), filepath.Join(dir, "segments"))
	if err != nil {
		t.Fatal(err)
	}
	opts := StoreOptions{Head: Options{ChunkSamples: 8, ChunkRange: 3_600_000}, BlockDuration: 7_200_000, MaxHeadSamples: limit}
	s := openTestStore(t, dir, opts, set)
	defer s.Close(context.Background())

	b := labels.FromStrings("__name__", "b")
	for i := range 150 {
		mustAppend(t, s, b, int64(i)*1000, float64(i))
	}
	if s.FlushDue() {
		t.Fatalf("150 floats under head.max_samples=%d: flush due", limit)
	}
	weight, count := int64(150), int64(150)
	due := false
	for i := 0; !due; i++ {
		if i > 50 {
			t.Fatalf("%d histograms (%d samples, weight %d) and still no flush due at head.max_samples=%d", i, count, weight, limit)
		}
		h := testHistogram(10+i, false)
		c := int64(ingest.HistogramCost(h, nil))
		if c < 12 {
			t.Fatalf("test histogram costs %d, want a large one", c)
		}
		if err := s.Append(histBatch(metricA, segments.Sample{T: int64(i) * 1000, H: h})); err != nil {
			t.Fatal(err)
		}
		weight += c
		count++
		due = s.FlushDue()
		if want := weight > limit; due != want {
			t.Fatalf("after %d histograms (weight %d, %d samples): FlushDue %v, want %v", i+1, weight, count, due, want)
		}
	}
	if count > limit {
		t.Fatalf("the head holds %d samples: the test shows nothing about weighing", count)
	}
	if got := s.Head().SampleCostInHead(); got != weight {
		t.Errorf("SampleCostInHead = %d, want %d", got, weight)
	}
	if got := s.Head().SamplesInHead(); got != count {
		t.Errorf("SamplesInHead = %d, want the plain count %d", got, count)
	}
	mustFlush(t, s)
	if w, n := s.Head().SampleCostInHead(), s.Head().SamplesInHead(); w != 0 || n != 0 {
		t.Errorf("after a flush the head weighs %d with %d samples, want 0 and 0", w, n)
	}
	if s.FlushDue() {
		t.Error("flush due right after a flush")
	}
}

// TestSampleCostStaysExact writes histograms and floats in and out of
// order (recoding chunks, cutting and rebuilding out-of-order chunks, with
// rewrites of the same timestamps) from several writers while a flusher
// runs: the head's weight matches what its chunks hold after a replay, and
// returns to 0 when everything is flushed.
func TestSampleCostStaysExact(t *testing.T) {
	dir := t.TempDir()
	set, err := segments.OpenSet(slog.New(slog.DiscardHandler), filepath.Join(dir, "segments"))
	if err != nil {
		t.Fatal(err)
	}
	opts := StoreOptions{Head: Options{ChunkSamples: 8, ChunkRange: 3_600_000, OOOBufferSize: 4, MaxOOOChunks: 2}, BlockDuration: 7_200_000}
	s := openTestStore(t, dir, opts, set)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewSource(int64(w)))
			lset := labels.FromStrings("__name__", "h", "w", fmt.Sprint(w))
			for i := range 300 {
				ts := int64(i) * 60_000
				if i%5 == 4 {
					ts = int64(rng.Intn(i)) * 60_000
				}
				if err := s.Append(histBatch(lset, histSample(rng, ts, i))); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	flushed := make(chan struct{})
	go func() {
		defer close(flushed)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := s.Flush(context.Background()); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	wg.Wait()
	close(stop)
	<-flushed
	head := s.Head()
	if got, want := head.SampleCostInHead(), headChunksCost(head); got != want {
		t.Errorf("SampleCostInHead = %d, the head's chunks and buffers weigh %d", got, want)
	}
	before := head.SampleCostInHead()
	if err := s.wal.Close(); err != nil { // a crash: replay rebuilds the head
		t.Fatal(err)
	}
	s = openTestStore(t, dir, opts, set)
	head = s.Head()
	if got, want := head.SampleCostInHead(), headChunksCost(head); got != want {
		t.Errorf("after replay SampleCostInHead = %d, the head's chunks and buffers weigh %d", got, want)
	}
	if before > 0 && head.SampleCostInHead() == 0 {
		t.Errorf("replay of a head weighing %d gives an empty weight", before)
	}
	mustFlush(t, s)
	if w := head.SampleCostInHead(); w != 0 {
		t.Errorf("after a full flush the head weighs %d, want 0", w)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// headChunksCost sums the weight of what every series of h holds.
func headChunksCost(h *Head) int64 {
	var n int64
	for i := range h.series.stripes {
		st := &h.series.stripes[i]
		st.RLock()
		for _, s := range st.refs {
			s.mtx.Lock()
			n += s.chunksCostLocked()
			for _, x := range s.oooBuf() {
				n += sampleCost(&x)
			}
			s.mtx.Unlock()
		}
		st.RUnlock()
	}
	return n
}
