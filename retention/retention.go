package retention

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-tsdb/strata/segments"
)

// Resolutions of rollups, in milliseconds.
const (
	Res5m = int64(5 * time.Minute / time.Millisecond)
	Res1h = int64(time.Hour / time.Millisecond)
)

// Policy says how long data of each resolution is kept and how much disk
// the segments may use.
type Policy struct {
	// Raw, FiveMinute and OneHour are the ages past which data of that
	// resolution is deleted. Zero keeps it forever.
	Raw, FiveMinute, OneHour time.Duration
	// MaxBytes bounds the bytes of all segments; the oldest are deleted
	// first while the total is above it. Zero means no bound.
	MaxBytes int64
}

// DefaultPolicy keeps raw data 15 days, 5-minute rollups 90 days and hourly
// rollups 2 years, with no disk bound.
func DefaultPolicy() Policy {
	return Policy{Raw: 15 * 24 * time.Hour, FiveMinute: 90 * 24 * time.Hour, OneHour: 2 * 365 * 24 * time.Hour}
}

// Validate refuses negative ages and a coarser resolution kept for less
// time than a finer one (the rollups exist to outlive the raw data).
func (p Policy) Validate() error {
	if p.Raw < 0 || p.FiveMinute < 0 || p.OneHour < 0 || p.MaxBytes < 0 {
		return errors.New("retention: ages and max bytes must not be negative")
	}
	shorter := func(coarse, fine time.Duration) bool {
		return fine == 0 && coarse != 0 || coarse != 0 && coarse < fine
	}
	if shorter(p.FiveMinute, p.Raw) {
		return fmt.Errorf("retention: 5m rollups kept %s, less than raw data (%s); keep them at least as long", fmtAge(p.FiveMinute), fmtAge(p.Raw))
	}
	if shorter(p.OneHour, p.FiveMinute) {
		return fmt.Errorf("retention: 1h rollups kept %s, less than 5m rollups (%s); keep them at least as long", fmtAge(p.OneHour), fmtAge(p.FiveMinute))
	}
	return nil
}

func fmtAge(d time.Duration) string {
	if d == 0 {
		return "forever"
	}
	return d.String()
}

// Limit returns the age limit for data of a resolution (milliseconds; 0 is
// raw); zero means forever.
func (p Policy) Limit(resolution int64) time.Duration {
	switch {
	case resolution == 0:
		return p.Raw
	case resolution <= Res5m:
		return p.FiveMinute
	default:
		return p.OneHour
	}
}

// MinTime returns the oldest timestamp still inside retention at now for a
// resolution, or math.MinInt64 when kept forever.
func (p Policy) MinTime(resolution int64, now time.Time) int64 {
	limit := p.Limit(resolution)
	if limit == 0 {
		return minInt64
	}
	return now.Add(-limit).UnixMilli()
}

const minInt64 = -1 << 63

// Dropped describes one deleted segment.
type Dropped struct {
	ID               string
	Resolution       int64
	MinTime, MaxTime int64
	Bytes            int64
	// MetricNames are the metric names the segment held (for cache
	// invalidation); empty if they could not be read.
	MetricNames []string
	Reason      string // "age" or "disk"
}

// Report lists what one run deleted.
type Report struct {
	Dropped []Dropped
}

// Enforcer applies a policy to a segment set.
type Enforcer struct {
	logger *slog.Logger
	set    *segments.Set
	policy Policy
	now    func() time.Time
	// OnDrop, when set, is called with every run's report that dropped
	// something, once the segments have left the set (so that a cache
	// invalidated then cannot be refilled with their data).
	OnDrop func(Report)

	deleted      *prometheus.CounterVec
	deletedBytes *prometheus.CounterVec
	lastRun      prometheus.Gauge
}

// New returns an enforcer of policy over set. now may be nil for the wall
// clock. Metrics are registered with reg when it is not nil.
func New(logger *slog.Logger, set *segments.Set, policy Policy, now func() time.Time, reg prometheus.Registerer) (*Enforcer, error) {
	if err := policy.Validate(); err != nil {
		return nil, err
	}
	if now == nil {
		now = time.Now
	}
	e := &Enforcer{
		logger: logger, set: set, policy: policy, now: now,
		deleted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_retention_deleted_segments_total", Help: "Segments deleted by retention, by resolution and reason.",
		}, []string{"resolution", "reason"}),
		deletedBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_retention_deleted_bytes_total", Help: "Bytes of segments deleted by retention, by resolution.",
		}, []string{"resolution"}),
		lastRun: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "strata_retention_last_run_timestamp_seconds", Help: "When retention last ran.",
		}),
	}
	if reg != nil {
		reg.MustRegister(e.deleted, e.deletedBytes, e.lastRun)
	}
	return e, nil
}

// Policy returns the policy in force.
func (e *Enforcer) Policy() Policy { return e.policy }

// Run deletes every segment wholly past its age limit, then the oldest
// segments while the total exceeds MaxBytes, and reports them.
func (e *Enforcer) Run(ctx context.Context) (Report, error) {
	now := e.now()
	infos := e.set.Segments()
	var (
		rep   Report
		total int64
		keep  []segments.Info
	)
	for _, in := range infos {
		if limit := e.policy.Limit(in.Meta.Resolution); limit > 0 && in.Meta.MaxTime < now.Add(-limit).UnixMilli() {
			rep.Dropped = append(rep.Dropped, e.dropped(in, "age"))
			continue
		}
		total += in.Size
		keep = append(keep, in)
	}
	if e.policy.MaxBytes > 0 && total > e.policy.MaxBytes {
		// Oldest data first: by the newest sample a segment holds.
		slices.SortFunc(keep, func(a, b segments.Info) int {
			if a.Meta.MaxTime != b.Meta.MaxTime {
				return int(max(-1, min(1, a.Meta.MaxTime-b.Meta.MaxTime)))
			}
			return int(max(-1, min(1, a.Meta.Resolution-b.Meta.Resolution)))
		})
		for _, in := range keep {
			if total <= e.policy.MaxBytes {
				break
			}
			rep.Dropped = append(rep.Dropped, e.dropped(in, "disk"))
			total -= in.Size
		}
	}
	e.lastRun.Set(float64(now.Unix()))
	if len(rep.Dropped) == 0 {
		return rep, ctx.Err()
	}
	e.fillNames(rep.Dropped)
	ids := make([]string, len(rep.Dropped))
	for i, d := range rep.Dropped {
		ids[i] = d.ID
	}
	if err := e.set.Replace(ids, nil); err != nil {
		return Report{}, fmt.Errorf("retention: %w", err)
	}
	if e.OnDrop != nil {
		e.OnDrop(rep)
	}
	for _, d := range rep.Dropped {
		res := resolutionLabel(d.Resolution)
		e.deleted.WithLabelValues(res, d.Reason).Inc()
		e.deletedBytes.WithLabelValues(res).Add(float64(d.Bytes))
		e.logger.Info("retention deleted segment", "segment", d.ID, "resolution", res, "reason", d.Reason,
			"min_time", time.UnixMilli(d.MinTime).UTC(), "max_time", time.UnixMilli(d.MaxTime).UTC(), "bytes", d.Bytes)
	}
	return rep, nil
}

func (e *Enforcer) dropped(in segments.Info, reason string) Dropped {
	return Dropped{ID: in.Meta.ID, Resolution: in.Meta.Resolution, MinTime: in.Meta.MinTime, MaxTime: in.Meta.MaxTime, Bytes: in.Size, Reason: reason}
}

// fillNames reads the metric names of the segments about to go.
func (e *Enforcer) fillNames(ds []Dropped) {
	segs, release := e.set.Acquire(minInt64, 1<<63-1)
	defer release()
	for i := range ds {
		for _, s := range segs {
			if s.Meta().ID != ds[i].ID {
				continue
			}
			names, err := s.LabelValues("__name__")
			if err != nil {
				e.logger.Warn("read metric names of expiring segment", "segment", ds[i].ID, "err", err)
			}
			ds[i].MetricNames = names
		}
	}
}

func resolutionLabel(res int64) string {
	switch res {
	case 0:
		return "raw"
	case Res5m:
		return "5m"
	case Res1h:
		return "1h"
	}
	return strconv.FormatInt(res, 10) + "ms"
}
