package query

import (
	"context"
	"fmt"
	"math"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"

	"github.com/strata-tsdb/strata/buffer"
	"github.com/strata-tsdb/strata/segments"
)

// Deleter carries out deletes with Prometheus' delete_series semantics:
// the samples in a range of the matching series disappear from every read,
// the cache forgets what they were part of, and writes that come later are
// not affected.
type Deleter struct {
	Store     *buffer.Store
	Set       *segments.Set
	Queryable storage.Queryable
	Frontend  *Frontend
	// Remote, when set, also tombstones the segments only object storage
	// holds.
	Remote interface {
		// AddTombstone is given the metric names the delete matched,
		// which the readers of the bucket invalidate.
		AddTombstone(ms []*labels.Matcher, names []string, mint, maxt int64) error
		Metas() []segments.Meta
	}
}

// DeleteSeries deletes the samples in [mint, maxt] of the series matching
// any of the matcher sets. With appends paused, the store flushes its head,
// the metric names of the matching series are collected and every
// overlapping segment gets a tombstone; then the cache tags of those names
// and days are bumped. Collecting the names with appends paused matters: a
// name first written just before the pause is tombstoned, so its tags must
// be bumped too. An error wrapping cache.ErrInvalidationNotDurable means
// the delete is done but its invalidation may not reach the other
// instances sharing the cache (see Frontend.Invalidate): retry it.
func (d *Deleter) DeleteSeries(ctx context.Context, sets [][]*labels.Matcher, mint, maxt int64) error {
	var names []string
	err := d.Store.DeleteSeries(ctx, func() error {
		var err error
		if names, err = MetricNames(ctx, d.Queryable, sets, mint, maxt); err != nil {
			return err
		}
		for _, ms := range sets {
			if _, err := d.Set.AddTombstone(ms, mint, maxt); err != nil {
				return err
			}
			// After the set's: a segment deleted locally meanwhile (it had
			// no tombstone yet) is in the bucket's catalog.
			if d.Remote != nil {
				if err := d.Remote.AddTombstone(ms, names, mint, maxt); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	// Clamp the range to the data that exists, to keep the tags few.
	lo, hi := int64(math.MaxInt64), int64(math.MinInt64)
	for _, in := range d.Set.Segments() {
		lo, hi = min(lo, in.Meta.MinTime), max(hi, in.Meta.MaxTime)
	}
	if d.Remote != nil {
		for _, m := range d.Remote.Metas() {
			lo, hi = min(lo, m.MinTime), max(hi, m.MaxTime)
		}
	}
	if err := d.Frontend.Invalidate(names, max(mint, lo), min(maxt, hi)); err != nil {
		// Deleted here; deleting again is harmless and bumps again.
		return fmt.Errorf("the series are deleted, but the cache may not forget them everywhere: %w", err)
	}
	return nil
}

// MetricNames returns the metric names of the series matching any of sets
// with data in [mint, maxt].
func MetricNames(ctx context.Context, q storage.Queryable, sets [][]*labels.Matcher, mint, maxt int64) ([]string, error) {
	qr, err := q.Querier(mint, maxt)
	if err != nil {
		return nil, err
	}
	defer qr.Close()
	var names []string
	for _, ms := range sets {
		vals, _, err := qr.LabelValues(ctx, labels.MetricName, nil, ms...)
		if err != nil {
			return nil, err
		}
		names = append(names, vals...)
	}
	return sortUnique(names), nil
}
