package buffer

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/strata-tsdb/strata/ingest"
)

// TestExemplarsSurviveRestart: exemplars appended with a batch are logged
// and come back after a crash, after a flush that truncated the log (they
// are re-logged after the cut), and exactly once when the segments before
// a re-log were not truncated (the re-log starts with a reset); a batch
// without exemplars after them leaves them be.
func TestExemplarsSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	sink := nopSink{filepath.Join(dir, "segments")}
	opts := StoreOptions{Head: Options{MaxExemplars: 10}}
	s := openTestStore(t, dir, opts, sink)
	series := labels.FromStrings("__name__", "req_total")
	b := batchOf(series, ingest.Sample{T: 1, V: 1})
	b.Exemplars = []ingest.SeriesExemplars{{Labels: series, Exemplars: []ingest.Exemplar{
		{Labels: labels.FromStrings("trace_id", "a"), T: 1, V: 0.5}, {Labels: labels.FromStrings("trace_id", "b"), T: 2, V: 0.25},
	}}}
	if err := s.Append(b); err != nil {
		t.Fatal(err)
	}
	// Exemplars alone, for a series without samples.
	other := labels.FromStrings("__name__", "other")
	if err := s.Append(&ingest.Batch{Exemplars: []ingest.SeriesExemplars{{Labels: other, Exemplars: []ingest.Exemplar{{T: 3, V: 3}}}}}); err != nil {
		t.Fatal(err)
	}
	// A batch without exemplars logs no exemplars record: an empty one
	// is a reset, which would empty the store at the next replay.
	mustAppend(t, s, series, 5, 5)
	if n := s.ExemplarsStored(b); n != 2 {
		t.Fatalf("ExemplarsStored = %d, want 2", n)
	}
	want := s.head.Exemplars().All()
	if s.head.Exemplars().Len() != 3 {
		t.Fatalf("stored %v", want)
	}
	reopen := func(when string) {
		t.Helper()
		if err := s.wal.Close(); err != nil {
			t.Fatal(err)
		}
		s = openTestStore(t, dir, opts, sink)
		got := s.head.Exemplars().All()
		if len(got) != len(want) || s.head.Exemplars().Len() != 3 {
			t.Fatalf("%s: %v, want %v", when, got, want)
		}
		for i := range want {
			if !labels.Equal(got[i].Labels, want[i].Labels) || len(got[i].Exemplars) != len(want[i].Exemplars) {
				t.Fatalf("%s: %v, want %v", when, got, want)
			}
			for j, e := range want[i].Exemplars {
				if g := got[i].Exemplars[j]; !labels.Equal(g.Labels, e.Labels) || g.T != e.T || g.V != e.V {
					t.Fatalf("%s: %v, want %v", when, got, want)
				}
			}
		}
	}
	reopen("after a crash")
	mustFlush(t, s)
	if first, _, err := s.wal.Segments(); err != nil || first == 0 {
		t.Fatalf("the flush did not truncate the log: first segment %d, %v", first, err)
	}
	reopen("after a flush and a restart")
	// A re-log whose older segments stay (a flush that failed after it).
	if _, err := s.wal.Cut(); err != nil {
		t.Fatal(err)
	}
	if err := s.wal.Log(s.head.ExemplarRecords(1)...); err != nil {
		t.Fatal(err)
	}
	reopen("after a re-log over untruncated segments")
}

// TestExemplarsAndFlushesConcurrently: writers append exemplars while
// flushes cut, re-log and truncate the log; after a crash every
// acknowledged exemplar is there exactly once.
func TestExemplarsAndFlushesConcurrently(t *testing.T) {
	dir := t.TempDir()
	sink := nopSink{filepath.Join(dir, "segments")}
	opts := StoreOptions{Head: Options{MaxExemplars: 100_000, MaxMetadataFamilies: 100}}
	s := openTestStore(t, dir, opts, sink)
	const writers, batches = 4, 60
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			series := labels.FromStrings("__name__", "req_total", "w", fmt.Sprint(w))
			for i := range batches {
				b := batchOf(series, ingest.Sample{T: int64(i), V: 1})
				b.Exemplars = []ingest.SeriesExemplars{{Labels: series, Exemplars: []ingest.Exemplar{{Labels: labels.FromStrings("i", fmt.Sprint(i)), T: int64(i), V: 1}}}}
				b.Metadata = []ingest.FamilyMetadata{{Family: fmt.Sprintf("f%d_%d", w, i%20), Metadata: ingest.Metadata{Type: "gauge"}}}
				if err := s.Append(b); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	writersDone := make(chan struct{})
	go func() { wg.Wait(); close(writersDone) }()
	flushes := 0
	for stop := false; !stop; flushes++ {
		select {
		case <-writersDone:
			stop = true
		default:
		}
		if err := s.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d flushes", flushes)
	if err := s.wal.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTestStore(t, dir, opts, sink)
	defer s.wal.Close()
	if n := s.head.Exemplars().Len(); n != writers*batches {
		t.Fatalf("%d exemplars after the crash, want %d", n, writers*batches)
	}
	if n := s.head.Metadata().Len(); n != writers*20 {
		t.Fatalf("%d metadata families after the crash, want %d", n, writers*20)
	}
}
