package query

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/util/stats"
)

// Options configures the PromQL engine.
type Options struct {
	// Timeout is the longest a query may run. Zero means 2 minutes.
	Timeout time.Duration
	// MaxSamples is the most samples a query may hold in memory at once.
	// Zero means 50,000,000.
	MaxSamples int
	// LookbackDelta is how far back an instant selector looks for a sample.
	// Zero means 5 minutes.
	LookbackDelta time.Duration
	// MaxPointsPerSeries is the most steps a range query may have (Prometheus
	// refuses more than 11,000). Zero means 11,000.
	MaxPointsPerSeries int
	// Shards is the most goroutines that evaluate one range function
	// (avg_over_time, rate and their kind, see shard.go) over the series of a
	// query, each a share of the series. Zero means GOMAXPROCS.
	Shards int
	// PlainRangeFunctions turns the direct evaluation of range functions
	// off: every query is evaluated by the PromQL engine as written. The
	// answers are the same either way.
	PlainRangeFunctions bool
}

// DefaultOptions returns the options used for fields left zero.
func DefaultOptions() Options {
	return Options{
		Timeout:            2 * time.Minute,
		MaxSamples:         50_000_000,
		LookbackDelta:      5 * time.Minute,
		MaxPointsPerSeries: 11_000,
	}
}

func (o Options) withDefaults() Options {
	d := DefaultOptions()
	if o.Timeout == 0 {
		o.Timeout = d.Timeout
	}
	if o.MaxSamples == 0 {
		o.MaxSamples = d.MaxSamples
	}
	if o.LookbackDelta == 0 {
		o.LookbackDelta = d.LookbackDelta
	}
	if o.MaxPointsPerSeries == 0 {
		o.MaxPointsPerSeries = d.MaxPointsPerSeries
	}
	return o
}

// Validate reports the first option that is out of range.
func (o Options) Validate() error {
	switch {
	case o.Timeout < 0:
		return errors.New("query timeout must not be negative")
	case o.MaxSamples < 0:
		return errors.New("query max samples must not be negative")
	case o.LookbackDelta < 0:
		return errors.New("lookback delta must not be negative")
	case o.MaxPointsPerSeries < 0:
		return errors.New("max points per series must not be negative")
	case o.Shards < 0:
		return errors.New("query shards must not be negative")
	}
	return nil
}

// ErrBadQuery wraps errors in what the caller asked for (a query that does
// not parse, a step that is too small): the caller's mistake, not the
// engine's.
var ErrBadQuery = errors.New("bad query")

// Engine evaluates PromQL over a storage.Queryable.
type Engine struct {
	opts      Options
	engine    promql.QueryEngine // plain, or evaluating range functions directly
	plain     *promql.Engine
	queryable storage.Queryable
	parser    parser.Parser
}

// NewEngine returns an engine over q. Its metrics are registered with reg
// when reg is not nil.
func NewEngine(logger *slog.Logger, reg prometheus.Registerer, q storage.Queryable, opts Options) (*Engine, error) {
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("query options: %w", err)
	}
	opts = opts.withDefaults()
	p := parser.NewParser(parser.Options{})
	eng := promql.NewEngine(promql.EngineOpts{
		Logger:               logger,
		Reg:                  reg,
		MaxSamples:           opts.MaxSamples,
		Timeout:              opts.Timeout,
		LookbackDelta:        opts.LookbackDelta,
		EnableAtModifier:     true,
		EnableNegativeOffset: true,
		EnablePerStepStats:   true, // computed only for queries that ask (stats=all)
		Parser:               p,
	})
	e := &Engine{opts: opts, engine: eng, plain: eng, queryable: q, parser: p}
	if !opts.PlainRangeFunctions {
		e.engine = newShardEngine(eng, p, opts.Shards, opts.MaxSamples, opts.Timeout)
	}
	return e, nil
}

// Options returns the options in effect, defaults filled in.
func (e *Engine) Options() Options { return e.opts }

// Parser returns the PromQL parser the engine uses.
func (e *Engine) Parser() parser.Parser { return e.parser }

// RangeQuery describes a range query: PromQL evaluated at every step from
// Start to End inclusive.
type RangeQuery struct {
	Query      string
	Start, End time.Time
	Step       time.Duration
	// MaxSourceResolution caps the resolution of the data read (the
	// max_source_resolution parameter); the zero value lets the engine
	// choose.
	MaxSourceResolution Resolution
}

// Validate checks the parameters the way Prometheus' API does.
func (r RangeQuery) Validate(maxPoints int) error {
	if r.End.Before(r.Start) {
		return fmt.Errorf("%w: end timestamp must not be before start time", ErrBadQuery)
	}
	if r.Step <= 0 {
		return fmt.Errorf("%w: zero or negative query resolution step widths are not accepted. Try a positive integer", ErrBadQuery)
	}
	if r.Step < time.Millisecond {
		// PromQL's grid is in milliseconds: a step under one would be a
		// step of 0 (step=0.0005 divided by zero in the engine).
		return fmt.Errorf("%w: query resolution step %s: must be at least 1ms", ErrBadQuery, r.Step)
	}
	if r.End.Sub(r.Start)/r.Step > time.Duration(maxPoints) {
		return fmt.Errorf("%w: exceeded maximum resolution of %d points per timeseries. Try decreasing the query resolution (?step=XX)", ErrBadQuery, maxPoints)
	}
	return nil
}

// Range evaluates a range query, reading the resolution ChooseResolution
// picks. The result's Value is a promql.Matrix.
func (e *Engine) Range(ctx context.Context, r RangeQuery) (*promql.Result, error) {
	if err := r.Validate(e.opts.MaxPointsPerSeries); err != nil {
		return nil, err
	}
	res, err := e.ChooseResolution(r.Query, r.Start, r.End, r.Step, r.MaxSourceResolution)
	if err != nil {
		return nil, err
	}
	return e.RangeAt(ctx, r, res)
}

// RangeAt evaluates a range query on data of resolution res (ResolutionRaw
// or a rollup resolution ChooseResolution returned).
func (e *Engine) RangeAt(ctx context.Context, r RangeQuery, res Resolution) (*promql.Result, error) {
	res2, _, err := e.rangeAt(ctx, r, res, false, false)
	return res2, err
}

// rangeAt is RangeAt that also returns the engine's statistics (per step
// with perStep); withStats evaluates with the plain engine, whose
// statistics describe the whole evaluation.
func (e *Engine) rangeAt(ctx context.Context, r RangeQuery, res Resolution, perStep, withStats bool) (*promql.Result, *stats.Statistics, error) {
	qs, opts, err := e.prepare(r.Query, res, perStep)
	if err != nil {
		return nil, nil, err
	}
	q, err := e.engineFor(withStats || perStep).NewRangeQuery(ctx, e.queryable, opts, qs, r.Start, r.End, r.Step)
	if err != nil {
		return nil, nil, wrapParseError(err)
	}
	defer q.Close()
	out, err := detach(q.Exec(ctx))
	return out, q.Stats(), err
}

// engineFor returns the engine for a query: the plain one when it asks
// for statistics, which describe the PromQL engine's own evaluation.
func (e *Engine) engineFor(withStats bool) promql.QueryEngine {
	if withStats {
		return e.plain
	}
	return e.engine
}

// prepare rewrites a query to read rollups of res; perStep asks the
// engine for per-step statistics.
func (e *Engine) prepare(qs string, res Resolution, perStep bool) (string, promql.QueryOpts, error) {
	if res <= 0 {
		if perStep {
			return qs, promql.NewPrometheusQueryOpts(true, 0), nil
		}
		return qs, nil, nil
	}
	rq, lookback, err := e.rollupQuery(qs, res)
	if err != nil {
		return "", nil, err
	}
	return rq, promql.NewPrometheusQueryOpts(perStep, lookback), nil
}

// Instant evaluates a query at one time, on raw data unless raw data is
// past retention for it (see ChooseResolution) or max says otherwise.
func (e *Engine) Instant(ctx context.Context, qs string, ts time.Time) (*promql.Result, error) {
	return e.InstantMax(ctx, qs, ts, ResolutionAuto)
}

// InstantMax is Instant with a cap on the resolution read.
func (e *Engine) InstantMax(ctx context.Context, qs string, ts time.Time, max Resolution) (*promql.Result, error) {
	res, err := e.ChooseResolution(qs, ts, ts, 0, max)
	if err != nil {
		return nil, err
	}
	return e.InstantAt(ctx, qs, ts, res)
}

// InstantAt evaluates a query at one time on data of resolution res.
func (e *Engine) InstantAt(ctx context.Context, qs string, ts time.Time, res Resolution) (*promql.Result, error) {
	out, _, err := e.instantAt(ctx, qs, ts, res, false, false)
	return out, err
}

// instantAt is InstantAt that also returns the engine's statistics.
func (e *Engine) instantAt(ctx context.Context, qs string, ts time.Time, res Resolution, perStep, withStats bool) (*promql.Result, *stats.Statistics, error) {
	rq, opts, err := e.prepare(qs, res, perStep)
	if err != nil {
		return nil, nil, err
	}
	q, err := e.engineFor(withStats || perStep).NewInstantQuery(ctx, e.queryable, opts, rq, ts)
	if err != nil {
		return nil, nil, wrapParseError(err)
	}
	defer q.Close()
	out, err := detach(q.Exec(ctx))
	return out, q.Stats(), err
}

// detach returns a copy of the result that stays valid after the query is
// closed: Close hands the point slices of a matrix result back to the
// engine's pool, where the next query reuses them.
func detach(res *promql.Result) (*promql.Result, error) {
	if res.Err != nil {
		return nil, res.Err
	}
	if m, ok := res.Value.(promql.Matrix); ok {
		out := make(promql.Matrix, len(m))
		// The float points of every series are copied into one array, each
		// series' part clipped to its length (an append reallocates).
		n := 0
		for _, s := range m {
			n += len(s.Floats)
		}
		flat := make([]promql.FPoint, 0, n)
		for i, s := range m {
			var fs []promql.FPoint
			if s.Floats != nil {
				at := len(flat)
				flat = append(flat, s.Floats...)
				fs = flat[at:len(flat):len(flat)]
			}
			out[i] = promql.Series{Metric: s.Metric, Floats: fs, Histograms: slices.Clone(s.Histograms), DropName: s.DropName}
		}
		res = &promql.Result{Value: out, Warnings: res.Warnings}
	}
	return res, nil
}

func wrapParseError(err error) error {
	var pe parser.ParseErrors
	if errors.As(err, &pe) {
		return fmt.Errorf("%w: %w", ErrBadQuery, err)
	}
	var pe1 *parser.ParseErr
	if errors.As(err, &pe1) {
		return fmt.Errorf("%w: %w", ErrBadQuery, err)
	}
	return err
}
