package segments

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
)

// TestEvict: Evict takes a segment out of the set and deletes its
// directory (once its readers are done), whatever its place in the set;
// not one with tombstones, nor one the set does not hold (an unknown ID,
// or one evicted already).
func TestEvict(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "segments")
	var logs bytes.Buffer // written by the set's deletions, read once they are done
	set, err := OpenSet(slog.New(slog.NewTextHandler(&logs, nil)), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	var ids []string
	var metas []Meta
	var victim labels.Labels
	for i := range 3 {
		series := genSeries(uint64(50+i), 2, 1)
		metas = append(metas, writeTestSegment(t, dir, Meta{ID: NewID(time.UnixMilli(int64(1000 * (i + 1)))), Seq: uint64(i + 1)}, series))
		ids = append(ids, metas[i].ID)
		if i == 1 {
			victim = series[0].lset
		}
	}
	// The second segment first, and a tombstone for it alone (one added
	// later leaves segments published after it alone).
	if err := set.Publish(metas[1:2]); err != nil {
		t.Fatal(err)
	}
	ms := []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "instance", victim.Get("instance")),
		labels.MustNewMatcher(labels.MatchEqual, "__name__", victim.Get("__name__"))}
	if got, err := set.AddTombstone(ms, minInt64, maxInt64); err != nil || !slices.Equal(got, ids[1:2]) {
		t.Fatalf("tombstone added to %v (%v), want only the second segment %s", got, err, ids[1])
	}
	if err := set.Publish([]Meta{metas[0], metas[2]}); err != nil {
		t.Fatal(err)
	}
	held := func() []string {
		var out []string
		for _, m := range set.Metas() {
			out = append(out, m.ID)
		}
		slices.Sort(out)
		return out
	}
	for _, c := range []struct {
		id   string
		want bool
		held []string
	}{
		{"01ZZZZZZZZZZZZZZZZZZZZZZZZ", false, ids},
		{ids[1], false, ids}, // tombstones
		{ids[0], true, ids[1:]},
		{ids[0], false, ids[1:]},
		{ids[2], true, ids[1:2]},
	} {
		if got := set.Evict(c.id); got != c.want {
			t.Fatalf("Evict(%s) = %v, want %v", c.id, got, c.want)
		}
		if got := held(); !slices.Equal(got, c.held) {
			t.Fatalf("after Evict(%s): the set holds %v, want %v", c.id, got, c.held)
		}
	}
	if err := set.Close(); err != nil { // waits for the deletions
		t.Fatal(err)
	}
	for i, id := range ids {
		_, err := os.Stat(filepath.Join(dir, id))
		if gone := errors.Is(err, os.ErrNotExist); gone != (i != 1) {
			t.Errorf("segment %d's directory: %v after the set closed", i, err)
		}
	}
	if strings.Contains(logs.String(), "level=ERROR") {
		t.Errorf("the deletions logged errors:\n%s", logs.String())
	}
}
