package query

import (
	"context"
	"time"

	"github.com/prometheus/prometheus/util/stats"
)

// Query statistics (the stats parameter of Prometheus' query API) describe
// one evaluation by the engine: samples read, peak samples, timings, and
// with per-step statistics the samples of each step. A cached answer had no
// evaluation, so a query that asks for statistics is evaluated afresh,
// never through the cache.

// RangeWithStats evaluates a range query like Range, without the cache,
// and returns the engine's statistics with it (per step when perStep).
func (e *Engine) RangeWithStats(ctx context.Context, r RangeQuery, perStep bool) (*Result, stats.QueryStats, error) {
	if err := r.Validate(e.opts.MaxPointsPerSeries); err != nil {
		return nil, nil, err
	}
	res, err := e.ChooseResolution(r.Query, r.Start, r.End, r.Step, r.MaxSourceResolution)
	if err != nil {
		return nil, nil, err
	}
	out, st, err := e.rangeAt(ctx, r, res, perStep, true)
	if err != nil {
		return nil, nil, err
	}
	w, i := out.Warnings.AsStrings(r.Query, 10, 10)
	return &Result{Value: out.Value, Warnings: w, Infos: i, Cache: CacheBypass, Resolution: res}, stats.NewQueryStats(st), nil
}

// InstantWithStats evaluates an instant query like InstantMax, without the
// cache, and returns the engine's statistics with it.
func (e *Engine) InstantWithStats(ctx context.Context, qs string, ts time.Time, max Resolution, perStep bool) (*Result, stats.QueryStats, error) {
	res, err := e.ChooseResolution(qs, ts, ts, 0, max)
	if err != nil {
		return nil, nil, err
	}
	out, st, err := e.instantAt(ctx, qs, ts, res, perStep, true)
	if err != nil {
		return nil, nil, err
	}
	w, i := out.Warnings.AsStrings(qs, 10, 10)
	return &Result{Value: out.Value, Warnings: w, Infos: i, Cache: CacheBypass, Resolution: res}, stats.NewQueryStats(st), nil
}
