package remote

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/strata-tsdb/strata/segments/remote/s3test"
)

// TestTombstonesSavedDuringRounds: deletes made while upload rounds run
// (the server's delete route and the tier's background rounds both save
// tombstones.json) all succeed, and the saved file holds every one of
// them once both stop: a restarted writer knows them all. Two saves at
// once used to share one temporary file: one of them failed ("rename
// tombstones.json.tmp: no such file or directory", a failed delete), or
// an older state renamed last lost a delete made meanwhile.
func TestTombstonesSavedDuringRounds(t *testing.T) {
	srv := s3test.Start(t)
	set := newSet(t)
	writeSegment(t, set, 5, t0, t0.Add(2*time.Hour))
	now := t0.Add(31 * time.Hour) // the segment is final
	dir := t.TempDir()
	opts := Options{UploadAfter: 24 * time.Hour, Now: func() time.Time { return now }, Dir: dir}
	w := newTier(t, srv, set, "ts", opts)
	mustSync(t, w)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 1)
	wg.Add(1)
	go func() { // rounds upload each new tombstone and save the file
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := w.Sync(context.Background()); err != nil {
				select {
				case errs <- err:
				default:
				}
				return
			}
		}
	}()
	const deletes = 60
	for i := range deletes {
		ms := []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "i", fmt.Sprintf("x%d", i))}
		if err := w.AddTombstone(ms, []string{"m"}, t0.UnixMilli(), t0.Add(time.Hour).UnixMilli()); err != nil {
			close(stop)
			wg.Wait()
			t.Fatalf("delete %d during rounds: %v", i, err)
		}
	}
	close(stop)
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatalf("a round during deletes: %v", err)
	default:
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	// Restarted on its directory alone (no round: the bucket's tombstones
	// are not adopted), the writer knows every delete.
	again := newTier(t, srv, set, "ts", opts)
	again.mtx.Lock()
	n := len(again.tombs)
	again.mtx.Unlock()
	if n != deletes {
		t.Fatalf("tombstones.json holds %d tombstones after %d deletes", n, deletes)
	}
}

// TestStateFilesSynced: a delete is durable when AddTombstone returns:
// tombstones.json's temporary file is synced, renamed, and then its
// directory synced (without it a power loss may leave the old file, and
// the acknowledged delete of data only the bucket holds is lost before
// its tombstone is uploaded). catalog.json is written the same way.
func TestStateFilesSynced(t *testing.T) {
	var (
		mtx    sync.Mutex
		synced []string
	)
	orig := fsync
	fsync = func(f *os.File) error {
		mtx.Lock()
		synced = append(synced, f.Name())
		mtx.Unlock()
		return orig(f)
	}
	t.Cleanup(func() { fsync = orig })
	take := func() []string {
		mtx.Lock()
		defer mtx.Unlock()
		out := synced
		synced = nil
		return out
	}
	srv := s3test.Start(t)
	set := newSet(t)
	writeSegment(t, set, 5, t0, t0.Add(2*time.Hour))
	now := t0.Add(31 * time.Hour)
	dir := t.TempDir()
	w := newTier(t, srv, set, "fs", Options{UploadAfter: 24 * time.Hour, Now: func() time.Time { return now }, Dir: dir})
	// Each save: the temporary file, then (after the rename) the
	// directory.
	saves := func(got []string, file string) bool {
		if len(got) == 0 || len(got)%2 != 0 {
			return false
		}
		for i := 0; i < len(got); i += 2 {
			if got[i] != filepath.Join(dir, file+".tmp") || got[i+1] != dir {
				return false
			}
		}
		return true
	}
	mustSync(t, w)
	if got := take(); !saves(got, catalogFile) {
		t.Fatalf("the upload round synced %v, want catalog.json's saves, each the temporary file then the directory", got)
	}
	ms := []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "i", "aa")}
	if err := w.AddTombstone(ms, []string{"m"}, t0.UnixMilli(), t0.Add(time.Hour).UnixMilli()); err != nil {
		t.Fatal(err)
	}
	if got := take(); !saves(got, tombstonesFile) {
		t.Fatalf("the delete synced %v, want tombstones.json's temporary file then the directory", got)
	}
}
