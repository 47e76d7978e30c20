package buffer

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/prometheus/model/labels"
)

// TestDeleteSeriesFlushesFirst: DeleteSeries calls its tombstone only once
// the head's data is published in segments (the tombstone can only hide
// what segments hold), and a delete whose flush fails calls no tombstone,
// reports the flush's error and keeps the data in the head.
func TestDeleteSeriesFlushesFirst(t *testing.T) {
	dir := t.TempDir()
	sink := openRecordingSink(t, dir)
	s := openTestStore(t, dir, StoreOptions{}, sink)
	defer s.wal.Close()
	a := labels.FromStrings("__name__", "a")
	for i := range 5 {
		mustAppend(t, s, a, int64(i)*1000, float64(i))
	}
	calls := 0
	if err := s.DeleteSeries(context.Background(), func() error {
		calls++
		if got := sink.lastWritten(); got != 5 {
			t.Errorf("tombstone called with %d samples published, want 5", got)
		}
		if n := s.Head().SamplesInHead(); n != 0 {
			t.Errorf("tombstone called with %d samples in the head, want 0", n)
		}
		return nil
	}); err != nil || calls != 1 {
		t.Fatalf("DeleteSeries: %v after %d tombstone calls, want nil after 1", err, calls)
	}
	tombErr := errors.New("tombstone refused")
	if err := s.DeleteSeries(context.Background(), func() error { return tombErr }); !errors.Is(err, tombErr) {
		t.Fatalf("DeleteSeries of an empty head: %v, want the tombstone's error", err)
	}

	dir = t.TempDir()
	s2 := openTestStore(t, dir, StoreOptions{}, failingPublish{openRecordingSink(t, dir)})
	defer s2.wal.Close()
	mustAppend(t, s2, a, 1000, 1)
	err := s2.DeleteSeries(context.Background(), func() error {
		t.Error("tombstone called after a failed flush")
		return nil
	})
	if err == nil || !strings.Contains(err.Error(), "flush before delete") || !strings.Contains(err.Error(), "publish refused") {
		t.Fatalf("DeleteSeries with a failing flush: %v, want the flush's error", err)
	}
	if n := s2.Head().SamplesInHead(); n != 1 {
		t.Fatalf("%d samples in the head after a failed delete, want 1", n)
	}
}

// TestFlushMetricsAndClose: strata_head_flushes_total counts every Flush
// and strata_head_flush_failures_total those that failed. Close logs a
// failed flush as an error and still closes the log, returning nil (the
// log keeps the data, and the next start replays it); a Close whose flush
// succeeds logs no error.
func TestFlushMetricsAndClose(t *testing.T) {
	a := labels.FromStrings("__name__", "a")
	for _, fail := range []bool{false, true} {
		dir := t.TempDir()
		var sink SegmentSink = openRecordingSink(t, dir)
		if fail {
			sink = failingPublish{sink.(*recordingSink)}
		}
		reg := prometheus.NewRegistry()
		logger, logs := captureLogger()
		s, err := OpenStore(logger, dir, StoreOptions{}, sink, reg)
		if err != nil {
			t.Fatal(err)
		}
		mustAppend(t, s, a, 1000, 1)
		flushErr := s.Flush(context.Background())
		if (flushErr != nil) != fail {
			t.Fatalf("failing sink %v: Flush() = %v", fail, flushErr)
		}
		mustAppend(t, s, a, 2000, 2)
		if err := s.Close(context.Background()); err != nil {
			t.Fatalf("failing sink %v: Close() = %v, want nil", fail, err)
		}
		wantFailures := 0.0
		if fail {
			wantFailures = 2
		}
		if got := testutil.ToFloat64(s.metrics.flushes); got != 2 {
			t.Errorf("failing sink %v: strata_head_flushes_total %v, want 2", fail, got)
		}
		if got := testutil.ToFloat64(s.metrics.flushFailures); got != wantFailures {
			t.Errorf("failing sink %v: strata_head_flush_failures_total %v, want %v", fail, got, wantFailures)
		}
		if n, err := testutil.GatherAndCount(reg, "strata_head_flushes_total", "strata_head_flush_failures_total", "strata_head_flush_duration_seconds"); err != nil || n != 3 {
			t.Errorf("failing sink %v: %d flush metrics registered (%v), want 3", fail, n, err)
		}
		if got := strings.Contains(logs.String(), "level=ERROR msg=\"flush on close failed"); got != fail {
			t.Errorf("failing sink %v: an error logged at Close: %v\n%s", fail, got, logs)
		}
		s, err = OpenStore(slog.New(slog.DiscardHandler), dir, StoreOptions{}, nopSink{filepath.Join(dir, "segments")}, nil)
		if err != nil {
			t.Fatal(err)
		}
		want := int64(0)
		if fail {
			want = 2
		}
		if n := s.Head().NumSamples(); n != want {
			t.Errorf("failing sink %v: %d samples replayed after Close, want %d", fail, n, want)
		}
		if err := s.wal.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestRunFlushesWhenDue: Run flushes the head when FlushDue says so, calls
// maintain after each check with the flush lock held, logs a flush that
// fails, and returns when its context ends.
func TestRunFlushesWhenDue(t *testing.T) {
	a := labels.FromStrings("__name__", "a")
	for _, fail := range []bool{false, true} {
		dir := t.TempDir()
		var sink SegmentSink = openRecordingSink(t, dir)
		if fail {
			sink = failingPublish{sink.(*recordingSink)}
		}
		logger, logs := captureLogger()
		s, err := OpenStore(logger, dir, StoreOptions{MaxHeadSamples: 3, FlushSamplesPerSeries: -1}, sink, nil)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 5 {
			mustAppend(t, s, a, int64(i)*1000, float64(i))
		}
		if !s.FlushDue() {
			t.Fatal("5 samples in the head, FlushDue false with MaxHeadSamples 3")
		}
		ctx, cancel := context.WithCancel(context.Background())
		type check struct {
			inHead int64
			logged string
		}
		checks := make(chan check, 1)
		ran := make(chan struct{})
		go func() {
			defer close(ran)
			s.Run(ctx, time.Millisecond, func(context.Context) {
				if s.flushMtx.TryLock() {
					s.flushMtx.Unlock()
					t.Error("maintain called without the flush lock")
				}
				select {
				case checks <- check{s.Head().SamplesInHead(), logs.String()}:
				default:
				}
			})
		}()
		// The first check flushes (or fails to); maintain comes after it.
		// (What is logged is read there: a flush at a later tick, after
		// the cancel, fails for that.)
		var c check
		select {
		case c = <-checks:
		case <-time.After(30 * time.Second):
			t.Fatal("maintain not called within 30s of Run")
		}
		cancel()
		<-ran
		if fail {
			if c.inHead != 5 || !strings.Contains(c.logged, "level=ERROR msg=\"flush head\"") {
				t.Errorf("a failed flush: %d samples in the head (want 5), logged:\n%s", c.inHead, c.logged)
			}
		} else if c.inHead != 0 || strings.Contains(c.logged, "level=ERROR") {
			t.Errorf("%d samples in the head after Run's flush, want 0; logged:\n%s", c.inHead, c.logged)
		}
		if err := s.wal.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestFlushDueByTime: a flush is due once the head holds data of a block
// that ended more than half a block before its newest sample: with blocks
// of 2 h and data from 0, from a newest sample at 3 h on, not at 3 h less
// a millisecond. A head of one instant, or none, is never due.
func TestFlushDueByTime(t *testing.T) {
	const hour = int64(3_600_000)
	dir := t.TempDir()
	s := openTestStore(t, dir, StoreOptions{BlockDuration: 2 * hour}, nopSink{filepath.Join(dir, "segments")})
	defer s.wal.Close()
	if s.FlushDue() {
		t.Fatal("an empty head is due for a flush")
	}
	a := labels.FromStrings("__name__", "a")
	mustAppend(t, s, a, 0, 1)
	for _, c := range []struct {
		t   int64
		due bool
	}{{hour, false}, {2 * hour, false}, {3*hour - 1, false}, {3 * hour, true}, {9 * hour, true}} {
		mustAppend(t, s, a, c.t, 1)
		if got := s.FlushDue(); got != c.due {
			t.Errorf("data from 0 to %dms: FlushDue %v, want %v", c.t, got, c.due)
		}
	}

	dir = t.TempDir()
	s2 := openTestStore(t, dir, StoreOptions{BlockDuration: 2 * hour}, nopSink{filepath.Join(dir, "segments")})
	defer s2.wal.Close()
	mustAppend(t, s2, a, 100*hour, 1)
	if s2.FlushDue() {
		t.Error("a head of one instant is due for a flush")
	}
}

// TestFlushReLogsIdleSeries: a flush logs again, after its cut, the
// record of every series in the head, so that a series no batch wrote
// after the flush is still in the head after a crash, under its reference,
// as it was before (the log before the cut, which held its record, is
// gone).
func TestFlushReLogsIdleSeries(t *testing.T) {
	dir := t.TempDir()
	sink := nopSink{filepath.Join(dir, "segments")}
	s := openTestStore(t, dir, StoreOptions{}, sink)
	a, b := labels.FromStrings("__name__", "a"), labels.FromStrings("__name__", "b")
	mustAppend(t, s, a, 1000, 1)
	mustAppend(t, s, b, 1000, 1)
	refA := s.Head().series.getByHash(a.Hash(), a).ref
	mustFlush(t, s)
	mustAppend(t, s, b, 2000, 2)
	if err := s.wal.Close(); err != nil { // a crash
		t.Fatal(err)
	}
	s = openTestStore(t, dir, StoreOptions{}, sink)
	defer s.wal.Close()
	if n := s.Head().NumSeries(); n != 2 {
		t.Fatalf("%d series after the restart, want 2", n)
	}
	if ms := s.Head().series.getByHash(a.Hash(), a); ms == nil || ms.ref != refA {
		t.Fatalf("series a after the restart: %v, want it under reference %d", ms, refA)
	}
}
