package main

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/strata-tsdb/strata/loadtest/internal/gen"
	"github.com/strata-tsdb/strata/loadtest/internal/progress"
	"github.com/strata-tsdb/strata/loadtest/internal/querymix"
	"github.com/strata-tsdb/strata/loadtest/internal/runner"
	"github.com/strata-tsdb/strata/loadtest/internal/target"
	"github.com/strata-tsdb/strata/loadtest/internal/wire"
)

var errHelp = errors.New("help requested")

// config is a parsed command line.
type config struct {
	opts     runner.Options
	jsonPath string
}

// flagSet declares the flags of cmd: target, run and data flags for all,
// plus ingest flags for ingest and mixed, query flags for query and mixed.
func flagSet(cmd string, stderr io.Writer) *pflag.FlagSet {
	fs := pflag.NewFlagSet(cmd, pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.SortFlags = false

	fs.String("preset", "", "a named scenario setting several flags (flags given explicitly win); see: go run ./loadtest presets")
	fs.String("url", "http://127.0.0.1:8430", "base URL of the target")
	fs.String("flavour", "strata", "kind of target: strata, prometheus or generic")
	fs.String("target-data-dir", "", "the target's data directory on this machine, to measure it on disk")
	fs.Bool("allow-remote", false, "allow a target that is not on the loopback interface")
	fs.Duration("timeout", time.Minute, "timeout of each request")
	fs.Duration("duration", 0, "length of the measured phase (0 = until the backfill, --samples or --queries is done)")
	fs.String("json", "", "also write the report as JSON to this file (- for stdout, the text report then goes to stderr)")
	fs.String("progress", "auto", "progress display: auto (bar on a terminal, lines otherwise), bar, lines or off")
	fs.Duration("progress-interval", 5*time.Second, "time between progress lines when not on a terminal")
	fs.Duration("settle", 0, "wait this long after the run before reading the server's figures")

	fs.Int("hosts", 100, "hosts in the generated fleet (the query mix must use the same as the ingest)")
	fs.String("families", strings.Join(gen.DefaultFamilyNames(), ","), "metric families of each host: "+strings.Join(gen.FamilyNames(), ", ")+" (http: native histograms of request latency per route, remote write only)")
	fs.Uint64("seed", 1, "seed of the data (hosts, labels, values) and of the query draws")
	fs.Duration("interval", 10*time.Second, "time between two samples of a series (the scrape interval)")

	if cmd == "ingest" || cmd == "mixed" {
		fs.String("protocol", "rw", "write protocol: rw (Prometheus remote write) or lp (Influx line protocol)")
		fs.Int("writers", 4, "concurrent writers; each owns a share of the series")
		fs.Int("batch", 10_000, "samples per request (line protocol: lines × fields)")
		fs.Int("samples-per-series", 0, "consecutive samples of a series in a request (0 = as many as fit the batch)")
		fs.Float64("rate", 0, "target samples per second (0 = as fast as the server accepts)")
		fs.Duration("backfill", 0, "generate this past window, up to now, and stop when it is sent (0 = live: stamp samples with the clock)")
		fs.Int64("samples", 0, "stop after this many samples, rounded up to whole steps (0 = no count)")
		fs.Duration("max-lag", 10*time.Minute, "when backfilling, how far in data time a writer may run ahead of the slowest")
		fs.Bool("integer-cpu", false, "round CPU percentages to whole numbers")
		fs.Float64("reset-probability", 1e-4, "chance per host and step that it reboots, resetting its counters")
		fs.Bool("flush", false, "after ingesting, have the target write its head to disk and run the compactions due (Strata, needs --enable-admin-api) before reading its figures")
		fs.Bool("prebuild", false, "encode every request body before the clock starts, so that the report measures the server and the sending, not the generator's encoding (protobuf and snappy); needs a bounded run and memory for every body")
		fs.Bool("past-day", false, "end the backfill window at a UTC midnight at least 2h ago; with --flush, then send one step of every series 2h after it (the day is over: Strata merges it) and report bytes per sample of the window's segments after the flush and after the merge")
	}
	if cmd == "query" || cmd == "mixed" {
		fs.String("mix", "dashboard", "query mix: dashboard (rate, sum by, avg/max_over_time, topk over random hosts) or targets (the TARGETS.md queries)")
		fs.String("windows", "1h,12h,24h,7d", "time windows drawn for dashboard queries; each gets a dashboard's step")
		fs.String("templates", "", "comma-separated query templates to keep (default all that read the loaded families)")
		fs.Int("concurrency", 4, "queries in flight")
		fs.Float64("qps", 0, "target queries per second (0 = as fast as the server answers)")
		fs.Int64("queries", 0, "stop after this many queries (0 = no count)")
		fs.Bool("nocache", false, "bypass the server's result cache (nocache=1 and Cache-Control: no-cache)")
		fs.Int("distinct", 0, "draw this many queries once and repeat them (0 = draw every query afresh)")
		fs.Bool("warmup", false, "run each --distinct query once before measuring")
		fs.Bool("gc-between-queries", true, "in a query-only run, collect the load generator's garbage between queries (at the points its runtime would) rather than whenever the runtime chooses, which put its own pauses inside the latency of queries in flight")
		fs.Duration("slow-over", 0, "count the queries slower than this (0 = do not count)")
		fs.Int("slowest", 0, "list this many of the slowest queries with the time each was sent (UTC), to match with the server's logs or a trace")
		fs.String("end", "", "end of every query window: RFC 3339, Unix seconds, now or now-DURATION (default: the time of each query)")
	}
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: go run ./loadtest %s [flags]\n\nFlags:\n", cmd)
		fs.PrintDefaults()
	}
	return fs
}

// parse reads the command line of cmd.
func parse(cmd string, args []string, stderr io.Writer, tty bool, width int) (*config, error) {
	switch cmd {
	case "ingest", "query", "mixed":
	default:
		return nil, fmt.Errorf("unknown command %q (want ingest, query, mixed or presets)", cmd)
	}
	fs := flagSet(cmd, stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return nil, errHelp
		}
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	preset, _ := fs.GetString("preset")
	if err := applyPreset(fs, cmd, preset); err != nil {
		return nil, err
	}
	f := flagReader{fs: fs}
	cfg := &config{jsonPath: f.str("json")}
	o := &cfg.opts
	o.Command, o.Preset = cmd, preset
	o.Settings = map[string]string{}
	fs.VisitAll(func(fl *pflag.Flag) { o.Settings[fl.Name] = fl.Value.String() })

	flavour, err := target.ParseFlavour(f.str("flavour"))
	if err != nil {
		return nil, err
	}
	conns := 16
	if cmd != "query" {
		conns = max(conns, f.int("writers")+4)
	}
	if cmd != "ingest" {
		conns = max(conns, f.int("concurrency")+4)
	}
	o.Target, err = target.New(target.Options{
		URL: f.str("url"), Flavour: flavour, DataDir: f.str("target-data-dir"),
		Timeout: f.dur("timeout"), AllowRemote: f.bool("allow-remote"), Conns: conns,
	})
	if err != nil {
		return nil, err
	}
	o.Duration, o.Settle = f.dur("duration"), f.dur("settle")
	mode, err := progress.ParseMode(f.str("progress"))
	if err != nil {
		return nil, err
	}
	o.Progress = progress.Options{Out: stderr, Mode: mode, TTY: tty, Width: width, Interval: f.dur("progress-interval")}

	families := splitList(f.str("families"))
	seed, hosts, interval := f.uint64("seed"), f.int("hosts"), f.dur("interval")
	if cmd != "query" {
		proto, err := wire.ParseProtocol(f.str("protocol"))
		if err != nil {
			return nil, err
		}
		o.Ingest = &runner.IngestOptions{
			Gen: gen.Options{Hosts: hosts, Families: families, Seed: seed,
				IntegerGauges: f.bool("integer-cpu"), ResetProbability: f.float("reset-probability")},
			Protocol: proto, Writers: f.int("writers"), BatchSamples: f.int("batch"),
			SamplesPerSeries: f.int("samples-per-series"), Interval: interval,
			Backfill: f.dur("backfill"), Samples: f.int64("samples"), Rate: f.float("rate"), MaxLag: f.dur("max-lag"),
			PastDay: f.bool("past-day"), Prebuild: f.bool("prebuild"),
		}
		o.Flush = f.bool("flush")
	}
	if cmd != "ingest" {
		windows, err := querymix.ParseWindows(f.str("windows"))
		if err != nil {
			return nil, err
		}
		end, err := parseEnd(f.str("end"), time.Now())
		if err != nil {
			return nil, err
		}
		o.Query = &runner.QueryOptions{
			Mix: querymix.Options{Mix: f.str("mix"), Families: families, Windows: windows,
				Templates: splitList(f.str("templates")), Interval: interval},
			Hosts: hosts, Seed: seed, Concurrency: f.int("concurrency"), QPS: f.float("qps"),
			Queries: f.int64("queries"), NoCache: f.bool("nocache"), Distinct: f.int("distinct"),
			Warmup: f.bool("warmup"), End: end, SlowOver: f.dur("slow-over"), Slowest: f.int("slowest"),
			CollectBetween: f.bool("gc-between-queries"),
		}
	}
	if err := f.err; err != nil {
		return nil, err
	}
	if cmd == "mixed" && o.Duration == 0 {
		return nil, errors.New("mixed needs --duration")
	}
	return cfg, o.Validate()
}

// parseEnd reads --end: empty (zero time), now, now-DURATION, RFC 3339 or
// Unix seconds.
func parseEnd(s string, now time.Time) (time.Time, error) {
	switch {
	case s == "":
		return time.Time{}, nil
	case s == "now":
		return now, nil
	case strings.HasPrefix(s, "now-"):
		d, err := time.ParseDuration(s[len("now-"):])
		if err != nil {
			return time.Time{}, fmt.Errorf("--end %q: %w", s, err)
		}
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if secs, err := strconv.ParseFloat(s, 64); err == nil {
		return time.UnixMilli(int64(secs * 1000)), nil
	}
	return time.Time{}, fmt.Errorf("--end %q: want RFC 3339, Unix seconds, now or now-DURATION", s)
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// flagReader reads declared flags, keeping the first error.
type flagReader struct {
	fs  *pflag.FlagSet
	err error
}

func (f *flagReader) keep(err error) {
	if f.err == nil && err != nil {
		f.err = err
	}
}

func (f *flagReader) str(n string) string { v, err := f.fs.GetString(n); f.keep(err); return v }
func (f *flagReader) int(n string) int    { v, err := f.fs.GetInt(n); f.keep(err); return v }
func (f *flagReader) int64(n string) int64 {
	v, err := f.fs.GetInt64(n)
	f.keep(err)
	return v
}
func (f *flagReader) uint64(n string) uint64 {
	v, err := f.fs.GetUint64(n)
	f.keep(err)
	return v
}
func (f *flagReader) bool(n string) bool { v, err := f.fs.GetBool(n); f.keep(err); return v }
func (f *flagReader) float(n string) float64 {
	v, err := f.fs.GetFloat64(n)
	f.keep(err)
	return v
}
func (f *flagReader) dur(n string) time.Duration {
	v, err := f.fs.GetDuration(n)
	f.keep(err)
	return v
}
