package segments

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
)

// recordSyncedDirs makes syncDir record the directories it syncs until
// the test ends, and returns the record.
func recordSyncedDirs(t *testing.T) *[]string {
	t.Helper()
	var dirs []string
	prev := syncedDir
	syncedDir = func(dir string) { dirs = append(dirs, dir) }
	t.Cleanup(func() { syncedDir = prev })
	return &dirs
}

// TestSyncDirMissing: syncDir of a directory that does not exist reports
// that, and syncs nothing.
func TestSyncDirMissing(t *testing.T) {
	synced := recordSyncedDirs(t)
	err := syncDir(filepath.Join(t.TempDir(), "missing"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("syncDir of a missing directory: %v, want ErrNotExist", err)
	}
	if len(*synced) != 0 {
		t.Fatalf("synced %v", *synced)
	}
}

// TestLinkSnapshotSyncsDirs: LinkSnapshot fsyncs every directory it
// created in the snapshot, the snapshot directory, and its parent and
// grandparent (which may have been created by MkdirAll), so that the
// snapshot survives a power loss whole.
func TestLinkSnapshotSyncsDirs(t *testing.T) {
	parent := t.TempDir()
	m := writeTestSegment(t, parent, Meta{}, genSeries(1, 3, 2))
	to := filepath.Join(t.TempDir(), "snap", "segments")
	synced := recordSyncedDirs(t)
	if err := LinkSnapshot(parent, []Info{{Meta: m}}, to); err != nil {
		t.Fatal(err)
	}
	want := []string{
		filepath.Join(to, m.ID), filepath.Join(to, m.ID, chunksDirname), // the segment's directories
		to, filepath.Dir(to), filepath.Dir(filepath.Dir(to)),
	}
	if !slices.Equal(*synced, want) {
		t.Fatalf("synced %v, want %v", *synced, want)
	}
}

// TestSmallestCutsAtTwiceN: Smallest holds every value offered until it
// holds 2n, and only then sorts and cuts to the n smallest: its cost is one
// sort per n values (O(m log n) for m values), as its doc says, not a sort
// per value. With n <= 0 it never sorts before Sorted.
func TestSmallestCutsAtTwiceN(t *testing.T) {
	for _, n := range []int{1, 2, 3, 5} {
		s := NewSmallest(n)
		held := 0 // values added since the last cut, and the n it kept
		for i := range 6 * n {
			s.Add(fmt.Sprintf("v%03d", 100-i)) // distinct: a cut drops none as a duplicate
			held++
			if held == 2*n {
				held = n
			}
			if len(s.vals) != held {
				t.Fatalf("n=%d: %d values held after %d added, want %d", n, len(s.vals), i+1, held)
			}
		}
	}
	for _, n := range []int{0, -1} {
		s := NewSmallest(n)
		in := []string{"c", "a", "c", "b", "a"}
		for _, v := range in {
			s.Add(v)
		}
		if !slices.Equal(s.vals, in) {
			t.Fatalf("n=%d: holds %v before Sorted, want %v as added", n, s.vals, in)
		}
		if got := s.Sorted(); !slices.Equal(got, []string{"a", "b", "c"}) {
			t.Fatalf("n=%d: Sorted() = %v", n, got)
		}
	}
}

// TestChunkFullAtExactly1KiB: a histogram chunk of 10 samples or more is
// full once it holds 1 KiB (1,024 bytes) exactly, not only past it. The
// samples are searched for (a fixed series of seeds) until one chunk ends
// on 1,024 bytes exactly.
func TestChunkFullAtExactly1KiB(t *testing.T) {
	for seed := int64(1); seed <= 200; seed++ {
		rng := rand.New(rand.NewSource(seed))
		abs := make([]int64, 8)
		var c chunkenc.Chunk
		var app chunkenc.Appender
		for i := 0; c == nil || len(c.Bytes()) < 1024; i++ {
			var cut bool
			c, app, cut = AppendSample(c, app, nil, &Sample{T: int64(i) * 1000, H: growingHistogram(rng, abs, 1000, i)})
			if cut != (i == 0) {
				t.Fatalf("seed %d: sample %d cut a chunk", seed, i)
			}
			n, size := c.NumSamples(), len(c.Bytes())
			if want := n >= 10 && size >= 1024; ChunkFull(c, 1000) != want {
				t.Fatalf("seed %d: chunk of %d samples, %d bytes: full %v, want %v", seed, n, size, !want, want)
			}
		}
		if n := c.NumSamples(); len(c.Bytes()) == 1024 && n >= 10 {
			t.Logf("seed %d: %d samples, 1,024 bytes: full", seed, n)
			return
		}
	}
	t.Fatal("no chunk of exactly 1,024 bytes found: change the search")
}

// TestPagedRegionPageDoesNotFollow: a page table (behind a valid CRC)
// whose page after the first has a zero delta is refused with an error
// naming that page and the one before it.
func TestPagedRegionPageDoesNotFollow(t *testing.T) {
	orig, offs, r := threePages(t)
	for _, zero := range []string{"logical", "offset"} {
		ds, do := offs[2]-offs[1], r.offs[2]-r.offs[1]
		if zero == "logical" {
			ds = 0
		} else {
			do = 0
		}
		_, err := openPagedRegion(threePagesTable(orig, offs, r, ds, do), 8, NewPageCache(0))
		if err == nil || err.Error() != "page 2 does not follow page 1" {
			t.Fatalf("page 2 at a %s delta of 0: %v, want \"page 2 does not follow page 1\"", zero, err)
		}
	}
}

// TestSetOpenPruneSaveFails: when OpenSet drops the tombstones of segments
// gone and cannot save the file without them, the open fails with that
// error (the set is closed), rather than going on with tombstones on disk
// that the set no longer holds.
func TestSetOpenPruneSaveFails(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "segments")
	a := writeHourSegment(t, dir, 1, Meta{ID: "A1"})
	b := writeHourSegment(t, dir, 2, Meta{ID: "B2"})
	set, err := OpenSet(slog.New(slog.DiscardHandler), dir)
	if err != nil {
		t.Fatal(err)
	}
	ms := []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "__name__", "m")}
	if _, err := set.AddTombstone(ms, a.MinTime, b.MaxTime); err != nil {
		t.Fatal(err)
	}
	if err := set.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(dir, b.ID)); err != nil {
		t.Fatal(err)
	}
	// The save writes tombstones.json.tmp first: a directory there makes
	// it fail (chmod would not stop root).
	if err := os.Mkdir(filepath.Join(dir, tombstonesFile+".tmp"), 0o755); err != nil {
		t.Fatal(err)
	}
	set, err = OpenSet(slog.New(slog.DiscardHandler), dir)
	if err == nil || !strings.HasPrefix(err.Error(), "save tombstones: ") {
		if set != nil {
			set.Close()
		}
		t.Fatalf("open with the pruned tombstones not saved: %v, want a save tombstones error", err)
	}
	// The file on disk is unchanged, and opens once the save can go.
	if tombs, err := loadTombstones(dir); err != nil || len(tombs[a.ID]) != 1 || len(tombs[b.ID]) != 1 {
		t.Fatalf("tombstones file after the failed save: %v, %v", tombs, err)
	}
	if err := os.Remove(filepath.Join(dir, tombstonesFile+".tmp")); err != nil {
		t.Fatal(err)
	}
	set, err = OpenSet(slog.New(slog.DiscardHandler), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	if n, m := len(set.Tombstones(a.ID)), len(set.Tombstones(b.ID)); n != 1 || m != 0 {
		t.Fatalf("%d tombstones of A1, %d of the removed B2; want 1, 0", n, m)
	}
}
