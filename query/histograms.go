package query

import (
	"github.com/prometheus/prometheus/model/labels"
)

// Rollups hold floats only: the downsampler leaves out every series that
// holds native histograms. A query that may read a histogram series is
// therefore answered from raw data, whatever its step (and says so: its
// resolution is raw). Which series hold histograms is known without reading
// chunks: the head records the metric names it was given histograms for,
// and every raw segment lists them in its meta.

// mayReadHistograms implements rollupSource: whether any of the selectors
// (as parser.ExtractSelectors returns them) may select a series that holds
// native histograms. It answers by metric name, so it may say yes for a
// float series that shares its name with a histogram series; it never says
// no for a histogram series.
func (q *Queryable) mayReadHistograms(selectors [][]*labels.Matcher) bool {
	names := q.histogramNames()
	if len(names) == 0 {
		return false
	}
	for _, ms := range selectors {
		for name := range names {
			if matchesName(ms, name) {
				return true
			}
		}
	}
	return false
}

// histogramNames returns the metric names of the series with histograms in
// the head or in a raw segment.
func (q *Queryable) histogramNames() map[string]struct{} {
	out := map[string]struct{}{}
	if q.head != nil {
		for _, n := range q.head.HistogramNames() {
			out[n] = struct{}{}
		}
	}
	if q.set != nil {
		for _, m := range q.segmentMetas() {
			if m.Resolution == 0 {
				for _, n := range m.HistogramNames {
					out[n] = struct{}{}
				}
			}
		}
	}
	return out
}

// matchesName reports whether the __name__ matchers of ms accept name.
func matchesName(ms []*labels.Matcher, name string) bool {
	for _, m := range ms {
		if m.Name == labels.MetricName && !m.Matches(name) {
			return false
		}
	}
	return true
}
