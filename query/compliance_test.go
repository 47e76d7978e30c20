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
// Strata stores float samples only. What the scripts need beyond that is
// handled explicitly, never by skipping on failure:
//
//   - excludedComplianceFiles lists whole scripts that cannot pass, each
//     with its reason;
//   - floatOnlyScript removes, from the remaining scripts, the series lines
//     that hold native histograms and the eval blocks whose answer could
//     depend on them (see its comment for the exact rule). Line numbers are
//     kept, so subtest names match the original script.

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
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/promql/promqltest"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/util/convertnhcb"

	"github.com/strata-tsdb/strata/buffer"
	"github.com/strata-tsdb/strata/ingest"
	"github.com/strata-tsdb/strata/segments"
)

// excludedComplianceFiles are the scripts that are not run at all, with the
// reason. Everything else runs in every mode.
var excludedComplianceFiles = map[string]string{
	// Nearly every load and every expected value in it is a native
	// histogram ({{...}}); Strata stores floats only. The float-only filter
	// would keep 3 of its 522 evals.
	"native_histograms.test": "native histograms: Strata stores float samples only",
	// Loads start timestamps (metric@st lines) and checks that the engine
	// (UseStartTimestamps) uses them; Strata does not store start
	// timestamps, and the adapter refuses them.
	"start_timestamps.test": "start timestamps: Strata does not store them",
}

// filteredComplianceFiles are the scripts that mix float-only tests with
// native histograms: they run with floatOnlyScript's filter applied. The
// filter must remove something from each of these and nothing from any other
// script; otherwise the test fails, so that a new prometheus version that
// adds native histograms to a script gets a look rather than silent
// filtering.
var filteredComplianceFiles = map[string]string{
	"aggregators.test":      "sections with native histogram series (http_requests_histogram, data_histogram, version, series) next to float series",
	"extended_vectors.test": "anchored/smoothed rate and increase over the native histogram hist_counter",
	"functions.test":        "native histogram sections (sgn, rate, deriv, *_over_time, ... over histograms)",
	"histograms.test":       "load_with_nhcb: the classic float series are loaded, the derived native histograms with custom buckets are not; evals over them (histogram_count(x), x without _bucket, ...) are dropped",
	"info.test":             "one section where info() selects a native histogram series",
	"limit.test":            "its only section holds two native histogram series that http_requests selects, so all but one eval go",
	"operators.test":        "native histogram series in the first section and in the left/right_histograms section, and one load_with_nhcb section",
	"range_queries.test":    "one native histogram section",
	"subquery.test":         "one native histogram section",
}

// errNoNativeHistograms is what the adapter's appenders return for a
// histogram sample.
var errNoNativeHistograms = errors.New("strata stores float samples only: native histograms are not supported")

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
	files, err := filepath.Glob(filepath.Join(dir, "*.test"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no .test files in %s", dir)
	}
	slices.Sort(files)

	type script struct {
		name, content string
	}
	var scripts []script
	for _, f := range files {
		name := filepath.Base(f)
		if _, ok := excludedComplianceFiles[name]; ok {
			continue
		}
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		content, st, err := floatOnlyScript(string(raw))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		_, listed := filteredComplianceFiles[name]
		switch changed := st.droppedSeries+st.droppedEvals+st.nhcbLoads > 0; {
		case changed && !listed:
			t.Errorf("%s holds native histograms (%+v) but is not in filteredComplianceFiles: review it and list it", name, st)
			continue
		case !changed && listed:
			t.Errorf("%s is in filteredComplianceFiles but holds no native histograms: unlist it", name)
		case changed:
			t.Logf("%s: float-only filter removed %d histogram series lines and %d of %d evals; %d load_with_nhcb loaded as plain load",
				name, st.droppedSeries, st.droppedEvals, st.evals, st.nhcbLoads)
		}
		scripts = append(scripts, script{name: name, content: content})
	}
	// Listed names must exist: a stale entry is misleading.
	for _, list := range []map[string]string{excludedComplianceFiles, filteredComplianceFiles} {
		for name := range list {
			if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
				t.Errorf("listed file %s: %v", name, err)
			}
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

// strataAppender collects float samples into one ingest.Batch, one Series
// per label set in order of first appearance, samples in append order.
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
	if h != nil || fh != nil {
		return 0, fmt.Errorf("%s @%d: %w", ls, t, errNoNativeHistograms)
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
	a.batch.Series[i].Samples = append(a.batch.Series[i].Samples, ingest.Sample{T: t, V: v})
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

// splitBatch splits every series of b in two: the first half of its
// samples (rounded up) and the rest.
func splitBatch(b *ingest.Batch) (older, newer *ingest.Batch) {
	older, newer = &ingest.Batch{}, &ingest.Batch{}
	for _, s := range b.Series {
		n := (len(s.Samples) + 1) / 2
		older.Series = append(older.Series, ingest.Series{Labels: s.Labels, Samples: s.Samples[:n]})
		if n < len(s.Samples) {
			newer.Series = append(newer.Series, ingest.Series{Labels: s.Labels, Samples: s.Samples[n:]})
		}
	}
	return older, newer
}

func (a *strataAppender) Rollback() error {
	a.done = true
	a.batch = ingest.Batch{}
	return nil
}

// strataAppenderV1 is the legacy storage.Appender on top of strataAppender:
// floats only. The scripts append through AppenderV2.
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
func (a *strataAppenderV1) AppendHistogram(storage.SeriesRef, labels.Labels, int64, *histogram.Histogram, *histogram.FloatHistogram) (storage.SeriesRef, error) {
	return 0, errNoNativeHistograms
}
func (a *strataAppenderV1) AppendHistogramSTZeroSample(storage.SeriesRef, labels.Labels, int64, int64, *histogram.Histogram, *histogram.FloatHistogram) (storage.SeriesRef, error) {
	return 0, errNoNativeHistograms
}
func (a *strataAppenderV1) UpdateMetadata(ref storage.SeriesRef, _ labels.Labels, _ metadata.Metadata) (storage.SeriesRef, error) {
	return ref, nil
}
func (a *strataAppenderV1) AppendSTZeroSample(storage.SeriesRef, labels.Labels, int64, int64) (storage.SeriesRef, error) {
	return 0, errNoStartTimestamps
}

// ---------------------------------------------------------------------------
// The float-only filter.

var (
	// The same patterns as promqltest's parser.
	complianceLoadRe        = regexp.MustCompile(`^load(?:_(with_nhcb))?\s+(.+?)$`)
	complianceEvalInstantRe = regexp.MustCompile(`^eval(?:_(fail|warn|ordered|info))?\s+instant\s+(?:at\s+(.+?))?\s+(.+)$`)
	complianceEvalRangeRe   = regexp.MustCompile(`^eval(?:_(fail|warn|info))?\s+range\s+from\s+(.+)\s+to\s+(.+)\s+step\s+(.+?)\s+(.+)$`)
	complianceSpaceRe       = regexp.MustCompile(`[\t ]+`)
)

type floatOnlyStats struct {
	evals         int // eval blocks in the script
	droppedEvals  int
	droppedSeries int // series lines removed from loads
	nhcbLoads     int // load_with_nhcb commands turned into load
}

// floatOnlyScript returns the script with what needs native histograms
// removed. Removed lines become empty lines, so every kept command keeps
// its line number. The rule, applied in script order and reset by every
// `clear` (which starts from empty storage):
//
//  1. A load series line with any native histogram value ({{...}}) is
//     removed (the load's other lines move up, so that the load stays one
//     block); its labels are remembered as a missing series.
//  2. `load_with_nhcb` becomes `load`: the classic float series are stored
//     as written, but the native histograms with custom buckets that
//     Prometheus derives from *_bucket/*_count/*_sum series are not; their
//     labels (as convertnhcb computes them) are remembered as missing.
//  3. An eval block is removed when any of its lines holds a native
//     histogram ({{...}} in expected results), or when a series is missing
//     and either one of the expression's selectors matches a missing series
//     or the expression calls info() (which selects series implicitly).
//
// Evals whose selectors match no missing series read exactly the data
// Prometheus would read, so their expected answers hold unchanged.
func floatOnlyScript(input string) (string, floatOnlyStats, error) {
	var st floatOnlyStats
	p := parser.NewParser(promqltest.TestParserOpts)
	lines := strings.Split(input, "\n")
	trimmed := make([]string, len(lines))
	for i, l := range lines {
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, "#") {
			l = ""
		}
		trimmed[i] = l
	}
	var missing []labels.Labels
	addMissing := func(ls labels.Labels) {
		for _, m := range missing {
			if labels.Equal(m, ls) {
				return
			}
		}
		missing = append(missing, ls)
	}
	for i := 0; i < len(lines); i++ {
		if trimmed[i] == "" {
			continue
		}
		end := i + 1 // the block is [i, end)
		for end < len(lines) && trimmed[end] != "" {
			end++
		}
		cmd := strings.ToLower(complianceSpaceRe.Split(trimmed[i], 2)[0])
		switch {
		case cmd == "clear":
			// A one-line command: a load may follow on the next line.
			missing = nil
			end = i + 1
		case strings.HasPrefix(cmd, "load"):
			parts := complianceLoadRe.FindStringSubmatch(trimmed[i])
			if parts == nil {
				return "", st, fmt.Errorf("line %d: invalid load command %q", i+1, trimmed[i])
			}
			withNHCB := parts[1] == "with_nhcb"
			if withNHCB {
				lines[i] = "load " + parts[2]
				st.nhcbLoads++
			}
			// Kept series lines move up over removed ones and the block is
			// padded with empty lines at its end: an empty line inside a
			// load would end it.
			kept := lines[i+1 : i+1]
			for j := i + 1; j < end; j++ {
				if isComplianceSTLine(trimmed[j]) {
					kept = append(kept, lines[j]) // refused by the adapter if it comes to that
					continue
				}
				ls, vals, err := p.ParseSeriesDesc(trimmed[j])
				if err != nil {
					return "", st, fmt.Errorf("line %d: %w", j+1, err)
				}
				if slices.ContainsFunc(vals, func(v parser.SequenceValue) bool { return v.Histogram != nil }) {
					st.droppedSeries++
					addMissing(ls)
					continue
				}
				if withNHCB {
					if suffix, base := convertnhcb.GetHistogramMetricBaseName(ls.Get(labels.MetricName)); suffix != convertnhcb.SuffixNone {
						addMissing(convertnhcb.GetHistogramMetricBase(ls, base))
					}
				}
				kept = append(kept, lines[j])
			}
			for j := i + 1 + len(kept); j < end; j++ {
				lines[j] = ""
			}
		case strings.HasPrefix(cmd, "eval"):
			st.evals++
			var expr string
			if m := complianceEvalInstantRe.FindStringSubmatch(trimmed[i]); m != nil {
				expr = m[3]
			} else if m := complianceEvalRangeRe.FindStringSubmatch(trimmed[i]); m != nil {
				expr = m[5]
			} else {
				return "", st, fmt.Errorf("line %d: invalid eval command %q", i+1, trimmed[i])
			}
			drop := slices.ContainsFunc(lines[i:end], func(l string) bool { return strings.Contains(l, "{{") })
			if !drop && len(missing) > 0 {
				e, err := p.ParseExpr(expr)
				if err != nil {
					return "", st, fmt.Errorf("line %d: %w", i+1, err)
				}
				drop = callsInfo(e) || selectsAny(parser.ExtractSelectors(e), missing)
			}
			if drop {
				for j := i; j < end; j++ {
					lines[j] = ""
				}
				st.droppedEvals++
			}
		default:
			return "", st, fmt.Errorf("line %d: unknown command %q", i+1, trimmed[i])
		}
		i = end - 1
	}
	return strings.Join(lines, "\n"), st, nil
}

// isComplianceSTLine is promqltest's test for a start-timestamp line:
// "metric{...}@st <values>".
func isComplianceSTLine(l string) bool {
	i := strings.IndexAny(l, " \t")
	return i >= 0 && strings.HasSuffix(l[:i], "@st")
}

func callsInfo(e parser.Expr) bool {
	found := false
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if c, ok := n.(*parser.Call); ok && c.Func.Name == "info" {
			found = true
		}
		return nil
	})
	return found
}

// selectsAny reports whether any selector matches any of series.
func selectsAny(selectors [][]*labels.Matcher, series []labels.Labels) bool {
	for _, ms := range selectors {
		for _, ls := range series {
			if matchesAll(ms, ls) {
				return true
			}
		}
	}
	return false
}

func matchesAll(ms []*labels.Matcher, ls labels.Labels) bool {
	for _, m := range ms {
		if !m.Matches(ls.Get(m.Name)) {
			return false
		}
	}
	return true
}

// ---------------------------------------------------------------------------
// Tests of the harness itself.

func TestComplianceFloatOnlyFilter(t *testing.T) {
	const in = `load 5m
  a{x="1"} 1 2
  h{x="1"} {{schema:0 sum:1 count:1}}
  b{x="1"} 3

eval instant at 0m a
  a{x="1"} 1

eval instant at 0m h
  h{x="1"} {{schema:0 sum:1 count:1}}

eval instant at 0m sum({x="1"})
  {} 5

eval range from 0 to 5m step 5m rate({__name__=~"a|b"}[5m])

eval instant at 0m info(a)

clear
load_with_nhcb 5m
  c_bucket{le="1"} 1
  c_bucket{le="+Inf"} 2

load 5m
  h 1

eval instant at 0m h
  h 1

eval instant at 0m c_bucket
  c_bucket{le="1"} 1
  c_bucket{le="+Inf"} 2

eval instant at 0m histogram_count(c)
  {} 2

clear
load 5m
  h 1

eval instant at 0m histogram_count(c)
`
	out, st, err := floatOnlyScript(in)
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Join([]string{
		`load 5m`,
		`  a{x="1"} 1 2`,
		`  b{x="1"} 3`,
		``, // h moved out; the load stays one block
		``,
		`eval instant at 0m a`, // selects no missing series
		`  a{x="1"} 1`,
		``,
		``, // h: a missing series, and a histogram result
		``,
		``,
		``, // {x="1"} matches the missing h{x="1"}
		``,
		``,
		`eval range from 0 to 5m step 5m rate({__name__=~"a|b"}[5m])`,
		``,
		``, // info() selects implicitly
		``,
		`clear`,
		`load 5m`, // was load_with_nhcb
		`  c_bucket{le="1"} 1`,
		`  c_bucket{le="+Inf"} 2`,
		``,
		`load 5m`,
		`  h 1`,
		``,
		`eval instant at 0m h`, // clear forgot h{x="1"}; c is a different name
		`  h 1`,
		``,
		`eval instant at 0m c_bucket`, // the classic series are there
		`  c_bucket{le="1"} 1`,
		`  c_bucket{le="+Inf"} 2`,
		``,
		``, // c is the native histogram derived from c_bucket
		``,
		``,
		`clear`,
		`load 5m`,
		`  h 1`,
		``,
		`eval instant at 0m histogram_count(c)`, // c is forgotten after clear
		``,
	}, "\n")
	if out != want {
		t.Errorf("filtered script:\n%s\nwant:\n%s", out, want)
	}
	if want := (floatOnlyStats{evals: 9, droppedEvals: 4, droppedSeries: 1, nhcbLoads: 1}); st != want {
		t.Errorf("stats %+v, want %+v", st, want)
	}
}

func TestComplianceAdapter(t *testing.T) {
	for _, mode := range complianceModes {
		t.Run(mode.String(), func(t *testing.T) {
			s := newStrataStorage(t, mode)
			ls := labels.FromStrings("__name__", "m", "k", "v")
			ctx := context.Background()

			app := s.AppenderV2(ctx)
			if _, err := app.Append(0, ls, 0, 1000, 0, nil, &histogram.FloatHistogram{}, storage.AppendV2Options{}); !errors.Is(err, errNoNativeHistograms) {
				t.Errorf("float histogram append: got %v, want %v", err, errNoNativeHistograms)
			}
			if _, err := app.Append(0, ls, 0, 1000, 0, &histogram.Histogram{}, nil, storage.AppendV2Options{}); !errors.Is(err, errNoNativeHistograms) {
				t.Errorf("histogram append: got %v, want %v", err, errNoNativeHistograms)
			}
			if _, err := app.Append(0, ls, 500, 1000, 1, nil, nil, storage.AppendV2Options{}); !errors.Is(err, errNoStartTimestamps) {
				t.Errorf("append with start timestamp: got %v, want %v", err, errNoStartTimestamps)
			}
			if _, err := s.Appender(ctx).AppendHistogram(0, ls, 1000, &histogram.Histogram{}, nil); !errors.Is(err, errNoNativeHistograms) {
				t.Errorf("v1 histogram append: got %v, want %v", err, errNoNativeHistograms)
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
			if err := app.Commit(); err != nil {
				t.Fatal(err)
			}
			want := map[string][]ingest.Sample{
				ls.String():    {{T: 1000, V: 0}, {T: 3000, V: 2}, {T: 4000, V: 3}},
				other.String(): {{T: 2000, V: 1}, {T: 5000, V: 4}},
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

// readAll returns every float sample in s by series.
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
		for it.Next() != chunkenc.ValNone {
			ts, v := it.At()
			out[ss.At().Labels().String()] = append(out[ss.At().Labels().String()], ingest.Sample{T: ts, V: v})
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
