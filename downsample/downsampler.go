package downsample

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-tsdb/strata/segments"
)

// Downsampler writes the rollup segments of a segments.Set: 5m rollups of
// raw data and 1h rollups of the 5m rollups, one segment per window
// (a UTC day), once the window is old enough. It never changes or removes a
// raw segment; it replaces its own rollups when the data under them changed.
//
// Everything it needs to know about what is done is in the set (see the
// package documentation), so it keeps no state between runs. Run calls are
// serialised; Run may run concurrently with flushes, compaction, retention
// and queries.
type Downsampler struct {
	logger *slog.Logger
	set    *segments.Set
	opts   Options

	mtx sync.Mutex // serialises Run

	written    *prometheus.CounterVec
	failures   prometheus.Counter
	duration   prometheus.Histogram
	staleCount prometheus.Gauge
}

// New returns a Downsampler for set. A nil logger discards logs; metrics
// are registered with reg when it is not nil.
func New(logger *slog.Logger, set *segments.Set, opts Options, reg prometheus.Registerer) (*Downsampler, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if set == nil {
		return nil, errors.New("downsample: nil segment set")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	d := &Downsampler{
		logger: logger,
		set:    set,
		opts:   opts.withDefaults(),
		written: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_downsample_rollups_written_total",
			Help: "Rollup segments written, by resolution.",
		}, []string{"resolution"}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strata_downsample_failures_total",
			Help: "Downsampling runs that failed.",
		}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "strata_downsample_duration_seconds",
			Help:    "Time taken by one downsampling run.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 16),
		}),
		staleCount: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "strata_downsample_stale_windows",
			Help: "Windows whose 5m rollup is out of date but cannot be rebuilt because part of their raw data is gone.",
		}),
	}
	for _, r := range []string{"5m", "1h"} {
		d.written.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(d.written, d.failures, d.duration, d.staleCount)
	}
	return d, nil
}

// Run writes every rollup that is due and returns how many segments it
// wrote. A window is due for a 5m rollup once its end is more than
// Raw5mAfter before now and raw data overlaps it, and due again (the rollup
// is rebuilt and replaced) when a raw segment with a level-1 source the
// rollup does not list appeared in it (late data), when the rollup's
// tombstones hide data of one of its series (a delete made after it was
// built), or when the rollup of the window before was rebuilt (its
// counters continue that one's). A
// window is due for a 1h rollup once its end is more than FiveM1hAfter
// before now and it has a 5m rollup that the 1h rollup was not built from.
//
// Windows are done oldest first, 5m before 1h. An error stops the run;
// what was written before it stays, and the next run goes on from there.
func (d *Downsampler) Run(ctx context.Context) (int, error) {
	d.mtx.Lock()
	defer d.mtx.Unlock()
	start := time.Now()
	n, err := d.run(ctx)
	d.duration.Observe(time.Since(start).Seconds())
	if err != nil {
		d.failures.Inc()
	}
	return n, err
}

func (d *Downsampler) run(ctx context.Context) (int, error) {
	now := d.opts.Now()
	if err := d.removeDuplicates(); err != nil {
		return 0, err
	}
	n := 0
	cutoff := now.Add(-d.opts.Raw5mAfter).UnixMilli()
	stale := 0
	for _, w := range d.rawWindows(cutoff) {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		wrote, isStale, err := d.step5m(ctx, w, now)
		if err != nil {
			return n, fmt.Errorf("downsample window %s to 5m: %w", fmtWindow(w), err)
		}
		n += wrote
		if isStale {
			stale++
		}
	}
	d.staleCount.Set(float64(stale))

	cutoff = now.Add(-d.opts.FiveM1hAfter).UnixMilli()
	for _, w := range d.rollupWindows(Res5m, cutoff) {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		wrote, err := d.step1h(ctx, w, now)
		if err != nil {
			return n, fmt.Errorf("downsample window %s to 1h: %w", fmtWindow(w), err)
		}
		n += wrote
	}
	return n, nil
}

func fmtWindow(w int64) string {
	return fmt.Sprintf("(%s, %s]", time.UnixMilli(w).UTC().Format(time.RFC3339), time.UnixMilli(w+Window).UTC().Format(time.RFC3339))
}

// maxWindowsPerSegment bounds the windows one raw segment may span (about
// 180 years), so that a segment with absurd times cannot stall a run.
const maxWindowsPerSegment = 1 << 16

// rawWindows returns the starts of the windows that raw segments overlap
// and whose end is before cutoff, in increasing order.
func (d *Downsampler) rawWindows(cutoff int64) []int64 {
	var out []int64
	for _, in := range d.set.Segments() {
		m := in.Meta
		if m.Resolution != 0 {
			continue
		}
		first, last := windowStart(m.MinTime), windowStart(m.MaxTime)
		if (last-first)/Window > maxWindowsPerSegment {
			d.logger.Warn("not downsampling raw segment spanning too many windows", "segment", m.ID, "min_time", m.MinTime, "max_time", m.MaxTime)
			continue
		}
		for w := first; w <= last && w < cutoff-Window; w += Window {
			if d.opts.Only == nil || d.opts.Only(w) {
				out = append(out, w)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// rollupWindows returns the starts of the windows with a rollup of
// resolution res whose end is before cutoff, in increasing order.
func (d *Downsampler) rollupWindows(res, cutoff int64) []int64 {
	var out []int64
	for _, r := range d.rollups() {
		if r.meta.Resolution == res && r.start < cutoff-Window && (d.opts.Only == nil || d.opts.Only(r.start)) {
			out = append(out, r.start)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

type windowKey struct{ res, start int64 }

// rollups returns the rollups in the set, the newest (greatest ID) of each
// resolution and window.
func (d *Downsampler) rollups() map[windowKey]rollupInfo {
	out := map[windowKey]rollupInfo{}
	for _, in := range d.set.Segments() {
		r, ok := asRollup(in.Meta)
		if !ok {
			continue
		}
		k := windowKey{r.meta.Resolution, r.start}
		if o, ok := out[k]; !ok || byID(r, o) > 0 {
			out[k] = r
		}
	}
	return out
}

// removeDuplicates removes all but the newest rollup of a resolution and
// window: the older ones were left by a crash between writing a rebuilt
// rollup and replacing the old one.
func (d *Downsampler) removeDuplicates() error {
	newest := d.rollups()
	var old []string
	for _, in := range d.set.Segments() {
		r, ok := asRollup(in.Meta)
		if ok && newest[windowKey{r.meta.Resolution, r.start}].meta.ID != r.meta.ID {
			old = append(old, r.meta.ID)
		}
	}
	if len(old) == 0 {
		return nil
	}
	d.logger.Info("removing rollups replaced by newer ones", "segments", old)
	if err := d.set.Replace(old, nil); err != nil {
		return fmt.Errorf("remove replaced rollups: %w", err)
	}
	return nil
}

// step5m brings the 5m rollup of window w up to date. stale reports a
// rollup that is out of date but cannot be rebuilt.
func (d *Downsampler) step5m(ctx context.Context, w int64, now time.Time) (wrote int, stale bool, err error) {
	var srcs []string
	for _, in := range d.set.Segments() {
		if m := in.Meta; m.Resolution == 0 && overlaps(m, w+1, w+Window) {
			srcs = append(srcs, rawSources(m)...)
		}
	}
	slices.Sort(srcs)
	srcs = slices.Compact(srcs)
	rollups := d.rollups()
	cur, hasCur := rollups[windowKey{Res5m, w}]
	prev, hasPrev := rollups[windowKey{Res5m, w - Window}]
	prevID := ""
	if hasPrev {
		prevID = prev.meta.ID
	}
	switch {
	case !hasCur && len(srcs) == 0:
		return 0, false, nil
	case hasCur:
		newRaw := !subset(srcs, cur.lin.raw)
		relinked := hasPrev && prevID != cur.lin.link
		deleted, err := d.tombstoned(cur)
		if err != nil {
			return 0, false, err
		}
		if !newRaw && !relinked && !deleted {
			return 0, false, nil
		}
		if !rawKept(cur.lin.raw, srcs, slices.Values(d.set.Metas())) {
			// Rebuilding from what is left would lose data the rollup
			// holds. Such late data is older than the raw retention, so
			// it is about to be deleted too.
			d.logger.Debug("5m rollup out of date but its raw data is partly gone; keeping it",
				"window", fmtWindow(w), "rollup", cur.meta.ID)
			return 0, true, nil
		}
	}
	var old *rollupInfo
	if hasCur {
		old = &cur
	}
	meta, ok, err := d.build5m(ctx, w, prevID, old, now)
	if err != nil || !ok {
		return 0, false, err
	}
	return d.publish(old, meta)
}

// step1h brings the 1h rollup of window w up to date.
func (d *Downsampler) step1h(ctx context.Context, w int64, now time.Time) (int, error) {
	rollups := d.rollups()
	src, ok := rollups[windowKey{Res5m, w}]
	if !ok {
		return 0, nil
	}
	cur, hasCur := rollups[windowKey{Res1h, w}]
	if hasCur && cur.lin.link == src.meta.ID {
		return 0, nil
	}
	var old *rollupInfo
	if hasCur {
		old = &cur
	}
	meta, ok, err := d.build1h(ctx, w, src.meta.ID, old, now)
	if err != nil || !ok {
		return 0, err
	}
	n, _, err := d.publish(old, meta)
	return n, err
}

// tombstoned reports whether a tombstone of the rollup (a delete made
// after it was written: a rollup is born without any) hides data of one of
// its series. Rollups hide buckets by their end, which misses the raw
// samples of a partly deleted bucket; rebuilt from raw data, with the raw
// tombstones applied, the rollup holds exactly what is left.
func (d *Downsampler) tombstoned(r rollupInfo) (bool, error) {
	ts := d.set.Tombstones(r.meta.ID)
	if len(ts) == 0 {
		return false, nil
	}
	segs, release := d.set.Acquire(r.meta.MinTime, r.meta.MaxTime)
	defer release()
	for _, s := range segs {
		if s.Meta().ID != r.meta.ID {
			continue
		}
		for _, t := range ts {
			it, err := s.Select(t.Matchers...)
			if err != nil {
				return false, fmt.Errorf("read rollup %s: %w", r.meta.ID, err)
			}
			for it.Next() {
				for _, c := range it.Chunks() {
					if c.MinTime <= t.MaxTime && c.MaxTime >= t.MinTime {
						return true, nil
					}
				}
			}
			if err := it.Err(); err != nil {
				return false, fmt.Errorf("read rollup %s: %w", r.meta.ID, err)
			}
		}
	}
	return false, nil
}

// publish adds a written rollup to the set, in place of old if not nil.
func (d *Downsampler) publish(old *rollupInfo, meta segments.Meta) (int, bool, error) {
	var oldIDs []string
	if old != nil {
		oldIDs = []string{old.meta.ID}
	}
	if err := d.set.Replace(oldIDs, []segments.Meta{meta}); err != nil {
		discard(d.set.Dir(), meta.ID)
		return 0, false, err
	}
	res := "5m"
	if meta.Resolution == Res1h {
		res = "1h"
	}
	d.written.WithLabelValues(res).Inc()
	d.logger.Info("wrote rollup", "segment", meta.ID, "resolution", res, "window", fmtWindow(meta.MinTime-1),
		"replaces", oldIDs, "series", meta.NumSeries, "samples", meta.NumSamples)
	return 1, false, nil
}

// overlaps reports whether a segment's time range overlaps [mint, maxt].
func overlaps(m segments.Meta, mint, maxt int64) bool {
	return m.MinTime <= maxt && m.MaxTime >= mint
}
