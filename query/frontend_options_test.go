package query

import (
	"runtime"
	"testing"
	"time"
)

// TestFrontendOptionsValidate: the bounds FrontendOptions documents, at
// their edges, and NewFrontend refusing what Validate refuses.
func TestFrontendOptionsValidate(t *testing.T) {
	for _, c := range []struct {
		o  FrontendOptions
		ok bool
	}{
		{FrontendOptions{}, true},
		{FrontendOptions{SplitInterval: time.Minute}, true},
		{FrontendOptions{SplitInterval: time.Minute - time.Millisecond}, false},
		{FrontendOptions{SplitInterval: -time.Hour}, false},
		{FrontendOptions{Freshness: -time.Nanosecond}, false},
		{FrontendOptions{Freshness: time.Nanosecond}, true},
		{FrontendOptions{MaxParallel: -1}, false},
		{FrontendOptions{MaxParallelTotal: -1}, false},
		{FrontendOptions{MaxParallel: 1, MaxParallelTotal: 1}, true},
	} {
		err := c.o.Validate()
		if (err == nil) != c.ok {
			t.Errorf("%+v: Validate() = %v, want ok %v", c.o, err, c.ok)
		}
		e := newDiffEnv(t, time.Date(2026, 1, 10, 0, 0, 0, 0, time.UTC))
		f, err := NewFrontend(e.frontend.engine, e.cache, c.o, e.clock.Now, nil, time.Hour)
		if (err == nil) != c.ok || (f != nil) != c.ok {
			t.Errorf("%+v: NewFrontend: %v, want ok %v", c.o, err, c.ok)
		}
	}
}

// TestFrontendOptionDefaults: a field left zero takes its documented
// default (24h split, 60s freshness, GOMAXPROCS evaluations per query and
// in all), a field set is kept; and what is fresh follows the freshness.
func TestFrontendOptionDefaults(t *testing.T) {
	start := time.Date(2026, 1, 10, 0, 0, 0, 0, time.UTC)
	e := newDiffEnv(t, start)
	procs := runtime.GOMAXPROCS(0)
	f, err := NewFrontend(e.frontend.engine, e.cache, FrontendOptions{}, e.clock.Now, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if f.opts.SplitInterval != 24*time.Hour || f.opts.Freshness != time.Minute || f.opts.MaxParallel != procs || f.opts.MaxParallelTotal != procs || cap(f.sem) != procs {
		t.Errorf("defaults: %+v, %d evaluations at once; want 24h, 1m, %d, %d", f.opts, cap(f.sem), procs, procs)
	}
	if got, want := f.cutoff(), start.Add(-time.Minute).UnixMilli()-1; got != want {
		t.Errorf("cutoff with the default freshness: %d, want %d", got, want)
	}
	set := FrontendOptions{SplitInterval: 6 * time.Hour, Freshness: 5 * time.Minute, MaxParallel: procs + 1, MaxParallelTotal: procs + 2}
	f, err = NewFrontend(e.frontend.engine, e.cache, set, e.clock.Now, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if f.opts.SplitInterval != set.SplitInterval || f.opts.Freshness != set.Freshness || f.opts.MaxParallel != set.MaxParallel || f.opts.MaxParallelTotal != set.MaxParallelTotal || cap(f.sem) != set.MaxParallelTotal {
		t.Errorf("options set: %+v, %d evaluations at once; want %+v", f.opts, cap(f.sem), set)
	}
	if got, want := f.cutoff(), start.Add(-5*time.Minute).UnixMilli()-1; got != want {
		t.Errorf("cutoff with 5m freshness: %d, want %d", got, want)
	}
	// Writes from FreshFrom on need no invalidation: no extent holding
	// them is cached.
	if from, want := f.FreshFrom(), start.Add(-5*time.Minute).UnixMilli(); from != want {
		t.Errorf("FreshFrom with 5m freshness: %d, want %d", from, want)
	}
}
