package query

import (
	"context"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/util/annotations"

	"github.com/strata-tsdb/strata/buffer"
)

// Queryable is the storage.Queryable over Strata's data.
type Queryable struct {
	head *buffer.Head
}

var _ storage.Queryable = (*Queryable)(nil)

// NewQueryable returns a Queryable reading from head.
func NewQueryable(head *buffer.Head) *Queryable {
	return &Queryable{head: head}
}

// Querier returns a querier for data in [mint, maxt] (milliseconds,
// inclusive).
func (q *Queryable) Querier(mint, maxt int64) (storage.Querier, error) {
	return &querier{head: q.head, mint: mint, maxt: maxt}, nil
}

type querier struct {
	head       *buffer.Head
	mint, maxt int64
}

var _ storage.Querier = (*querier)(nil)

// Select returns the matching series, narrowed to the hints' time range when
// they give one.
func (q *querier) Select(ctx context.Context, sortSeries bool, hints *storage.SelectHints, ms ...*labels.Matcher) storage.SeriesSet {
	mint, maxt := q.mint, q.maxt
	if hints != nil {
		mint, maxt = max(mint, hints.Start), min(maxt, hints.End)
	}
	ss, err := q.head.Select(ctx, sortSeries, mint, maxt, ms...)
	if err != nil {
		return storage.ErrSeriesSet(err)
	}
	if hints != nil && hints.Limit > 0 && len(ss) > hints.Limit {
		ss = ss[:hints.Limit]
	}
	return &headSeriesSet{ss: ss, i: -1}
}

func (q *querier) LabelValues(ctx context.Context, name string, hints *storage.LabelHints, ms ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	vals, err := q.head.LabelValues(ctx, name, q.mint, q.maxt, ms...)
	if err != nil {
		return nil, nil, err
	}
	return limitStrings(vals, hints), nil, nil
}

func (q *querier) LabelNames(ctx context.Context, hints *storage.LabelHints, ms ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	names, err := q.head.LabelNames(ctx, q.mint, q.maxt, ms...)
	if err != nil {
		return nil, nil, err
	}
	return limitStrings(names, hints), nil, nil
}

func (q *querier) Close() error { return nil }

func limitStrings(s []string, hints *storage.LabelHints) []string {
	if hints != nil && hints.Limit > 0 && len(s) > hints.Limit {
		return s[:hints.Limit]
	}
	return s
}

// headSeriesSet is a storage.SeriesSet over series selected from the head.
type headSeriesSet struct {
	ss []buffer.Series
	i  int
}

func (s *headSeriesSet) Next() bool {
	s.i++
	return s.i < len(s.ss)
}

func (s *headSeriesSet) At() storage.Series                { return headSeries{s.ss[s.i]} }
func (s *headSeriesSet) Err() error                        { return nil }
func (s *headSeriesSet) Warnings() annotations.Annotations { return nil }

type headSeries struct{ s buffer.Series }

func (h headSeries) Labels() labels.Labels                        { return h.s.Labels }
func (h headSeries) Iterator(chunkenc.Iterator) chunkenc.Iterator { return h.s.Iterator() }
