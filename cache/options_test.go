package cache

import (
	"testing"
	"time"
)

// TestOptionsValidateEdges: each bound of Options.Validate at its edge,
// the value on the valid side taken and the next one refused, and the
// documented defaults.
func TestOptionsValidateEdges(t *testing.T) {
	d := DefaultOptions()
	if d.MaxBytes != 256<<20 || d.TTL != time.Hour || d.MaxTTL != 0 || d.Grace != 5*time.Minute ||
		d.RewriteFraction != 0.25 || d.RefreshTimeout != 2*time.Minute || d.MaxEntryBytes != 0 ||
		d.MaxTrackedTags != 1<<20 || d.Now != nil || d.L2.Enabled() {
		t.Fatalf("DefaultOptions() = %+v", d)
	}
	f := func(name string, valid bool, mutate func(*Options)) {
		t.Helper()
		o := DefaultOptions()
		mutate(&o)
		if err := o.Validate(); (err == nil) != valid {
			t.Errorf("%s: Validate() = %v, want valid %v", name, err, valid)
		}
	}
	f("MaxBytes 1", true, func(o *Options) { o.MaxBytes = 1 })
	f("MaxBytes -1", false, func(o *Options) { o.MaxBytes = -1 })
	f("MaxBytes at its maximum", true, func(o *Options) { o.MaxBytes = maxMaxBytes })
	f("MaxBytes past its maximum", false, func(o *Options) { o.MaxBytes = maxMaxBytes + 1 })
	f("TTL 1ns", true, func(o *Options) { o.TTL = 1 })
	f("TTL -1ns", false, func(o *Options) { o.TTL = -1 })
	f("MaxTTL 0", true, func(o *Options) { o.MaxTTL = 0 })
	f("MaxTTL -1ns", false, func(o *Options) { o.MaxTTL = -1 })
	f("MaxTTL equal to TTL", true, func(o *Options) { o.MaxTTL = o.TTL })
	f("MaxTTL 1ns below TTL", false, func(o *Options) { o.MaxTTL = o.TTL - 1 })
	f("MaxTTL above TTL", true, func(o *Options) { o.MaxTTL = 2 * o.TTL })
	f("Grace 0", true, func(o *Options) { o.Grace = 0 })
	f("RewriteFraction 0", true, func(o *Options) { o.RewriteFraction = 0 })
	f("RewriteFraction below 0", false, func(o *Options) { o.RewriteFraction = -1e-9 })
	f("RewriteFraction just below 1", true, func(o *Options) { o.RewriteFraction = 0.999999 })
	f("RefreshTimeout 0", true, func(o *Options) { o.RefreshTimeout = 0 })
	f("RefreshTimeout -1ns", false, func(o *Options) { o.RefreshTimeout = -1 })
	f("MaxEntryBytes 0", true, func(o *Options) { o.MaxEntryBytes = 0 })
	f("MaxTrackedTags 0", true, func(o *Options) { o.MaxTrackedTags = 0 })
	f("MaxTrackedTags -1", false, func(o *Options) { o.MaxTrackedTags = -1 })

	// maxTTL: MaxTTL when set, else TTL.
	o := DefaultOptions()
	if got := o.maxTTL(); got != o.TTL {
		t.Errorf("maxTTL() with MaxTTL 0 = %v, want TTL %v", got, o.TTL)
	}
	o.MaxTTL = 3 * time.Hour
	if got := o.maxTTL(); got != 3*time.Hour {
		t.Errorf("maxTTL() = %v, want 3h", got)
	}
}
