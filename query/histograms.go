package query

import (
	"slices"

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
	may := func(name string) bool {
		for _, ms := range selectors {
			if matchesName(ms, name) {
				return true
			}
		}
		return false
	}
	if q.head != nil && slices.ContainsFunc(q.head.HistogramNames(), may) {
		return true
	}
	if q.set != nil {
		for _, m := range q.segmentMetas() {
			if m.Resolution == 0 && slices.ContainsFunc(m.HistogramNames, may) {
				return true
			}
		}
	}
	return false
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
