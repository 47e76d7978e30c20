package buffer

import (
	"bytes"
	"errors"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/strata-tsdb/strata/buffer/wal"
	"github.com/strata-tsdb/strata/ingest"
)

// syncBuffer is a bytes.Buffer safe for a logger's concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// captureLogger returns a logger writing text records to the buffer.
func captureLogger() (*slog.Logger, *syncBuffer) {
	var b syncBuffer
	return slog.New(slog.NewTextHandler(&b, nil)), &b
}

// TestOpenStoreWarnsOfDroppedSamples: samples the replay drops because
// their series record is missing (a log repaired past it) are reported in
// a warning with their count, the only word an operator gets of the loss;
// a replay that drops nothing warns of nothing. ReplayStatus tells how far
// the replay got: all of the log once OpenStore returns, as the last
// progress report said. The replay's progress is logged from its first
// report on, at most every two seconds.
func TestOpenStoreWarnsOfDroppedSamples(t *testing.T) {
	dir := t.TempDir()
	w, err := wal.Open(slog.New(slog.DiscardHandler), filepath.Join(dir, "wal"), wal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Log(
		wal.EncodeSeries(nil, []wal.RefSeries{{Ref: 1, Labels: labels.FromStrings("__name__", "a")}}),
		wal.EncodeSamples(nil, []wal.RefSample{{Ref: 1, T: 10, V: 1}, {Ref: 7, T: 5, V: 2}, {Ref: 8, T: 30, V: 4}}),
	); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	sink := nopSink{filepath.Join(dir, "segments")}
	var last wal.Progress
	logger, logs := captureLogger()
	s, err := OpenStore(logger, dir, StoreOptions{ReplayProgress: func(p wal.Progress) { last = p }}, sink, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "level=WARN msg=\"samples in the write-ahead log had no series record and were dropped\" samples=2") {
		t.Errorf("no warning of the 2 dropped samples:\n%s", logs)
	}
	if got := s.ReplayStatus(); got != last || got.Percent() != 100 || got.TotalBytes == 0 {
		t.Errorf("ReplayStatus() = %+v, want the last progress %+v, all of the log", got, last)
	}
	if got := readAll(t, s.Head(), math.MinInt64, math.MaxInt64, labels.MustNewMatcher(labels.MatchEqual, "__name__", "a")); len(got) != 1 {
		t.Errorf("series a holds %v, want its sample", got)
	}
	if err := s.wal.Close(); err != nil {
		t.Fatal(err)
	}

	dir = t.TempDir()
	crashedStore(t, dir, 10) // a log every record of which is whole
	logger, logs = captureLogger()
	reports := 0
	start := time.Now()
	s, err = OpenStore(logger, dir, StoreOptions{ReplayProgress: func(wal.Progress) { reports++ }}, nopSink{filepath.Join(dir, "segments")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The progress is logged at the first report, then at most every two
	// seconds; the replay reports at its start, at each segment and at
	// its end.
	lines := strings.Count(logs.String(), "msg=\"replaying write-ahead log\"")
	if most := 1 + int(time.Since(start)/(2*time.Second)); lines < 1 || lines > most || reports < 3 {
		t.Errorf("%d progress lines logged for %d reports, want 1 to %d:\n%s", lines, reports, most, logs)
	}
	defer s.wal.Close()
	if strings.Contains(logs.String(), "level=WARN") {
		t.Errorf("a warning from a replay that dropped nothing:\n%s", logs)
	}
	if !strings.Contains(logs.String(), "msg=\"replayed write-ahead log\" records=2 series=10 samples=10 unknown_refs=0") {
		t.Errorf("the replay was not logged:\n%s", logs)
	}
}

// TestStrictWALRefusesDamage: a frame damaged in the middle of the log
// makes OpenStore with StrictWAL fail with a *wal.CorruptionError and
// count it in strata_wal_corruptions_total, leaving the log as it is;
// without StrictWAL the store opens with every record but the damaged
// one, and counts the damage and its bytes. A clean log opens strict.
func TestStrictWALRefusesDamage(t *testing.T) {
	dir := t.TempDir()
	sink := nopSink{filepath.Join(dir, "segments")}
	s := openTestStore(t, dir, StoreOptions{StrictWAL: true}, sink)
	const n = 40
	for i := range n {
		if err := s.Append(batchOf(labels.FromStrings("__name__", "m", "i", string(rune('a'+i%26))+string(rune('a'+i/26))), ingest.Sample{T: int64(i), V: float64(i)})); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.wal.Close(); err != nil {
		t.Fatal(err)
	}
	seg := filepath.Join(dir, "wal", "00000000")
	b, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(seg, b, 0o644); err != nil {
		t.Fatal(err)
	}

	reg := prometheus.NewRegistry()
	m := wal.NewMetrics(reg)
	_, err = OpenStore(slog.New(slog.DiscardHandler), dir, StoreOptions{StrictWAL: true, WAL: wal.Options{Metrics: m}}, sink, nil)
	if !errors.As(err, new(*wal.CorruptionError)) || !strings.Contains(err.Error(), "storage.wal.strict") {
		t.Fatalf("strict open of a damaged log: %v, want a *wal.CorruptionError naming storage.wal.strict", err)
	}
	if got := testutil.ToFloat64(m.Corruptions); got != 1 {
		t.Errorf("strata_wal_corruptions_total %v after a strict refusal, want 1", got)
	}
	if after, err := os.ReadFile(seg); err != nil || !bytes.Equal(after, b) {
		t.Errorf("a strict open changed the damaged segment (%v)", err)
	}

	m = wal.NewMetrics(prometheus.NewRegistry())
	s, err = OpenStore(slog.New(slog.DiscardHandler), dir, StoreOptions{WAL: wal.Options{Metrics: m}}, sink, nil)
	if err != nil {
		t.Fatalf("open with repair: %v", err)
	}
	if got := testutil.ToFloat64(m.Corruptions); got != 1 {
		t.Errorf("strata_wal_corruptions_total %v after a repair, want 1", got)
	}
	if got := testutil.ToFloat64(m.DamagedBytes); got <= 0 {
		t.Errorf("strata_wal_damaged_bytes_total %v after a repair, want the damaged frame's bytes", got)
	}
	if got := s.Head().NumSamples(); got < n-2 || got >= n {
		t.Errorf("%d samples after the repair, want all %d but the damaged record's", got, n)
	}
	if err := s.wal.Close(); err != nil {
		t.Fatal(err)
	}

	// The repaired log is clean: a strict open takes it.
	s, err = OpenStore(slog.New(slog.DiscardHandler), dir, StoreOptions{StrictWAL: true}, sink, nil)
	if err != nil {
		t.Fatalf("strict open of the repaired log: %v", err)
	}
	if err := s.wal.Close(); err != nil {
		t.Fatal(err)
	}
}
