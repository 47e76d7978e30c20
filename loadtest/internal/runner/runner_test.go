package runner

import (
	"context"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/strata-tsdb/strata/loadtest/internal/gen"
	"github.com/strata-tsdb/strata/loadtest/internal/progress"
	"github.com/strata-tsdb/strata/loadtest/internal/querymix"
	"github.com/strata-tsdb/strata/loadtest/internal/report"
	"github.com/strata-tsdb/strata/loadtest/internal/target"
	"github.com/strata-tsdb/strata/loadtest/internal/testserver"
	"github.com/strata-tsdb/strata/loadtest/internal/wire"
)

func TestMain(m *testing.M) {
	testserver.Main(m, func() error {
		return goleak.Find()
	})
}

func newTarget(t *testing.T, url string, f target.Flavour) *target.Target {
	t.Helper()
	tg, err := target.New(target.Options{URL: url, Flavour: f, Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tg.Close)
	return tg
}

func run(t *testing.T, o Options) *report.Report {
	t.Helper()
	o.Progress = progress.Options{Mode: progress.Off}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rep, err := Run(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range rep.Notes {
		t.Logf("note: %s", n)
	}
	return rep
}

// checkIngest asserts that every sample sent was acknowledged and reached
// the server.
func checkIngest(t *testing.T, rep *report.Report, wantSamples int64) {
	t.Helper()
	in := rep.Ingest
	if in.Errors.Total() != 0 {
		t.Fatalf("errors %v: %q", in.Errors, in.ErrorMessages)
	}
	if in.SamplesSent != in.SamplesAcked || in.Requests != in.RequestsOK || in.Requests == 0 {
		t.Fatalf("sent %d acked %d, requests %d ok %d", in.SamplesSent, in.SamplesAcked, in.Requests, in.RequestsOK)
	}
	if wantSamples > 0 && in.SamplesAcked != wantSamples {
		t.Fatalf("acked %d samples, want %d", in.SamplesAcked, wantSamples)
	}
	if in.Latency.Count != in.Requests {
		t.Fatalf("latency count %d for %d requests", in.Latency.Count, in.Requests)
	}
	b, a := rep.Server.Before, rep.Server.After
	if a == nil || a.SamplesAppended == nil || b.SamplesAppended == nil {
		t.Fatalf("no server figures: %+v", rep.Server)
	}
	closing := int64(0) // the step that closed a past day
	if rep.Server.Disk != nil {
		closing = rep.Server.Disk.ClosingSamples
	}
	if got := *a.SamplesAppended - *b.SamplesAppended; got != in.SamplesAcked+closing {
		t.Fatalf("server appended %d samples, %d acknowledged", got, in.SamplesAcked)
	}
	if *a.HeadSeries != int64(in.Series) {
		t.Fatalf("server holds %d series, %d generated", *a.HeadSeries, in.Series)
	}
}

func TestIngestEndToEnd(t *testing.T) {
	for _, p := range []wire.Protocol{wire.RemoteWrite, wire.LineProtocol} {
		t.Run(string(p), func(t *testing.T) {
			srv := testserver.Start(t)
			rep := run(t, Options{
				Command: "ingest",
				Target:  newTarget(t, srv.URL, target.Strata),
				Ingest: &IngestOptions{
					Gen:      gen.Options{Hosts: 5, Seed: 1, ResetProbability: 0.001},
					Protocol: p, Writers: 3, BatchSamples: 1000, Interval: 10 * time.Second, Backfill: 30 * time.Minute,
				},
			})
			checkIngest(t, rep, 5*33*180)
			if rep.Ingest.SamplesPerSecond <= 0 || rep.Server.After.RSSBytes == nil {
				t.Fatalf("report %+v", rep.Ingest)
			}
			// Both processes' CPU time is known on Linux.
			if runtime.GOOS == "linux" && (rep.Ingest.ServerCPUSeconds == nil || rep.Ingest.LoadCPUSeconds == nil || *rep.Ingest.ServerCPUSeconds <= 0) {
				t.Fatalf("report %+v", rep.Ingest)
			}
		})
	}
}

// TestIngestPrebuild: with the bodies encoded before the run, the server
// gets the same samples as without (every step of every series once: the
// counts add up and nothing is refused as out of order), in the same
// order per writer.
func TestIngestPrebuild(t *testing.T) {
	srv := testserver.Start(t)
	rep := run(t, Options{
		Command: "ingest",
		Target:  newTarget(t, srv.URL, target.Strata),
		Ingest: &IngestOptions{
			Gen:      gen.Options{Hosts: 5, Seed: 1, ResetProbability: 0.001},
			Protocol: wire.RemoteWrite, Writers: 3, BatchSamples: 100, SamplesPerSeries: 1, Interval: 10 * time.Second, Backfill: 30 * time.Minute,
			Prebuild: true,
		},
	})
	checkIngest(t, rep, 5*33*180)
	if want := int64(180 * 2); rep.Ingest.Requests < want {
		t.Fatalf("%d requests, want at least %d (a step of each writer's series a request)", rep.Ingest.Requests, want)
	}
}

func TestIngestSampleCountAndFlush(t *testing.T) {
	srv := testserver.Start(t, "--enable-admin-api")
	rep := run(t, Options{
		Command: "ingest",
		Target:  newTarget(t, srv.URL, target.Strata),
		Ingest: &IngestOptions{
			Gen:      gen.Options{Hosts: 20, Seed: 2, Families: []string{"cpu"}, IntegerGauges: true},
			Protocol: wire.RemoteWrite, Writers: 2, BatchSamples: 5000, Interval: 10 * time.Second,
			Backfill: 24 * time.Hour, Samples: 50_000, // the count ends it first: 25 steps of 200 series
		},
		Flush: true,
	})
	checkIngest(t, rep, 50_000)
	s := rep.Server
	if s.After.BlockSamples == nil || *s.After.BlockSamples != 50_000 || s.BytesPerSample == nil || *s.BytesPerSample <= 0 {
		t.Fatalf("after flush: blocks %v samples %v bytes/sample %v", s.After.Blocks, s.After.BlockSamples, s.BytesPerSample)
	}
}

// TestIngestPastDayMerged: with PastDay the window ends at a UTC midnight
// that is over; the report measures its segments as flushed (2 h blocks)
// and after the runner closed the day and the server merged it into one
// segment holding every sample of the window, in fewer bytes.
func TestIngestPastDayMerged(t *testing.T) {
	srv := testserver.Start(t, "--enable-admin-api")
	rep := run(t, Options{
		Command: "ingest",
		Target:  newTarget(t, srv.URL, target.Strata),
		Ingest: &IngestOptions{
			Gen:      gen.Options{Hosts: 20, Seed: 2, Families: []string{"cpu"}, IntegerGauges: true},
			Protocol: wire.RemoteWrite, Writers: 2, BatchSamples: 5000, Interval: 60 * time.Second,
			Backfill: 12 * time.Hour, PastDay: true, // 720 steps of 200 series
		},
		Flush: true,
	})
	checkIngest(t, rep, 720*200)
	d := rep.Server.Disk
	if d == nil || d.AfterFlush == nil || d.AfterMerge == nil || len(rep.Notes) > 0 {
		t.Fatalf("disk %+v, notes %q", d, rep.Notes)
	}
	if !d.To.Equal(d.To.Truncate(24*time.Hour)) || d.To.Sub(d.From) != 12*time.Hour || time.Since(d.To) < CloseDayGap {
		t.Fatalf("window %s to %s: not 12 h ending at a UTC midnight %s ago", d.From, d.To, CloseDayGap)
	}
	f, m := d.AfterFlush, d.AfterMerge
	if d.ClosingSamples != 200 || f.Samples != 720*200 || f.Segments != 6 || f.MaxLevel != 1 || m.Samples != f.Samples || m.Segments != 1 || m.MaxLevel < 2 || m.Bytes >= f.Bytes {
		t.Fatalf("after flush %+v, after merge %+v", f, m)
	}
	t.Logf("bytes per sample after flush %.3f, after merge %.3f", f.BytesPerSample, m.BytesPerSample)
}

// TestIngestHistograms sends the http family's native histograms to a
// real server, flushes them and reads back how many the server appended
// and stored, and the bytes per histogram on disk.
func TestIngestHistograms(t *testing.T) {
	srv := testserver.Start(t, "--enable-admin-api")
	rep := run(t, Options{
		Command: "ingest",
		Target:  newTarget(t, srv.URL, target.Strata),
		Ingest: &IngestOptions{
			Gen:      gen.Options{Hosts: 10, Seed: 3, Families: []string{"http"}, ResetProbability: 1e-3},
			Protocol: wire.RemoteWrite, Writers: 2, BatchSamples: 2000, Interval: 10 * time.Second,
			Backfill: 2 * time.Hour, // 720 steps of 40 series
		},
		Flush: true,
	})
	checkIngest(t, rep, 720*40)
	s := rep.Server
	if s.After.BlockSamples == nil || *s.After.BlockSamples != 720*40 || s.BytesPerSample == nil || *s.BytesPerSample <= 0 {
		t.Fatalf("after flush: blocks %v samples %v bytes/sample %v", s.After.Blocks, s.After.BlockSamples, s.BytesPerSample)
	}
	t.Logf("%.0f histograms/s, %.1f bytes per histogram on disk (%s)", rep.Ingest.SamplesPerSecond, *s.BytesPerSample, s.BytesPerSampleBasis)

	// The dashboard mix's histogram queries over them answer data.
	qo := QueryOptions{Hosts: 10, Seed: 3, Concurrency: 2, Queries: 30, NoCache: true,
		Mix: querymix.Options{Families: []string{"http"}}}
	q := run(t, Options{Command: "query", Target: newTarget(t, srv.URL, target.Strata), Query: &qo}).Query
	if q.RequestsOK != 30 || q.EmptyResults != 0 || q.PointsReturned == 0 || len(q.ByTemplate) != 3 {
		t.Fatalf("%d of 30 queries answered, %d empty, %d points, templates %v: %q", q.RequestsOK, q.EmptyResults, q.PointsReturned, q.ByTemplate, q.ErrorMessages)
	}
}

func TestQueryEndToEnd(t *testing.T) {
	srv := testserver.Start(t)
	tg := newTarget(t, srv.URL, target.Strata)
	g := gen.Options{Hosts: 4, Seed: 3}
	run(t, Options{Command: "ingest", Target: tg, Ingest: &IngestOptions{
		Gen: g, Protocol: wire.RemoteWrite, Writers: 2, BatchSamples: 2000, Interval: 10 * time.Second, Backfill: 2 * time.Hour,
	}})
	for _, tc := range []struct {
		name string
		o    QueryOptions
	}{
		{"fresh", QueryOptions{Concurrency: 2, Queries: 40}},
		{"distinct-warm", QueryOptions{Concurrency: 3, Queries: 30, Distinct: 5, Warmup: true}},
		{"nocache", QueryOptions{Concurrency: 2, Queries: 20, Distinct: 5, NoCache: true}},
		{"slowest", QueryOptions{Concurrency: 2, Queries: 20, Distinct: 5, SlowOver: time.Nanosecond, Slowest: 4}},
		{"collect-between", QueryOptions{Concurrency: 2, Queries: 30, Distinct: 5, CollectBetween: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.o
			o.Hosts, o.Seed = g.Hosts, g.Seed
			rep := run(t, Options{Command: "query", Target: tg, Query: &o})
			q := rep.Query
			if q.Requests != o.Queries || q.RequestsOK != o.Queries || q.Errors.Total() != 0 {
				t.Fatalf("requests %d ok %d errors %v %q", q.Requests, q.RequestsOK, q.Errors, q.ErrorMessages)
			}
			if q.EmptyResults != 0 || q.SeriesReturned == 0 || q.PointsReturned == 0 {
				t.Fatalf("%d empty answers, %d series, %d points", q.EmptyResults, q.SeriesReturned, q.PointsReturned)
			}
			var perTemplate int64
			for _, b := range q.ByTemplate {
				perTemplate += b.Count
			}
			if q.Latency.Count != o.Queries || perTemplate != o.Queries {
				t.Fatalf("latency count %d, per template %d", q.Latency.Count, perTemplate)
			}
			// The cache header is counted when the server sends it.
			var headers int64
			for _, n := range q.Cache {
				headers += n
			}
			if headers != 0 && headers != q.Requests {
				t.Fatalf("cache header on %d of %d answers", headers, q.Requests)
			}
			// Both processes' CPU time over the queries is known on Linux
			// (the server's in clock ticks: a few warm queries may take
			// less than one).
			if runtime.GOOS == "linux" && (q.ServerCPUSeconds == nil || q.LoadCPUSeconds == nil || *q.ServerCPUSeconds < 0) {
				t.Fatalf("query cpu: server %v, load generator %v", q.ServerCPUSeconds, q.LoadCPUSeconds)
			}
			checkSlowest(t, rep, &o)
			// A query-only run collects between queries when asked (once
			// at least, as it starts), and leaves GOGC as it was.
			if q.LoadGCBetween != o.CollectBetween || (o.CollectBetween && q.LoadGCCycles < 1) {
				t.Fatalf("collections between queries %v (asked %v), %d cycles", q.LoadGCBetween, o.CollectBetween, q.LoadGCCycles)
			}
			if gogc := debug.SetGCPercent(-1); gogc < 0 {
				t.Fatal("GOGC left off after the run")
			} else {
				debug.SetGCPercent(gogc)
			}
		})
	}
}

// checkSlowest checks the slow-query figures of a query report: every
// query takes more than a nanosecond, so SlowOver 1ns counts them all.
func checkSlowest(t *testing.T, rep *report.Report, o *QueryOptions) {
	t.Helper()
	q := rep.Query
	if o.SlowOver == 0 {
		if q.SlowOverMs != 0 || q.SlowCount != 0 || len(q.Slowest) != 0 {
			t.Fatalf("slow figures without asking: %v %d %v", q.SlowOverMs, q.SlowCount, q.Slowest)
		}
		return
	}
	if q.SlowOverMs != 1e-6 || q.SlowCount != q.Requests {
		t.Fatalf("%d slow over %v ms of %d", q.SlowCount, q.SlowOverMs, q.Requests)
	}
	if len(q.Slowest) != o.Slowest {
		t.Fatalf("%d slowest listed, want %d", len(q.Slowest), o.Slowest)
	}
	for i, s := range q.Slowest {
		if s.Start.Before(rep.Started) || s.Start.After(rep.Started.Add(time.Duration(rep.ElapsedSeconds*float64(time.Second)))) {
			t.Fatalf("slowest %d sent at %v, outside the run (%v, %.3fs)", i, s.Start, rep.Started, rep.ElapsedSeconds)
		}
		if s.LatencyMs <= 0 || s.Template == "" || s.Query == "" || (i > 0 && s.LatencyMs > q.Slowest[i-1].LatencyMs) {
			t.Fatalf("slowest %d: %+v (the one before: %+v)", i, s, q.Slowest[max(i-1, 0)])
		}
	}
}

// TestSlowestKeepsTheSlowest feeds latencies in several orders and checks
// that the n slowest are kept, whatever came first.
func TestSlowestKeepsTheSlowest(t *testing.T) {
	f := func(in []int, n int, want []float64) {
		t.Helper()
		s := slowest{q: make([]report.SlowQuery, 0, n)}
		for _, ms := range in {
			s.add(querymix.Query{Template: "x"}, target.QueryOutcome{Outcome: target.Outcome{Latency: time.Duration(ms) * time.Millisecond}})
		}
		var got []float64
		for _, e := range s.q {
			got = append(got, e.LatencyMs)
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Fatalf("%v keeping %d: got %v, want %v", in, n, got, want)
		}
	}
	f([]int{1, 2, 3, 4, 5}, 3, []float64{3, 4, 5})
	f([]int{5, 4, 3, 2, 1}, 3, []float64{3, 4, 5})
	f([]int{3, 1, 5, 2, 4, 5}, 3, []float64{4, 5, 5})
	f([]int{2, 1}, 3, []float64{1, 2})
	f([]int{2, 1}, 0, nil)
}

func TestMixedEndToEnd(t *testing.T) {
	srv := testserver.Start(t)
	tg := newTarget(t, srv.URL, target.Strata)
	g := gen.Options{Hosts: 10, Seed: 4}
	rep := run(t, Options{
		Command:  "mixed",
		Target:   tg,
		Duration: 1500 * time.Millisecond,
		Ingest: &IngestOptions{Gen: g, Protocol: wire.LineProtocol, Writers: 2, BatchSamples: 1000,
			Interval: 10 * time.Second, Rate: 20_000},
		Query: &QueryOptions{Hosts: g.Hosts, Seed: g.Seed, Concurrency: 2, QPS: 40,
			Mix: querymixOptions([]string{"cpu-host", "mem-host", "net-host-rate"})},
	})
	checkIngest(t, rep, 0)
	q := rep.Query
	if q.RequestsOK == 0 || q.Errors.Total() != 0 || q.Requests != q.RequestsOK {
		t.Fatalf("queries %d ok %d errors %v %q", q.Requests, q.RequestsOK, q.Errors, q.ErrorMessages)
	}
	// The CPU time is the whole run's, reported with the writers'.
	if q.ServerCPUSeconds != nil || q.LoadCPUSeconds != nil {
		t.Fatalf("query cpu %v %v in a mixed run", q.ServerCPUSeconds, q.LoadCPUSeconds)
	}
	// Paced: about 30,000 samples and 60 queries in 1.5 s, never more.
	if rep.Ingest.SamplesAcked > 31_000+1000 || q.Requests > 61+2 {
		t.Fatalf("pacing: %d samples, %d queries", rep.Ingest.SamplesAcked, q.Requests)
	}
}

func TestValidate(t *testing.T) {
	strata, _ := target.New(target.Options{URL: "http://127.0.0.1:1", Flavour: target.Strata})
	prom, _ := target.New(target.Options{URL: "http://127.0.0.1:1", Flavour: target.Prometheus})
	ingest := func(p wire.Protocol, backfill time.Duration) *IngestOptions {
		return &IngestOptions{Gen: gen.DefaultOptions(), Protocol: p, Writers: 1, BatchSamples: 10, Interval: time.Second, Backfill: backfill}
	}
	for name, o := range map[string]Options{
		"nothing":        {Target: strata},
		"lp to prom":     {Target: prom, Ingest: ingest(wire.LineProtocol, time.Hour)},
		"unbounded":      {Target: strata, Ingest: ingest(wire.RemoteWrite, 0)},
		"query no end":   {Target: strata, Query: &QueryOptions{Hosts: 1, Concurrency: 1}},
		"warmup":         {Target: strata, Duration: time.Second, Query: &QueryOptions{Hosts: 1, Concurrency: 1, Warmup: true}},
		"no writers":     {Target: strata, Duration: time.Second, Ingest: &IngestOptions{Gen: gen.DefaultOptions(), Protocol: wire.RemoteWrite, BatchSamples: 1, Interval: time.Second}},
		"short backfill": {Target: strata, Ingest: ingest(wire.RemoteWrite, time.Millisecond)},
		"prebuild live":  {Target: strata, Duration: time.Second, Ingest: &IngestOptions{Gen: gen.DefaultOptions(), Protocol: wire.RemoteWrite, Writers: 1, BatchSamples: 10, Interval: time.Second, Prebuild: true}},
	} {
		if err := o.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	lpHist := Options{Target: strata, Ingest: ingest(wire.LineProtocol, time.Hour)}
	lpHist.Ingest.Gen.Families = []string{"cpu", "http"}
	if err := lpHist.Validate(); err == nil || !strings.Contains(err.Error(), "family http holds native histograms, which only remote write carries") {
		t.Errorf("line protocol with histograms: %v", err)
	}
	ok := Options{Target: prom, Ingest: ingest(wire.RemoteWrite, time.Hour), Query: &QueryOptions{Hosts: 1, Concurrency: 1, Queries: 1}}
	if err := ok.Validate(); err != nil {
		t.Errorf("valid options refused: %v", err)
	}
}

// TestPacer runs in a synctest bubble, whose clock moves only when every
// goroutine of the bubble waits: the waits are measured exactly, not
// against the wall clock.
func TestPacer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPacer(1000) // units per second
		start := time.Now()
		for i := range 5 {
			if err := p.wait(context.Background(), 20); err != nil {
				t.Fatal(err)
			}
			// Wait i starts once the 20·i units reserved before it have
			// gone: 20·i ms after the start.
			if d, want := time.Since(start), time.Duration(20*i)*time.Millisecond; d != want {
				t.Fatalf("wait %d returned %v after the start, want %v", i, d, want)
			}
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := p.wait(ctx, 1_000_000); err == nil {
			t.Fatal("wait ignored a cancelled context")
		}
		if err := newPacer(0).wait(context.Background(), 1<<30); err != nil {
			t.Fatal(err)
		}
	})
}

// TestLagGate runs in a synctest bubble: synctest.Wait returns once every
// goroutine of the bubble is blocked (a sync.Cond.Wait counts), so "writer
// 0 is still waiting" is observed, not guessed after a sleep.
func TestLagGate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newLagGate(2, 3)
		if !g.enter(0, 0) || !g.enter(1, 0) || !g.enter(0, 3) {
			t.Fatal("blocked within the lag")
		}
		var passed, returned atomic.Bool
		var wg sync.WaitGroup
		wg.Go(func() {
			passed.Store(g.enter(0, 4)) // 4 steps ahead of writer 1: waits
			returned.Store(true)
		})
		synctest.Wait()
		if returned.Load() {
			t.Fatalf("writer 0 ran 4 steps ahead of writer 1 with a lag of 3 (enter returned %v)", passed.Load())
		}
		g.enter(1, 2) // now within 3
		wg.Wait()
		if !passed.Load() {
			t.Fatal("writer 0 not released")
		}
		// A finished writer holds nobody back; a stopped gate releases all.
		g.done(1)
		if !g.enter(0, 100) {
			t.Fatal("held back by a finished writer")
		}
		g2 := newLagGate(2, 1)
		var entered atomic.Bool
		wg.Go(func() { entered.Store(g2.enter(0, 10)) })
		synctest.Wait()
		g2.stop()
		wg.Wait()
		if entered.Load() {
			t.Fatal("stopped gate let a writer through")
		}
	})
}

func TestStateFraction(t *testing.T) {
	in := &ingest{total: 1000}
	in.samplesSent.Store(250)
	q := &queries{o: &QueryOptions{}}
	started := time.Now().Add(-time.Second)
	if st := state(in, nil, 0, started); st.Fraction != 0.25 || len(st.Counters) != 1 {
		t.Fatalf("state %+v", st)
	}
	// The unbounded query part runs for the duration: the slowest part counts.
	st := state(in, q, 4*time.Second, started)
	if st.Fraction < 0.24 || st.Fraction > 0.3 || len(st.Counters) != 2 {
		t.Fatalf("state %+v", st)
	}
	if st := state(nil, q, 0, started); st.Fraction != -1 {
		t.Fatalf("unknown fraction %v", st.Fraction)
	}
}

func querymixOptions(templates []string) querymix.Options {
	return querymix.Options{Templates: templates}
}
