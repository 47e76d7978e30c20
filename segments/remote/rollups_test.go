package remote

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/strata-tsdb/strata/downsample"
	"github.com/strata-tsdb/strata/segments"
	"github.com/strata-tsdb/strata/segments/remote/s3test"
)

// rollupRows reads the rollups of resolution res and day w (the window
// (w, w+Window]) that a shows, tombstones applied, by series and chunk
// kind; n is how many such rollups it shows.
func rollupRows(t *testing.T, a acquirer, res, w int64) (out map[string][][2]float64, n int) {
	t.Helper()
	segs, ts, release, err := a.Acquire(context.Background(), w+1, w+downsample.Window, nil, func(m segments.Meta) bool { return m.Resolution == res })
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	out = map[string][][2]float64{}
	for _, s := range segs {
		if s.Meta().MinTime != w+1 {
			continue
		}
		n++
		it, err := s.Select()
		if err != nil {
			t.Fatal(err)
		}
		for it.Next() {
			lset := it.Labels()
			for _, cm := range it.Chunks() {
				c, err := s.ReadChunk(cm.Ref)
				if err != nil {
					t.Fatal(err)
				}
				key := lset.String() + " " + cm.Kind.String()
				ci := segments.NewDeletedIterator(c.Iterator(nil), segments.DeletedRanges(ts[s.Meta().ID], lset))
				for ci.Next() != chunkenc.ValNone {
					at, v := ci.At()
					out[key] = append(out[key], [2]float64{float64(at), v})
				}
			}
		}
		if err := it.Err(); err != nil {
			t.Fatal(err)
		}
	}
	return out, n
}

// localSet is a local set as an acquirer.
type localSet struct{ set *segments.Set }

func (l localSet) Acquire(_ context.Context, mint, maxt int64, _ []segments.Meta, want func(segments.Meta) bool) ([]*segments.Segment, segments.TombstoneView, func(), error) {
	segs, ts, release := l.set.AcquireWithTombstones(mint, maxt)
	var out []*segments.Segment // segs is release's own
	for _, s := range segs {
		if want == nil || want(s.Meta()) {
			out = append(out, s)
		}
	}
	return out, ts, release, nil
}

// counterSeries writes a raw segment of two counters, x and y, a sample
// every minute at offset past the minute in [from, to), valued by time.
func counterSeries(t *testing.T, sets []*segments.Set, from, to time.Time, offset time.Duration, only string) {
	t.Helper()
	series := map[string][]time.Time{}
	for _, name := range []string{"x", "y"} {
		if only == "" || only == name {
			series[name] = minutes(from, to, offset)
		}
	}
	for _, set := range sets {
		var data []segments.SeriesData
		for name, tss := range series {
			c := chunkenc.NewXORChunk()
			app, _ := c.Appender()
			for _, ts := range tss {
				v := float64(ts.Unix() % 7200) // resets every 2 hours
				if name == "y" {
					v *= 3
				}
				app.Append(0, ts.UnixMilli(), v)
			}
			data = append(data, segments.SeriesData{Labels: labels.FromStrings("__name__", "m", "i", name),
				Chunks: []segments.ChunkMeta{{Kind: segments.KindRaw, Chunk: c}}})
		}
		slices.SortFunc(data, func(a, b segments.SeriesData) int { return labels.Compare(a.Labels, b.Labels) })
		meta, err := segments.WriteSeries(set.Dir(), segments.Meta{}, data)
		if err != nil {
			t.Fatal(err)
		}
		if err := set.Publish([]segments.Meta{meta}); err != nil {
			t.Fatal(err)
		}
	}
}

// rollUpAt runs a downsampler over s at the clock's time, a minute on
// (rollups made later have greater IDs).
func rollUpAt(t *testing.T, s *segments.Set, clock *testClock) {
	t.Helper()
	clock.Add(time.Minute)
	d, err := downsample.New(nil, s, downsample.Options{Now: clock.Now}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestBucketRollupsRebuilt: two days are rolled up (5m and 1h), uploaded
// and evicted. Late samples then reach day 1: flushed, rolled up by the
// local downsampler alone (a rollup of the late samples only), uploaded,
// evicted, and merged in the bucket into the day. The writer rebuilds the
// day's rollups from the bucket's raw data, and then day 2's, whose
// counters continue day 1's: the rollups readers see for days 1 and 2,
// at 5m and at 1h, are exactly those a downsampler makes of all the raw
// data, one of each. A delete of series y over day 1 is then
// applied by the rewrite of the raw day and a rebuild of its rollups:
// they no longer hold y (no tombstone left to hide it), and equal again
// what a downsampler makes of the raw data less the delete.
func TestBucketRollupsRebuilt(t *testing.T) {
	srv := s3test.Start(t)
	day := 24 * time.Hour
	d0 := t0.Add(day)              // day 1 is (d0, d0+day]
	const delay = 10 * time.Minute // of replaced segments' deletion
	set, ref := newSet(t), newSet(t)
	both := []*segments.Set{set, ref}
	counterSeries(t, both, t0.Add(time.Minute), t0.Add(day), 0, "")
	counterSeries(t, both, d0.Add(time.Minute), d0.Add(day), 0, "")
	counterSeries(t, both, d0.Add(day+time.Minute), d0.Add(2*day), 0, "") // day 2: its counters continue day 1's
	clock := &testClock{t: time.Now().Add(24 * time.Hour)}
	rollUp := func(s *segments.Set) { rollUpAt(t, s, clock) }
	rollUp(set)
	w := newTier(t, srv, set, "ru", Options{Ranges: []int64{time.Hour.Milliseconds(), day.Milliseconds()},
		UploadAfter: time.Hour, Keep: time.Hour, Now: clock.Now, Downsample: &downsample.Options{}, DeleteDelay: delay})
	mustSync(t, w)
	if ids := localIDs(set); len(ids) != 0 {
		t.Fatalf("local segments %v, want everything evicted", ids)
	}
	r := newTier(t, srv, newSet(t), "ru", Options{Reader: true})
	w1 := d0.UnixMilli()

	// A second reader lists and reads day 1's rollups all the while: one
	// of each resolution every time, never none or two. After each round
	// of the writer the test waits for a read begun after it, so that no
	// read that listed a replaced rollup is still going when it is
	// deleted (delay later).
	r2 := newTier(t, srv, newSet(t), "ru", Options{Reader: true})
	var (
		readsMtx        sync.Mutex
		started, reads  int
		readerErr, stop = make(chan error, 1), make(chan struct{})
	)
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
			err := r2.Sync(context.Background())
			for _, res := range []int64{downsample.Res5m, downsample.Res1h} {
				if err != nil {
					break
				}
				var segs []*segments.Segment
				var release func()
				segs, _, release, err = r2.Acquire(context.Background(), w1+1, w1+day.Milliseconds(), nil, func(m segments.Meta) bool { return m.Resolution == res })
				if err == nil {
					n := 0
					for _, s := range segs {
						if s.Meta().MinTime == w1+1 {
							n++
							_, err = s.LabelValues("i") // reads its index
						}
					}
					release()
					if err == nil && n != 1 {
						err = fmt.Errorf("the reader reads %d rollups of resolution %d for day 1, want 1", n, res)
					}
				}
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
	round := func() {
		t.Helper()
		mustSync(t, w)
		readsMtx.Lock()
		s := started
		readsMtx.Unlock()
		for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			select {
			case err := <-readerErr:
				t.Fatalf("the concurrent reader: %v", err)
			default:
			}
			readsMtx.Lock()
			done := reads > s
			readsMtx.Unlock()
			if done {
				return
			}
			if time.Now().After(deadline) {
				t.Fatal("timed out waiting for the concurrent reader")
			}
		}
	}
	check := func(what string) {
		t.Helper()
		rollUp(ref)
		mustSync(t, r)
		for _, res := range []int64{downsample.Res5m, downsample.Res1h} {
			for _, wd := range []int64{w1, w1 + day.Milliseconds()} {
				want, _ := rollupRows(t, localSet{ref}, res, wd)
				if len(want) == 0 {
					t.Fatalf("%s: the reference holds no %d rollup", what, res)
				}
				for who, a := range map[string]acquirer{"writer": w, "reader": r} {
					got, n := rollupRows(t, a, res, wd)
					if n != 1 || !reflect.DeepEqual(got, want) {
						var diff []string
						for k := range want {
							if !reflect.DeepEqual(got[k], want[k]) {
								diff = append(diff, fmt.Sprintf("%s: %d buckets, want %d", k, len(got[k]), len(want[k])))
							}
						}
						slices.Sort(diff)
						t.Fatalf("%s: the %s reads %d rollups of resolution %d for day %d (%d series×kinds, want %d): %s",
							what, who, n, res, 1+(wd-w1)/day.Milliseconds(), len(got), len(want), strings.Join(diff, "; "))
					}
				}
			}
		}
	}

	// Late samples of x, half a minute past each minute of day 1's first
	// 6 hours.
	counterSeries(t, both, d0.Add(time.Minute), d0.Add(6*time.Hour), 30*time.Second, "x")
	rollUp(set) // the local downsampler sees the late segment alone
	round()
	clock.Add(time.Minute)
	round()
	if n := counterValue(w.m.bucketMerges); n != 1 {
		t.Fatalf("%v merges, want day 1 merged once", n)
	}
	check("after late data")
	rebuilt := counterValue(w.m.rollupRebuilds)
	clock.Add(delay)
	round()
	if n := counterValue(w.m.rollupRebuilds); n != rebuilt {
		t.Fatalf("%v rollup rebuilds after a round with nothing new, want %v", n, rebuilt)
	}

	// Delete y over day 1.
	ms := []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "i", "y")}
	if err := w.AddTombstone(ms, []string{"m"}, w1+1, w1+day.Milliseconds()); err != nil {
		t.Fatal(err)
	}
	if _, err := ref.AddTombstone(ms, w1+1, w1+day.Milliseconds()); err != nil {
		t.Fatal(err)
	}
	clock.Add(time.Minute)
	round()
	clock.Add(time.Minute)
	round()
	check("after the delete")
	clock.Add(delay)
	round()
	close(stop)
	if err := <-readerErr; err != nil {
		t.Fatalf("the concurrent reader: %v", err)
	}
	// Not hidden by a tombstone: gone from the rollups.
	for _, res := range []int64{downsample.Res5m, downsample.Res1h} {
		segs, ts, release, err := r.Acquire(context.Background(), w1+1, w1+day.Milliseconds(), nil, func(m segments.Meta) bool { return m.Resolution == res })
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range segs {
			is, err := s.LabelValues("i")
			if err != nil {
				t.Fatal(err)
			}
			if s.Meta().MinTime == w1+1 && (slices.Contains(is, "y") || len(ts[s.Meta().ID]) > 0) {
				t.Errorf("rollup %s of day 1 holds series %v, %d tombstones", s.Meta().ID, is, len(ts[s.Meta().ID]))
			}
		}
		release()
	}
	if keys := srv.Keys("ru/" + tombstonesPrefix); len(keys) != 0 {
		t.Fatalf("tombstones %v left once the delete was applied", keys)
	}
}

// TestBucketRollupsAfterAllDeleted: all of day 2's data, one bucket
// segment, is deleted; the rewrite is an empty segment that keeps the
// segment's sources. Late samples then reach day 2 and are merged in the
// bucket with the empty segment: the writer rebuilds day 2's rollups, and
// they are exactly those a downsampler makes of the raw data (the late
// samples, continuing day 1's counters). It failed when the emptied
// segment left the bucket with nothing in its place: day 2's raw data
// looked partly gone (as after retention), its rollups were never rebuilt,
// and readers never saw the late samples at 5m or 1h.
func TestBucketRollupsAfterAllDeleted(t *testing.T) {
	srv := s3test.Start(t)
	day := 24 * time.Hour
	d0 := t0.Add(day) // day 1 is (d0, d0+day], day 2 the one after
	const delay = 10 * time.Minute
	set, ref := newSet(t), newSet(t)
	both := []*segments.Set{set, ref}
	counterSeries(t, both, d0.Add(time.Minute), d0.Add(day), 0, "")
	counterSeries(t, both, d0.Add(day+time.Minute), d0.Add(2*day), 0, "x")
	clock := &testClock{t: time.Now().Add(24 * time.Hour)}
	rollUp := func(s *segments.Set) { rollUpAt(t, s, clock) }
	rollUp(set)
	w := newTier(t, srv, set, "ad", Options{Ranges: []int64{time.Hour.Milliseconds(), day.Milliseconds()},
		UploadAfter: time.Hour, Keep: time.Hour, Now: clock.Now, Downsample: &downsample.Options{}, DeleteDelay: delay})
	mustSync(t, w)
	if ids := localIDs(set); len(ids) != 0 {
		t.Fatalf("local segments %v, want everything evicted", ids)
	}
	w2 := d0.Add(day).UnixMilli()
	ms := []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "i", "x")}
	if err := w.AddTombstone(ms, []string{"m"}, w2+1, w2+day.Milliseconds()); err != nil {
		t.Fatal(err)
	}
	if _, err := ref.AddTombstone(ms, w2+1, w2+day.Milliseconds()); err != nil {
		t.Fatal(err)
	}
	for range 3 { // the rewrite, then past the delay the original leaves
		clock.Add(delay)
		mustSync(t, w)
	}
	// Late samples of x, half a minute past each minute of day 2's first
	// 6 hours: a new local segment, uploaded, evicted and merged.
	counterSeries(t, both, d0.Add(day+time.Minute), d0.Add(day+6*time.Hour), 30*time.Second, "x")
	for range 3 {
		clock.Add(delay)
		mustSync(t, w)
	}
	rollUp(ref)
	r := newTier(t, srv, newSet(t), "ad", Options{Reader: true})
	mustSync(t, r)
	for _, res := range []int64{downsample.Res5m, downsample.Res1h} {
		want, _ := rollupRows(t, localSet{ref}, res, w2)
		if len(want) == 0 {
			t.Fatalf("the reference holds no %d rollup of day 2", res)
		}
		for who, a := range map[string]acquirer{"writer": w, "reader": r} {
			if got, n := rollupRows(t, a, res, w2); n != 1 || !reflect.DeepEqual(got, want) {
				t.Fatalf("the %s reads %d rollups of resolution %d for day 2 holding %v, want one holding %v", who, n, res, got, want)
			}
		}
	}
}
