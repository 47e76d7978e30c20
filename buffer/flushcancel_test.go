package buffer

import (
	"context"
	"errors"
	"os"
	"slices"
	"testing"
)

// TestCanceledFlushWritesNothing: a flush whose context is canceled, before
// it starts or while it writes (it checks every 1024 series), returns the
// context's error, publishes nothing, leaves no segment file behind and
// drops nothing from the head; the next flush writes everything.
func TestCanceledFlushWritesNothing(t *testing.T) {
	for _, c := range []struct {
		name     string
		series   int
		cancelAt int // after this many series written; 0: before the flush
	}{
		{"canceled before, one series", 1, 0},
		{"canceled while writing", 3000, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			sink := openRecordingSink(t, dir)
			s := openTestStore(t, dir, StoreOptions{}, sink)
			defer s.wal.Close()
			lsets := flushSeries(c.series)
			next := make([]int, len(lsets))
			idx := make([]int, len(lsets))
			for i := range idx {
				idx[i] = i
			}
			if err := appendNext(s, lsets, next, idx); err != nil {
				t.Fatal(err)
			}
			files := func() []string {
				t.Helper()
				es, err := os.ReadDir(sink.Dir())
				if err != nil {
					t.Fatal(err)
				}
				var names []string
				for _, e := range es {
					if e.IsDir() { // segments; the sink's sequence file may be new
						names = append(names, e.Name())
					}
				}
				return names
			}
			before := files()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if c.cancelAt == 0 {
				cancel()
			} else {
				s.head.testHookFlushedSeries = func(n int) {
					if n == c.cancelAt {
						cancel()
					}
				}
			}
			if err := s.Flush(ctx); !errors.Is(err, context.Canceled) {
				t.Fatalf("Flush with its context canceled = %v, want context.Canceled", err)
			}
			s.head.testHookFlushedSeries = nil
			if n := len(sink.published); n != 0 {
				t.Fatalf("a canceled flush published %d times", n)
			}
			if after := files(); !slices.Equal(after, before) {
				t.Fatalf("files in the segment directory after a canceled flush: %v, before it: %v", after, before)
			}
			if n := s.Head().SamplesInHead(); n != int64(c.series) {
				t.Fatalf("%d samples in the head after a canceled flush, want %d", n, c.series)
			}
			mustFlush(t, s)
			if got := sink.lastWritten(); got != uint64(c.series) {
				t.Fatalf("the next flush wrote %d samples, want %d", got, c.series)
			}
		})
	}
}
