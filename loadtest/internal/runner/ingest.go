package runner

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/strata-tsdb/strata/loadtest/internal/gen"
	"github.com/strata-tsdb/strata/loadtest/internal/report"
	"github.com/strata-tsdb/strata/loadtest/internal/target"
	"github.com/strata-tsdb/strata/loadtest/internal/wire"
)

// IngestOptions configures the writers.
type IngestOptions struct {
	// Gen describes the fleet.
	Gen gen.Options
	// Protocol is the write protocol.
	Protocol wire.Protocol
	// Writers is the number of concurrent writers; each owns a shard of the
	// series, sent in time order. It must be positive.
	Writers int
	// BatchSamples is the number of samples per request (line protocol:
	// lines × fields). It must be positive.
	BatchSamples int
	// SamplesPerSeries is the number of consecutive samples of a series in
	// a request; zero picks as many as fit (see gen.Schedule).
	SamplesPerSeries int
	// Interval is the time between two samples of a series. It must be at
	// least 1 ms.
	Interval time.Duration
	// Backfill, when positive, generates the window [now-Backfill, now)
	// and ends when it is all sent. Zero stamps samples with the wall
	// clock (live mode) until another bound ends the run.
	Backfill time.Duration
	// Samples, when positive, ends ingestion after this many samples,
	// rounded up to whole steps of every series.
	Samples int64
	// Rate is the target in samples per second; zero sends as fast as the
	// server accepts.
	Rate float64
	// MaxLag is how far in data time a backfilling writer may run ahead
	// of the slowest; zero means 10 minutes.
	MaxLag time.Duration
	// PastDay moves the backfill window into a UTC day that is over: it
	// ends at the latest UTC midnight at least CloseDayGap and two
	// intervals ago. With Flush, the runner then closes the day (one step
	// of every series CloseDayGap after that midnight, which makes
	// Strata's compaction of the day due) and measures the window's
	// segments after the flush and after the merge. It needs Backfill.
	PastDay bool
	// Prebuild encodes every request body before the run starts (the
	// clock and the CPU figures start after it), as the benchmarks of
	// VictoriaMetrics and Prometheus feed their servers: the run then
	// measures the server and the sending, not the generator's encoding.
	// It needs a bounded run (Backfill or Samples) and holds every body
	// in memory at once (about 24 bytes a sample of remote write's
	// Prometheus shape). Rate and MaxLag apply as without it.
	Prebuild bool
}

// CloseDayGap is how far past a day's end data must reach for Strata to
// merge the day (its compaction waits one block, 2 h by default, past a
// window's end).
const CloseDayGap = 2 * time.Hour

// Validate reports the first option out of range.
func (o *IngestOptions) Validate() error {
	switch {
	case o.Writers <= 0:
		return errors.New("writers must be positive")
	case o.BatchSamples <= 0:
		return errors.New("batch size must be positive")
	case o.Interval < time.Millisecond:
		return fmt.Errorf("interval %s: must be at least 1ms", o.Interval)
	case o.Backfill < 0 || o.Samples < 0 || o.Rate < 0 || o.SamplesPerSeries < 0:
		return errors.New("backfill, samples, samples per series and rate must not be negative")
	case o.Backfill > 0 && o.Backfill < o.Interval:
		return fmt.Errorf("backfill %s is shorter than the interval %s", o.Backfill, o.Interval)
	case o.PastDay && (o.Backfill <= 0 || o.Backfill > 24*time.Hour):
		return errors.New("past-day needs a backfill window of at most 24h")
	case o.Prebuild && o.Backfill <= 0 && o.Samples <= 0:
		return errors.New("prebuild needs a bounded run: backfill or samples")
	}
	if _, err := wire.NewEncoder(o.Protocol); err != nil {
		return err
	}
	if err := o.Gen.Validate(); err != nil {
		return err
	}
	if o.Protocol != wire.RemoteWrite {
		for _, name := range o.Gen.Families {
			if f, _ := gen.LookupFamily(name); f.HasHistograms() {
				return fmt.Errorf("family %s holds native histograms, which only remote write carries: use --protocol rw", name)
			}
		}
	}
	return nil
}

// ingest is a running set of writers.
type ingest struct {
	o      *IngestOptions
	t      *target.Target
	g      *gen.Generator
	sch    gen.Schedule
	total  int64 // samples to send; -1 when unbounded
	pace   *pacer
	gate   *lagGate // nil in live mode
	errors report.ErrorLog

	requests, requestsOK, samplesSent, samplesAcked, bytesSent atomic.Int64

	hists   []*report.Histogram // one per writer
	bodies  [][]request         // with Prebuild: each writer's requests, in order
	window  report.Window       // since the last progress line
	elapsed time.Duration
	dayEnd  time.Time // with PastDay: the end of the window, a UTC midnight
}

func newIngest(o *IngestOptions, t *target.Target, now time.Time) (*ingest, error) {
	g, err := gen.New(o.Gen)
	if err != nil {
		return nil, err
	}
	in := &ingest{o: o, t: t, g: g, total: -1, pace: newPacer(o.Rate)}
	in.sch = gen.Schedule{Interval: o.Interval, BatchSamples: o.BatchSamples, SamplesPerSeries: o.SamplesPerSeries}
	if o.Backfill > 0 {
		steps := int(o.Backfill / o.Interval)
		in.sch.Steps = steps
		end := now.Truncate(o.Interval)
		if o.PastDay {
			// Truncate counts from the zero time, a UTC midnight.
			end = now.Add(-CloseDayGap - 2*o.Interval).Truncate(24 * time.Hour)
			in.dayEnd = end
		}
		in.sch.Start = end.Add(-time.Duration(steps) * o.Interval)
		maxLag := o.MaxLag
		if maxLag == 0 {
			maxLag = 10 * time.Minute
		}
		in.gate = newLagGate(o.Writers, max(1, int(maxLag/o.Interval)))
	} else {
		in.sch.Clock = time.Now
	}
	if o.Samples > 0 {
		steps := int((o.Samples + int64(g.NumSeries()) - 1) / int64(g.NumSeries()))
		if in.sch.Steps == 0 || steps < in.sch.Steps {
			in.sch.Steps = steps
		}
	}
	if in.sch.Steps > 0 {
		in.total = int64(in.sch.Steps) * int64(g.NumSeries())
	}
	return in, nil
}

// request is an encoded request body and what it holds.
type request struct {
	body      []byte
	samples   int
	firstStep int
}

// prebuild encodes every writer's requests (Prebuild), the writers'
// streams at once.
func (in *ingest) prebuild() error {
	in.bodies = make([][]request, in.o.Writers)
	errs := make([]error, in.o.Writers)
	var wg sync.WaitGroup
	for w := range in.o.Writers {
		wg.Go(func() {
			s, err := in.g.Stream(w, in.o.Writers, in.sch)
			if err != nil {
				errs[w] = err
				return
			}
			enc, _ := wire.NewEncoder(in.o.Protocol)
			var b gen.Batch
			for s.Next(&b) {
				in.bodies[w] = append(in.bodies[w], request{body: bytes.Clone(enc.Encode(&b)), samples: b.Samples(), firstStep: b.FirstStep})
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// bounded reports whether ingestion ends by itself.
func (in *ingest) bounded() bool { return in.total >= 0 }

// fraction is the share of samples sent, or -1 when unbounded.
func (in *ingest) fraction() float64 {
	if in.total <= 0 {
		return -1
	}
	return float64(in.samplesSent.Load()) / float64(in.total)
}

// run sends until every writer is done or phase ends; requests in flight
// when phase ends are finished under reqCtx.
func (in *ingest) run(phase, reqCtx context.Context) {
	start := time.Now()
	var wg sync.WaitGroup
	in.hists = make([]*report.Histogram, in.o.Writers)
	if in.gate != nil {
		stop := context.AfterFunc(phase, in.gate.stop)
		defer stop()
	}
	for w := range in.o.Writers {
		in.hists[w] = report.NewHistogram()
		wg.Add(1)
		go func() {
			defer wg.Done()
			in.writer(phase, reqCtx, w)
		}()
	}
	wg.Wait()
	in.elapsed = time.Since(start)
}

func (in *ingest) writer(phase, reqCtx context.Context, w int) {
	if in.gate != nil {
		defer in.gate.done(w)
	}
	enc, _ := wire.NewEncoder(in.o.Protocol)
	ep := enc.Endpoint()
	next := func() (request, bool) { return request{}, false }
	if in.bodies != nil {
		reqs := in.bodies[w]
		next = func() (request, bool) {
			if len(reqs) == 0 {
				return request{}, false
			}
			r := reqs[0]
			reqs[0], reqs = request{}, reqs[1:] // sent: its memory may go
			return r, true
		}
	} else {
		s, err := in.g.Stream(w, in.o.Writers, in.sch)
		if err != nil { // options were validated
			in.errors.Add("generator", err.Error())
			return
		}
		var b gen.Batch
		next = func() (request, bool) {
			if !s.Next(&b) {
				return request{}, false
			}
			return request{body: enc.Encode(&b), samples: b.Samples(), firstStep: b.FirstStep}, true
		}
	}
	for phase.Err() == nil {
		r, ok := next()
		if !ok {
			return
		}
		if in.gate != nil && !in.gate.enter(w, r.firstStep) {
			return
		}
		if in.pace.wait(phase, r.samples) != nil {
			return
		}
		body := r.body
		out := in.t.Write(reqCtx, ep.Path, ep.Header, body)
		n := int64(r.samples)
		in.hists[w].Record(out.Latency)
		in.window.Record(out.Latency)
		in.bytesSent.Add(int64(len(body)))
		in.samplesSent.Add(n)
		in.requests.Add(1)
		if out.OK() {
			in.requestsOK.Add(1)
			in.samplesAcked.Add(n)
		} else {
			in.errors.Add(out.Cause(), out.Message())
			backOff(phase, out)
		}
	}
}

// closeDay sends one step of every series CloseDayGap and one interval
// after the past day's end, so that the day is over for the server's
// compaction. These samples are not counted in the report.
func (in *ingest) closeDay(ctx context.Context, d *report.Disk) error {
	sch := gen.Schedule{Start: in.dayEnd.Add(CloseDayGap + in.o.Interval), Interval: in.o.Interval, Steps: 1,
		BatchSamples: in.o.BatchSamples, SamplesPerSeries: 1}
	enc, err := wire.NewEncoder(in.o.Protocol)
	if err != nil {
		return err
	}
	ep := enc.Endpoint()
	for w := range in.o.Writers {
		s, err := in.g.Stream(w, in.o.Writers, sch)
		if err != nil {
			return err
		}
		var b gen.Batch
		for s.Next(&b) {
			if out := in.t.Write(ctx, ep.Path, ep.Header, enc.Encode(&b)); !out.OK() {
				return fmt.Errorf("close the day: %s %s", out.Cause(), out.Message())
			}
			d.ClosingSamples += int64(b.Samples())
		}
	}
	return nil
}

// measureDay measures the segments of the past day's window as flushed,
// closes the day, has the server flush and run the compactions due (the
// day's merge among them; the call returns when they are done) and
// measures them again. What fails is added to notes.
func (in *ingest) measureDay(ctx context.Context, notes []string) (*report.Disk, []string) {
	from, to := in.sch.Start.UnixMilli(), in.dayEnd.UnixMilli()
	d := &report.Disk{From: in.sch.Start, To: in.dayEnd}
	snap, err := in.t.Snapshot(ctx)
	if err != nil {
		return d, append(notes, "snapshot after flush: "+err.Error())
	}
	d.AfterFlush = report.WindowFigure(snap, from, to)
	if err := in.closeDay(ctx, d); err != nil {
		return d, append(notes, err.Error())
	}
	if err := in.t.Flush(ctx); err != nil {
		return d, append(notes, "merge: "+err.Error())
	}
	if snap, err = in.t.Snapshot(ctx); err != nil {
		return d, append(notes, "snapshot after merge: "+err.Error())
	}
	d.AfterMerge = report.WindowFigure(snap, from, to)
	if m := d.AfterMerge; m == nil || m.MaxLevel <= 1 || d.AfterFlush != nil && m.Samples != d.AfterFlush.Samples {
		notes = append(notes, "the past day was not merged into one segment holding every sample of the window")
	}
	return d, notes
}

// backOff pauses a worker whose request got no answer at all, so that a
// dead server is not hammered in a tight loop.
func backOff(ctx context.Context, out target.Outcome) {
	if out.Err == nil || out.Status != 0 {
		return
	}
	select {
	case <-ctx.Done():
	case <-time.After(100 * time.Millisecond):
	}
}

func (in *ingest) report() *report.Ingest {
	h := report.NewHistogram()
	for _, x := range in.hists {
		h.Merge(x)
	}
	errs, msgs := in.errors.Result()
	r := &report.Ingest{
		Protocol:       string(in.o.Protocol),
		Writers:        in.o.Writers,
		BatchSamples:   in.o.BatchSamples,
		Series:         in.g.NumSeries(),
		Requests:       in.requests.Load(),
		RequestsOK:     in.requestsOK.Load(),
		SamplesSent:    in.samplesSent.Load(),
		SamplesAcked:   in.samplesAcked.Load(),
		BytesSent:      in.bytesSent.Load(),
		ElapsedSeconds: in.elapsed.Seconds(),
		Errors:         errs,
		ErrorMessages:  msgs,
		Latency:        h.Summary(),
	}
	if in.o.Backfill > 0 {
		r.Backfill = in.o.Backfill.String()
	}
	if s := in.elapsed.Seconds(); s > 0 {
		r.SamplesPerSecond = float64(r.SamplesAcked) / s
		r.RequestsPerSecond = float64(r.Requests) / s
	}
	return r
}
