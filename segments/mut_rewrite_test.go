package segments

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
)

// TestRewriteKeepsFormat: Rewrite writes its copy in the format of the
// segment it rewrites (a segment of version 5, whose hour runs no writer
// writes any more, as 6), one level higher with the same sources and Seq,
// without the series its tombstones hide: a segment of an older format
// stays readable by the readers that read it before, and one with
// statistics keeps them. (The fixtures' series of rollup kinds only,
// which a raw segment written by Strata does not hold, are not copied.)
func TestRewriteKeepsFormat(t *testing.T) {
	parent := t.TempDir()
	for _, fx := range []struct {
		dir  string
		want int
	}{
		{fixtureV1Dir, FormatVersionPlain}, {fixtureV2Dir, FormatVersionCompressed},
		{fixtureV3Dir, FormatVersionStats}, {fixtureV4Dir, FormatVersionCompressedStats},
		{fixtureV5Dir, FormatVersionStatsFirst}, {fixtureV6Dir, FormatVersionStatsFirst},
		{fixtureV7Dir, FormatVersionCompressedStatsFirst},
	} {
		s := openT(t, fx.dir)
		in := s.Meta()
		// Hide the first series of raw samples whole (and those whose labels
		// include its).
		it, err := s.Select()
		if err != nil {
			t.Fatal(err)
		}
		raw := false
		for !raw && it.Next() {
			for _, c := range it.Chunks() {
				raw = raw || c.Kind == KindRaw
			}
		}
		if !raw {
			t.Fatalf("%s: no series of raw samples", fx.dir)
		}
		var ms []*labels.Matcher
		it.Labels().Range(func(l labels.Label) {
			ms = append(ms, labels.MustNewMatcher(labels.MatchEqual, l.Name, l.Value))
		})
		ts := []Tombstone{{Matchers: ms, MinTime: in.MinTime, MaxTime: in.MaxTime}}
		out, err := Rewrite(context.Background(), parent, s, ts, "", CompactOptions{})
		if err != nil {
			t.Fatalf("%s: %v", fx.dir, err)
		}
		if out.Version != fx.want {
			t.Fatalf("%s (version %d) rewritten as version %d, want %d", fx.dir, in.Version, out.Version, fx.want)
		}
		if out.Compaction.Level != in.Compaction.Level+1 || len(out.Compaction.Sources) != len(in.Compaction.Sources) || out.Seq != in.Seq {
			t.Fatalf("%s rewritten as %+v, from %+v", fx.dir, out, in)
		}
		r := openT(t, filepath.Join(parent, out.ID))
		if err := r.Verify(t.Context()); err != nil {
			t.Fatalf("%s rewritten: %v", fx.dir, err)
		}
		sel, err := r.Select(ms...)
		if err != nil {
			t.Fatal(err)
		}
		if sel.Next() {
			t.Fatalf("%s rewritten: %s, hidden, still there", fx.dir, sel.Labels())
		}
		r.Close()
	}
}

// TestHidesEdges: Hides reports a tombstone that reaches a chunk by one
// millisecond at either end, of the segment or of a chunk inside it, and
// not one that stops a millisecond short, nor one whose matchers select
// no series: a rewrite is skipped only when nothing would change.
func TestHidesEdges(t *testing.T) {
	parent := t.TempDir()
	w, err := NewWriter(parent, Meta{})
	if err != nil {
		t.Fatal(err)
	}
	chunk := func(ts ...int64) ChunkMeta {
		var smp []sample
		for _, tt := range ts {
			smp = append(smp, sample{tt, 1})
		}
		return ChunkMeta{Chunk: newXOR(t, smp)}
	}
	if err := w.AddSeries(labels.FromStrings("a", "1"), []ChunkMeta{chunk(1000, 1500), chunk(3000, 4000)}); err != nil {
		t.Fatal(err)
	}
	m, err := w.Close()
	if err != nil {
		t.Fatal(err)
	}
	s := openT(t, filepath.Join(parent, m.ID))
	a1 := []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "a", "1")}
	a2 := []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "a", "2")}
	for _, tc := range []struct {
		ms         []*labels.Matcher
		mint, maxt int64
		want       bool
	}{
		{a1, 4000, 5000, true}, // the segment's last millisecond
		{a1, 4001, 5000, false},
		{a1, 0, 1000, true}, // its first
		{a1, 0, 999, false},
		{a1, 1500, 1600, true},  // a chunk's last
		{a1, 1501, 2999, false}, // between the chunks
		{a1, 2000, 3000, true},  // the next chunk's first
		{a2, 0, 5000, false},
	} {
		got, err := Hides(s, []Tombstone{{Matchers: tc.ms, MinTime: tc.mint, MaxTime: tc.maxt}})
		if err != nil || got != tc.want {
			t.Errorf("%v %d..%d: hides %v (%v), want %v", tc.ms, tc.mint, tc.maxt, got, err, tc.want)
		}
	}
	// Of several tombstones, the one that hides is found after those that
	// do not.
	ts := []Tombstone{{Matchers: a2, MinTime: 0, MaxTime: 5000}, {Matchers: a1, MinTime: 1501, MaxTime: 2999}, {Matchers: a1, MinTime: 3500, MaxTime: 3500}}
	if got, err := Hides(s, ts); err != nil || !got {
		t.Errorf("the third of three tombstones hides: %v (%v)", got, err)
	}
}
