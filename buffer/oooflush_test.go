package buffer

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
)

// TestFlushLetsOutOfOrderPartGo: a flush of everything a series held,
// out-of-order samples included, leaves the series without an out-of-order
// part (most series have none, and it costs memory in each that keeps
// one); out-of-order samples written after the flush get a new one.
func TestFlushLetsOutOfOrderPartGo(t *testing.T) {
	dir := t.TempDir()
	s := openTestStore(t, dir, StoreOptions{}, nopSink{filepath.Join(dir, "segments")})
	defer s.wal.Close()
	a := labels.FromStrings("__name__", "a")
	mustAppend(t, s, a, 1000, 1)
	mustAppend(t, s, a, 500, 2) // out of order
	ms := s.Head().series.getByHash(a.Hash(), a)
	oooOf := func() *oooData {
		ms.mtx.Lock()
		defer ms.mtx.Unlock()
		return ms.ooo
	}
	if oooOf() == nil {
		t.Fatal("an out-of-order sample left no out-of-order part")
	}
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s.Head().SamplesInHead() != 0 {
		t.Fatalf("%d samples left in the head after a flush", s.Head().SamplesInHead())
	}
	if o := oooOf(); o != nil {
		t.Errorf("the flushed series keeps an out-of-order part: %d chunks, %d buffered", len(o.chunks), len(o.buf))
	}
	mustAppend(t, s, a, 700, 3)
	if o := oooOf(); o == nil || len(o.buf) != 1 {
		t.Errorf("an out-of-order sample after the flush: out-of-order part %+v", o)
	}
}

// TestFlushOutOfOrderOnlySeries: a series whose in-order samples a flush
// took and dropped, and which then got only out-of-order samples, holds
// no in-order chunk at the next flush; the flush must still write its
// out-of-order samples (and drop them from the head). Left in the head,
// they would be lost at the next restart: the flush truncates the
// write-ahead log they were in.
func TestFlushOutOfOrderOnlySeries(t *testing.T) {
	dir := t.TempDir()
	sink := openRecordingSink(t, dir)
	s := openTestStore(t, dir, StoreOptions{}, sink)
	defer s.wal.Close()
	a := labels.FromStrings("__name__", "a")
	mustAppend(t, s, a, 1000, 1)
	mustFlush(t, s)
	mustAppend(t, s, a, 500, 2) // out of order: before the flushed 1000
	mustAppend(t, s, a, 700, 3)
	mustFlush(t, s)
	if got := sink.lastWritten(); got != 2 {
		t.Fatalf("the flush of the out-of-order samples wrote %d samples, want 2", got)
	}
	if n := s.Head().SamplesInHead(); n != 0 {
		t.Fatalf("%d samples left in the head after the flush, want 0", n)
	}
}
