package wal

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/strata-tsdb/strata/internal/tmpfstest"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// testRecord is a record that says who logged it: goroutine g, call i,
// record j of the call, padded with n pseudo-random bytes.
func testRecord(rng *rand.Rand, g, i, j, n int) []byte {
	b := fmt.Appendf(nil, "%d:%d:%d:", g, i, j)
	for k := 0; k < n; k++ {
		b = append(b, byte('a'+rng.IntN(8)))
	}
	return b
}

func parseTestRecord(t *testing.T, rec []byte) (g, i, j int) {
	t.Helper()
	parts := strings.SplitN(string(rec), ":", 4)
	if len(parts) != 4 {
		t.Fatalf("bad record %q", trunc(rec))
	}
	var err error
	g, err = strconv.Atoi(parts[0])
	if err == nil {
		i, err = strconv.Atoi(parts[1])
	}
	if err == nil {
		j, err = strconv.Atoi(parts[2])
	}
	if err != nil {
		t.Fatalf("bad record %q: %v", trunc(rec), err)
	}
	return g, i, j
}

func TestLogReplayConcurrent(t *testing.T) {
	for _, mode := range []SyncMode{SyncAlways, SyncInterval} {
		t.Run(mode.String(), func(t *testing.T) {
			const goroutines, calls, perCall = 8, 60, 3
			dir := t.TempDir()
			w, err := Open(nil, dir, Options{SegmentSize: 8 << 10, SyncMode: mode, SyncInterval: time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			errs := make(chan error, goroutines*calls)
			for g := range goroutines {
				wg.Go(func() {
					rng := rand.New(rand.NewPCG(uint64(g), 1))
					for i := range calls {
						recs := make([][]byte, perCall)
						for j := range recs {
							recs[j] = testRecord(rng, g, i, j, rng.IntN(600))
						}
						if err := w.Log(recs...); err != nil {
							errs <- err
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatalf("log: %v", err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			first, last, err := w.Segments()
			if err != nil {
				t.Fatal(err)
			}
			if first != 0 || last < 5 {
				t.Fatalf("segments %d..%d: want 0 and several rolls", first, last)
			}
			assertSegmentSizes(t, dir, 8<<10)

			recs, logs, err := replayAll(t, dir, 0)
			if err != nil {
				t.Fatal(err)
			}
			if logs != "" {
				t.Errorf("replay of a clean WAL logged: %s", logs)
			}
			if len(recs) != goroutines*calls*perCall {
				t.Fatalf("replayed %d records, want %d", len(recs), goroutines*calls*perCall)
			}
			next := make([]int, goroutines) // next call expected per goroutine
			for k := 0; k < len(recs); k += perCall {
				g, i, _ := parseTestRecord(t, recs[k])
				if i != next[g] {
					t.Fatalf("goroutine %d: call %d replayed, want %d", g, i, next[g])
				}
				next[g]++
				for j := range perCall { // The records of one call are contiguous.
					if g2, i2, j2 := parseTestRecord(t, recs[k+j]); g2 != g || i2 != i || j2 != j {
						t.Fatalf("record %d is %d:%d:%d, want %d:%d:%d", k+j, g2, i2, j2, g, i, j)
					}
				}
			}
		})
	}
}

// assertSegmentSizes checks that no segment exceeds limit.
func assertSegmentSizes(t *testing.T, dir string, limit int64) {
	t.Helper()
	segs, err := listSegments(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range segs {
		st, err := os.Stat(s.path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Size() > limit {
			t.Errorf("segment %s has %d bytes, over the %d limit", s.path, st.Size(), limit)
		}
	}
}

func TestRecordLargerThanSegment(t *testing.T) {
	dir := t.TempDir()
	w := openTestWAL(t, dir, Options{SegmentSize: 1 << 10})
	rng := rand.New(rand.NewPCG(1, 2))
	big := make([]byte, 10<<10)
	for i := range big {
		big[i] = byte(rng.Uint32()) // Incompressible.
	}
	want := [][]byte{[]byte("small"), big, []byte("after")}
	if err := w.Log(want...); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	recs, _, err := replayAll(t, dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	equalRecords(t, recs, want)
	if _, last, _ := w.Segments(); last != 2 {
		t.Errorf("last segment %d, want 2: the big record gets a segment of its own", last)
	}

	// Logged first, into the empty segment: it goes there, leaving no
	// empty segment before it.
	dir = t.TempDir()
	w = openTestWAL(t, dir, Options{SegmentSize: 1 << 10})
	if err := w.Log(big, []byte("after")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, last, _ := w.Segments(); last != 1 {
		t.Errorf("last segment %d, want 1: the big record in segment 0, the next in 1", last)
	}
	if st, err := os.Stat(segmentPath(dir, 0)); err != nil || st.Size() == 0 {
		t.Errorf("segment 0 (%v): empty, the big record past it", err)
	}
}

func TestEmptyAndEdgeRecords(t *testing.T) {
	dir := t.TempDir()
	w := openTestWAL(t, dir, Options{})
	want := [][]byte{{}, {0}, []byte(strings.Repeat("x", 100000))}
	if err := w.Log(want...); err != nil {
		t.Fatal(err)
	}
	if err := w.Log(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	recs, _, err := replayAll(t, dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	equalRecords(t, recs, want)
}

func TestCutTruncate(t *testing.T) {
	dir := t.TempDir()
	w := openTestWAL(t, dir, Options{})
	logN := func(from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			if err := w.Log(fmt.Appendf(nil, "rec%d", i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	logN(0, 10)
	n, err := w.Cut()
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("cut returned %d, want 1", n)
	}
	if again, err := w.Cut(); err != nil || again != n {
		t.Fatalf("cut of an empty segment returned %d, %v; want %d", again, err, n)
	}
	logN(10, 20)
	sizeBefore := w.Size()
	if sizeBefore == 0 {
		t.Fatal("size 0 after logging")
	}
	if err := w.Truncate(n + 1); err == nil {
		t.Fatal("truncating the segment being written succeeded")
	}
	if err := w.Truncate(n); err != nil {
		t.Fatal(err)
	}
	first, last, err := w.Segments()
	if err != nil || first != 1 || last != 1 {
		t.Fatalf("segments %d..%d, %v; want 1..1", first, last, err)
	}
	if w.Size() >= sizeBefore {
		t.Errorf("size %d after truncate, want below %d", w.Size(), sizeBefore)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	recs, _, err := replayAll(t, dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 10 || string(recs[0]) != "rec10" || string(recs[9]) != "rec19" {
		t.Fatalf("replayed %q, want rec10..rec19", recs)
	}
	st, err := os.Stat(segmentPath(dir, 1))
	if err != nil {
		t.Fatal(err)
	}
	if w.Size() != st.Size() {
		t.Errorf("Size() = %d, want %d", w.Size(), st.Size())
	}
}

func TestReopenAppends(t *testing.T) {
	dir := t.TempDir()
	var want [][]byte
	for round := range 3 {
		w, err := Open(nil, dir, Options{})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 5 {
			rec := fmt.Appendf(nil, "round%d-%d", round, i)
			want = append(want, rec)
			if err := w.Log(rec); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	// An empty last segment is reused rather than followed by another.
	w := openTestWAL(t, dir, Options{})
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	w2 := openTestWAL(t, dir, Options{})
	if _, last, _ := w2.Segments(); last != 3 {
		t.Errorf("last segment %d after reopening twice without writes, want 3", last)
	}
	recs, _, err := replayAll(t, dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	equalRecords(t, recs, want)
	from1, _, err := replayAll(t, dir, 1)
	if err != nil {
		t.Fatal(err)
	}
	equalRecords(t, from1, want[5:])
}

func TestClosed(t *testing.T) {
	w := newTestWAL(t, Options{})
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Errorf("second close: %v", err)
	}
	if err := w.Log([]byte("x")); !errors.Is(err, ErrClosed) {
		t.Errorf("log after close: %v, want ErrClosed", err)
	}
	if _, err := w.Cut(); !errors.Is(err, ErrClosed) {
		t.Errorf("cut after close: %v, want ErrClosed", err)
	}
}

// syncSpy replaces the fsync of segment files: it records, per segment
// file, how many bytes the last successful fsync covered, and can hold
// fsyncs until released.
type syncSpy struct {
	mu      sync.Mutex
	durable map[string]int64 // file name -> size covered by its last fsync
	calls   int
	hold    chan struct{} // when not nil, each fsync waits for a receive
	held    chan struct{} // when not nil, signalled as each fsync starts
}

func (s *syncSpy) sync(f *os.File) error {
	if s.held != nil {
		s.held <- struct{}{}
	}
	if s.hold != nil {
		<-s.hold
	}
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.durable[f.Name()] = st.Size()
	s.calls++
	return nil
}

func (s *syncSpy) fsyncs() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

// isDurable reports whether rec lies in the fsynced prefix of a segment.
// rec must be incompressible, so that its frame holds it verbatim.
func (s *syncSpy) isDurable(t *testing.T, rec []byte) bool {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for name, n := range s.durable {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Error(err)
			return false
		}
		if bytes.Contains(b[:n], rec) {
			return true
		}
	}
	return false
}

func openSpiedWAL(t *testing.T, dir string, opts Options, spy *syncSpy) *WAL {
	t.Helper()
	spy.durable = map[string]int64{}
	w, err := open(nil, dir, opts, spy.sync)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := w.Close(); err != nil {
			t.Errorf("close wal: %v", err)
		}
	})
	return w
}

// incompressible returns a record naming g and i, padded with random
// bytes so that snappy leaves it as is.
func incompressible(rng *rand.Rand, g, i int) []byte {
	b := fmt.Appendf(nil, "<%d:%d>", g, i)
	for range 32 {
		b = append(b, byte(rng.UintN(256)))
	}
	return b
}

// TestLogReturnsAfterFsync checks the SyncAlways promise: every record
// whose Log has returned lies in a part of a segment that an fsync
// covered, checked as each Log returns (Close fsyncs too, so a check after
// Close could not see a missing fsync). Small segments make the writer roll
// segments in between.
func TestLogReturnsAfterFsync(t *testing.T) {
	const goroutines, calls = 8, 60
	spy := &syncSpy{}
	w := openSpiedWAL(t, t.TempDir(), Options{SegmentSize: 2 << 10}, spy)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 1))
			for i := range calls {
				recs := [][]byte{incompressible(rng, g, i), incompressible(rng, g, i+calls)}
				if err := w.Log(recs...); err != nil {
					t.Error(err)
					return
				}
				for _, rec := range recs {
					if !spy.isDurable(t, rec) {
						t.Errorf("goroutine %d call %d: Log returned before its record was fsynced", g, i)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	if first, last, err := w.Segments(); err != nil || last-first < 2 {
		t.Fatalf("segments %d..%d (%v): the test meant to roll segments", first, last, err)
	}
}

// TestGroupCommit checks that Log calls queued while an fsync is in
// progress share the next one: the first call's fsync is held until the
// other n-1 calls are queued, so exactly two fsyncs acknowledge all n
// calls (counted before Close, which fsyncs again).
func TestGroupCommit(t *testing.T) {
	const n = 200
	dir := t.TempDir()
	m := NewMetrics(prometheus.NewRegistry())
	spy := &syncSpy{hold: make(chan struct{}), held: make(chan struct{}, n)}
	w := openSpiedWAL(t, dir, Options{Metrics: m}, spy)
	var release sync.Once
	releaseFsyncs := func() { release.Do(func() { close(spy.hold) }) }
	t.Cleanup(releaseFsyncs) // Runs before the Close registered above.
	errs := make([]error, n)
	first := make(chan error, 1)
	go func() { first <- w.Log([]byte("call0")) }()
	select {
	case <-spy.held: // The writer is inside the first fsync.
	case err := <-first:
		t.Fatalf("the first Log returned (err %v) without an fsync", err)
	}
	var wg sync.WaitGroup
	for i := 1; i < n; i++ {
		wg.Go(func() { errs[i] = w.Log(fmt.Appendf(nil, "call%d", i)) })
	}
	for len(w.reqs) < n-1 {
		time.Sleep(time.Millisecond) // Wait for the other calls to queue.
	}
	releaseFsyncs()
	errs[0] = <-first
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("log %d: %v", i, err)
		}
	}
	if got := spy.fsyncs(); got != 2 {
		t.Errorf("%d fsyncs acknowledged %d calls, want 2 (one for the first, one shared by the rest)", got, n)
	}
	if got := counterValue(t, m.Fsyncs); got != 2 {
		t.Errorf("fsyncs metric %v, want 2", got)
	}
	if got := counterValue(t, m.RecordsWritten); got != n {
		t.Errorf("records written metric %v, want %d", got, n)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	recs, _, err := replayAll(t, dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, r := range recs {
		seen[string(r)] = true
	}
	for i := range n {
		if !seen[fmt.Sprintf("call%d", i)] {
			t.Errorf("call%d not replayed", i)
		}
	}
}

func counterValue(t testing.TB, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

func TestOptions(t *testing.T) {
	f := func(o Options, wantErr bool) {
		t.Helper()
		if err := o.Validate(); (err != nil) != wantErr {
			t.Errorf("Validate(%+v) = %v, want error: %v", o, err, wantErr)
		}
	}
	f(Options{}, false)
	f(DefaultOptions(), false)
	f(Options{SyncMode: SyncInterval, SyncInterval: time.Second}, false)
	f(Options{SegmentSize: -1}, true)
	f(Options{SyncMode: 7}, true)
	f(Options{SyncInterval: -time.Second}, true)

	for _, s := range []string{"always", "interval"} {
		m, err := ParseSyncMode(s)
		if err != nil || m.String() != s {
			t.Errorf("ParseSyncMode(%q) = %v, %v", s, m, err)
		}
	}
	if _, err := ParseSyncMode("sometimes"); err == nil {
		t.Error("ParseSyncMode(sometimes) succeeded")
	}
	if _, err := Open(nil, t.TempDir(), Options{SegmentSize: -1}); err == nil {
		t.Error("Open with invalid options succeeded")
	}
}

func TestSegmentNames(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"00000002", "00000000", "12", "00000001.tmp", "checkpoint.00000001", "00000010"} {
		if err := os.WriteFile(dir+"/"+name, nil, 0o666); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(dir+"/00000005", 0o777); err != nil {
		t.Fatal(err)
	}
	segs, err := listSegments(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []int
	for _, s := range segs {
		got = append(got, s.index)
	}
	if fmt.Sprint(got) != "[0 2 10]" {
		t.Errorf("segments %v, want [0 2 10]", got)
	}
}

// TestWriteErrorIsSticky checks that while the WAL cannot recover from a
// failed write (here its file is closed under it) every Log and Cut fails
// with ErrUnwritable, since later records could otherwise land after a
// partial frame.
func TestWriteErrorIsSticky(t *testing.T) {
	dir := t.TempDir()
	m := NewMetrics(nil)
	w, err := Open(nil, dir, Options{Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Log([]byte("ok")); err != nil {
		t.Fatal(err)
	}
	// The writer goroutine is idle between requests; break its file.
	if err := w.writer.f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Log([]byte("lost")); !errors.Is(err, ErrUnwritable) {
		t.Fatalf("log to a closed file: %v, want ErrUnwritable", err)
	}
	if err := w.Log([]byte("after")); !errors.Is(err, ErrUnwritable) {
		t.Fatalf("log after a write error: %v, want ErrUnwritable", err)
	}
	if _, err := w.Cut(); !errors.Is(err, ErrUnwritable) {
		t.Fatalf("cut after a write error: %v, want ErrUnwritable", err)
	}
	if w.Err() == nil {
		t.Fatal("Err() is nil while the WAL cannot write")
	}
	if err := w.Close(); err == nil {
		t.Fatal("close after a write error returned nil")
	}
	if got := counterValue(t, m.WriteErrors); got < 1 {
		t.Errorf("write errors metric %v, want at least 1", got)
	}
	recs, _, err := replayAll(t, dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	equalRecords(t, recs, [][]byte{[]byte("ok")})
}

// TestWriteErrorRecovers fills a small tmpfs under the WAL: Log fails with
// ErrUnwritable while the disk is full, and once space returns the WAL
// writes again by itself, with no reopen. The log then holds exactly the
// acknowledged records: nothing a failed Log wrote is replayed.
func TestWriteErrorRecovers(t *testing.T) {
	dir := tmpfstest.Mount(t, 1<<20)
	m := NewMetrics(nil)
	w, err := Open(nil, filepath.Join(dir, "wal"), Options{Metrics: m, RetryInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	var want [][]byte
	rng := rand.New(rand.NewPCG(1, 2))
	rec := func(i int) []byte {
		b := make([]byte, 20<<10) // Incompressible: fills pages.
		for j := range b {
			b[j] = byte(rng.Uint32())
		}
		return append(b, byte(i))
	}
	for i := range 3 {
		r := rec(i)
		if err := w.Log(r); err != nil {
			t.Fatal(err)
		}
		want = append(want, r)
	}
	filler := filepath.Join(dir, "filler")
	fill(t, filler)
	for i := range 3 {
		if err := w.Log(rec(100 + i)); !errors.Is(err, ErrUnwritable) || !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("log on a full disk: %v, want ErrUnwritable wrapping ENOSPC", err)
		}
	}
	if !errors.Is(w.Err(), syscall.ENOSPC) {
		t.Fatalf("Err() = %v on a full disk", w.Err())
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	// The retry loop clears it without any Log.
	for deadline := time.Now().Add(30 * time.Second); w.Err() != nil; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("still unwritable 30s after space returned: %v", w.Err())
		}
	}
	r := rec(200)
	if err := w.Log(r); err != nil {
		t.Fatalf("log after space returned: %v", err)
	}
	want = append(want, r)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	recs, logs, err := replayAll(t, filepath.Join(dir, "wal"), 0)
	if err != nil {
		t.Fatal(err)
	}
	if logs != "" {
		t.Errorf("replay after recovery repaired something:\n%s", logs)
	}
	equalRecords(t, recs, want)
}

// fill writes path until the file system is full.
func fill(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, n := range []int{64 << 10, 4096, 1} {
		buf := make([]byte, n)
		for {
			if _, err := f.Write(buf); err != nil {
				if !errors.Is(err, syscall.ENOSPC) {
					t.Fatal(err)
				}
				break
			}
		}
	}
}

// TestSyncIntervalFsyncs checks that the background loop fsyncs in
// SyncInterval mode. It waits for that to happen eventually; it does not
// assert when.
func TestSyncIntervalFsyncs(t *testing.T) {
	m := NewMetrics(nil)
	w := newTestWAL(t, Options{SyncMode: SyncInterval, SyncInterval: time.Millisecond, Metrics: m})
	if err := w.Log([]byte("x")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for counterValue(t, m.Fsyncs) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no fsync from the background loop")
		}
		time.Sleep(time.Millisecond)
	}
}
