package buffer

import (
	"context"
	"errors"
	"math"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/strata-tsdb/strata/segments"
)

// publishSink is a sink that tells when a flush has published.
type publishSink struct {
	nopSink
	published chan struct{}
}

func (p publishSink) Publish(m []segments.Meta) error {
	p.published <- struct{}{}
	return nil
}

// TestFlushKeepsHeadDataForEarlierReads holds a read open across a flush:
// once the flush has published its segments the data must still be in the
// head for that read (it may have looked at the segments before the
// publish), and the flush may drop it only when the read ends. A flush
// whose context ends while it waits fails and keeps the data.
func TestFlushKeepsHeadDataForEarlierReads(t *testing.T) {
	dir := t.TempDir()
	sink := publishSink{nopSink{filepath.Join(dir, "segments")}, make(chan struct{}, 1)}
	s := openTestStore(t, dir, StoreOptions{}, sink)
	defer s.wal.Close()
	a := labels.FromStrings("__name__", "a")
	all := labels.MustNewMatcher(labels.MatchEqual, "__name__", "a")
	mustAppend(t, s, a, 1000, 1)

	// A flush that gives up while a read is in flight keeps the data.
	done := s.Head().StartRead()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- s.Flush(ctx) }()
	<-sink.published
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("flush with its context cancelled while waiting: %v, want context.Canceled", err)
	}
	if got := readAll(t, s.Head(), math.MinInt64, math.MaxInt64, all); len(got) != 1 {
		t.Fatalf("a failed flush dropped data from the head: %v", got)
	}
	done()

	done = s.Head().StartRead()
	done2 := s.Head().StartRead()
	go func() { errc <- s.Flush(context.Background()) }()
	<-sink.published
	// The flush has published; it must not drop anything while the reads
	// that started before are in flight.
	for range 100 {
		if got := readAll(t, s.Head(), math.MinInt64, math.MaxInt64, all); len(got) != 1 {
			t.Fatalf("the flush dropped data from the head while an earlier read was in flight: %v", got)
		}
	}
	select {
	case err := <-errc:
		t.Fatalf("the flush ended (%v) while an earlier read was in flight", err)
	default:
	}
	done()
	done() // a second call does nothing
	done2()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Minute):
		t.Fatal("the flush did not end after the reads it waited for")
	}
	if got := readAll(t, s.Head(), math.MinInt64, math.MaxInt64, all); len(got) != 0 {
		t.Fatalf("after the flush the head still holds %v", got)
	}
	if n := s.Head().reads.inFlight(); n != 0 {
		t.Fatalf("%d reads in flight, want 0", n)
	}
}

// TestFlushWaitsOnlyForEarlierReads: a read that starts once a flush has
// published (it finds the flushed segments) does not hold the flush up;
// only the reads that started before it do.
func TestFlushWaitsOnlyForEarlierReads(t *testing.T) {
	dir := t.TempDir()
	sink := publishSink{nopSink{filepath.Join(dir, "segments")}, make(chan struct{}, 1)}
	s := openTestStore(t, dir, StoreOptions{}, sink)
	defer s.wal.Close()
	mustAppend(t, s, labels.FromStrings("__name__", "a"), 1000, 1)
	r := s.Head().reads
	epoch := func() uint64 {
		r.mtx.Lock()
		defer r.mtx.Unlock()
		return r.epoch
	}
	before := epoch()
	earlier := s.Head().StartRead()
	errc := make(chan error, 1)
	go func() { errc <- s.Flush(context.Background()) }()
	<-sink.published
	// The flush starts its new epoch right after publishing.
	for deadline := time.Now().Add(time.Minute); epoch() == before; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the flush started no new read epoch after publishing")
		}
	}
	later := s.Head().StartRead()
	defer later()
	earlier()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Minute):
		t.Fatal("the flush waits for a read that started after it published")
	}
	if n := r.inFlight(); n != 1 {
		t.Fatalf("%d reads in flight, want 1", n)
	}
}
