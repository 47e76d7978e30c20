package remote

import (
	"context"
	"fmt"
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
