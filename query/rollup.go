package query

import (
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
)

// Resolution is the bucket width, in milliseconds, of the data a query reads.
type Resolution int64

// The resolutions; ResolutionAuto (the zero value) lets the engine choose.
const (
	ResolutionAuto Resolution = 0
	ResolutionRaw  Resolution = -1
	Resolution5m   Resolution = 300_000
	Resolution1h   Resolution = 3_600_000
)

// ParseResolution reads the max_source_resolution parameter: auto (or ""),
// raw (or 0s), 5m, 1h.
func ParseResolution(s string) (Resolution, error) {
	switch s {
	case "", "auto":
		return ResolutionAuto, nil
	case "raw", "0", "0s":
		return ResolutionRaw, nil
	case "5m":
		return Resolution5m, nil
	case "1h":
		return Resolution1h, nil
	}
	return 0, fmt.Errorf("%w: invalid parameter \"max_source_resolution\": %q is none of auto, raw, 5m, 1h", ErrBadQuery, s)
}

func (r Resolution) String() string {
	switch r {
	case ResolutionAuto:
		return "auto"
	case ResolutionRaw:
		return "raw"
	case Resolution5m:
		return "5m"
	case Resolution1h:
		return "1h"
	}
	return (time.Duration(r) * time.Millisecond).String()
}

// The pseudo-labels a rewritten query puts on its selectors to tell the
// querier which rollup aggregate to read. They never reach a result: the
// querier strips them and the series it returns do not carry them.
const (
	rollupLabel     = "__strata_rollup__"
	resolutionLabel = "__strata_resolution__"
)

// The aggregates a selector can read from a rollup.
const (
	aggSum     = "sum"
	aggCount   = "count"
	aggMin     = "min"
	aggMax     = "max"
	aggCounter = "counter"
	aggAvg     = "avg" // sum / count, per bucket: what a plain selector reads
)

// rollupSource is what the engine needs to know about stored rollups; the
// Queryable implements it.
type rollupSource interface {
	// coverage returns the span [from, to] (ms) covered without gaps by the
	// newest run of rollup windows of a resolution; ok is false if none.
	coverage(res int64) (from, to int64, ok bool)
	// rawMinTime is the oldest raw timestamp inside retention now.
	rawMinTime() int64
	// mayReadHistograms reports whether the selectors may select a series
	// holding native histograms, which rollups do not hold.
	mayReadHistograms(selectors [][]*labels.Matcher) bool
}

// ChooseResolution picks the data a range query reads: the coarsest rollup
// whose bucket is no larger than the step, divides the step and every range
// in the query, that covers the query's data from its start and that the
// query can be answered from (min, max, sum, count and avg over time
// exactly; rate and increase to within the last raw scrape interval; irate
// as the rate of the last bucket; plain selectors as the bucket's average);
// raw data
// otherwise, unless raw data for the query's start is past retention, in
// which case the finest rollup that exists is read. max caps the choice
// (ResolutionRaw: raw only). A query that may read native histograms reads
// raw data: rollups hold floats only.
func (e *Engine) ChooseResolution(qs string, start, end time.Time, step time.Duration, max Resolution) (Resolution, error) {
	if max == ResolutionRaw {
		return ResolutionRaw, nil
	}
	if _, ok := e.queryable.(rollupSource); !ok {
		return ResolutionRaw, nil
	}
	rq, err := e.resolutionQuery(qs, start, end, step)
	if err != nil {
		return 0, err
	}
	return e.chooseResolution(rq, start, step, max), nil
}

// resolutionQuery is what ChooseResolution takes from a query's text and
// window: a function of them and the engine's settings only, so one made
// for a query serves every later request of it (frontend_memo.go). What
// the choice takes from the data stored now is read by chooseResolution.
// It is safe for concurrent use.
type resolutionQuery struct {
	expr       parser.Expr // read, never modified
	selectors  [][]*labels.Matcher
	dmin, dmax int64 // the data range read (promql.FindMinMaxTime)
	// rewrites says, for Resolution1h and Resolution5m, whether the query
	// can be answered from rollups of that resolution; each is found the
	// first time a choice needs it.
	rewrites [2]struct {
		once sync.Once
		ok   bool
	}
}

// resolutionQuery parses qs and finds the data range it reads.
func (e *Engine) resolutionQuery(qs string, start, end time.Time, step time.Duration) (*resolutionQuery, error) {
	expr, err := e.parser.ParseExpr(qs)
	if err != nil {
		return nil, wrapParseError(err)
	}
	dmin, dmax := promql.FindMinMaxTime(&parser.EvalStmt{Expr: expr, Start: start, End: end, Interval: step, LookbackDelta: e.opts.LookbackDelta})
	return &resolutionQuery{expr: expr, selectors: parser.ExtractSelectors(expr), dmin: dmin, dmax: dmax}, nil
}

// rewritable reports whether the query can be read from rollups of res, one
// of Resolution1h and Resolution5m.
func (rq *resolutionQuery) rewritable(res Resolution) bool {
	w := &rq.rewrites[0]
	if res == Resolution5m {
		w = &rq.rewrites[1]
	}
	w.once.Do(func() { _, w.ok = rewriteForRollup(rq.expr, int64(res)) })
	return w.ok
}

// chooseResolution is ChooseResolution for the query rq was made of, over
// the data stored now.
func (e *Engine) chooseResolution(rq *resolutionQuery, start time.Time, step time.Duration, max Resolution) Resolution {
	if max == ResolutionRaw {
		return ResolutionRaw
	}
	src, ok := e.queryable.(rollupSource)
	if !ok {
		return ResolutionRaw
	}
	if src.mayReadHistograms(rq.selectors) {
		return ResolutionRaw
	}
	dmin, dmax := rq.dmin, rq.dmax
	if dmin > dmax {
		return ResolutionRaw // reads no data
	}
	candidates := []Resolution{Resolution1h, Resolution5m}
	usable := func(res Resolution) bool {
		if max != ResolutionAuto && res > max {
			return false
		}
		from, to, ok := src.coverage(int64(res))
		if !ok || to < dmin || from > dmax {
			return false
		}
		return rq.rewritable(res)
	}
	ms := step.Milliseconds()
	for _, res := range candidates {
		r := int64(res)
		if r > ms || ms%r != 0 || start.UnixMilli()%r != 0 || !usable(res) {
			continue
		}
		// Counter windows read one bucket further back than the query says.
		if from, _, _ := src.coverage(r); from <= dmin-r+1 {
			return res
		}
	}
	// Raw data for the start of the query is gone: read what rollups hold.
	if dmin < src.rawMinTime() {
		for _, res := range []Resolution{Resolution5m, Resolution1h} {
			if usable(res) {
				return res
			}
		}
	}
	return ResolutionRaw
}

// rollupQuery rewrites qs to read rollups of res; lookback is the lookback
// delta plain selectors need to find a bucket.
func (e *Engine) rollupQuery(qs string, res Resolution) (string, time.Duration, error) {
	expr, err := e.parser.ParseExpr(qs)
	if err != nil {
		return "", 0, wrapParseError(err)
	}
	out, ok := rewriteForRollup(expr, int64(res))
	if !ok {
		return "", 0, fmt.Errorf("%w: the query cannot be answered from %s rollups", ErrBadQuery, res)
	}
	return out.String(), max(e.opts.LookbackDelta, time.Duration(res)*time.Millisecond), nil
}

var copyParser = parser.NewParser(parser.Options{})

// rewriteForRollup returns expr rewritten to read rollup aggregates of
// resolution res, or false when some part of it cannot be answered exactly
// from them. expr is not modified.
func rewriteForRollup(expr parser.Expr, res int64) (parser.Expr, bool) {
	expr, err := copyParser.ParseExpr(expr.String()) // a deep copy to rewrite
	if err != nil {
		return nil, false
	}
	out, ok := rewriteNode(expr, res)
	return out, ok
}

func rewriteNode(n parser.Expr, res int64) (parser.Expr, bool) {
	switch n := n.(type) {
	case *parser.NumberLiteral, *parser.StringLiteral:
		return n, true
	case *parser.ParenExpr:
		inner, ok := rewriteNode(n.Expr, res)
		n.Expr = inner
		return n, ok
	case *parser.UnaryExpr:
		inner, ok := rewriteNode(n.Expr, res)
		n.Expr = inner
		return n, ok
	case *parser.StepInvariantExpr:
		inner, ok := rewriteNode(n.Expr, res)
		n.Expr = inner
		return n, ok
	case *parser.BinaryExpr:
		l, ok1 := rewriteNode(n.LHS, res)
		r, ok2 := rewriteNode(n.RHS, res)
		n.LHS, n.RHS = l, r
		return n, ok1 && ok2
	case *parser.AggregateExpr:
		inner, ok := rewriteNode(n.Expr, res)
		n.Expr = inner
		if n.Param != nil {
			p, okp := rewriteNode(n.Param, res)
			n.Param, ok = p, ok && okp
		}
		return n, ok
	case *parser.VectorSelector:
		return n, tagSelector(n, aggAvg, res)
	case *parser.Call:
		return rewriteCall(n, res)
	}
	return nil, false // subqueries, bare range selectors, anything else
}

// rangeFuncs maps functions over a range to the aggregate they read.
// resets() is not among them: the counter aggregate is adjusted for resets,
// so it would always answer 0.
var rangeFuncs = map[string]string{
	"min_over_time": aggMin, "max_over_time": aggMax, "sum_over_time": aggSum, "count_over_time": aggCount,
	"rate": aggCounter, "increase": aggCounter, "irate": aggCounter,
}

func rewriteCall(n *parser.Call, res int64) (parser.Expr, bool) {
	var ms *parser.MatrixSelector
	for _, a := range n.Args {
		if m, ok := a.(*parser.MatrixSelector); ok {
			ms = m
		}
	}
	if ms == nil {
		// A function of instant vectors or scalars: rewrite its arguments.
		ok := true
		for i, a := range n.Args {
			r, okA := rewriteNode(a, res)
			n.Args[i], ok = r, ok && okA
		}
		return n, ok
	}
	vs, ok := ms.VectorSelector.(*parser.VectorSelector)
	if !ok || len(n.Args) != 1 || ms.Range.Milliseconds()%res != 0 {
		return nil, false
	}
	if n.Func.Name == "avg_over_time" {
		// Exactly: the sum of the buckets' sums over the sum of their counts.
		sum := &parser.Call{Func: parser.Functions["sum_over_time"], Args: parser.Expressions{ms}}
		cnt := &parser.Call{Func: parser.Functions["sum_over_time"], Args: parser.Expressions{copyMatrix(ms)}}
		if !tagSelector(vs, aggSum, res) || !tagSelector(cnt.Args[0].(*parser.MatrixSelector).VectorSelector.(*parser.VectorSelector), aggCount, res) {
			return nil, false
		}
		// Parenthesised: the rewritten query reaches the engine as text, and
		// x / sum / count would parse as (x / sum) / count.
		return &parser.ParenExpr{Expr: &parser.BinaryExpr{Op: parser.DIV, LHS: sum, RHS: cnt, VectorMatching: &parser.VectorMatching{Card: parser.CardOneToOne}}}, true
	}
	agg, ok := rangeFuncs[n.Func.Name]
	if !ok {
		return nil, false
	}
	if agg == aggCount {
		// Counting buckets would count the wrong thing: add their counts.
		n.Func = parser.Functions["sum_over_time"]
	}
	if !tagSelector(vs, agg, res) {
		return nil, false
	}
	if agg != aggCounter {
		return n, true
	}
	// The counter aggregate holds the counter at each bucket end. A window
	// (T-R, T] of raw samples starts just after the bucket ending at T-R,
	// whose value is the counter at T-R: reading the window one bucket
	// wider measures the increase over exactly [T-R, T], which PromQL's
	// extrapolation then turns into the same rate as the raw samples give.
	r := ms.Range
	ms.Range += time.Duration(res) * time.Millisecond
	if n.Func.Name == "increase" {
		// increase extrapolates to the window it was given: ask for the
		// rate over the wider window and scale it to the original one.
		n.Func = parser.Functions["rate"]
		return &parser.ParenExpr{Expr: &parser.BinaryExpr{Op: parser.MUL, LHS: n, RHS: &parser.NumberLiteral{Val: r.Seconds()}}}, true
	}
	return n, true
}

func copyMatrix(ms *parser.MatrixSelector) *parser.MatrixSelector {
	vs := *ms.VectorSelector.(*parser.VectorSelector)
	vs.LabelMatchers = slices.Clone(vs.LabelMatchers)
	return &parser.MatrixSelector{VectorSelector: &vs, Range: ms.Range}
}

// tagSelector marks vs to read agg from rollups of res. Offsets and @ must
// land on bucket ends.
func tagSelector(vs *parser.VectorSelector, agg string, res int64) bool {
	if vs.OriginalOffset.Milliseconds()%res != 0 || vs.Timestamp != nil && *vs.Timestamp%res != 0 || vs.StartOrEnd != 0 {
		return false
	}
	vs.LabelMatchers = append(vs.LabelMatchers,
		labels.MustNewMatcher(labels.MatchEqual, rollupLabel, agg),
		labels.MustNewMatcher(labels.MatchEqual, resolutionLabel, strconv.FormatInt(res, 10)))
	return true
}

// rollupMatchers splits the pseudo-matchers a rewritten query added from
// the real ones.
func rollupMatchers(ms []*labels.Matcher) (agg string, res int64, rest []*labels.Matcher) {
	for _, m := range ms {
		switch m.Name {
		case rollupLabel:
			agg = m.Value
		case resolutionLabel:
			res, _ = strconv.ParseInt(m.Value, 10, 64)
		default:
			rest = append(rest, m)
		}
	}
	return agg, res, rest
}
