package wal

import (
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// expectForever makes a commit wait for announced calls until they come
// or end: what these tests check must not depend on a timer.
const expectForever = time.Hour

// waitUntilWaiting returns once the writer goroutine waits for announced
// calls.
func waitUntilWaiting(t *testing.T, w *WAL) {
	t.Helper()
	for !w.expect.waiting.Load() {
		time.Sleep(100 * time.Microsecond)
	}
}

// logAsync runs Log(rec) in a goroutine; the channel gets its error.
func logAsync(w *WAL, rec string) <-chan error {
	done := make(chan error, 1)
	go func() { done <- w.Log([]byte(rec)) }()
	return done
}

// TestExpectSharesCommit checks that a commit waits for a call announced
// before it, so that the two share one fsync, and that neither returns
// before that fsync.
func TestExpectSharesCommit(t *testing.T) {
	spy := &syncSpy{}
	m := NewMetrics(prometheus.NewRegistry())
	w := openSpiedWAL(t, t.TempDir(), Options{ExpectWait: expectForever, Metrics: m}, spy)
	x := w.Expect()
	first := logAsync(w, "first")
	waitUntilWaiting(t, w)
	select {
	case err := <-first:
		t.Fatalf("Log returned (err %v) while a call announced before its commit was still coming", err)
	default:
	}
	p := w.Enqueue([]byte("second"))
	x.Done()
	if err := p.Wait(); err != nil {
		t.Fatal(err)
	}
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if got := spy.fsyncs(); got != 1 {
		t.Errorf("%d fsyncs for two calls, want 1 (shared)", got)
	}
	for _, rec := range []string{"first", "second"} {
		if !spy.isDurable(t, []byte(rec)) {
			t.Errorf("%q acknowledged before it was fsynced", rec)
		}
	}
	if got := histogramCount(t, m.CommitSize); got != 1 {
		t.Errorf("%d commits, want 1", got)
	}
}

// TestExpectDone checks that a call that ends its announcement without
// logging releases the commit waiting for it: no timer is involved.
func TestExpectDone(t *testing.T) {
	spy := &syncSpy{}
	w := openSpiedWAL(t, t.TempDir(), Options{ExpectWait: expectForever}, spy)
	x := w.Expect()
	first := logAsync(w, "first")
	waitUntilWaiting(t, w)
	x.Done()
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if !spy.isDurable(t, []byte("first")) {
		t.Error("acknowledged before it was fsynced")
	}
}

// TestExpectLaterAnnouncements checks that a commit waits only for the
// calls announced before it started: one announced while it waits does
// not hold it back.
func TestExpectLaterAnnouncements(t *testing.T) {
	spy := &syncSpy{}
	w := openSpiedWAL(t, t.TempDir(), Options{ExpectWait: expectForever}, spy)
	early := w.Expect()
	first := logAsync(w, "first")
	waitUntilWaiting(t, w)
	late := w.Expect()
	early.Done()
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	late.Done()
}

// TestExpectBounded checks that a commit waiting for an announced call
// that does not come gives up after Options.ExpectWait, and that without
// announcements nothing waits (every other test of the package logs
// without them).
func TestExpectBounded(t *testing.T) {
	spy := &syncSpy{}
	w := openSpiedWAL(t, t.TempDir(), Options{ExpectWait: time.Millisecond}, spy)
	x := w.Expect()
	defer x.Done()
	if err := w.Log([]byte("first")); err != nil {
		t.Fatal(err)
	}
	if !spy.isDurable(t, []byte("first")) {
		t.Error("acknowledged before it was fsynced")
	}
}

// TestExpectNoWait checks the cases where a commit does not wait at all:
// ExpectWait negative, and SyncInterval, where Expect announces nothing.
func TestExpectNoWait(t *testing.T) {
	for name, opts := range map[string]Options{
		"negative": {ExpectWait: -1},
		"interval": {SyncMode: SyncInterval, ExpectWait: expectForever},
	} {
		t.Run(name, func(t *testing.T) {
			w := openSpiedWAL(t, t.TempDir(), opts, &syncSpy{})
			x := w.Expect()
			defer x.Done()
			if err := w.Log([]byte("rec")); err != nil {
				t.Fatal(err)
			}
		})
	}
	w := openSpiedWAL(t, t.TempDir(), Options{SyncMode: SyncInterval}, &syncSpy{})
	if x := w.Expect(); x != (Expected{}) {
		t.Errorf("Expect in SyncInterval mode announced %+v", x)
	}
}

// TestExpectCutAndClose checks that a cut or a close queued while a
// commit waits for an announced call is not held back by it.
func TestExpectCutAndClose(t *testing.T) {
	spy := &syncSpy{}
	dir := t.TempDir()
	w, err := open(nil, dir, Options{ExpectWait: expectForever}, spy.syncInit())
	if err != nil {
		t.Fatal(err)
	}
	x := w.Expect()
	defer x.Done()
	first := logAsync(w, "first")
	waitUntilWaiting(t, w)
	if _, err := w.Cut(); err != nil {
		t.Fatal(err)
	}
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	x2 := w.Expect()
	defer x2.Done()
	second := logAsync(w, "second")
	waitUntilWaiting(t, w)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-second; err != nil {
		t.Fatal(err)
	}
	recs, _, err := replayAll(t, dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 {
		t.Errorf("replayed %d records, want 2", len(recs))
	}
}

// TestExpectConcurrent runs writers that announce their calls, log them
// (some with several records), or give up, concurrently, with commits
// that wait for announcements without a time limit: every call must
// return (an announcement never ended would hang the test), every
// acknowledged record be fsynced when its Log returns, and replay give
// back every one, in each writer's order.
func TestExpectConcurrent(t *testing.T) {
	const writers, calls = 8, 150
	spy := &syncSpy{}
	dir := t.TempDir()
	m := NewMetrics(prometheus.NewRegistry())
	w, err := open(nil, dir, Options{ExpectWait: expectForever, SegmentSize: 16 << 10, Metrics: m}, spy.syncInit())
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	logged := make([][]string, writers)
	for g := range writers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 7))
			for i := range calls {
				x := w.Expect()
				if rng.IntN(8) == 0 {
					x.Done() // gives up: e.g. the request did not decode
					continue
				}
				recs := [][]byte{incompressible(rng, g, i)}
				if rng.IntN(3) == 0 {
					recs = append(recs, incompressible(rng, g, i+calls))
				}
				p := w.Enqueue(recs...)
				x.Done()
				if err := p.Wait(); err != nil {
					t.Error(err)
					return
				}
				for _, rec := range recs {
					if !spy.isDurable(t, rec) {
						t.Errorf("writer %d call %d: acknowledged before its record was fsynced", g, i)
					}
					logged[g] = append(logged[g], string(rec))
				}
			}
		})
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	recs, _, err := replayAll(t, dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	next := make([]int, writers)
	for _, r := range recs {
		var g, i int
		if _, err := fmt.Sscanf(string(r), "<%d:%d>", &g, &i); err != nil || g < 0 || g >= writers {
			t.Fatalf("unexpected record %q", trunc(r))
		}
		if next[g] >= len(logged[g]) || logged[g][next[g]] != string(r) {
			t.Fatalf("writer %d: record %d replayed out of order or unknown", g, next[g])
		}
		next[g]++
	}
	for g := range writers {
		if next[g] != len(logged[g]) {
			t.Errorf("writer %d: %d of %d records replayed", g, next[g], len(logged[g]))
		}
	}
	t.Logf("%v calls a commit", histogramSum(t, m.CommitSize)/float64(histogramCount(t, m.CommitSize)))
}

// syncInit readies s for a WAL opened with open, and returns its hook.
func (s *syncSpy) syncInit() func(*os.File) error {
	s.durable = map[string]int64{}
	return s.sync
}

func histogramCount(t testing.TB, h prometheus.Histogram) uint64 {
	t.Helper()
	var m dto.Metric
	if err := h.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetHistogram().GetSampleCount()
}

func histogramSum(t testing.TB, h prometheus.Histogram) float64 {
	t.Helper()
	var m dto.Metric
	if err := h.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetHistogram().GetSampleSum()
}
