package query

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"

	"github.com/strata-tsdb/strata/buffer"
	"github.com/strata-tsdb/strata/ingest"
	"github.com/strata-tsdb/strata/segments"
)

// TestLastWriteWinsWithoutTheWallClock writes the same timestamp four
// times, flushing after each write, while the clock that names segments
// steps back an hour and then stands still (segments made in the same
// millisecond), so that segment IDs are out of write order. The later
// write must win in every segment order the reader sees: straight after
// the flushes, after compaction merges them, and after a restart, and a
// write after the restart must still win over all of them.
func TestLastWriteWinsWithoutTheWallClock(t *testing.T) {
	dir := t.TempDir()
	logger := slog.New(slog.DiscardHandler)
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	clock := t0.Add(time.Hour)
	now := func() time.Time { return clock }
	ts := t0.Add(-3 * time.Hour).UnixMilli() // a closed block
	lset := labels.FromStrings("__name__", "x", "pod", "a")

	var (
		set   *segments.Set
		store *buffer.Store
	)
	open := func() {
		t.Helper()
		var err error
		if set, err = segments.OpenSet(logger, filepath.Join(dir, "segments")); err != nil {
			t.Fatal(err)
		}
		if store, err = buffer.OpenStore(logger, dir, buffer.StoreOptions{Now: now}, set, nil); err != nil {
			t.Fatal(err)
		}
	}
	closeAll := func() {
		t.Helper()
		if err := store.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := set.Close(); err != nil {
			t.Fatal(err)
		}
	}
	writeAndFlush := func(v float64) segments.Meta {
		t.Helper()
		before := map[string]bool{}
		for _, in := range set.Segments() {
			before[in.Meta.ID] = true
		}
		b := &ingest.Batch{Series: []ingest.Series{{Labels: lset, Samples: []ingest.Sample{{T: ts, V: v}}}}}
		if err := store.Append(b); err != nil {
			t.Fatal(err)
		}
		if err := store.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		for _, in := range set.Segments() {
			if !before[in.Meta.ID] {
				return in.Meta
			}
		}
		t.Fatal("the flush wrote no segment")
		return segments.Meta{}
	}
	read := func(when string, want float64) {
		t.Helper()
		eng, err := NewEngine(nil, nil, NewQueryable(store.Head(), set), Options{})
		if err != nil {
			t.Fatal(err)
		}
		res, err := eng.Instant(context.Background(), "x", time.UnixMilli(ts))
		if err != nil {
			t.Fatal(err)
		}
		v, ok := res.Value.(promql.Vector)
		if !ok || len(v) != 1 || v[0].F != want {
			t.Fatalf("%s: x@%d = %v, want %v (the last write)", when, ts, res.Value, want)
		}
	}

	open()
	a := writeAndFlush(1)
	clock = t0 // the clock steps back an hour
	b := writeAndFlush(2)
	if b.ID >= a.ID {
		t.Fatalf("test setup: segment IDs %s, %s are in write order; the clock step made no difference", a.ID, b.ID)
	}
	read("segment IDs out of time order", 2)
	c := writeAndFlush(3) // same millisecond as b: random bits order the IDs
	if !(a.Seq < b.Seq && b.Seq < c.Seq) {
		t.Fatalf("write sequence not increasing: %d, %d, %d", a.Seq, b.Seq, c.Seq)
	}
	read("three segments of one block", 3)

	comp, err := segments.NewCompactor(logger, set, segments.CompactOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := comp.Compact(context.Background()); err != nil || n == 0 {
		t.Fatalf("compact: %d compactions, %v", n, err)
	}
	if got := len(set.Segments()); got != 1 {
		t.Fatalf("%d segments after compaction, want 1", got)
	}
	read("after compaction", 3)

	closeAll()
	clock = t0.Add(-24 * time.Hour) // further back still
	open()
	read("after restart", 3)
	d := writeAndFlush(4)
	if d.Seq <= c.Seq {
		t.Fatalf("sequence after restart %d, not above %d", d.Seq, c.Seq)
	}
	read("a write after the restart", 4)
	comp, err = segments.NewCompactor(logger, set, segments.CompactOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := comp.Compact(context.Background()); err != nil {
		t.Fatal(err)
	}
	read("after the second compaction", 4)
	closeAll()
}
