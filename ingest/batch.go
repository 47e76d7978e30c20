package ingest

import (
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
)

// Sample is one float value at a timestamp in milliseconds since the epoch.
type Sample struct {
	T int64
	V float64
}

// HistogramSample is one native histogram at a timestamp in milliseconds
// since the epoch. Exactly one of H (integer counts) and FH (float counts)
// is set. The histogram is owned by the Batch: nothing else refers to it.
type HistogramSample struct {
	T  int64
	H  *histogram.Histogram
	FH *histogram.FloatHistogram
}

// Series is one label set with the samples a request carried for it, in the
// order the request carried them (not necessarily sorted, and possibly with
// duplicate timestamps: the later one wins). Float samples and native
// histograms are kept apart; a series may carry both, and for the same
// timestamp the histograms count as written after the floats.
type Series struct {
	Labels     labels.Labels
	Samples    []Sample
	Histograms []HistogramSample
}

// Batch is the validated content of one write request. A Batch is applied
// all-or-nothing: decoders return either a complete Batch or an error.
type Batch struct {
	Series []Series
}

// NumSamples returns the number of samples in b, float samples and
// histograms together.
func (b *Batch) NumSamples() int {
	n := 0
	for i := range b.Series {
		n += len(b.Series[i].Samples) + len(b.Series[i].Histograms)
	}
	return n
}

// NumHistograms returns the number of native histogram samples in b.
func (b *Batch) NumHistograms() int {
	n := 0
	for i := range b.Series {
		n += len(b.Series[i].Histograms)
	}
	return n
}
