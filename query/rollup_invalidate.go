package query

import (
	"log/slog"
	"math"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/strata-tsdb/strata/segments"
)

// InvalidateNewRollups runs build (a downsampler's run over set) and then
// forgets the cached answers of the metrics and days that the rollup
// segments it added cover: queries there read bucket aggregates from now
// on instead of raw samples. It returns what build returned. The caller
// keeps other writers of set (flushes, compaction, retention) out
// meanwhile, so that every segment new after build is one of its rollups.
func (f *Frontend) InvalidateNewRollups(logger *slog.Logger, set *segments.Set, build func() (int, error)) (int, error) {
	before := map[string]bool{}
	for _, in := range set.Segments() {
		before[in.Meta.ID] = true
	}
	n, err := build()
	if n == 0 {
		return n, err
	}
	segs, release := set.Acquire(math.MinInt64, math.MaxInt64)
	defer release()
	for _, seg := range segs {
		m := seg.Meta()
		if m.Resolution == 0 || before[m.ID] {
			continue
		}
		names, lerr := seg.LabelValues(labels.MetricName)
		if lerr != nil {
			// Without the names, forget every metric on those days.
			logger.Warn("read metric names of a new rollup; invalidating all metrics on its days", "segment", m.ID, "err", lerr)
			names = []string{"*"}
		}
		// A bump that cannot be made durable is made here and logged by
		// the cache; nobody waits on it: a partner builds the same
		// rollups and bumps their tags itself.
		_ = f.Invalidate(names, m.MinTime, m.MaxTime)
	}
	return n, err
}
