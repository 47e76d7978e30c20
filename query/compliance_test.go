package query

// PromQL compliance: the .test scripts that ship with the prometheus module
// (promql/promqltest/testdata/) run through Prometheus' own test runner
// (promqltest.RunTestWithStorage) against a storage.Storage whose writes go
// through a real buffer.Store (write-ahead log, head, flush into segments)
// and whose reads go through this package's Queryable.
//
// Every script runs in three modes:
//
//   - head:     the loaded data stays in the head;
//   - segments: every load is flushed into on-disk segments as soon as it is
//     committed, so queries read it back through segment readers (and, where
//     a script loads the same series more than once, through the merge of
//     several segments);
//   - split:    of every series in a load, the first half of its samples is
//     appended and flushed into segments and the second half appended to
//     the head afterwards, so every series is read through the merge of
//     segments and head (the usual state of a running server).
//
// Native histograms (integer, float and custom-bucket, load_with_nhcb
// included) are stored like floats, so the scripts that use them run whole.
// What cannot pass is handled explicitly, never by skipping on failure:
//
//   - excludedComplianceFiles lists whole scripts that cannot pass, each
//     with its reason;
//   - knownComplianceFailures lists single eval blocks, by script and line,
//     each with its reason; they are blanked out (line numbers are kept, so
//     subtest names match the original script), and the test fails if a
//     listed line is not an eval any more.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/metadata"
	"github.com/prometheus/prometheus/promql/promqltest"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/strata-tsdb/strata/buffer"
	"github.com/strata-tsdb/strata/ingest"
	"github.com/strata-tsdb/strata/segments"
)

// excludedComplianceFiles are the scripts that are not run at all, with the
// reason. Everything else runs in every mode.
var excludedComplianceFiles = map[string]string{
	// Loads start timestamps (metric@st lines) and checks that the engine
	// (UseStartTimestamps) uses them; Strata does not store start
	// timestamps, and the adapter refuses them.
	"start_timestamps.test": "start timestamps: Strata does not store them",
}

// knownComplianceFailures are eval blocks that cannot pass, by script and
// the line of their eval command, with the reason.
var knownComplianceFailures = map[string]map[int]string{}

// errNoStartTimestamps is what the adapter's appenders return for a sample
// with a start timestamp.
var errNoStartTimestamps = errors.New("strata does not store start timestamps")

// complianceMode is how the adapter stores what a script loads.
type complianceMode int

const (
	modeHead     complianceMode = iota // append only
	modeSegments                       // append, then flush
	modeSplit                          // append older half, flush, append newer half
)

func (m complianceMode) String() string {
	return [...]string{"head", "segments", "split"}[m]
}

var complianceModes = []complianceMode{modeHead, modeSegments, modeSplit}

func TestCompliance(t *testing.T) {
	dir := promqltestDataDir(t)
	scripts := complianceScripts(t, dir)
	for _, s := range scripts {
		for line, reason := range knownComplianceFailures[s.name] {
			t.Logf("%s:%d not run: %s", s.name, line, reason)
		}
	}
	// Listed names must exist: a stale entry is misleading.
	for name := range excludedComplianceFiles {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("listed file %s: %v", name, err)
		}
	}
	for name := range knownComplianceFailures {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("listed file %s: %v", name, err)
		}
	}

	// The engine Prometheus' own TestEvaluations uses, with the parser
	// options (experimental functions, duration expressions, extended range
	// selectors, fill modifiers) the scripts need.
	engine := promqltest.NewTestEngine(t, false, 0, promqltest.DefaultMaxSamplesPerQuery)

	for _, mode := range complianceModes {
		t.Run(mode.String(), func(t *testing.T) {
			for name, reason := range excludedComplianceFiles {
				t.Logf("%s excluded: %s", name, reason)
			}
			for _, s := range scripts {
				t.Run(s.name, func(t *testing.T) {
					promqltest.RunTestWithStorage(t, s.content, engine, func(tb testing.TB) storage.Storage {
						return newStrataStorage(tb, mode)
					})
				})
			}
		})
	}
}

// complianceScript is a promqltest script as the compliance tests run it.
type complianceScript struct {
	name, content string
}

// complianceScripts returns the scripts of dir in name order, without the
// excluded files and with the known failures blanked out.
func complianceScripts(t *testing.T, dir string) []complianceScript {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.test"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no .test files in %s", dir)
	}
	slices.Sort(files)
	var scripts []complianceScript
	for _, f := range files {
		name := filepath.Base(f)
		if _, ok := excludedComplianceFiles[name]; ok {
			continue
		}
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		content, err := dropKnownFailures(name, string(raw), knownComplianceFailures[name])
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		scripts = append(scripts, complianceScript{name: name, content: content})
	}
	return scripts
}

// promqltestDataDir returns the directory of the .test scripts of the
// prometheus module this module builds with.
func promqltestDataDir(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/prometheus/prometheus").Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("go list -m github.com/prometheus/prometheus: %v: %s", err, ee.Stderr)
		}
		t.Fatalf("go list -m github.com/prometheus/prometheus: %v", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" {
		t.Fatal("go list -m github.com/prometheus/prometheus: module directory unknown (not downloaded?)")
	}
	return filepath.Join(mod, "promql", "promqltest", "testdata")
}

// ---------------------------------------------------------------------------
// The storage adapter.

// strataStorage is a storage.Storage over a buffer.Store and a
// segments.Set in a temporary directory. Writes are collected into an
// ingest.Batch and applied with (*buffer.Store).Append on Commit; reads go
// through NewQueryable(store.Head(), set).
type strataStorage struct {
	store *buffer.Store
	set   *segments.Set
	q     *Queryable
	mode  complianceMode

	closeOnce sync.Once
	closeErr  error
}

var _ storage.Storage = (*strataStorage)(nil)

func newStrataStorage(tb testing.TB, mode complianceMode) *strataStorage {
	tb.Helper()
	logger := slog.New(slog.DiscardHandler)
	dir := tb.TempDir()
	set, err := segments.OpenSet(logger, filepath.Join(dir, "segments"))
	if err != nil {
		tb.Fatal(err)
	}
	store, err := buffer.OpenStore(logger, dir, buffer.DefaultStoreOptions(), set, nil)
	if err != nil {
		_ = set.Close()
		tb.Fatal(err)
	}
	s := &strataStorage{store: store, set: set, q: NewQueryable(store.Head(), set), mode: mode}
	// The test runner closes the storage itself; this covers early exits.
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("close strata storage: %v", err)
		}
	})
	return s
}

func (s *strataStorage) Querier(mint, maxt int64) (storage.Querier, error) {
	return s.q.Querier(mint, maxt)
}

// ChunkQuerier is not used by the PromQL engine, which is all the scripts
// exercise.
func (s *strataStorage) ChunkQuerier(int64, int64) (storage.ChunkQuerier, error) {
	return nil, errors.New("strata compliance adapter: chunk queriers are not supported")
}

func (s *strataStorage) AppenderV2(ctx context.Context) storage.AppenderV2 {
	return &strataAppender{s: s, ctx: ctx, idx: map[uint64][]int{}}
}

func (s *strataStorage) Appender(ctx context.Context) storage.Appender {
	return &strataAppenderV1{a: s.AppenderV2(ctx).(*strataAppender)}
}

// StartTime returns the oldest timestamp in the head or the segments.
func (s *strataStorage) StartTime() (int64, error) {
	mint, _ := s.store.Head().Bounds() // MaxInt64 when empty
	for _, info := range s.set.Segments() {
		mint = min(mint, info.Meta.MinTime)
	}
	if mint == math.MaxInt64 {
		return math.MinInt64, nil
	}
	return mint, nil
}

// Close closes the store (which flushes the head) and then the set.
func (s *strataStorage) Close() error {
	s.closeOnce.Do(func() {
		s.closeErr = errors.Join(s.store.Close(context.Background()), s.set.Close())
	})
	return s.closeErr
}

// strataAppender collects float and histogram samples into one
// ingest.Batch, one Series per label set in order of first appearance,
// samples in append order.
type strataAppender struct {
	s     *strataStorage
	ctx   context.Context
	batch ingest.Batch
	idx   map[uint64][]int // label hash -> indexes into batch.Series
	done  bool
}

var _ storage.AppenderV2 = (*strataAppender)(nil)

func (a *strataAppender) Append(_ storage.SeriesRef, ls labels.Labels, st, t int64, v float64, h *histogram.Histogram, fh *histogram.FloatHistogram, _ storage.AppendV2Options) (storage.SeriesRef, error) {
	if a.done {
		return 0, errors.New("append after commit or rollback")
	}
	if st != 0 {
		return 0, fmt.Errorf("%s @%d: %w", ls, t, errNoStartTimestamps)
	}
	hash := ls.Hash()
	i := -1
	for _, j := range a.idx[hash] {
		if labels.Equal(a.batch.Series[j].Labels, ls) {
			i = j
			break
		}
	}
	if i < 0 {
		i = len(a.batch.Series)
		a.batch.Series = append(a.batch.Series, ingest.Series{Labels: ls})
		a.idx[hash] = append(a.idx[hash], i)
	}
	switch {
	case h != nil:
		a.batch.Series[i].Histograms = append(a.batch.Series[i].Histograms, ingest.HistogramSample{T: t, H: h.Copy()})
	case fh != nil:
		a.batch.Series[i].Histograms = append(a.batch.Series[i].Histograms, ingest.HistogramSample{T: t, FH: fh.Copy()})
	default:
		a.batch.Series[i].Samples = append(a.batch.Series[i].Samples, ingest.Sample{T: t, V: v})
	}
	return storage.SeriesRef(hash), nil
}

func (a *strataAppender) Commit() error {
	if a.done {
		return errors.New("commit after commit or rollback")
	}
	a.done = true
	if len(a.batch.Series) == 0 {
		return nil
	}
	store := a.s.store
	flush := func() error {
		if err := store.Flush(a.ctx); err != nil {
			return fmt.Errorf("strata flush: %w", err)
		}
		if n := store.Head().SamplesInHead(); n != 0 {
			return fmt.Errorf("strata flush left %d samples in the head", n)
		}
		return nil
	}
	switch a.s.mode {
	case modeHead:
		return store.Append(&a.batch)
	case modeSegments:
		if err := store.Append(&a.batch); err != nil {
			return err
		}
		return flush()
	case modeSplit:
		older, newer := splitBatch(&a.batch)
		if err := store.Append(older); err != nil {
			return err
		}
		if err := flush(); err != nil {
			return err
		}
		return store.Append(newer)
	}
	return fmt.Errorf("unknown mode %d", a.s.mode)
}

// splitBatch splits every series of b in two: the first half of its float
// samples and of its histograms (rounded up) and the rest.
func splitBatch(b *ingest.Batch) (older, newer *ingest.Batch) {
	older, newer = &ingest.Batch{}, &ingest.Batch{}
	for _, s := range b.Series {
		n, nh := (len(s.Samples)+1)/2, (len(s.Histograms)+1)/2
		older.Series = append(older.Series, ingest.Series{Labels: s.Labels, Samples: s.Samples[:n], Histograms: s.Histograms[:nh]})
		if n < len(s.Samples) || nh < len(s.Histograms) {
			newer.Series = append(newer.Series, ingest.Series{Labels: s.Labels, Samples: s.Samples[n:], Histograms: s.Histograms[nh:]})
		}
	}
	return older, newer
}

func (a *strataAppender) Rollback() error {
	a.done = true
	a.batch = ingest.Batch{}
	return nil
}

// strataAppenderV1 is the legacy storage.Appender on top of
// strataAppender. The scripts append through AppenderV2.
type strataAppenderV1 struct {
	a *strataAppender
}

var _ storage.Appender = (*strataAppenderV1)(nil)

func (a *strataAppenderV1) Append(ref storage.SeriesRef, l labels.Labels, t int64, v float64) (storage.SeriesRef, error) {
	return a.a.Append(ref, l, 0, t, v, nil, nil, storage.AppendV2Options{})
}
func (a *strataAppenderV1) Commit() error                     { return a.a.Commit() }
func (a *strataAppenderV1) Rollback() error                   { return a.a.Rollback() }
func (a *strataAppenderV1) SetOptions(*storage.AppendOptions) {}
func (a *strataAppenderV1) AppendExemplar(storage.SeriesRef, labels.Labels, exemplar.Exemplar) (storage.SeriesRef, error) {
	return 0, errors.New("strata does not store exemplars")
}
func (a *strataAppenderV1) AppendHistogram(ref storage.SeriesRef, l labels.Labels, t int64, h *histogram.Histogram, fh *histogram.FloatHistogram) (storage.SeriesRef, error) {
	return a.a.Append(ref, l, 0, t, 0, h, fh, storage.AppendV2Options{})
}
func (a *strataAppenderV1) AppendHistogramSTZeroSample(storage.SeriesRef, labels.Labels, int64, int64, *histogram.Histogram, *histogram.FloatHistogram) (storage.SeriesRef, error) {
	return 0, errNoStartTimestamps
}
func (a *strataAppenderV1) UpdateMetadata(ref storage.SeriesRef, _ labels.Labels, _ metadata.Metadata) (storage.SeriesRef, error) {
	return ref, nil
}
func (a *strataAppenderV1) AppendSTZeroSample(storage.SeriesRef, labels.Labels, int64, int64) (storage.SeriesRef, error) {
	return 0, errNoStartTimestamps
}

// ---------------------------------------------------------------------------
// Known failures.

var complianceEvalRe = regexp.MustCompile(`^\s*eval(?:_(?:fail|warn|ordered|info))?\s+(?:instant|range)\s`)

// dropKnownFailures blanks the eval blocks of script that start at the
// given 1-based lines (an eval block ends at the next empty line). It fails
// when a listed line does not start an eval block.
func dropKnownFailures(name, script string, drop map[int]string) (string, error) {
	lines := strings.Split(script, "\n")
	for line := range drop {
		i := line - 1
		if i < 0 || i >= len(lines) || !complianceEvalRe.MatchString(lines[i]) {
			return "", fmt.Errorf("%s:%d is listed in knownComplianceFailures but is not an eval command", name, line)
		}
		for ; i < len(lines) && strings.TrimSpace(lines[i]) != ""; i++ {
			lines[i] = ""
		}
	}
	return strings.Join(lines, "\n"), nil
}

// ---------------------------------------------------------------------------
// Tests of the harness itself.

func TestComplianceDropKnownFailures(t *testing.T) {
	const in = "load 5m\n  a 1\n\neval instant at 0m a\n  a 1\n\neval range from 0 to 5m step 5m a\n  a 1 1\n"
	out, err := dropKnownFailures("x", in, map[int]string{4: "why"})
	if err != nil {
		t.Fatal(err)
	}
	if want := "load 5m\n  a 1\n\n\n\n\neval range from 0 to 5m step 5m a\n  a 1 1\n"; out != want {
		t.Errorf("got %q, want %q", out, want)
	}
	if _, err := dropKnownFailures("x", in, map[int]string{2: "why"}); err == nil {
		t.Error("a listed line that is no eval was accepted")
	}
}

func TestComplianceAdapter(t *testing.T) {
	for _, mode := range complianceModes {
		t.Run(mode.String(), func(t *testing.T) {
			s := newStrataStorage(t, mode)
			ls := labels.FromStrings("__name__", "m", "k", "v")
			ctx := context.Background()

			app := s.AppenderV2(ctx)
			if _, err := app.Append(0, ls, 500, 1000, 1, nil, nil, storage.AppendV2Options{}); !errors.Is(err, errNoStartTimestamps) {
				t.Errorf("append with start timestamp: got %v, want %v", err, errNoStartTimestamps)
			}

			// Rolled back: nothing stored.
			if _, err := app.Append(0, ls, 0, 1000, 1, nil, nil, storage.AppendV2Options{}); err != nil {
				t.Fatal(err)
			}
			if err := app.Rollback(); err != nil {
				t.Fatal(err)
			}
			if got := readAll(t, s); len(got) != 0 {
				t.Fatalf("after rollback: %v", got)
			}

			// Committed, in the order appended; samples of one series may
			// be interleaved with others.
			app = s.AppenderV2(ctx)
			other := labels.FromStrings("__name__", "m", "k", "w")
			for i, l := range []labels.Labels{ls, other, ls, ls, other} {
				if _, err := app.Append(0, l, 0, int64(i+1)*1000, float64(i), nil, nil, storage.AppendV2Options{}); err != nil {
					t.Fatal(err)
				}
			}
			hist := labels.FromStrings("__name__", "h")
			if _, err := app.Append(0, hist, 0, 6000, 0, &histogram.Histogram{Count: 2, ZeroCount: 2, Sum: 1}, nil, storage.AppendV2Options{}); err != nil {
				t.Fatal(err)
			}
			if _, err := app.Append(0, hist, 0, 7000, 0, nil, &histogram.FloatHistogram{Count: 3, ZeroCount: 3, Sum: 2}, storage.AppendV2Options{}); err != nil {
				t.Fatal(err)
			}
			if _, err := app.Append(0, hist, 0, 8000, 42, nil, nil, storage.AppendV2Options{}); err != nil {
				t.Fatal(err)
			}
			if err := app.Commit(); err != nil {
				t.Fatal(err)
			}
			want := map[string][]ingest.Sample{
				ls.String():    {{T: 1000, V: 0}, {T: 3000, V: 2}, {T: 4000, V: 3}},
				other.String(): {{T: 2000, V: 1}, {T: 5000, V: 4}},
				hist.String():  {{T: 6000, V: 2}, {T: 7000, V: 3}, {T: 8000, V: 42}}, // histograms as their counts
			}
			got := readAll(t, s)
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("read back %v, want %v", got, want)
			}
			if n := s.store.Head().SamplesInHead(); (mode == modeSegments) != (n == 0) {
				t.Errorf("mode %s: %d samples in the head", mode, n)
			}
			if n := len(s.set.Segments()); (mode == modeHead) != (n == 0) {
				t.Errorf("mode %s: %d segments", mode, n)
			}
			if st, err := s.StartTime(); err != nil || st != 1000 {
				t.Errorf("StartTime() = %d, %v; want 1000", st, err)
			}
		})
	}
}

// readAll returns every sample in s by series; a histogram is read as its
// count.
func readAll(t *testing.T, s storage.Storage) map[string][]ingest.Sample {
	t.Helper()
	q, err := s.Querier(math.MinInt64, math.MaxInt64)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	out := map[string][]ingest.Sample{}
	ss := q.Select(context.Background(), true, nil, labels.MustNewMatcher(labels.MatchRegexp, "__name__", ".+"))
	for ss.Next() {
		it := ss.At().Iterator(nil)
		for vt := it.Next(); vt != chunkenc.ValNone; vt = it.Next() {
			var x ingest.Sample
			if vt == chunkenc.ValFloat {
				x.T, x.V = it.At()
			} else {
				var fh *histogram.FloatHistogram
				x.T, fh = it.AtFloatHistogram(nil)
				x.V = fh.Count
			}
			out[ss.At().Labels().String()] = append(out[ss.At().Labels().String()], x)
		}
		if err := it.Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := ss.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestOwnScripts runs the promqltest scripts of query/testdata (UTF-8
// names, which the prometheus module's scripts do not cover) through
// Prometheus' runner against Strata's storage in every mode.
func TestOwnScripts(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.test"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no scripts in query/testdata: %v", err)
	}
	engine := promqltest.NewTestEngine(t, false, 0, promqltest.DefaultMaxSamplesPerQuery)
	for _, mode := range complianceModes {
		for _, f := range files {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			t.Run(mode.String()+"/"+filepath.Base(f), func(t *testing.T) {
				promqltest.RunTestWithStorage(t, string(raw), engine, func(tb testing.TB) storage.Storage {
					return newStrataStorage(tb, mode)
				})
			})
		}
	}
}
