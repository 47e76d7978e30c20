package report

import (
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Latencies are recorded in microseconds from 1 µs to 1 hour with three
// significant digits: a percentile is within 0.1% of the true value.
const (
	minMicros   = 1
	maxMicros   = int64(time.Hour / time.Microsecond)
	sigFigures  = 3
	microsPerMs = 1000.0
)

// Histogram records latencies. It is not safe for concurrent use: give each
// worker its own and Merge them at the end.
type Histogram struct {
	h *hdrhistogram.Histogram
}

// NewHistogram returns an empty histogram.
func NewHistogram() *Histogram {
	return &Histogram{h: hdrhistogram.New(minMicros, maxMicros, sigFigures)}
}

// Record adds one latency; values beyond the range are clamped to it.
func (h *Histogram) Record(d time.Duration) {
	us := max(minMicros, min(maxMicros, d.Microseconds()))
	_ = h.h.RecordValue(us) // in range, so it cannot fail
}

// Merge adds every value of o into h.
func (h *Histogram) Merge(o *Histogram) { h.h.Merge(o.h) }

// Reset empties h.
func (h *Histogram) Reset() { h.h.Reset() }

// Count is the number of values recorded.
func (h *Histogram) Count() int64 { return h.h.TotalCount() }

// Quantile returns the value at q (0 ≤ q ≤ 1).
func (h *Histogram) Quantile(q float64) time.Duration {
	return time.Duration(h.h.ValueAtQuantile(q*100)) * time.Microsecond
}

// Summary returns the percentiles of what was recorded.
func (h *Histogram) Summary() Latency {
	if h.h.TotalCount() == 0 {
		return Latency{}
	}
	ms := func(us int64) float64 { return float64(us) / microsPerMs }
	v := h.h.ValueAtPercentilesSlice([]float64{50, 90, 99, 99.9})
	return Latency{
		Count:  h.h.TotalCount(),
		MinMs:  ms(h.h.Min()),
		MeanMs: h.h.Mean() / microsPerMs,
		P50Ms:  ms(v[0]),
		P90Ms:  ms(v[1]),
		P99Ms:  ms(v[2]),
		P999Ms: ms(v[3]),
		MaxMs:  ms(h.h.Max()),
	}
}

// Latency summarises a latency distribution, in milliseconds.
type Latency struct {
	Count  int64   `json:"count"`
	MinMs  float64 `json:"minMs"`
	MeanMs float64 `json:"meanMs"`
	P50Ms  float64 `json:"p50Ms"`
	P90Ms  float64 `json:"p90Ms"`
	P99Ms  float64 `json:"p99Ms"`
	P999Ms float64 `json:"p999Ms"`
	MaxMs  float64 `json:"maxMs"`
}

// Window records latencies from many goroutines and hands out the
// percentiles of what arrived since the last Take: the latency of one
// progress interval, to see whether it drifts during a long run.
type Window struct {
	mu sync.Mutex
	h  *Histogram
}

// Record adds one latency.
func (w *Window) Record(d time.Duration) {
	w.mu.Lock()
	if w.h == nil {
		w.h = NewHistogram()
	}
	w.h.Record(d)
	w.mu.Unlock()
}

// Take returns the percentiles of what was recorded since the previous
// Take (zero Count when nothing was) and starts a new window.
func (w *Window) Take() Latency {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.h == nil {
		return Latency{}
	}
	l := w.h.Summary()
	w.h.Reset()
	return l
}
