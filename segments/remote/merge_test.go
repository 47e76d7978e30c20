package remote

import (
	"context"
	"fmt"
	"math"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/strata-tsdb/strata/segments"
	"github.com/strata-tsdb/strata/segments/remote/s3test"
)

// testClock is a clock the test moves by hand.
type testClock struct {
	mtx sync.Mutex
	t   time.Time
}

func (c *testClock) Now() time.Time {
	c.mtx.Lock()
	defer c.mtx.Unlock()
	return c.t
}

func (c *testClock) Add(d time.Duration) {
	c.mtx.Lock()
	c.t = c.t.Add(d)
	c.mtx.Unlock()
}

// readEvery reads every sample of the segments a gives, their tombstones
// applied, by series, sorted by time, without folding equal timestamps:
// a sample read from two segments (a merge and one of its inputs) is
// there twice.
func readEvery(a acquirer) (map[string][][2]float64, error) {
	segs, ts, release, err := a.Acquire(context.Background(), math.MinInt64, math.MaxInt64, nil, nil)
	if err != nil {
		return nil, err
	}
	defer release()
	out := map[string][][2]float64{}
	for _, s := range segs {
		it, err := s.Select()
		if err != nil {
			return nil, err
		}
		for it.Next() {
			lset := it.Labels()
			for _, cm := range it.Chunks() {
				c, err := s.ReadChunk(cm.Ref)
				if err != nil {
					return nil, err
				}
				ci := segments.NewDeletedIterator(c.Iterator(nil), segments.DeletedRanges(ts[s.Meta().ID], lset))
				for ci.Next() != chunkenc.ValNone {
					at, v := ci.At()
					out[lset.String()] = append(out[lset.String()], [2]float64{float64(at), v})
				}
			}
		}
		if err := it.Err(); err != nil {
			return nil, err
		}
	}
	for k := range out {
		slices.SortStableFunc(out[k], func(a, b [2]float64) int { return int(a[0] - b[0]) })
	}
	return out, nil
}

// TestBucketMergesSettle: late samples for a day whose segment left the
// disk arrive round after round, each flushed into a segment of its own,
// uploaded and evicted; the writer merges the day in the bucket once the
// late data has settled (MergeAfter) or at most once per MergeMaxDelay
// while it keeps coming, not in every round. The merges are counted by
// strata_object_bucket_merges_total. A reader listing and reading all the
// while never reads a gap or a sample twice, and at the end the writer
// and the reader read every sample written, from one segment.
func TestBucketMergesSettle(t *testing.T) {
	srv := s3test.Start(t)
	const (
		steps    = 60
		step     = time.Minute
		after    = 5 * time.Minute
		maxDelay = 20 * time.Minute
		// Inputs of a merge are deleted deleteDelay (steps) after it.
		deleteDelay = 10 * time.Minute
	)
	set := newSet(t)
	base := map[string][]time.Time{"x": minutes(t0, t0.Add(6*time.Hour), 0), "y": minutes(t0, t0.Add(6*time.Hour), 0)}
	writeSamples(t, set, base, 1)
	// The clock starts after the IDs of the segments written, as a real
	// one does: a merge's output sorts after its inputs in a listing.
	clock := &testClock{t: time.Now().Add(24 * time.Hour)}
	w := newTier(t, srv, set, "st", Options{Ranges: []int64{time.Hour.Milliseconds(), (24 * time.Hour).Milliseconds()},
		UploadAfter: time.Hour, Keep: time.Hour, Now: clock.Now, MergeAfter: after, MergeMaxDelay: maxDelay, DeleteDelay: deleteDelay})
	mustSync(t, w)
	if ids := localIDs(set); len(ids) != 0 {
		t.Fatalf("local segments %v, want the day evicted", ids)
	}

	// want: the base day, then one late sample of x per step (valued
	// 100+k), after the base's samples in time.
	want := map[string][][2]float64{}
	for k, tss := range base {
		for _, ts := range tss {
			want[`{__name__="m", i="`+k+`"}`] = append(want[`{__name__="m", i="`+k+`"}`], [2]float64{float64(ts.UnixMilli()), 1})
		}
	}
	x := `{__name__="m", i="x"}`
	nBase := len(want[x])
	late := func(k int) time.Time { return t0.Add(7*time.Hour + time.Duration(k)*time.Minute) }
	full := map[string][][2]float64{x: slices.Clone(want[x]), `{__name__="m", i="y"}`: want[`{__name__="m", i="y"}`]}
	for k := range steps {
		full[x] = append(full[x], [2]float64{float64(late(k).UnixMilli()), float64(100 + k)})
	}
	// check: y whole, x the base and a prefix of the late samples, each
	// once.
	check := func(got map[string][][2]float64) error {
		if len(got) != 2 || !reflect.DeepEqual(got[`{__name__="m", i="y"}`], full[`{__name__="m", i="y"}`]) {
			return fmt.Errorf("%d series, or y is not whole (%d samples, want %d)", len(got), len(got[`{__name__="m", i="y"}`]), len(full[`{__name__="m", i="y"}`]))
		}
		n := len(got[x])
		if n < nBase || n > len(full[x]) || !reflect.DeepEqual(got[x], full[x][:n]) {
			return fmt.Errorf("x: %d samples, not the day and the first %d late ones each once", n, n-nBase)
		}
		return nil
	}

	// The reader lists and reads in a loop. After each step the test
	// waits for a read that began after it: so no read that began before
	// a merge's output was uploaded is still going when its inputs are
	// deleted (deleteDelay later), as a reader's listing interval and
	// query timeout are short against the delay in production.
	r := newTier(t, srv, newSet(t), "st", Options{Reader: true})
	stop := make(chan struct{})
	var (
		readsMtx sync.Mutex
		started  int
		reads    int
	)
	readerErr := make(chan error, 1)
	go func() {
		defer close(readerErr)
		for {
			select {
			case <-stop:
				return
			default:
			}
			readsMtx.Lock()
			started++
			readsMtx.Unlock()
			err := r.Sync(context.Background())
			var got map[string][][2]float64
			if err == nil {
				got, err = readEvery(r)
			}
			if err == nil {
				err = check(got)
			}
			if err != nil {
				readerErr <- err
				return
			}
			readsMtx.Lock()
			reads++
			readsMtx.Unlock()
		}
	}()

	readAfter := func() {
		t.Helper()
		readsMtx.Lock()
		s := started
		readsMtx.Unlock()
		for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			select {
			case err := <-readerErr:
				t.Fatalf("the reader: %v", err)
			default:
			}
			readsMtx.Lock()
			done := reads > s
			readsMtx.Unlock()
			if done {
				return
			}
			if time.Now().After(deadline) {
				t.Fatal("timed out waiting for the reader to read")
			}
		}
	}
	for k := range steps {
		// A late sample flushed into a segment of its own: uploaded and
		// evicted by one round, the day mergeable in the next.
		writeSamples(t, set, map[string][]time.Time{"x": {late(k)}}, float64(100+k))
		mustSync(t, w)
		clock.Add(step)
		mustSync(t, w)
		readAfter()
	}
	during := counterValue(w.m.bucketMerges)
	// The late data settles: one more merge, the last; its inputs are
	// deleted deleteDelay later.
	clock.Add(after)
	mustSync(t, w)
	readAfter()
	clock.Add(deleteDelay)
	mustSync(t, w)
	merges := counterValue(w.m.bucketMerges)
	cat := w.Metas()
	if len(cat) != 1 {
		t.Fatalf("%d segments in the bucket once the late data settled, want the day merged into one", len(cat))
	}
	waitFor(t, "the reader lists the merged day alone", func() bool { return len(r.Metas()) == 1 })
	readsMtx.Lock()
	n := reads
	readsMtx.Unlock()
	waitFor(t, "the reader reads a few more times", func() bool {
		readsMtx.Lock()
		defer readsMtx.Unlock()
		return reads > n+3
	})
	close(stop)
	if err := <-readerErr; err != nil {
		t.Fatalf("the reader: %v", err)
	}
	for who, a := range map[string]acquirer{"writer": w, "reader": r} {
		got, err := readEvery(a)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, full) {
			t.Fatalf("the %s reads %d samples of x, want %d (every one written, once)", who, len(got[x]), len(full[x]))
		}
	}
	// At most one merge per MergeMaxDelay while the late data kept coming
	// (steps×step long), and one once it settled; merging every round
	// would have made steps merges.
	if most := float64(steps * step / maxDelay); during > most || merges > most+1 || merges == during {
		t.Fatalf("%v merges while late data came for %v, %v in all; want at most %v and %v, one of them after it settled",
			during, steps*step, merges, most, most+1)
	}
	t.Logf("%d late segments: %v merges while they came, %v in all, %.0f bytes uploaded in all; the reader read %d times",
		steps, during, merges, counterValue(w.m.uploadedBytes), n)
}

// TestBucketDeleteDelay: a reader lists a day's segments; the writer
// then merges them, a rewrite replaces another segment for a delete, and
// the data of a third segment, and of a day of two more (which a merge
// would join), is all deleted (each replaced by an empty segment that keeps
// their sources). The reader, reading what it listed, still finds every
// object of the replaced segments (deleted only DeleteDelay later), and
// reads the replacements alone once it lists them; past the delay, the
// replaced segments leave the bucket.
func TestBucketDeleteDelay(t *testing.T) {
	srv := s3test.Start(t)
	set := newSet(t)
	writeSamples(t, set, map[string][]time.Time{"x": minutes(t0, t0.Add(6*time.Hour), 0)}, 1)
	writeSamples(t, set, map[string][]time.Time{"y": minutes(t0.Add(8*time.Hour), t0.Add(9*time.Hour), 0)}, 2)
	two := writeSamples(t, set, map[string][]time.Time{"x": minutes(t0.Add(48*time.Hour), t0.Add(50*time.Hour), 0)}, 3)
	gone := writeSamples(t, set, map[string][]time.Time{"z": minutes(t0.Add(96*time.Hour), t0.Add(97*time.Hour), 0)}, 4)
	goneDay := []segments.Meta{
		writeSamples(t, set, map[string][]time.Time{"v": minutes(t0.Add(144*time.Hour), t0.Add(145*time.Hour), 0)}, 5),
		writeSamples(t, set, map[string][]time.Time{"v": minutes(t0.Add(146*time.Hour), t0.Add(147*time.Hour), 0)}, 6),
	}
	all, release := acquireAll(t, set)
	release()
	clock := &testClock{t: time.Now().Add(24 * time.Hour)}
	const delay = 10 * time.Minute
	// Uploaded and evicted by the first round, merged by the second.
	w := newTier(t, srv, set, "dd", Options{Ranges: []int64{time.Hour.Milliseconds(), (24 * time.Hour).Milliseconds()},
		UploadAfter: time.Hour, Keep: time.Hour, Now: clock.Now, DeleteDelay: delay})
	mustSync(t, w)
	r := newTier(t, srv, newSet(t), "dd", Options{Reader: true})
	mustSync(t, r)
	listed := r.Metas()
	if len(listed) != 6 {
		t.Fatalf("the reader lists %d segments, want 6", len(listed))
	}
	ms := []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "i", "x")}
	if err := w.AddTombstone(ms, []string{"m"}, two.MinTime, two.MinTime+int64(time.Hour/time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	zMs := []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "i", "z")}
	if err := w.AddTombstone(zMs, []string{"m"}, gone.MinTime, gone.MaxTime); err != nil {
		t.Fatal(err)
	}
	want := without(all, `{__name__="m", i="x"}`, two.MinTime, two.MinTime+int64(time.Hour/time.Millisecond))
	want = without(want, `{__name__="m", i="z"}`, gone.MinTime, gone.MaxTime)
	vMs := []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "i", "v")}
	if err := w.AddTombstone(vMs, []string{"m"}, goneDay[0].MinTime, goneDay[1].MaxTime); err != nil {
		t.Fatal(err)
	}
	want = without(want, `{__name__="m", i="v"}`, goneDay[0].MinTime, goneDay[1].MaxTime)
	clock.Add(time.Minute)
	mustSync(t, w)
	if n, rw := counterValue(w.m.bucketMerges), counterValue(w.m.bucketRewrites); n != 2 || rw != 2 {
		t.Fatalf("%v merges and %v rewrites, want 2 and 2 (one of each into an empty segment)", n, rw)
	}
	// The reader has not listed the merge or the rewrite: it reads what
	// it listed, the tombstone not yet known to it.
	got, err := readEvery(r)
	if err != nil {
		t.Fatalf("the reader reads the segments it listed: %v", err)
	}
	if !reflect.DeepEqual(got, all) {
		t.Fatal("the reader does not read what it listed")
	}
	mustSync(t, r)
	if got, err := readEvery(r); err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("the reader, having listed the replacements, reads %d series (%v), not the data less the delete", len(got), err)
	}
	if n := len(w.Metas()); n != 10 {
		t.Fatalf("%d segments in the bucket before the delay, want the 6 replaced and their 4 replacements (2 of them empty)", n)
	}
	clock.Add(delay)
	mustSync(t, w)
	mustSync(t, r)
	if n := len(w.Metas()); n != 4 || len(r.Metas()) != 4 {
		t.Fatalf("%d segments in the bucket (%d listed) past the delay, want the 4 replacements", n, len(r.Metas()))
	}
	empty := 0
	for _, m := range w.Metas() {
		if m.NumSeries != 0 {
			continue
		}
		empty++
		if !slices.Equal(m.Compaction.Sources, gone.Compaction.Sources) &&
			!slices.Equal(m.Compaction.Sources, slices.Sorted(slices.Values([]string{goneDay[0].ID, goneDay[1].ID}))) {
			t.Fatalf("an empty segment %+v whose sources are not those of the emptied ones", m)
		}
	}
	if empty != 2 {
		t.Fatalf("%d empty segments in the bucket, want 2 (gone's rewrite, goneDay's merge)", empty)
	}
	for _, id := range []string{gone.ID, goneDay[0].ID, goneDay[1].ID} {
		if keys := srv.Keys("dd/" + segmentPrefix(id)); len(keys) != 0 {
			t.Fatalf("a segment emptied by the delete left objects %v past the delay", keys)
		}
	}
	if keys := srv.Keys("dd/" + tombstonesPrefix); len(keys) != 0 {
		t.Fatalf("tombstones %v are left once their segments left", keys)
	}
	if got, err := readEvery(r); err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("the reader reads %d series (%v) once the replaced segments left, want the data less the delete", len(got), err)
	}
}
