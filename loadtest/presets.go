package main

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/pflag"
)

// preset is a named scenario: flag values applied unless given explicitly.
type preset struct {
	name, command, about string
	flags                [][2]string // in display order
}

// presets are the scenarios of TARGETS.md. They name no target: pass --url
// and --flavour with them.
var presets = []preset{
	{"targets-rw-prom", "ingest", "remote write shaped as Prometheus sends it (max_samples_per_send 2,000): 4 writers, each request one sample of each of 2,000 series; 8,000 series (800 hosts × 10 CPU gauges), 3 h of 10 s data backfilled (8.64 M samples); the bodies are encoded before the clock starts (--prebuild, about 200 MB), as VictoriaMetrics' and Prometheus' benchmarks feed their servers",
		[][2]string{{"protocol", "rw"}, {"hosts", "800"}, {"families", "cpu"}, {"interval", "10s"}, {"backfill", "3h"}, {"writers", "4"}, {"batch", "2000"}, {"samples-per-series", "1"}, {"prebuild", "true"}}},
	{"targets-rw", "ingest", "remote write: 4 writers, 10,000 samples a request, 2,000 series (200 hosts × 10 CPU gauges), 12 h of 10 s data backfilled (8.64 M samples)",
		[][2]string{{"protocol", "rw"}, {"hosts", "200"}, {"families", "cpu"}, {"interval", "10s"}, {"backfill", "12h"}, {"writers", "4"}, {"batch", "10000"}}},
	{"targets-lp", "ingest", "line protocol: the same data, 1,000 lines × 10 fields a request",
		[][2]string{{"protocol", "lp"}, {"hosts", "200"}, {"families", "cpu"}, {"interval", "10s"}, {"backfill", "12h"}, {"writers", "4"}, {"batch", "10000"}}},
	{"targets-newseries", "ingest", "every request brings new series: 200,000 series (20,000 hosts × 10 CPU gauges, 6 labels each), 5 samples each; the report gives RSS per series",
		[][2]string{{"protocol", "rw"}, {"hosts", "20000"}, {"families", "cpu"}, {"interval", "10s"}, {"backfill", "50s"}, {"samples-per-series", "5"}, {"writers", "4"}, {"batch", "10000"}, {"settle", "2s"}}},
	{"targets-disk", "ingest", "disk per sample: 200 hosts × 10 CPU gauges as integer percentages at 10 s, 12 h of a UTC day that is over; flushed and measured, then the day is closed (one step 2 h after it), merged and measured again (Strata)",
		[][2]string{{"protocol", "rw"}, {"hosts", "200"}, {"families", "cpu"}, {"integer-cpu", "true"}, {"interval", "10s"}, {"backfill", "12h"}, {"past-day", "true"}, {"writers", "4"}, {"batch", "10000"}, {"flush", "true"}}},
	{"targets-histograms", "ingest", "native histograms: 200 hosts × 4 routes of request latency (schema 3, about 45 populated buckets), 12 h at 10 s (3.46 M histograms), then flush; the report gives histograms/s and bytes per histogram on disk",
		[][2]string{{"protocol", "rw"}, {"hosts", "200"}, {"families", "http"}, {"interval", "10s"}, {"backfill", "12h"}, {"writers", "4"}, {"batch", "2000"}, {"flush", "true"}}},
	{"targets-query-cold", "query", "the TARGETS.md range queries (avg by host over 11 h at 1 h steps, max_over_time of one host over 1 h at 60 s) with the cache bypassed, one at a time, for 20 s",
		[][2]string{{"hosts", "200"}, {"families", "cpu"}, {"mix", "targets"}, {"nocache", "true"}, {"concurrency", "1"}, {"duration", "20s"}}},
	{"targets-query-warm", "query", "the same queries through the cache: 50 distinct queries ending 5 min ago (out of the freshness window), each run once first, then repeated for 20 s",
		[][2]string{{"hosts", "200"}, {"families", "cpu"}, {"mix", "targets"}, {"distinct", "50"}, {"warmup", "true"}, {"end", "now-5m"}, {"concurrency", "1"}, {"duration", "20s"}}},
}

func lookupPreset(name string) (*preset, error) {
	i := slices.IndexFunc(presets, func(p preset) bool { return p.name == name })
	if i < 0 {
		var names []string
		for _, p := range presets {
			names = append(names, p.name)
		}
		return nil, fmt.Errorf("unknown preset %q (known: %s)", name, strings.Join(names, ", "))
	}
	return &presets[i], nil
}

// applyPreset sets the preset's flags that were not given on the command
// line.
func applyPreset(fs *pflag.FlagSet, cmd, name string) error {
	if name == "" {
		return nil
	}
	p, err := lookupPreset(name)
	if err != nil {
		return err
	}
	if p.command != cmd && cmd != "mixed" {
		return fmt.Errorf("preset %s is for `%s`, not `%s`", name, p.command, cmd)
	}
	for _, kv := range p.flags {
		fl := fs.Lookup(kv[0])
		if fl == nil || fl.Changed {
			continue
		}
		if err := fs.Set(kv[0], kv[1]); err != nil {
			return fmt.Errorf("preset %s: %w", name, err)
		}
	}
	return nil
}

func writePresets(w io.Writer) {
	for _, p := range presets {
		fmt.Fprintf(w, "%s (%s)\n  %s\n ", p.name, p.command, p.about)
		for _, kv := range p.flags {
			fmt.Fprintf(w, " --%s=%s", kv[0], kv[1])
		}
		fmt.Fprintln(w)
	}
}
