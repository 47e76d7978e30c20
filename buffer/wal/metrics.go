package wal

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the WAL's collectors. Create them with NewMetrics and pass
// them in Options.Metrics; one Metrics may be shared by successive WALs on
// the same directory (a reopen), not by two open at once.
type Metrics struct {
	FsyncDuration  prometheus.Histogram // seconds per fsync of a segment file
	Fsyncs         prometheus.Counter   // fsyncs of segment files
	BytesWritten   prometheus.Counter   // framed bytes written to segment files
	RecordsWritten prometheus.Counter   // records acknowledged by Log
	CommitSize     prometheus.Histogram // Log calls acknowledged per group commit
	WriteErrors    prometheus.Counter   // failed writes, fsyncs and recovery attempts
	Corruptions    prometheus.Counter   // corruption found by Open that is not a repairable tail
	Repairs        prometheus.Counter   // torn tails cut off by Open
	DamagedBytes   prometheus.Counter   // bytes of damaged frames a repair skipped and removed
	Segment        prometheus.Gauge     // index of the segment being written
	Unwritable     prometheus.Gauge     // 1 while writes fail (e.g. disk full), else 0
}

// NewMetrics creates the WAL's collectors and registers them with reg;
// reg may be nil to leave them unregistered. It panics if registration
// fails (a duplicate), like prometheus.MustRegister.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		FsyncDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "strata_wal_fsync_duration_seconds",
			Help:    "Duration of WAL segment fsyncs.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
		Fsyncs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strata_wal_fsyncs_total",
			Help: "Total number of WAL segment fsyncs.",
		}),
		BytesWritten: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strata_wal_bytes_written_total",
			Help: "Total framed bytes written to WAL segments.",
		}),
		RecordsWritten: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strata_wal_records_written_total",
			Help: "Total records acknowledged by the WAL.",
		}),
		CommitSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "strata_wal_commit_log_calls",
			Help:    "Number of Log calls acknowledged by one group commit.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 10),
		}),
		WriteErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strata_wal_write_errors_total",
			Help: "Total failed WAL writes and fsyncs.",
		}),
		Corruptions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strata_wal_corruptions_total",
			Help: "Total WAL corruptions found that could not be repaired.",
		}),
		Repairs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strata_wal_repairs_total",
			Help: "Total torn WAL tails cut off at the last good record.",
		}),
		DamagedBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strata_wal_damaged_bytes_discarded_total",
			Help: "Total bytes of damaged WAL frames skipped by a repairing replay (the good records around them are kept).",
		}),
		Segment: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "strata_wal_segment_current",
			Help: "Index of the WAL segment being written.",
		}),
		Unwritable: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "strata_wal_unwritable",
			Help: "1 while the WAL cannot write (e.g. the disk is full) and writes are refused with 503, else 0.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.FsyncDuration, m.Fsyncs, m.BytesWritten, m.RecordsWritten,
			m.CommitSize, m.WriteErrors, m.Corruptions, m.Repairs, m.DamagedBytes, m.Segment, m.Unwritable)
	}
	return m
}
