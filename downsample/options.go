package downsample

import (
	"errors"
	"fmt"
	"time"
)

// Resolutions the Downsampler writes, in milliseconds (Meta.Resolution).
const (
	Res5m int64 = 5 * 60 * 1000
	Res1h int64 = 60 * 60 * 1000
)

// Window is the span of one rollup segment in milliseconds: a UTC day. The
// rollup of the window starting at w holds the buckets whose end lies in
// (w, w+Window]; its meta has MinTime w+1 and MaxTime w+Window.
const Window int64 = 24 * 60 * 60 * 1000

// Options configures a Downsampler.
type Options struct {
	// Raw5mAfter is how old a window must be before its raw data is rolled
	// up into 5m buckets: the window is due once its end is more than
	// Raw5mAfter before now. Zero means 40h.
	Raw5mAfter time.Duration
	// FiveM1hAfter is the same age for rolling 5m rollups up into 1h
	// buckets. Zero means 240h (10 days). It must not be less than
	// Raw5mAfter.
	FiveM1hAfter time.Duration
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// Only, when not nil, limits Run to the windows (by start) for which
	// it returns true: object storage rebuilds one window of a set it
	// filled for the purpose, where the window before is there only for
	// the counters to continue.
	Only func(start int64) bool
}

// DefaultOptions returns the options used for fields left zero.
func DefaultOptions() Options {
	return Options{Raw5mAfter: 40 * time.Hour, FiveM1hAfter: 240 * time.Hour, Now: time.Now}
}

func (o Options) withDefaults() Options {
	d := DefaultOptions()
	if o.Raw5mAfter == 0 {
		o.Raw5mAfter = d.Raw5mAfter
	}
	if o.FiveM1hAfter == 0 {
		o.FiveM1hAfter = d.FiveM1hAfter
	}
	if o.Now == nil {
		o.Now = d.Now
	}
	return o
}

// Validate reports the first option that is out of range.
func (o Options) Validate() error {
	if o.Raw5mAfter < 0 || o.FiveM1hAfter < 0 {
		return errors.New("downsample: ages must not be negative")
	}
	o = o.withDefaults()
	if o.FiveM1hAfter < o.Raw5mAfter {
		return fmt.Errorf("downsample: 1h rollups after %s, before 5m rollups (%s); they are built from them", o.FiveM1hAfter, o.Raw5mAfter)
	}
	return nil
}
