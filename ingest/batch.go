package ingest

import (
	"strconv"
	"time"

	"github.com/prometheus/common/model"
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
	Labels labels.Labels
	// Hash is Labels.Hash(), or 0 when the decoder left it out (the
	// reader computes it then). Handle is the store's handle of the
	// series (Known.KnownSeries), or nil; only the store that gave it may
	// use it, and only in Batch.KnownEpoch. Name is the value of Labels'
	// __name__, taken by the decoder while it had the labels at hand (a
	// reader of a batch's names then does not load every label set again),
	// or "" when it did not. Whoever changes Labels must set all three to
	// zero.
	Hash       uint64
	Handle     any
	Name       string
	Samples    []Sample
	Histograms []HistogramSample

	// StartTimes, when not nil, holds the start (created) timestamp of each
	// float sample in Samples (same index; 0 for none), and
	// HistogramStartTimes that of each histogram: remote write 2.0 carries
	// them. The head writes a zero sample at a start time where Prometheus
	// 3 would (Head.Append). Nil for every other format.
	StartTimes          []int64
	HistogramStartTimes []int64
}

// Exemplar is one exemplar: its own labels (a trace ID, say), its value and
// its timestamp in milliseconds since the epoch (0 when the sender gave
// none, as in Prometheus).
type Exemplar struct {
	Labels labels.Labels
	T      int64
	V      float64
}

// SeriesExemplars holds the exemplars a request carried for one series, in
// request order. The series need not have samples in the same request.
type SeriesExemplars struct {
	Labels    labels.Labels
	Exemplars []Exemplar
}

// Metadata is what a sender says about a metric family: its type
// ("counter", "gauge", "histogram", "gaugehistogram", "summary", "info",
// "stateset" or "unknown", as Prometheus' model.MetricType), unit and help.
type Metadata struct {
	Type model.MetricType
	Unit string
	Help string
}

// IsEmpty reports whether md says nothing (what a sender without metadata
// sends in remote write 2.0).
func (md Metadata) IsEmpty() bool {
	return (md.Type == "" || md.Type == model.MetricTypeUnknown) && md.Unit == "" && md.Help == ""
}

// FamilyMetadata is the metadata of one metric family.
type FamilyMetadata struct {
	Family string
	Metadata
}

// Batch is the validated content of one write request. A Batch is applied
// all-or-nothing: decoders return either a complete Batch or an error
// (remote write 2.0 also says what it left out, see Rejected).
type Batch struct {
	Series []Series
	// Exemplars and Metadata are what the request carried besides
	// samples (remote write; nil for the other formats). Metadata holds
	// one entry per family, the last the request gave.
	Exemplars []SeriesExemplars
	Metadata  []FamilyMetadata
	// DroppedExemplars is the number of exemplars the request carried
	// that were left out as invalid (remote write 1.0; 2.0 reports them
	// in Rejected).
	DroppedExemplars int
	// KnownEpoch is the Known's epoch when the decoder started looking
	// series up in it (0: it did not): the Handles of the series are
	// valid in that epoch only.
	KnownEpoch uint64

	mem *batchMem // what Release gives back; nil: nothing
}

// Release gives b's memory back for reuse by later decodes. Call it only
// when nothing uses b or anything taken from its slices (Series, their
// Samples) any more; b is empty afterwards. The labels of a batch decoded
// with a Known (DecodeRemoteWriteKnown, DecodeRemoteWriteV2Known) are in
// that memory too: whoever keeps a label set or a string of it past
// Release must copy it. The strings of other batches stay valid.
// Releasing is optional: an unreleased batch is left to the garbage
// collector.
func (b *Batch) Release() {
	mem := b.mem
	*b = Batch{}
	if mem == nil {
		return
	}
	for _, c := range mem.chunks {
		arenaPool.Put(c)
	}
	clear(mem.chunks)
	mem.chunks = mem.chunks[:0]
	if cap(mem.series) > maxPooledBatch {
		return
	}
	clear(mem.series[:cap(mem.series)]) // drop labels and handles
	batchMemPool.Put(mem)
}

// NumFloats returns the number of float samples in b.
func (b *Batch) NumFloats() int {
	n := 0
	for i := range b.Series {
		n += len(b.Series[i].Samples)
	}
	return n
}

// NumExemplars returns the number of exemplars in b.
func (b *Batch) NumExemplars() int {
	n := 0
	for i := range b.Exemplars {
		n += len(b.Exemplars[i].Exemplars)
	}
	return n
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

// CheckTimeBounds returns an *Error wrapping ErrOutOfBounds that names the
// first sample of b with a timestamp below mint or above maxt (in
// milliseconds; math.MinInt64 and math.MaxInt64 leave a side open), or nil.
// what says which limit the bounds come from, for the message.
func CheckTimeBounds(b *Batch, mint, maxt int64, what string) error {
	for i := range b.Series {
		sr := &b.Series[i]
		for _, x := range sr.Samples {
			if x.T < mint || x.T > maxt {
				return outOfBounds(sr, x.T, mint, maxt, what)
			}
		}
		for _, x := range sr.Histograms {
			if x.T < mint || x.T > maxt {
				return outOfBounds(sr, x.T, mint, maxt, what)
			}
		}
	}
	return nil
}

func outOfBounds(sr *Series, t, mint, maxt int64, what string) error {
	side, bound := "after", maxt
	if t < mint {
		side, bound = "before", mint
	}
	return &Error{Err: ErrOutOfBounds, Msg: "out of bounds: sample of " + sr.Labels.String() +
		" at " + formatMillis(t) + " is " + side + " " + formatMillis(bound) + " (" + what + ")"}
}

func formatMillis(t int64) string {
	return time.UnixMilli(t).UTC().Format("2006-01-02T15:04:05.000Z") + " (" + strconv.FormatInt(t, 10) + " ms)"
}

// DropOutOfBounds removes from b, in place, the float samples and
// histograms with a timestamp below mint or above maxt (milliseconds), and
// the series left without any; a start time below mint is forgotten (its
// zero sample would be out of bounds too). What it removes is added to
// rej, one ErrOutOfBounds per series naming it (rej is allocated when nil
// and something is removed), which it returns. what says which limit the
// bounds come from, for the messages. It is remote write 2.0's partial
// write of CheckTimeBounds.
func DropOutOfBounds(b *Batch, mint, maxt int64, what string, rej *Rejected) *Rejected {
	in := func(t int64) bool { return t >= mint && t <= maxt }
	kept := b.Series[:0]
	for i := range b.Series {
		sr := b.Series[i]
		ns, nh := 0, 0
		firstOut := int64(0)
		samples, sts := sr.Samples[:0], sr.StartTimes
		if sts != nil {
			sts = sts[:0]
		}
		for j, x := range sr.Samples {
			if !in(x.T) {
				if ns+nh == 0 {
					firstOut = x.T
				}
				ns++
				continue
			}
			samples = append(samples, x)
			if sts != nil {
				st := sr.StartTimes[j]
				if st < mint {
					st = 0
				}
				sts = append(sts, st)
			}
		}
		hists, hsts := sr.Histograms[:0], sr.HistogramStartTimes
		if hsts != nil {
			hsts = hsts[:0]
		}
		for j, x := range sr.Histograms {
			if !in(x.T) {
				if ns+nh == 0 {
					firstOut = x.T
				}
				nh++
				continue
			}
			hists = append(hists, x)
			if hsts != nil {
				st := sr.HistogramStartTimes[j]
				if st < mint {
					st = 0
				}
				hsts = append(hsts, st)
			}
		}
		if ns+nh > 0 {
			if rej == nil {
				rej = &Rejected{}
			}
			rej.add(outOfBounds(&sr, firstOut, mint, maxt, what), ns, nh, 0)
		}
		sr.Samples, sr.StartTimes, sr.Histograms, sr.HistogramStartTimes = samples, sts, hists, hsts
		if len(samples) == 0 {
			sr.Samples, sr.StartTimes = nil, nil
		}
		if len(hists) == 0 {
			sr.Histograms, sr.HistogramStartTimes = nil, nil
		}
		if len(samples)+len(hists) > 0 {
			kept = append(kept, sr)
		}
	}
	clear(b.Series[len(kept):])
	b.Series = kept
	return rej
}
