package query

import (
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/strata-tsdb/strata/downsample"
)

// resolutionRulesVersion is part of every cache key: bump it when
// ChooseResolution or the rollup rewrite changes what a query reads.
// (2: a counter read from rollups continues their level past them and
// after days rolled up again, whatever the range.)
const resolutionRulesVersion = 2

// configFingerprint hashes everything that shapes answers besides the
// query and its window: the engine's settings, the resolution rules, the
// encoding of cached values and the frontend's own settings.
func configFingerprint(eo Options, fo FrontendOptions) string {
	b := make([]byte, 0, 128)
	b = append(b, "extent="...)
	b = strconv.AppendInt(b, extentVersion, 10)
	b = append(b, ";lookback="...)
	b = strconv.AppendInt(b, int64(eo.LookbackDelta), 10)
	// NewEngine enables @ and negative offsets, and sets no other option
	// that changes a successful answer (limits only turn answers into
	// errors, which are never cached).
	b = append(b, ";at=1;negoffset=1;rules="...)
	b = strconv.AppendInt(b, resolutionRulesVersion, 10)
	b = append(b, ";split="...)
	b = strconv.AppendInt(b, int64(fo.SplitInterval), 10)
	b = append(b, ";extra="...)
	b = append(b, fo.Fingerprint...)
	return strconv.FormatUint(xxhash.Sum64(b), 16)
}

// plan is what the frontend knows of one query: its canonical text, the
// metric names its selectors touch, and how to find the data range of an
// evaluation window.
type plan struct {
	res   Resolution // the data the query reads
	norm  string
	names []string // metric names; "*" for a selector without a fixed name
	expr  parser.Expr
	lookb time.Duration
	// counters says whether the query reads a counter (rate, increase,
	// irate), whose level, when read from rollups, depends on data from
	// the first day that could be rolled up again on (counterChainFrom).
	counters bool
}

// newPlan parses qs; ok is false when the query depends on the query's own
// window (@ start(), @ end() and the like) and so cannot be split or cached.
func (f *Frontend) newPlan(qs string, start, end time.Time, step time.Duration) (*plan, bool, error) {
	p := f.engine.Parser()
	expr, err := p.ParseExpr(qs)
	if err != nil {
		return nil, false, wrapParseError(err)
	}
	norm := expr.String()
	pre, err := promql.PreprocessExpr(expr, start, end, step)
	if err != nil {
		return nil, false, wrapParseError(err)
	}
	// The same query over another window must preprocess to the same
	// expression, or its answer at a step depends on the window.
	other, err := p.ParseExpr(qs)
	if err != nil {
		return nil, false, wrapParseError(err)
	}
	shift := max(step, time.Minute)
	other, err = promql.PreprocessExpr(other, start.Add(shift), end.Add(2*shift), step)
	if err != nil || other.String() != pre.String() {
		return nil, false, nil
	}
	names := map[string]struct{}{}
	var dropsNames, relabels, counters bool
	parser.Inspect(pre, func(n parser.Node, _ []parser.Node) error {
		switch n := n.(type) {
		case *parser.Call:
			dropsNames = true
			if n.Func.Name == "label_replace" || n.Func.Name == "label_join" {
				relabels = true
			}
			if rangeFuncs[n.Func.Name] == aggCounter {
				counters = true
			}
		case *parser.BinaryExpr:
			dropsNames = true
		case *parser.VectorSelector:
			name := "*"
			for _, m := range n.LabelMatchers {
				if m.Name == labels.MetricName && m.Type == labels.MatchEqual {
					name = m.Value
				}
			}
			names[name] = struct{}{}
		}
		return nil
	})
	// The engine refuses a result holding two series with the same labels
	// anywhere in the whole range ("vector cannot contain metrics with the
	// same labelset"); evaluated in pieces, each piece may hold only one of
	// them and pass. That can happen when series of several names lose
	// their names, or when labels are rewritten: such queries are not split.
	if _, wildcard := names["*"]; relabels || wildcard && dropsNames {
		return nil, false, nil
	}
	pl := &plan{norm: norm, expr: pre, lookb: f.engine.opts.LookbackDelta, counters: counters}
	for n := range names {
		pl.names = append(pl.names, n)
	}
	slices.Sort(pl.names)
	return pl, true, nil
}

// maxTagDays bounds the days an extent is tagged with; a query reading
// more than that at once is not cached.
const maxTagDays = 800

// dataRange returns the span of data an evaluation at the steps of
// [start, end] reads, offsets (negative ones too), @ and subqueries
// applied; ok is false when it reads none.
func (p *plan) dataRange(start, end int64, step time.Duration) (int64, int64, bool) {
	mint, maxt := promql.FindMinMaxTime(&parser.EvalStmt{
		Expr: p.expr, Start: time.UnixMilli(start), End: time.UnixMilli(end), Interval: step, LookbackDelta: p.lookb,
	})
	if mint == math.MaxInt64 || maxt == math.MinInt64 || (mint == 0 && maxt == 0) || mint > maxt {
		return 0, 0, false
	}
	return mint, maxt, true
}

// lastSettledStep returns the last step of the grid start, start+step, …
// up to end whose data is all at or before cutoff (start-step if none).
// The newest sample a step reads never decreases from one step to the
// next (it is the step minus an offset, or an @ time), so a binary search
// finds it in O(log steps) FindMinMaxTime calls.
func (p *plan) lastSettledStep(start, end, step, cutoff int64) int64 {
	settled := func(i int64) bool {
		t := start + i*step
		_, maxt, reads := p.dataRange(t, t, time.Duration(step)*time.Millisecond)
		return !reads || maxt <= cutoff
	}
	n := (end - start) / step
	if settled(n) {
		return start + n*step
	}
	lo, hi := int64(-1), n // settled(lo) (or lo is before the first), !settled(hi)
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		if settled(mid) {
			lo = mid
		} else {
			hi = mid
		}
	}
	return start + lo*step
}

// Tag returns the cache tag of a metric name ("*" for any) on a UTC day.
func Tag(name string, day time.Time) string {
	return "m:" + name + ":" + day.UTC().Format(time.DateOnly)
}

// tagDays returns the number of UTC days data in [mint, maxt] (ms) is
// tagged with.
func tagDays(mint, maxt int64) int64 { return DayOf(maxt) - DayOf(mint) + 1 }

// tags returns the tags of data in [mint, maxt]; ok is false when there
// would be too many.
func (p *plan) tags(mint, maxt int64) ([]string, bool) {
	days := tagDays(mint, maxt)
	if days > maxTagDays {
		return nil, false
	}
	first := time.UnixMilli(mint).UTC().Truncate(24 * time.Hour)
	last := time.UnixMilli(maxt).UTC().Truncate(24 * time.Hour)
	out := make([]string, 0, int(days)*len(p.names))
	for d := first; !d.After(last); d = d.Add(24 * time.Hour) {
		for _, n := range p.names {
			out = append(out, Tag(n, d))
		}
	}
	return out, true
}

// cacheableData reports whether data of resolution res from mint stays
// inside that resolution's retention for as long as an entry may be
// served: a rollup outlives raw data, and its extents are cached for as
// long as the rollup lasts.
func (f *Frontend) cacheableData(mint int64, res Resolution) bool {
	if f.minTime == nil {
		return true
	}
	if res <= 0 {
		res = ResolutionRaw
	}
	return mint >= f.minTime(res)+f.slack.Milliseconds()
}

// cacheTags returns the tags of what an evaluation at the steps of
// [start, end] reads, and whether its answer may be cached as far as its
// data's age and retention go (the caller checks freshness).
func (f *Frontend) cacheTags(pl *plan, start, end int64, step time.Duration) ([]string, bool) {
	mint, maxt, reads := pl.dataRange(start, end, step)
	if !reads {
		return nil, true
	}
	tags, ok := pl.tags(min(mint, f.counterChainFrom(pl)), maxt)
	if !ok || !f.cacheableData(mint, pl.res) {
		return nil, false
	}
	return tags, true
}

// counterChainFrom returns, for a plan that reads counters from rollups,
// the oldest data their level depends on now: the day before the first
// one that could be rolled up again (Select continues a counter from
// there, through every later day and the raw data past the rollups, and
// the day before's last value starts it). Data written or deleted there
// changes the answer at every later step, so an answer is tagged with
// every day from it on. math.MaxInt64 for any other plan.
func (f *Frontend) counterChainFrom(pl *plan) int64 {
	if pl.res <= 0 || !pl.counters {
		return math.MaxInt64
	}
	src, ok := f.engine.queryable.(rollupSource)
	if !ok {
		return math.MaxInt64
	}
	from, _, ok := src.coverage(int64(pl.res))
	if !ok {
		return math.MaxInt64
	}
	return max(from, src.rawMinTime()) - downsample.Window
}

// rerollFrom returns, for a plan that reads rollups, the start of the
// oldest rollup window that a query may still roll up again from raw data
// (the first whose raw data is all inside retention: Select judges no
// older one), math.MinInt64 for any other plan. It moves a window on
// each time raw retention passes a window's start, which it does with the
// clock, not with any write: a window that stops being rolled up again is
// read from its stored rollup, which may lack late writes not yet rolled
// up, and a counter's level continues through it into every later window.
// The keys of answers read from rollups hold it, so that no answer
// evaluated before that moment is served after it.
func (f *Frontend) rerollFrom(pl *plan) int64 {
	if pl.res <= 0 {
		return math.MinInt64
	}
	src, ok := f.engine.queryable.(rollupSource)
	if !ok {
		return math.MinInt64
	}
	rawMin := src.rawMinTime()
	if rawMin == math.MinInt64 {
		return math.MinInt64 // no raw retention: every window may be
	}
	return windowOf(rawMin-1) + downsample.Window // the first start s with s+1 >= rawMin
}

// appendRerollFrom ends a key of an answer of pl with rerollFrom, for a
// plan that reads rollups.
func (f *Frontend) appendRerollFrom(k []byte, pl *plan) []byte {
	if from := f.rerollFrom(pl); from != math.MinInt64 {
		k = append(k, 0)
		k = strconv.AppendInt(k, from, 10)
	}
	return k
}

// rangeKey is the cache key of the extent starting at ws: everything that
// decides its points.
func (f *Frontend) rangeKey(pl *plan, step, offset, ws int64) []byte {
	k := make([]byte, 0, 80+len(pl.norm))
	k = append(k, "r2\x00"...)
	k = append(k, f.fingerprint...)
	k = append(k, 0)
	k = append(k, pl.norm...)
	k = append(k, 0)
	k = strconv.AppendInt(k, step, 10)
	k = append(k, 0)
	k = strconv.AppendInt(k, offset, 10)
	k = append(k, 0)
	k = strconv.AppendInt(k, int64(pl.res), 10)
	k = append(k, 0)
	k = strconv.AppendInt(k, ws, 10)
	k = append(k, 0)
	k = strconv.AppendInt(k, f.opts.SplitInterval.Milliseconds(), 10)
	return f.appendRerollFrom(k, pl)
}

// instantKey is the cache key of an instant query's answer.
func (f *Frontend) instantKey(pl *plan, ts int64) []byte {
	k := make([]byte, 0, 64+len(pl.norm))
	k = append(k, "i2\x00"...)
	k = append(k, f.fingerprint...)
	k = append(k, 0)
	k = append(k, pl.norm...)
	k = append(k, 0)
	k = strconv.AppendInt(k, int64(pl.res), 10)
	k = append(k, 0)
	k = strconv.AppendInt(k, ts, 10)
	return f.appendRerollFrom(k, pl)
}
