package wal

import (
	"errors"
	"fmt"
	"time"
)

// SyncMode says when Log returns relative to fsync.
type SyncMode int

const (
	// SyncAlways makes Log return only after its records are fsynced.
	// Concurrent callers share fsyncs (group commit). This is the default
	// and the only mode in which an acknowledged write survives a crash.
	SyncAlways SyncMode = iota
	// SyncInterval makes Log return after its records are written with
	// write(2); a background loop fsyncs every Options.SyncInterval. A
	// machine crash (not a process crash) may lose up to that much.
	SyncInterval
)

// String returns the name ParseSyncMode accepts.
func (m SyncMode) String() string {
	switch m {
	case SyncAlways:
		return "always"
	case SyncInterval:
		return "interval"
	default:
		return fmt.Sprintf("SyncMode(%d)", int(m))
	}
}

// syncsBeforeAck reports whether Log acknowledges only fsynced records.
func (m SyncMode) syncsBeforeAck() bool { return m == SyncAlways }

// ParseSyncMode parses "always" or "interval".
func ParseSyncMode(s string) (SyncMode, error) {
	switch s {
	case "always":
		return SyncAlways, nil
	case "interval":
		return SyncInterval, nil
	default:
		return 0, fmt.Errorf("parse sync mode %q: want \"always\" or \"interval\"", s)
	}
}

const (
	// DefaultSegmentSize is the segment size used when Options.SegmentSize is 0.
	DefaultSegmentSize = 128 << 20
	// DefaultSyncInterval is the fsync period used in SyncInterval mode when
	// Options.SyncInterval is 0.
	DefaultSyncInterval = time.Second
	// DefaultRetryInterval is how often an unwritable WAL tries to write
	// again when Options.RetryInterval is 0.
	DefaultRetryInterval = time.Second
)

// Options configure a WAL. The zero value is valid and means the defaults.
type Options struct {
	// SegmentSize is the largest size of one segment file in bytes. A
	// record is never split across segments, so a single record larger
	// than SegmentSize gets a segment of its own. 0 means DefaultSegmentSize.
	SegmentSize int64
	// SyncMode says when Log returns. The zero value is SyncAlways.
	SyncMode SyncMode
	// SyncInterval is the fsync period in SyncInterval mode; ignored in
	// SyncAlways mode. 0 means DefaultSyncInterval.
	SyncInterval time.Duration
	// RetryInterval is how often a WAL that failed to write checks, with
	// a probe write, whether it can write again (it also checks before
	// each group commit). 0 means DefaultRetryInterval.
	RetryInterval time.Duration
	// ExpectWait is the longest a group commit in SyncAlways mode waits
	// for a call announced by Expect (it waits only while one announced
	// before it is outstanding). 0 means as long as the segment's last
	// fsync took, at most 10 ms; negative means a commit never waits.
	ExpectWait time.Duration
	// Metrics receives the WAL's instrumentation; nil means none.
	Metrics *Metrics
}

// DefaultOptions returns the options used by the server unless configured.
func DefaultOptions() Options {
	return Options{
		SegmentSize:  DefaultSegmentSize,
		SyncMode:     SyncAlways,
		SyncInterval: DefaultSyncInterval,
	}
}

// Validate reports the first invalid field.
func (o Options) Validate() error {
	var errs []error
	if o.SegmentSize < 0 {
		errs = append(errs, fmt.Errorf("segment size %d: must not be negative", o.SegmentSize))
	}
	if o.SyncMode != SyncAlways && o.SyncMode != SyncInterval {
		errs = append(errs, fmt.Errorf("unknown sync mode %d", int(o.SyncMode)))
	}
	if o.RetryInterval < 0 {
		errs = append(errs, fmt.Errorf("retry interval %s: must not be negative", o.RetryInterval))
	}
	if o.SyncInterval < 0 {
		errs = append(errs, fmt.Errorf("sync interval %s: must not be negative", o.SyncInterval))
	}
	return errors.Join(errs...)
}

// withDefaults returns o with zero values replaced by defaults.
func (o Options) withDefaults() Options {
	if o.SegmentSize == 0 {
		o.SegmentSize = DefaultSegmentSize
	}
	if o.SyncInterval == 0 {
		o.SyncInterval = DefaultSyncInterval
	}
	if o.RetryInterval == 0 {
		o.RetryInterval = DefaultRetryInterval
	}
	if o.Metrics == nil {
		o.Metrics = NewMetrics(nil)
	}
	return o
}
