package query

import (
	"bytes"
	"context"
	"time"

	"github.com/prometheus/prometheus/promql"
)

// Instant answers an instant query, through the cache when every sample it
// reads is older than the freshness window and bypass is not set. max caps
// the resolution read.
func (f *Frontend) Instant(ctx context.Context, qs string, ts time.Time, max Resolution, bypass bool) (*Result, error) {
	res, err := f.engine.ChooseResolution(qs, ts, ts, 0, max)
	if err != nil {
		return nil, err
	}
	if bypass || f.cache == nil {
		return f.evalInstant(ctx, qs, ts, res, CacheBypass)
	}
	pl, ok, err := f.newPlan(qs, ts, ts, 0)
	if err != nil {
		return nil, err
	}
	if !ok {
		return f.evalInstant(ctx, qs, ts, res, CacheBypass)
	}
	pl.res = res
	t := ts.UnixMilli()
	if _, maxt, reads := pl.dataRange(t, t, 0); reads && maxt > f.cutoff() {
		// Reads data that may still change without a bump.
		return f.evalInstant(ctx, qs, ts, res, CacheBypass)
	}
	tags, ok := f.cacheTags(pl, t, t, 0)
	if !ok {
		return f.evalInstant(ctx, qs, ts, res, CacheMiss)
	}
	key := f.instantKey(pl, t)
	// With a shared tier: judge by every bump made before this query
	// (one round trip, which also fetches the entry).
	f.cache.Prefetch(ctx, [][]byte{key})
	v, st, err := f.cache.GetOrCompute(ctx, key, tags, func(ctx context.Context) ([]byte, time.Duration, error) {
		res, err := f.evalInstantAll(ctx, qs, ts, res)
		if err != nil {
			return nil, 0, err
		}
		e := &extent{Key: key, From: t, To: t, Warnings: res.Warnings, Infos: res.Infos}
		switch val := res.Value.(type) {
		case promql.Matrix:
			e.Kind, e.Matrix = 'm', val
		case promql.Vector:
			e.Kind = 'v'
			for _, s := range val {
				if s.H != nil {
					e.Matrix = append(e.Matrix, promql.Series{Metric: s.Metric, Histograms: []promql.HPoint{{T: s.T, H: s.H}}})
					continue
				}
				e.Matrix = append(e.Matrix, promql.Series{Metric: s.Metric, Floats: []promql.FPoint{{T: s.T, F: s.F}}})
			}
		case promql.Scalar:
			e.Kind = 's'
			e.Matrix = promql.Matrix{{Floats: []promql.FPoint{{T: val.T, F: val.V}}}}
		default:
			// Strings: computed each time.
			return appendExtent(nil, &extent{Key: key, Kind: 'x'}), -1, nil
		}
		return appendExtent(nil, e), 0, nil
	})
	if err != nil {
		return nil, err
	}
	e, derr := decodeExtent(v)
	if derr != nil || !bytes.Equal(e.Key, key) || e.Kind == 'x' {
		return f.evalInstant(ctx, qs, ts, res, CacheMiss)
	}
	out := &Result{
		Warnings: limitAnnotations(e.Warnings, "warning"), Infos: limitAnnotations(e.Infos, "info"),
		Cache: cacheStatus(st), Resolution: res,
	}
	switch e.Kind {
	case 'm':
		out.Value = e.Matrix
	case 'v':
		vec := make(promql.Vector, 0, len(e.Matrix))
		for _, s := range e.Matrix {
			switch {
			case len(s.Floats) == 1 && len(s.Histograms) == 0:
				vec = append(vec, promql.Sample{Metric: s.Metric, T: s.Floats[0].T, F: s.Floats[0].F})
			case len(s.Floats) == 0 && len(s.Histograms) == 1:
				vec = append(vec, promql.Sample{Metric: s.Metric, T: s.Histograms[0].T, H: s.Histograms[0].H})
			default:
				return f.evalInstant(ctx, qs, ts, res, CacheMiss)
			}
		}
		out.Value = vec
	case 's':
		if len(e.Matrix) != 1 || len(e.Matrix[0].Floats) != 1 {
			return f.evalInstant(ctx, qs, ts, res, CacheMiss)
		}
		out.Value = promql.Scalar{T: e.Matrix[0].Floats[0].T, V: e.Matrix[0].Floats[0].F}
	default:
		return f.evalInstant(ctx, qs, ts, res, CacheMiss)
	}
	return out, nil
}

// evalInstantAll evaluates an instant query with every annotation, sorted.
func (f *Frontend) evalInstantAll(ctx context.Context, qs string, ts time.Time, res Resolution) (*Result, error) {
	out, err := f.engine.InstantAt(ctx, qs, ts, res)
	if err != nil {
		return nil, err
	}
	w, i := annotationStrings(qs, out.Warnings)
	return &Result{Value: out.Value, Warnings: w, Infos: i, Resolution: res}, nil
}

// evalInstant evaluates an instant query without the cache.
func (f *Frontend) evalInstant(ctx context.Context, qs string, ts time.Time, res Resolution, status CacheStatus) (*Result, error) {
	out, err := f.evalInstantAll(ctx, qs, ts, res)
	if err != nil {
		return nil, err
	}
	out.Warnings, out.Infos, out.Cache = limitAnnotations(out.Warnings, "warning"), limitAnnotations(out.Infos, "info"), status
	return out, nil
}
