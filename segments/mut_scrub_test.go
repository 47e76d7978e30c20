package segments

import (
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestScrubRate runs one pass of the scrub over segments larger than a
// piece, with its sleep recorded instead of slept: the pass checksums
// every byte of every file once, counts them, and waits after each piece
// its bytes over the rate, so that a pass over N bytes takes N/rate
// seconds; before the pass it waits the pause (DefaultScrubPause for 0).
// A rate of 0 starts no loop.
func TestScrubRate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "segments")
	set, err := OpenSet(nil, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		// After a failure the scrub may have left a segment acquired, and
		// Close would wait for it for ever.
		if !t.Failed() {
			set.Close()
		}
	}()
	var metas []Meta
	var total int64
	pieces := 0
	for i := range 3 { // of three sizes: each segment's bytes count once
		m := writeTestSegmentWith(t, dir, Meta{ID: NewID(time.Unix(int64(i), 0)), Seq: uint64(i + 1)}, genSeries(uint64(i), 150*(i+1), 20), WriterOptions{MaxChunkFileSize: 300 << 10})
		metas = append(metas, m)
		metaJSON, _ := segmentFiles(t, filepath.Join(dir, m.ID))
		mf, err := parseMetaFile(dir, metaJSON)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range mf.Files {
			total += f.Size
			pieces += int((f.Size + scrubPiece - 1) / scrubPiece)
		}
	}
	if err := set.Publish(metas); err != nil {
		t.Fatal(err)
	}
	if pieces <= 4 {
		t.Fatalf("%d pieces in %d bytes: no file is longer than a piece", pieces, total)
	}

	const rate = 3 << 20
	for _, pause := range []time.Duration{0, time.Minute} {
		m := NewScrubMetrics(nil)
		sc := NewScrubber(nil, set, ScrubOptions{BytesPerSecond: rate, Pause: pause}, m)
		var (
			mu     sync.Mutex
			sleeps []time.Duration
			passed = make(chan struct{})
		)
		sc.sleep = func(d time.Duration, stop <-chan struct{}) bool {
			mu.Lock()
			sleeps = append(sleeps, d)
			n := len(sleeps)
			mu.Unlock()
			// Stop at the pause after the first pass, or, the pass not
			// counted, well past the waits it takes.
			if n > 1 && testutil.ToFloat64(m.Passes) == 1 || n > 2*pieces+4 {
				close(passed)
				<-stop
				return false
			}
			return true
		}
		sc.Start()
		select {
		case <-passed:
		case <-time.After(time.Minute): // a generous bound: no loop started
			sc.Stop()
			t.Fatalf("rate %d: no pass in a minute", rate)
		}
		sc.Stop()
		if n := testutil.ToFloat64(m.Passes); n != 1 {
			t.Fatalf("%v passes counted after %d waits, want 1", n, len(sleeps))
		}
		want := pause
		if want == 0 {
			want = DefaultScrubPause
		}
		if sleeps[0] != want || sleeps[len(sleeps)-1] != want {
			t.Fatalf("pause %v: waited %v before the pass and %v after, want %v", pause, sleeps[0], sleeps[len(sleeps)-1], want)
		}
		var slept time.Duration
		for _, d := range sleeps[1 : len(sleeps)-1] {
			if d <= 0 || d > scrubPiece*time.Second/rate+1 {
				t.Fatalf("a piece's wait %v, want at most %v", d, scrubPiece*time.Second/rate)
			}
			slept += d
		}
		if n := len(sleeps) - 2; n != pieces {
			t.Fatalf("%d pieces waited for, want %d", n, pieces)
		}
		if want := time.Duration(total) * time.Second / rate; slept < want-time.Duration(pieces) || slept > want+time.Duration(pieces) {
			t.Fatalf("waited %v for %d bytes at %d bytes/s, want %v", slept, total, rate, want)
		}
		if got := testutil.ToFloat64(m.ScrubbedBytes); got != float64(total) {
			t.Fatalf("%v bytes scrubbed, the files hold %d", got, total)
		}
		if got := testutil.ToFloat64(m.Corrupt); got != 0 || len(set.Segments()) != 3 {
			t.Fatalf("%v corrupt, %d segments left", got, len(set.Segments()))
		}
	}

	sc := NewScrubber(nil, set, ScrubOptions{}, nil)
	called := false
	sc.sleep = func(time.Duration, <-chan struct{}) bool { called = true; return false }
	sc.Start()
	sc.Stop()
	if called {
		t.Fatal("a scrub of rate 0 ran")
	}
}

// TestSleepOrStop: a wait of no time returns at once, true, or false when
// stop is closed, every time, not by chance: Stop ends the scrub at its
// next piece. A wait of any length ends false at a closed stop.
func TestSleepOrStop(t *testing.T) {
	open, closed := make(chan struct{}), make(chan struct{})
	close(closed)
	for range 200 {
		for _, d := range []time.Duration{0, -1} {
			if !sleepOrStop(d, open) {
				t.Fatalf("a wait of %v: false with stop open", d)
			}
			if sleepOrStop(d, closed) {
				t.Fatalf("a wait of %v: true with stop closed", d)
			}
		}
		if sleepOrStop(time.Hour, closed) {
			t.Fatal("a wait of an hour: true with stop closed")
		}
	}
}
