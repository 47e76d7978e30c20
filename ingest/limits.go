package ingest

import (
	"fmt"

	"github.com/prometheus/prometheus/model/histogram"
)

// Limits bounds one request. Zero in a field means "no limit"; negative
// values are invalid.
type Limits struct {
	// MaxSeriesPerRequest is the most distinct label sets one request may
	// carry, counted after samples of the same series are merged.
	MaxSeriesPerRequest int
	// MaxSamplesPerRequest is the most samples one request may carry. A
	// native histogram counts by its size, as HistogramCost says.
	MaxSamplesPerRequest int
	// MaxLabelsPerSeries is the most labels one series may have, counting
	// __name__ and not counting labels dropped for an empty value.
	MaxLabelsPerSeries int
	// MaxLabelNameLength is the longest label name allowed, in bytes.
	MaxLabelNameLength int
	// MaxLabelValueLength is the longest label value allowed, in bytes; it
	// applies to the metric name too, since that is the value of __name__.
	MaxLabelValueLength int
	// LegacyNames refuses metric and label names outside Prometheus'
	// legacy character set ([a-zA-Z_:][a-zA-Z0-9_:]* for metric names,
	// [a-zA-Z_][a-zA-Z0-9_]* for label names), as before Prometheus 3.
	// False (the default) accepts any non-empty, valid UTF-8 name, as
	// Prometheus 3's default "utf8" validation scheme does.
	LegacyNames bool
}

// DefaultLimits returns the limits the server applies unless configured
// otherwise: 100,000 series and 1,000,000 samples per request, 64 labels per
// series, label names up to 256 bytes and values up to 4096 bytes.
func DefaultLimits() Limits {
	return Limits{
		MaxSeriesPerRequest:  100_000,
		MaxSamplesPerRequest: 1_000_000,
		MaxLabelsPerSeries:   64,
		MaxLabelNameLength:   256,
		MaxLabelValueLength:  4096,
	}
}

// Validate reports whether l is usable: every field must be zero (no limit)
// or positive.
func (l Limits) Validate() error {
	for _, f := range []struct {
		name string
		v    int
	}{
		{"MaxSeriesPerRequest", l.MaxSeriesPerRequest},
		{"MaxSamplesPerRequest", l.MaxSamplesPerRequest},
		{"MaxLabelsPerSeries", l.MaxLabelsPerSeries},
		{"MaxLabelNameLength", l.MaxLabelNameLength},
		{"MaxLabelValueLength", l.MaxLabelValueLength},
	} {
		if f.v < 0 {
			return fmt.Errorf("ingest limits: %s is %d, want 0 (no limit) or more", f.name, f.v)
		}
	}
	return nil
}

// exceeds reports whether n is over limit, where a limit of 0 means none.
func exceeds(n, limit int) bool {
	return limit > 0 && n > limit
}

// HistogramCost is what one native histogram (h, or fh when h is nil)
// counts against a limit on samples: its size in units of a float sample
// (16 bytes with its timestamp), as Prometheus' engine counts it against
// query.max_samples (promql.HPoint.size: (FloatHistogram.Size()+8)/16).
// An integer histogram costs what it costs once decoded to floats. An
// empty histogram costs 11; each two buckets, spans or custom bounds add 1.
func HistogramCost(h *histogram.Histogram, fh *histogram.FloatHistogram) int {
	const (
		structSize = 168 // FloatHistogram.Size of an empty histogram
		tsSize     = 8
		entrySize  = 8 // a span, a bucket or a custom bound
		sampleSize = 16
	)
	var n int
	if h != nil {
		n = len(h.PositiveSpans) + len(h.NegativeSpans) + len(h.PositiveBuckets) + len(h.NegativeBuckets) + len(h.CustomValues)
	} else if fh != nil {
		n = len(fh.PositiveSpans) + len(fh.NegativeSpans) + len(fh.PositiveBuckets) + len(fh.NegativeBuckets) + len(fh.CustomValues)
	}
	return (structSize + tsSize + entrySize*n) / sampleSize
}
