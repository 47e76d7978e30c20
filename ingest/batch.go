package ingest

import "github.com/prometheus/prometheus/model/labels"

// Sample is one float value at a timestamp in milliseconds since the epoch.
type Sample struct {
	T int64
	V float64
}

// Series is one label set with the samples a request carried for it, in the
// order the request carried them (not necessarily sorted, and possibly with
// duplicate timestamps: the later one wins).
type Series struct {
	Labels  labels.Labels
	Samples []Sample
}

// Batch is the validated content of one write request. A Batch is applied
// all-or-nothing: decoders return either a complete Batch or an error.
type Batch struct {
	Series []Series
}

// NumSamples returns the number of samples in b.
func (b *Batch) NumSamples() int {
	n := 0
	for i := range b.Series {
		n += len(b.Series[i].Samples)
	}
	return n
}
