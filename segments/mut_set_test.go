package segments

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
)

// writeHourSegment writes under dir a segment of one series with a sample
// a minute for the hour from t0 plus hour, with meta's ID and compaction.
func writeHourSegment(t *testing.T, dir string, hour int, meta Meta) Meta {
	t.Helper()
	t0 := time.Date(2026, 1, 10, 0, 0, 0, 0, time.UTC)
	c := chunkenc.NewXORChunk()
	app, _ := c.Appender()
	from := t0.Add(time.Duration(hour) * time.Hour)
	for ts := from; ts.Before(from.Add(time.Hour)); ts = ts.Add(time.Minute) {
		app.Append(0, ts.UnixMilli(), float64(ts.Unix()%97))
	}
	m, err := WriteSeries(dir, meta, []SeriesData{{Labels: labels.FromStrings("__name__", "m", "h", meta.ID), Chunks: []ChunkMeta{{Chunk: c}}}})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func setIDs(s *Set) []string {
	var ids []string
	for _, in := range s.Segments() {
		ids = append(ids, in.Meta.ID)
	}
	return ids
}

// TestSetOpenEdges: OpenSet orders the segments by MinTime whatever their
// IDs; removes a segment whose data a compacted one of the same
// resolution holds (a compaction that did not finish removing its
// inputs), not one a rollup was built from; drops the tombstones of
// segments that are gone and saves that; and Acquire takes the segments
// whose range meets [mint, maxt] at either end.
func TestSetOpenEdges(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "segments")
	// IDs in the opposite order of the hours.
	c := writeHourSegment(t, dir, 3, Meta{ID: "A3"})
	b := writeHourSegment(t, dir, 2, Meta{ID: "B2"})
	a := writeHourSegment(t, dir, 1, Meta{ID: "C1"})
	// D holds C1's data (a compaction's output whose input is left), and
	// a rollup was built from B2 (which it names with its resolution).
	writeHourSegment(t, dir, 1, Meta{ID: "D1", Compaction: CompactionMeta{Level: 2, Sources: []string{"C1"}}})
	writeHourSegment(t, dir, 2, Meta{ID: "R2", Resolution: 300_000, Compaction: CompactionMeta{Level: 2, Sources: []string{"300000:B2"}}})
	set, err := OpenSet(slog.New(slog.DiscardHandler), dir)
	if err != nil || set == nil {
		t.Fatalf("open: %v", err)
	}
	if got, want := setIDs(set), []string{"D1", "B2", "R2", "A3"}; !slices.Equal(got, want) {
		t.Fatalf("segments %v, want %v (by MinTime, C1 removed)", got, want)
	}
	if _, err := os.Stat(filepath.Join(dir, a.ID)); !os.IsNotExist(err) {
		t.Fatalf("the compacted input is still on disk: %v", err)
	}
	for _, tc := range []struct {
		mint, maxt int64
		want       []string
	}{
		{b.MinTime - 1, b.MinTime, []string{"B2", "R2"}}, // maxt at B2's first sample
		{b.MaxTime, b.MaxTime + 1, []string{"B2", "R2"}}, // mint at its last
		{b.MaxTime + 1, c.MinTime - 1, nil},              // between two hours
		{c.MaxTime, c.MaxTime + 100, []string{"A3"}},
	} {
		segs, release := set.Acquire(tc.mint, tc.maxt)
		var got []string
		for _, s := range segs {
			got = append(got, s.Meta().ID)
		}
		release()
		slices.Sort(got)
		if !slices.Equal(got, tc.want) {
			t.Fatalf("Acquire(%d, %d) = %v, want %v", tc.mint, tc.maxt, got, tc.want)
		}
	}

	// Tombstones of a segment removed while the set was closed are
	// dropped at the next open, and the file saved without them.
	ms := []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "__name__", "m")}
	if _, err := set.AddTombstone(ms, b.MinTime, c.MaxTime); err != nil {
		t.Fatal(err)
	}
	if err := set.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(dir, c.ID)); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		set, err = OpenSet(slog.New(slog.DiscardHandler), dir)
		if err != nil {
			t.Fatal(err)
		}
		if n, m := len(set.Tombstones(c.ID)), len(set.Tombstones(b.ID)); n != 0 || m != 1 {
			t.Fatalf("%d tombstones of the removed segment, %d of B2; want 0, 1", n, m)
		}
		if err := set.Close(); err != nil {
			t.Fatal(err)
		}
	}
	tombs, err := loadTombstones(dir)
	if err != nil || len(tombs[c.ID]) != 0 || len(tombs[b.ID]) != 1 {
		t.Fatalf("tombstones file: %v, %v", tombs, err)
	}
}

// TestSetOpenDamagedTombstones: a damaged tombstones file is moved aside
// (quarantined) and the set opens without tombstones.
func TestSetOpenDamagedTombstones(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "segments")
	writeHourSegment(t, dir, 1, Meta{ID: "A1"})
	if err := os.WriteFile(filepath.Join(dir, tombstonesFile), []byte("[{"), 0o644); err != nil {
		t.Fatal(err)
	}
	set, err := OpenSet(slog.New(slog.DiscardHandler), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	if got := setIDs(set); !slices.Equal(got, []string{"A1"}) || len(set.Tombstones("A1")) != 0 {
		t.Fatalf("segments %v, tombstones %v", got, set.Tombstones("A1"))
	}
	if _, err := os.Stat(filepath.Join(dir, tombstonesFile)); !os.IsNotExist(err) {
		t.Fatalf("the damaged file was left: %v", err)
	}
	if q, _ := os.ReadDir(filepath.Join(dir, quarantineDirname)); len(q) != 1 {
		t.Fatalf("quarantine holds %v", q)
	}
}

// recordHandler is a slog.Handler that keeps the messages of records at
// min and above (Warn when min is 0), and their "err" attributes.
type recordHandler struct {
	mtx  *sync.Mutex
	msgs *[]string
	errs *[]any
	min  slog.Level
}

func (h recordHandler) Enabled(_ context.Context, l slog.Level) bool {
	return l >= cmp.Or(h.min, slog.LevelWarn)
}
func (h recordHandler) Handle(_ context.Context, r slog.Record) error {
	h.mtx.Lock()
	defer h.mtx.Unlock()
	*h.msgs = append(*h.msgs, r.Message)
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "err" && h.errs != nil {
			*h.errs = append(*h.errs, a.Value.Any())
		}
		return true
	})
	return nil
}
func (h recordHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h recordHandler) WithGroup(string) slog.Handler      { return h }

// TestSetReplaceQuarantineLog: a Replace and a Quarantine that succeed,
// of segments with tombstones, warn of nothing (no failed save, no failed
// deletion); the segment quarantined, the first of the set, leaves it and
// its move is the one error logged.
func TestSetReplaceQuarantineLog(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "segments")
	a := writeHourSegment(t, dir, 1, Meta{ID: "A1"})
	b := writeHourSegment(t, dir, 2, Meta{ID: "B2"})
	var (
		mtx  sync.Mutex
		msgs []string
	)
	set, err := OpenSet(slog.New(recordHandler{mtx: &mtx, msgs: &msgs}), dir)
	if err != nil {
		t.Fatal(err)
	}
	ms := []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "__name__", "m")}
	if _, err := set.AddTombstone(ms, a.MinTime, b.MaxTime); err != nil {
		t.Fatal(err)
	}
	c := writeHourSegment(t, dir, 2, Meta{ID: "C2", Compaction: CompactionMeta{Level: 2, Sources: []string{"B2"}}})
	if err := set.Replace([]string{b.ID}, []Meta{c}); err != nil {
		t.Fatal(err)
	}
	set.Quarantine(a.ID, errors.New("damaged"))
	if got := setIDs(set); !slices.Equal(got, []string{"C2"}) {
		t.Fatalf("segments %v, want [C2]", got)
	}
	if err := set.Close(); err != nil {
		t.Fatal(err)
	}
	mtx.Lock()
	defer mtx.Unlock()
	if len(msgs) != 1 || !strings.Contains(msgs[0], "moved out of the set") {
		t.Fatalf("logged %q, want only the quarantine", msgs)
	}
	if _, err := os.Stat(filepath.Join(dir, b.ID)); !os.IsNotExist(err) {
		t.Fatalf("the replaced segment is still on disk: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, a.ID)); !os.IsNotExist(err) {
		t.Fatalf("the quarantined segment is still in the set's directory: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, quarantineDirname, a.ID)); err != nil {
		t.Fatalf("the quarantined segment is not in quarantine: %v", err)
	}
}

// TestScrubOptionsValidate: a rate or a pause of 0 is valid (the scrub
// off; the default pause), a negative one is not.
func TestScrubOptionsValidate(t *testing.T) {
	for _, tc := range []struct {
		o  ScrubOptions
		ok bool
	}{
		{ScrubOptions{}, true},
		{ScrubOptions{BytesPerSecond: 1, Pause: 1}, true},
		{ScrubOptions{BytesPerSecond: -1}, false},
		{ScrubOptions{Pause: -1}, false},
	} {
		if err := tc.o.Validate(); (err == nil) != tc.ok {
			t.Fatalf("%+v: %v", tc.o, err)
		}
	}
}

// TestScrubPassAccounting drives the scrub of each segment of a set
// directly, its sleep recorded instead of waited: every byte of every
// file is checksummed and counted, each piece followed by a pause of
// its bytes at the rate, the sound segments stay in the set, and a
// segment damaged on disk is counted and quarantined. Quarantined counts
// the directories in quarantine/, nothing else.
func TestScrubPassAccounting(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "segments")
	var (
		mtx    sync.Mutex
		msgs   []string
		causes []any
	)
	set, err := OpenSet(slog.New(recordHandler{mtx: &mtx, msgs: &msgs, errs: &causes, min: slog.LevelDebug}), dir)
	if err != nil {
		t.Fatal(err)
	}
	// Closed at the end only: a failing check may leave a segment held,
	// which a Close would wait for for ever.
	var metas []Meta
	var total int64
	for i := range 3 {
		// Several pieces a file for the first: 3 000 series.
		n := []int{3000, 20, 5}[i]
		m := writeTestSegment(t, dir, Meta{ID: fmt.Sprintf("S%d", i), Seq: uint64(i + 1)}, genSeries(uint64(i), n, 2))
		metas = append(metas, m)
	}
	if err := set.Publish(metas); err != nil {
		t.Fatal(err)
	}
	for _, seg := range set.segs {
		for _, f := range seg.files {
			total += f.Size
		}
	}
	const rate = 1 << 20
	m := NewScrubMetrics(nil)
	sc := NewScrubber(nil, set, ScrubOptions{BytesPerSecond: rate}, m)
	var paused time.Duration
	var pieces int
	sc.sleep = func(d time.Duration, _ <-chan struct{}) bool {
		paused += d
		pieces++
		return true
	}
	for _, in := range set.Segments() {
		if !sc.scrubSegment(in.Meta.ID) {
			t.Fatal("scrub stopped")
		}
	}
	if got := testutil.ToFloat64(m.ScrubbedBytes); got != float64(total) {
		t.Fatalf("scrubbed %v bytes, want %d", got, total)
	}
	if want := time.Duration(float64(total) / rate * float64(time.Second)); paused < want-time.Duration(pieces) || paused > want+time.Duration(pieces) {
		t.Fatalf("paused %v over %d pieces, want %v", paused, pieces, want)
	}
	if pieces <= len(metas)*2 {
		t.Fatalf("%d pieces: the big segment in one", pieces)
	}
	if n := testutil.ToFloat64(m.Corrupt); n != 0 || len(set.Segments()) != 3 {
		t.Fatalf("sound segments: %v found damaged, %d of 3 left", n, len(set.Segments()))
	}

	// The last byte of the big segment's chunks file damaged.
	path := filepath.Join(dir, metas[0].ID, filepath.FromSlash(chunksFileName(1)))
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-1] ^= 1
	writeFile(t, path, b, true)
	if !sc.scrubSegment(metas[0].ID) {
		t.Fatal("scrub stopped")
	}
	if err := set.Close(); err != nil { // waits for the quarantine
		t.Fatal(err)
	}
	if n := testutil.ToFloat64(m.Corrupt); n != 1 {
		t.Fatalf("damaged segment counted %v times", n)
	}
	if err := os.WriteFile(filepath.Join(dir, quarantineDirname, "a-file"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if n := set.Quarantined(); n != 1 {
		t.Fatalf("Quarantined() = %d, want 1", n)
	}
	// What the quarantine logged as its cause: the chunks file, as a whole.
	mtx.Lock()
	var ce *CorruptionError
	found := false
	for _, c := range causes {
		if err, ok := c.(error); ok && errors.As(err, &ce) {
			found = ce.File == chunksFileName(1) && ce.Offset == -1
		}
	}
	logged := slices.Clone(msgs)
	mtx.Unlock()
	if !found {
		t.Fatalf("the quarantine's cause logged: %v, want a *CorruptionError of %s at -1", causes, chunksFileName(1))
	}
	for _, m := range logged {
		if !strings.Contains(m, "moved out of the set") {
			t.Fatalf("logged %q", logged)
		}
	}
	// A scrub of a segment no longer in the set does nothing.
	if !sc.scrubSegment(metas[0].ID) || testutil.ToFloat64(m.Corrupt) != 1 {
		t.Fatal("a segment gone scrubbed")
	}
}

// TestScrubberStartPause: Start with a rate starts the loop, which first
// waits the pause (DefaultScrubPause for 0); with a rate of 0 it starts
// nothing. The wait is recorded, not waited, and ends the loop.
func TestScrubberStartPause(t *testing.T) {
	set, err := OpenSet(nil, filepath.Join(t.TempDir(), "segments"))
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	for _, tc := range []struct {
		opts ScrubOptions
		want []time.Duration
	}{
		{ScrubOptions{BytesPerSecond: 1, Pause: 5 * time.Millisecond}, []time.Duration{5 * time.Millisecond}},
		{ScrubOptions{BytesPerSecond: 1}, []time.Duration{DefaultScrubPause}},
		{ScrubOptions{Pause: 5 * time.Millisecond}, nil},
	} {
		sc := NewScrubber(nil, set, tc.opts, nil)
		var got []time.Duration
		sc.sleep = func(d time.Duration, _ <-chan struct{}) bool {
			got = append(got, d)
			return false
		}
		sc.Start()
		sc.Stop()
		if !slices.Equal(got, tc.want) {
			t.Fatalf("%+v: waited %v, want %v", tc.opts, got, tc.want)
		}
	}
}
