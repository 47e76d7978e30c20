package segments

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
)

// compactSet publishes one segment per list of series (Seq in list order,
// all in the window [0, 10) of ranges 10 and 100 ms) and returns the set
// and a compactor over it.
func compactSet(t *testing.T, segs ...[]testSeries) (*Set, *Compactor, []Meta) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "segments")
	set, err := OpenSet(slog.New(slog.DiscardHandler), dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { set.Close() })
	var metas []Meta
	now := time.Now()
	for i, series := range segs {
		m := writeTestSegment(t, dir, Meta{ID: NewID(now.Add(time.Duration(i) * time.Millisecond)), Seq: uint64(i + 1)}, series)
		metas = append(metas, m)
	}
	if err := set.Publish(metas); err != nil {
		t.Fatal(err)
	}
	c, err := NewCompactor(nil, set, CompactOptions{Ranges: []int64{10, 100}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return set, c, metas
}

func floats(lset labels.Labels, ss ...sample) testSeries {
	return testSeries{lset: lset, chunks: []testChunk{{kind: KindRaw, samples: ss}}}
}

// TestCompactLastWriteWins merges two segments of one window whose
// samples share a timestamp: the later segment's (greater Seq) value
// wins, every other sample is kept once, and the output's level, Seq and
// sources follow its inputs.
func TestCompactLastWriteWins(t *testing.T) {
	a, b := labels.FromStrings("__name__", "a"), labels.FromStrings("__name__", "b")
	set, c, metas := compactSet(t,
		[]testSeries{floats(a, sample{1, 1}, sample{2, 1}), floats(b, sample{5, 1})},
		[]testSeries{floats(a, sample{2, 2}, sample{3, 2})},
	)
	if n, err := c.Compact(context.Background()); err != nil || n != 1 {
		t.Fatalf("Compact: %d, %v; want 1 compaction", n, err)
	}
	segs, release := set.Acquire(minInt64, maxInt64)
	defer release()
	if len(segs) != 1 {
		t.Fatalf("%d segments after compaction, want 1", len(segs))
	}
	m := segs[0].Meta()
	wantSources := []string{metas[0].ID, metas[1].ID}
	slices.Sort(wantSources)
	if m.Compaction.Level != 2 || m.Seq != 2 || !slices.Equal(m.Compaction.Sources, wantSources) {
		t.Errorf("output level %d, seq %d, sources %v; want 2, 2, %v", m.Compaction.Level, m.Seq, m.Compaction.Sources, wantSources)
	}
	got, err := readAll(segs[0])
	if err != nil {
		t.Fatal(err)
	}
	want := []testSeries{floats(a, sample{1, 1}, sample{2, 2}, sample{3, 2}), floats(b, sample{5, 1})}
	equalSeries(t, want, got)
}

// TestCompactAllDeleted: segments whose every sample a tombstone hides
// are removed by compaction, and nothing is written in their place.
func TestCompactAllDeleted(t *testing.T) {
	a := labels.FromStrings("__name__", "a")
	set, c, metas := compactSet(t, []testSeries{floats(a, sample{1, 1})}, []testSeries{floats(a, sample{2, 2})})
	if _, err := set.AddTombstone([]*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "__name__", "a")}, 0, 9); err != nil {
		t.Fatal(err)
	}
	if n, err := c.Compact(context.Background()); err != nil || n != 1 {
		t.Fatalf("Compact: %d, %v; want 1 compaction", n, err)
	}
	// What is left is one empty segment over the inputs' time that lists
	// their sources: a rollup built from them still finds its raw data
	// complete (data deleted is not data gone).
	infos := set.Segments()
	if len(infos) != 1 {
		t.Fatalf("%d segments left after all their data was deleted, want 1 empty one", len(infos))
	}
	out := infos[0].Meta
	want := []string{metas[0].ID, metas[1].ID}
	slices.Sort(want)
	if out.NumSeries != 0 || out.NumSamples != 0 || out.MinTime != 1 || out.MaxTime != 2 ||
		!slices.Equal(out.Compaction.Sources, want) || out.Compaction.Level != 2 || out.Seq != 2 {
		t.Fatalf("left %+v, want an empty segment over [1, 2], sources %v, level 2, seq 2", out, want)
	}
	if ts := set.Tombstones(out.ID); len(ts) != 0 {
		t.Fatalf("the empty segment has tombstones %v", ts)
	}
	// A later delete over its time gives it a tombstone, which an empty
	// segment is not rewritten for.
	if _, err := set.AddTombstone([]*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "__name__", "a")}, 0, 9); err != nil {
		t.Fatal(err)
	}
	if n, err := c.Compact(context.Background()); err != nil || n != 0 {
		t.Fatalf("Compact of an empty segment with a tombstone: %d, %v; want nothing to do", n, err)
	}
}

// errAfterCtx is a context whose Err is nil the first time it is asked,
// then Canceled.
type errAfterCtx struct {
	context.Context
	calls atomic.Int32
}

func (c *errAfterCtx) Err() error {
	if c.calls.Add(1) > 1 {
		return context.Canceled
	}
	return nil
}

// TestCompactStopsWhenCancelled: a merge looks at its context while it
// goes (every 1,024 series), not only when it starts: cancelled during a
// merge of 1,100 series, it stops and leaves its inputs.
func TestCompactStopsWhenCancelled(t *testing.T) {
	var series []testSeries
	for i := range 1100 {
		series = append(series, floats(labels.FromStrings("__name__", "m", "i", fmt.Sprintf("%04d", i)), sample{1, 1}))
	}
	set, c, _ := compactSet(t, series, series[:1])
	ctx := &errAfterCtx{Context: context.Background()}
	if _, err := c.Compact(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Compact cancelled during the merge: %v, want context.Canceled", err)
	}
	if n := len(set.Segments()); n != 2 {
		t.Fatalf("%d segments after a cancelled compaction, want the 2 inputs", n)
	}
}
