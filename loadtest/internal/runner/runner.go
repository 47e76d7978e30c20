// Package runner runs a load test against a target: writers pushing
// generated series (ingest), workers running a query mix (query), or both
// at once (mixed). Every run is bounded; it shows its progress while it
// goes and ends with a report.Report that also holds the target's own
// figures before and after.
//
// The runner composes the other packages (gen, wire, querymix, target,
// report, progress) and owns only the concurrency, pacing and bounds.
package runner

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/strata-tsdb/strata/internal/cputime"
	"github.com/strata-tsdb/strata/loadtest/internal/progress"
	"github.com/strata-tsdb/strata/loadtest/internal/report"
	"github.com/strata-tsdb/strata/loadtest/internal/target"
	"github.com/strata-tsdb/strata/loadtest/internal/wire"
)

// Options configures a run.
type Options struct {
	// Command names the run in the report: ingest, query or mixed.
	Command string
	// Preset and Settings are copied into the report.
	Preset   string
	Settings map[string]string
	Target   *target.Target
	// Ingest and Query say what to run; at least one must be set.
	Ingest *IngestOptions
	Query  *QueryOptions
	// Duration, when positive, bounds the measured phase. Each part also
	// ends at its own bound (a backfill sent, a sample or query count);
	// a part with neither is an error.
	Duration time.Duration
	// Flush asks the target to write its head to disk after ingesting,
	// before the final snapshot. Only Strata can; for other flavours the
	// report notes that it was skipped.
	Flush bool
	// Settle waits this long before the final snapshot, e.g. for
	// Prometheus to compact its head.
	Settle time.Duration
	// Progress configures the live display.
	Progress progress.Options
	// ReadyTimeout bounds the wait for the target to be ready; zero
	// means 30 s.
	ReadyTimeout time.Duration
}

// Validate reports the first option out of range.
func (o *Options) Validate() error {
	if o.Target == nil {
		return errors.New("no target")
	}
	if o.Ingest == nil && o.Query == nil {
		return errors.New("nothing to run: neither ingest nor query")
	}
	if o.Duration < 0 || o.Settle < 0 {
		return errors.New("duration and settle must not be negative")
	}
	if in := o.Ingest; in != nil {
		if err := in.Validate(); err != nil {
			return err
		}
		if in.Protocol == wire.LineProtocol && o.Target.Flavour() == target.Prometheus {
			return errors.New("Prometheus does not accept line protocol: use remote write (--protocol rw)")
		}
		if o.Duration == 0 && in.Backfill == 0 && in.Samples == 0 {
			return errors.New("ingestion has no end: set a duration, a backfill window or a sample count")
		}
	}
	if q := o.Query; q != nil {
		if err := q.Validate(); err != nil {
			return err
		}
		if o.Duration == 0 && q.Queries == 0 {
			return errors.New("queries have no end: set a duration or a query count")
		}
	}
	return nil
}

// Run runs o and returns its report. A cancelled ctx ends the measured
// phase early, lets the requests in flight finish, and still reports.
// The error is set when the run could not start.
func Run(ctx context.Context, o Options) (*report.Report, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	t := o.Target
	readyTimeout := o.ReadyTimeout
	if readyTimeout == 0 {
		readyTimeout = 30 * time.Second
	}
	rctx, cancel := context.WithTimeout(ctx, readyTimeout)
	err := t.Ready(rctx)
	cancel()
	if err != nil {
		return nil, err
	}

	rep := &report.Report{
		Command:  o.Command,
		Preset:   o.Preset,
		Target:   report.Target{URL: t.URL(), Flavour: string(t.Flavour())},
		Settings: o.Settings,
		Server:   &report.Server{},
	}
	now := time.Now()
	var (
		in *ingest
		qs *queries
	)
	if o.Ingest != nil {
		if in, err = newIngest(o.Ingest, t, now); err != nil {
			return nil, err
		}
		if o.Ingest.Prebuild {
			if err := in.prebuild(); err != nil {
				return nil, err
			}
		}
	}
	if o.Query != nil {
		if qs, err = newQueries(o.Query, t, now); err != nil {
			return nil, err
		}
	}
	before, err := t.Snapshot(ctx)
	if err != nil {
		rep.Notes = append(rep.Notes, "snapshot before: "+err.Error())
	}
	rep.Server.Before = before
	if qs != nil && o.Query.Warmup {
		qs.warmup(ctx)
	}

	// Requests in flight when the phase ends are let finish (each has the
	// target's timeout), even when ctx was cancelled.
	reqCtx := context.WithoutCancel(ctx)
	phase, stop := ctx, context.CancelFunc(func() {})
	if o.Duration > 0 {
		phase, stop = context.WithTimeout(ctx, o.Duration)
	}
	defer stop()

	var cpu cpuMeter
	if in != nil || qs != nil {
		cpu.start(ctx, t)
	}
	rep.Started = time.Now()
	prog := progress.Start(o.Progress, func() progress.State { return state(in, qs, o.Duration, rep.Started) })
	done := make(chan struct{}, 2)
	parts := 0
	if in != nil {
		parts++
		go func() { in.run(phase, reqCtx); done <- struct{}{} }()
	}
	if qs != nil {
		parts++
		go func() { qs.run(phase, reqCtx, in == nil); done <- struct{}{} }()
	}
	for range parts {
		<-done
	}
	rep.ElapsedSeconds = time.Since(rep.Started).Seconds()
	prog.Stop()
	if ctx.Err() != nil {
		rep.Notes = append(rep.Notes, "interrupted: the figures cover the run until then")
	}

	if in != nil {
		rep.Ingest = in.report()
		rep.Ingest.ServerCPUSeconds, rep.Ingest.LoadCPUSeconds = cpu.stop(reqCtx, t)
	}
	if qs != nil {
		rep.Query = qs.report()
		if in == nil {
			rep.Query.ServerCPUSeconds, rep.Query.LoadCPUSeconds = cpu.stop(reqCtx, t)
		}
	}
	if o.Flush && t.Flavour() != target.Strata {
		rep.Notes = append(rep.Notes, fmt.Sprintf("flush skipped: a %s target cannot flush on demand", t.Flavour()))
	} else if o.Flush {
		fctx, cancel := context.WithTimeout(reqCtx, 5*time.Minute)
		if err := t.Flush(fctx); err != nil {
			rep.Notes = append(rep.Notes, err.Error())
		} else if in != nil && !in.dayEnd.IsZero() {
			rep.Server.Disk, rep.Notes = in.measureDay(fctx, rep.Notes)
		}
		cancel()
	}
	if o.Settle > 0 {
		select {
		case <-time.After(o.Settle):
		case <-ctx.Done():
		}
	}
	after, err := t.Snapshot(reqCtx)
	if err != nil {
		rep.Notes = append(rep.Notes, "snapshot after: "+err.Error())
	}
	rep.Server.After = after
	rep.Server.Derive(t.BytesPerSampleBasis())
	if t.Flavour() == target.Prometheus && rep.Server.BytesPerSample != nil {
		rep.Notes = append(rep.Notes, "Prometheus keeps its newest data in the head (WAL, chunks_head) until it is 1.5 block ranges old: bytes per sample counts blocks only")
	}
	return rep, nil
}

// state is what the progress display shows: samples and queries with
// their rates, errors, and the share done (the slowest part's).
func state(in *ingest, qs *queries, d time.Duration, started time.Time) progress.State {
	st := progress.State{Fraction: 2}
	timeFrac := -1.0
	if d > 0 {
		timeFrac = float64(time.Since(started)) / float64(d)
	}
	part := func(f float64) {
		st.Fraction = min(st.Fraction, max(f, timeFrac))
	}
	if in != nil {
		st.Counters = append(st.Counters, progress.Counter{Name: "samples", Value: in.samplesAcked.Load()})
		st.Errors += in.errors.Total()
		st.Latencies = append(st.Latencies, windowLatency("write", in.window.Take()))
		part(in.fraction())
	}
	if qs != nil {
		st.Counters = append(st.Counters, progress.Counter{Name: "queries", Value: qs.ok.Load()})
		st.Errors += qs.errors.Total()
		st.Latencies = append(st.Latencies, windowLatency("query", qs.window.Take()))
		part(qs.fraction())
	}
	if st.Fraction < 0 || st.Fraction > 1 {
		st.Fraction = max(-1, min(st.Fraction, 1))
	}
	return st
}

func windowLatency(name string, l report.Latency) progress.Latency {
	return progress.Latency{Name: name, Count: l.Count, P50: report.Ms(l.P50Ms), P99: report.Ms(l.P99Ms)}
}

// cpuMeter measures the CPU time the server and this process use over a
// run.
type cpuMeter struct {
	server, self     float64
	serverOK, selfOK bool
}

func (m *cpuMeter) start(ctx context.Context, t *target.Target) {
	var err error
	m.server, err = t.CPUSeconds(ctx)
	m.serverOK = err == nil
	d, ok := cputime.Process()
	m.self, m.selfOK = d.Seconds(), ok
}

// stop returns the CPU seconds each used since start, nil where unknown.
func (m *cpuMeter) stop(ctx context.Context, t *target.Target) (server, self *float64) {
	if s, err := t.CPUSeconds(ctx); err == nil && m.serverOK {
		server = report.Float64(s - m.server)
	}
	if d, ok := cputime.Process(); ok && m.selfOK {
		self = report.Float64(d.Seconds() - m.self)
	}
	return server, self
}
