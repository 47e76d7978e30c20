package buffer

import (
	"log/slog"
	"math"
	"path/filepath"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"testing"
	"time"

	"github.com/strata-tsdb/strata/buffer/wal"
)

// gcPercent reads the GC percentage (GOGC) in force, without setting it.
func gcPercent() int {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		panic("no /gc/gogc:percent metric")
	}
	if p := s[0].Value.Uint64(); p != math.MaxUint64 && p <= math.MaxInt32 {
		return int(p)
	}
	return -1
}

// crashedStore leaves a log of n series, one sample each, under dir, as
// after a kill -9.
func crashedStore(t *testing.T, dir string, n int) {
	t.Helper()
	s := openTestStore(t, dir, StoreOptions{}, nopSink{filepath.Join(dir, "segments")})
	appendSeries(t, s, n, 1_700_000_000_000)
	if err := s.wal.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestReplayRaisesGCPercent: a replay runs with the GC percentage at
// replayGCPercent where the process's is lower, and leaves it as it found
// it, also when several stores replay at once in one process (a test's
// servers), when the process's is 0 (lower, not off), and when it is
// higher or the collector is off.
func TestReplayRaisesGCPercent(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	for _, c := range []struct{ process, during int }{
		{77, replayGCPercent},
		{100, replayGCPercent},
		{1000, 1000},
		{-1, -1},
		{0, replayGCPercent},
	} {
		dir := t.TempDir()
		crashedStore(t, dir, 3000)
		debug.SetGCPercent(c.process)
		var seen []int
		opts := StoreOptions{ReplayProgress: func(wal.Progress) { seen = append(seen, gcPercent()) }}
		s := openTestStore(t, dir, opts, nopSink{filepath.Join(dir, "segments")})
		if got := s.head.NumSeries(); got != 3000 {
			t.Fatalf("%d series replayed, want 3000", got)
		}
		if len(seen) == 0 {
			t.Fatal("the replay reported no progress")
		}
		for _, p := range seen {
			if p != c.during {
				t.Fatalf("GOGC %d: the replay ran at %d, want %d", c.process, p, c.during)
			}
		}
		if got := gcPercent(); got != c.process {
			t.Fatalf("GOGC %d: %d after the replay", c.process, got)
		}
		if err := s.wal.Close(); err != nil {
			t.Fatal(err)
		}
	}

	// Stores replaying at once, their replays overlapping in any way: the
	// last to end puts back the process's percentage.
	debug.SetGCPercent(77)
	const n = 4
	dirs := make([]string, n)
	for i := range dirs {
		dirs[i] = t.TempDir()
		crashedStore(t, dirs[i], 2000*(i+1))
	}
	var wg sync.WaitGroup
	stores := make([]*Store, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			opts := StoreOptions{ReplayProgress: func(wal.Progress) {
				if p := gcPercent(); p != replayGCPercent {
					t.Errorf("a replay ran at GOGC %d, want %d", p, replayGCPercent)
				}
			}}
			s, err := OpenStore(slog.New(slog.DiscardHandler), dirs[i], opts, nopSink{filepath.Join(dirs[i], "segments")}, nil)
			if err != nil {
				t.Error(err)
				return
			}
			if got := s.head.NumSeries(); got != int64(2000*(i+1)) {
				t.Errorf("%d series replayed, want %d", got, 2000*(i+1))
			}
			stores[i] = s
		}()
	}
	wg.Wait()
	if got := gcPercent(); got != 77 {
		t.Fatalf("GOGC %d after concurrent replays, want 77", got)
	}
	for _, s := range stores {
		if s != nil {
			if err := s.wal.Close(); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestReplayReleasesMemory: with ReleaseMemory (as the server opens its
// store) the memory a replay freed is handed back to the operating system
// after it (debug.FreeOSMemory, in the background); without it, nothing is
// freed. It counts the store's calls: NumForcedGC, which it read before,
// does not count a runtime.GC that a cycle the heap triggered meanwhile
// satisfied (1 run in about 10 after the other replay tests failed so).
func TestReplayReleasesMemory(t *testing.T) {
	calls := make(chan struct{}, 16)
	defer func(f func()) { freeOSMemory = f }(freeOSMemory)
	freeOSMemory = func() { calls <- struct{}{} }
	for _, release := range []bool{false, true} {
		dir := t.TempDir()
		crashedStore(t, dir, 5000)
		s := openTestStore(t, dir, StoreOptions{ReleaseMemory: release}, nopSink{filepath.Join(dir, "segments")})
		if release {
			select {
			case <-calls:
			case <-time.After(time.Minute):
				t.Fatal("memory not released within a minute of the replay")
			}
		}
		if err := s.wal.Close(); err != nil {
			t.Fatal(err)
		}
		if !release && len(calls) != 0 {
			t.Fatalf("%d releases after a replay without ReleaseMemory", len(calls))
		}
	}
}
