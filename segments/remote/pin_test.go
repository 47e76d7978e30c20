package remote

import (
	"context"
	"fmt"
	"math"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strata-tsdb/strata/segments/remote/s3test"
)

// TestBucketDeleteWaitsForQuery: a writer's round does not delete from
// the bucket a segment that a query of its own still reads, whatever
// DeleteDelay (zero here): a query holds a day's two bucket-only segments
// and one past retention while a round merges the day and expires the
// old one; the round leaves the three in the bucket, the query reads them
// whole, and a query that starts meanwhile reads the merge alone. Once
// the query releases them, the next round deletes them. Queries of the
// day run all the while, concurrently with rounds that merge late
// copies of its samples into it and delete the last merge at once (run
// it under -race): each reads the day whole, from the inputs or from the
// merge. Before, a round deleted the segments whatever queries held
// them, and the long query's reads failed.
func TestBucketDeleteWaitsForQuery(t *testing.T) {
	srv := s3test.Start(t)
	set := newSet(t)
	day := 24 * time.Hour
	first := writeSamples(t, set, map[string][]time.Time{"x": minutes(t0, t0.Add(6*time.Hour), 0), "y": minutes(t0, t0.Add(6*time.Hour), 0)}, 1)
	late := writeSamples(t, set, map[string][]time.Time{"z": minutes(t0.Add(time.Hour), t0.Add(2*time.Hour), 0)}, 2)
	old := writeSamples(t, set, map[string][]time.Time{"x": minutes(t0.Add(-2*day), t0.Add(-2*day+time.Hour), 0)}, 3)
	want, release := acquireAll(t, set)
	release()
	want = byTime(want)
	dayOnly := func(s map[string][][2]float64) map[string][][2]float64 {
		out := map[string][][2]float64{}
		for k, v := range s {
			for _, x := range v {
				if int64(x[0]) >= t0.UnixMilli() {
					out[k] = append(out[k], x)
				}
			}
		}
		return out
	}
	wantDay := dayOnly(want)
	var minTime atomic.Int64
	minTime.Store(math.MinInt64)
	now := t0.Add(10 * day)
	w := newTier(t, srv, set, "pin", Options{Ranges: []int64{time.Hour.Milliseconds(), day.Milliseconds()}, UploadAfter: time.Hour,
		Keep: time.Hour, CacheMaxBytes: 1, Now: func() time.Time { return now },
		MinTime: func(int64) int64 { return minTime.Load() }})
	ctx := context.Background()
	mustSync(t, w) // uploads the three, then deletes their local copies
	if ids := localIDs(set); len(ids) != 0 {
		t.Fatalf("local segments %v left", ids)
	}

	// Queries of the day all the while.
	stop := make(chan struct{})
	var (
		wg    sync.WaitGroup
		reads atomic.Int64
		errs  = make(chan error, 4)
	)
	// Before the tier closes (cleanups run last first), also when the
	// test fails.
	stopQueries := sync.OnceFunc(func() {
		close(stop)
		wg.Wait()
	})
	t.Cleanup(stopQueries)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				segs, ts, rel, err := w.Acquire(ctx, t0.UnixMilli(), t0.Add(day).UnixMilli()-1, nil, nil)
				var got map[string][][2]float64
				if err == nil {
					got, err = visibleSamples(segs, ts)
					rel()
				}
				if err == nil && !reflect.DeepEqual(dayOnly(got), wantDay) {
					err = fmt.Errorf("read %d series of the day, want %d (or samples differ)", len(dayOnly(got)), len(wantDay))
				}
				if err != nil {
					errs <- err
					return
				}
				reads.Add(1)
			}
		}()
	}

	// The long query.
	held, ts, releaseHeld, err := w.Acquire(ctx, math.MinInt64, math.MaxInt64, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	heldIDs := []string{}
	for _, s := range held {
		heldIDs = append(heldIDs, s.Meta().ID)
	}
	slices.Sort(heldIDs)
	wantIDs := []string{first.ID, late.ID, old.ID}
	slices.Sort(wantIDs)
	if !slices.Equal(heldIDs, wantIDs) {
		t.Fatalf("the query holds %v, want %v", heldIDs, wantIDs)
	}
	minTime.Store(t0.Add(-day).UnixMilli()) // old is past retention
	mustSync(t, w)                          // merges the day, DeleteDelay 0
	if n := counterValue(w.m.bucketMerges); n != 1 {
		t.Fatalf("%v merges, want 1", n)
	}
	for _, id := range wantIDs {
		if len(srv.Keys("pin/"+metaKey(id))) != 1 {
			t.Fatalf("segment %s left the bucket while a query of the writer reads it", id)
		}
	}
	got, err := visibleSamples(held, ts)
	if err != nil {
		t.Fatalf("the query reading what it holds: %v", err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("the query read %d series, want %d (or samples differ)", len(got), len(want))
	}
	// A query that starts now reads the merge alone: not the inputs it
	// replaces, nor the old one, past retention.
	segs, _, rel, err := w.Acquire(ctx, math.MinInt64, math.MaxInt64, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(segs) != 1 || slices.Contains(wantIDs, segs[0].Meta().ID) {
		var ids []string
		for _, s := range segs {
			ids = append(ids, s.Meta().ID)
		}
		rel()
		t.Fatalf("a new query reads %v, want the merge alone", ids)
	}
	rel()
	releaseHeld()
	mustSync(t, w)
	for _, id := range wantIDs {
		if keys := srv.Keys("pin/" + segmentPrefix(id)); len(keys) != 0 {
			t.Fatalf("segment %s still in the bucket after the query: %v", id, keys)
		}
	}
	// More merges of the day while its queries go on: a copy of some of
	// its samples arrives late, is uploaded, and is merged with the day,
	// whose last merge leaves the bucket in the same round.
	for i := range 3 {
		writeSamples(t, set, map[string][]time.Time{"x": minutes(t0, t0.Add(time.Hour), 0)}, 1)
		mustSync(t, w) // uploads and evicts it
		mustSync(t, w) // merges it into the day
		if n := counterValue(w.m.bucketMerges); n != float64(2+i) {
			t.Fatalf("%v merges, want %d", n, 2+i)
		}
	}
	stopQueries()
	close(errs)
	for err := range errs {
		t.Fatalf("a query of the day: %v", err)
	}
	// What the queries held when the last merge replaced it leaves now.
	t.Logf("%d reads of the day; %d segments left in the bucket for the queries", reads.Load(), len(w.Metas())-1)
	mustSync(t, w)
	if n := len(w.Metas()); n != 1 {
		t.Fatalf("%d segments in the bucket, want the day's merge alone", n)
	}
	if w.pinned() != 0 {
		t.Fatalf("%d pins left after every query released", w.pinned())
	}
}

// pinned returns the pins held on the tier's segments.
func (t *Tier) pinned() int {
	t.mtx.Lock()
	defer t.mtx.Unlock()
	n := 0
	for _, c := range t.pins {
		n += c
	}
	return n
}
