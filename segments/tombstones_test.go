package segments

import (
	"log/slog"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
)

// TestTombstoneEdges: a tombstone over [mint, maxt] goes to every segment
// that shares a millisecond with the range, and only those (both ends
// inclusive); the set keeps it across a reopen, matchers and range as
// given; a range no segment overlaps adds nothing.
func TestTombstoneEdges(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "segments")
	set, err := OpenSet(slog.New(slog.DiscardHandler), dir)
	if err != nil {
		t.Fatal(err)
	}
	lset := labels.FromStrings("__name__", "m", "job", "a")
	seg := func(id time.Time, mint, maxt int64) Meta {
		t.Helper()
		m := writeTestSegment(t, dir, Meta{ID: NewID(id), Seq: 1}, []testSeries{{lset: lset, chunks: []testChunk{
			{kind: KindRaw, samples: []sample{{T: mint, V: 1}, {T: maxt, V: 2}}}}}})
		if m.MinTime != mint || m.MaxTime != maxt {
			t.Fatalf("segment spans [%d, %d], want [%d, %d]", m.MinTime, m.MaxTime, mint, maxt)
		}
		return m
	}
	now := time.Now()
	a, b := seg(now, 0, 99), seg(now.Add(time.Millisecond), 100, 199)
	if err := set.Publish([]Meta{a, b}); err != nil {
		t.Fatal(err)
	}
	ms := []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "job", "a"), labels.MustNewMatcher(labels.MatchRegexp, "__name__", "m|n")}
	for _, tc := range []struct {
		mint, maxt int64
		want       []string
	}{
		{99, 99, []string{a.ID}},
		{100, 100, []string{b.ID}},
		{99, 100, []string{a.ID, b.ID}},
		{-5, -1, nil},
		{200, 300, nil},
	} {
		ids, err := set.AddTombstone(ms, tc.mint, tc.maxt)
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(ids)
		want := slices.Clone(tc.want)
		slices.Sort(want)
		if !slices.Equal(ids, want) {
			t.Errorf("tombstone [%d, %d] went to %v, want %v", tc.mint, tc.maxt, ids, want)
		}
	}
	if err := set.Close(); err != nil {
		t.Fatal(err)
	}
	set, err = OpenSet(slog.New(slog.DiscardHandler), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	for id, want := range map[string][][2]int64{a.ID: {{99, 99}, {99, 100}}, b.ID: {{100, 100}, {99, 100}}} {
		ts := set.Tombstones(id)
		if len(ts) != len(want) {
			t.Fatalf("segment %s has %d tombstones after a reopen, want %d", id, len(ts), len(want))
		}
		for i, tb := range ts {
			if [2]int64{tb.MinTime, tb.MaxTime} != want[i] || len(tb.Matchers) != 2 ||
				tb.Matchers[0].String() != ms[0].String() || tb.Matchers[1].String() != ms[1].String() {
				t.Errorf("segment %s tombstone %d after a reopen: %v [%d, %d], want %v %v", id, i, tb.Matchers, tb.MinTime, tb.MaxTime, ms, want[i])
			}
		}
		if got := DeletedRanges(ts, lset); !slices.Equal(got, want) {
			t.Errorf("segment %s hides %v of %s, want %v", id, got, lset, want)
		}
		if got := DeletedRanges(ts, labels.FromStrings("__name__", "m", "job", "b")); got != nil {
			t.Errorf("segment %s hides %v of another job", id, got)
		}
	}
}

// TestDeletedIteratorEdges: the deleted iterator hides the samples inside
// its ranges, both ends included, through Next and through Seek.
func TestDeletedIteratorEdges(t *testing.T) {
	var samples []sample
	for ts := int64(1); ts <= 10; ts++ {
		samples = append(samples, sample{T: ts, V: float64(ts)})
	}
	c := newXOR(t, samples)
	ranges := [][2]int64{{3, 5}, {8, 8}}
	var got []int64
	it := NewDeletedIterator(c.Iterator(nil), ranges)
	for it.Next() != chunkenc.ValNone {
		got = append(got, it.AtT())
	}
	if want := []int64{1, 2, 6, 7, 9, 10}; !slices.Equal(got, want) {
		t.Errorf("Next: %v, want %v", got, want)
	}
	for seek, want := range map[int64]int64{2: 2, 3: 6, 5: 6, 7: 7, 8: 9} {
		it := NewDeletedIterator(c.Iterator(nil), ranges)
		if it.Seek(seek) == chunkenc.ValNone || it.AtT() != want {
			t.Errorf("Seek(%d) at %d, want %d", seek, it.AtT(), want)
		}
	}
	if it := NewDeletedIterator(c.Iterator(nil), [][2]int64{{1, 10}}); it.Next() != chunkenc.ValNone || it.Seek(1) != chunkenc.ValNone {
		t.Error("a range over every sample left one")
	}
}
