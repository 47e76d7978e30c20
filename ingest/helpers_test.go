package ingest

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
)

// legacyLimits are the default limits with legacy name validation.
var legacyLimits = func() Limits {
	l := DefaultLimits()
	l.LegacyNames = true
	return l
}()

// ls is shorthand for labels.FromStrings.
func ls(kv ...string) labels.Labels { return labels.FromStrings(kv...) }

// series is shorthand for a Series.
func series(lset labels.Labels, samples ...Sample) Series {
	return Series{Labels: lset, Samples: samples}
}

// wantErr describes an expected error: the sentinel it wraps, a substring of
// its message and, when not 0, its line.
type wantErr struct {
	is   error
	msg  string
	line int
}

// checkResult asserts that a decoder returned want (when we is nil) or the
// error we describes, and never both a batch and an error.
func checkResult(t *testing.T, got *Batch, err error, want []Series, we *wantErr) {
	t.Helper()
	if we != nil {
		if err == nil {
			t.Fatalf("got no error and batch %v, want error %v %q", got, we.is, we.msg)
		}
		if got != nil {
			t.Errorf("got a batch with the error %v; decoders must be all-or-nothing", err)
		}
		if !errors.Is(err, we.is) {
			t.Errorf("error %q does not wrap %v", err, we.is)
		}
		if !strings.Contains(err.Error(), we.msg) {
			t.Errorf("error %q does not contain %q", err, we.msg)
		}
		var e *Error
		if !errors.As(err, &e) {
			t.Fatalf("error %q (%T) is not an *Error", err, err)
		}
		if we.line != 0 && e.Line != we.line {
			t.Errorf("error %q has line %d, want %d", err, e.Line, we.line)
		}
		return
	}
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
	requireBatch(t, got, want)
}

// requireBatch asserts got holds exactly want, in order; NaN equals NaN.
func requireBatch(t *testing.T, got *Batch, want []Series) {
	t.Helper()
	if got == nil {
		t.Fatal("got nil batch")
	}
	if len(got.Series) != len(want) {
		t.Fatalf("got %d series, want %d:\n got %v\nwant %v", len(got.Series), len(want), got.Series, want)
	}
	for i := range want {
		g, w := got.Series[i], want[i]
		if !labels.Equal(g.Labels, w.Labels) {
			t.Errorf("series %d: labels %s, want %s", i, g.Labels, w.Labels)
			continue
		}
		if len(g.Samples) != len(w.Samples) {
			t.Errorf("series %s: %d samples %v, want %d %v", w.Labels, len(g.Samples), g.Samples, len(w.Samples), w.Samples)
			continue
		}
		for j := range w.Samples {
			if !sameSample(g.Samples[j], w.Samples[j]) {
				t.Errorf("series %s sample %d: %v, want %v", w.Labels, j, g.Samples[j], w.Samples[j])
			}
		}
		if len(g.Histograms) != len(w.Histograms) {
			t.Errorf("series %s: %d histograms, want %d", w.Labels, len(g.Histograms), len(w.Histograms))
			continue
		}
		for j := range w.Histograms {
			if !sameHistogram(t, g.Histograms[j], w.Histograms[j]) {
				t.Errorf("series %s histogram %d:\n got %d %v %v\nwant %d %v %v", w.Labels, j,
					g.Histograms[j].T, g.Histograms[j].H, g.Histograms[j].FH, w.Histograms[j].T, w.Histograms[j].H, w.Histograms[j].FH)
			}
		}
	}
}

// sameHistogram compares two histogram samples bit for bit (NaN sums
// included) through their protobuf encoding, which does not tell a nil
// slice from an empty one.
func sameHistogram(t *testing.T, a, b HistogramSample) bool {
	t.Helper()
	if a.T != b.T || (a.H == nil) != (b.H == nil) || (a.FH == nil) != (b.FH == nil) {
		return false
	}
	return bytes.Equal(marshalHistogram(t, a), marshalHistogram(t, b))
}

func marshalHistogram(t *testing.T, h HistogramSample) []byte {
	t.Helper()
	var p prompb.Histogram
	if h.H != nil {
		p = prompb.FromIntHistogram(h.T, h.H)
	} else {
		p = prompb.FromFloatHistogram(h.T, h.FH)
	}
	b, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sameSample(a, b Sample) bool {
	if math.IsNaN(a.V) || math.IsNaN(b.V) {
		return a.T == b.T && math.IsNaN(a.V) && math.IsNaN(b.V)
	}
	return a == b
}

// encodeRW marshals and snappy-compresses a write request.
func encodeRW(t testing.TB, req *prompb.WriteRequest) []byte {
	t.Helper()
	raw, err := req.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return snappy.Encode(nil, raw)
}

// pl builds prompb labels from name/value pairs.
func pl(kv ...string) []prompb.Label {
	out := make([]prompb.Label, 0, len(kv)/2)
	for i := 0; i < len(kv); i += 2 {
		out = append(out, prompb.Label{Name: kv[i], Value: kv[i+1]})
	}
	return out
}

// ps builds prompb samples from timestamp/value pairs.
func ps(tv ...float64) []prompb.Sample {
	out := make([]prompb.Sample, 0, len(tv)/2)
	for i := 0; i < len(tv); i += 2 {
		out = append(out, prompb.Sample{Timestamp: int64(tv[i]), Value: tv[i+1]})
	}
	return out
}

// checkBatchValid asserts every series in b passes ValidateSeries and has
// samples.
func checkBatchValid(t *testing.T, b *Batch, lim Limits) {
	t.Helper()
	if b == nil {
		t.Fatal("nil batch without error")
	}
	seen := map[string]bool{}
	for _, s := range b.Series {
		if err := ValidateSeries(s.Labels, lim); err != nil {
			t.Fatalf("decoded series fails validation: %v", err)
		}
		if len(s.Samples)+len(s.Histograms) == 0 {
			t.Fatalf("series %s has no samples", s.Labels)
		}
		if want := s.Labels.Get(labels.MetricName); s.Name != want {
			t.Fatalf("series %s has the name %q", s.Labels, s.Name)
		}
		k := s.Labels.String()
		if seen[k] {
			t.Fatalf("series %s appears twice: samples were not merged", k)
		}
		seen[k] = true
	}
	if exceeds(len(b.Series), lim.MaxSeriesPerRequest) || exceeds(b.NumSamples(), lim.MaxSamplesPerRequest) {
		t.Fatalf("batch of %d series, %d samples is over limits %+v", len(b.Series), b.NumSamples(), lim)
	}
}
