package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/strata-tsdb/strata/loadtest/internal/report"
)

// targetRow is one figure of a preset's report set against its target in
// ../shared/TARGETS.md.
type targetRow struct {
	what, target string
	figure       func(r *report.Report) (string, bool)
}

// presetTargets are the rows of the benchmark table, by preset.
var presetTargets = map[string][]targetRow{
	"targets-rw-prom": {{"ingest, remote write, 2,000 series × 1 sample a request, 4 writers, fsync on, bodies encoded ahead", "≥ 1,500,000 samples/s", ingestRate}},
	"targets-rw":      {{"ingest, remote write, 12 h of 200 hosts × 10 gauges backfilled", "≥ 1,200,000 samples/s", ingestRate}},
	"targets-lp":      {{"ingest, line protocol, 1,000 lines × 10 fields a request", "≥ 1,600,000 samples/s", ingestRate}},
	"targets-newseries": {
		{"ingest, every sample a new series (200,000 series × 5)", "≥ 450,000 samples/s", ingestRate},
		{"memory per active series (RSS growth / series)", "≤ 700 B", rssPerSeries},
	},
	"targets-disk": {
		{"disk per sample after flush (2 h segments), index included", "–", diskAfter(false)},
		{"disk per sample after merge (day segment), index included", "≤ 0.6 B (next ≤ 0.40)", diskAfter(true)},
	},
	"targets-histograms": {{"native histogram ingest, schema 3 (a histogram is a sample)", "≥ 100,000 histograms/s", ingestRate}},
	"targets-query-cold": {{"cold range query (cache bypassed), p50 / p99", "p99 ≤ 15 ms", queryLatency}},
	"targets-query-warm": {{"warm range query (cache hit), p50 / p99", "p50 ≤ 0.3 ms, p99 ≤ 1 ms", queryLatency}},
}

func ingestRate(r *report.Report) (string, bool) {
	if r.Ingest == nil {
		return "", false
	}
	s := fmt.Sprintf("%s samples/s", report.Count(int64(r.Ingest.SamplesPerSecond+0.5)))
	if n := r.Ingest.Errors.Total(); n > 0 {
		s += fmt.Sprintf(" (%d failed requests)", n)
	}
	return s, true
}

func rssPerSeries(r *report.Report) (string, bool) {
	if r.Server == nil || r.Server.RSSPerSeriesBytes == nil {
		return "", false
	}
	return fmt.Sprintf("%s B", report.Count(int64(*r.Server.RSSPerSeriesBytes+0.5))), true
}

func bytesPerSample(r *report.Report) (string, bool) {
	if r.Server == nil || r.Server.BytesPerSample == nil {
		return "", false
	}
	return fmt.Sprintf("%.2f B", *r.Server.BytesPerSample), true
}

// diskAfter gives the window's bytes per sample after the flush or after
// the merge (a report from before --past-day has the flush figure only).
func diskAfter(merged bool) func(r *report.Report) (string, bool) {
	return func(r *report.Report) (string, bool) {
		if r.Server == nil || r.Server.Disk == nil {
			if merged {
				return "", false
			}
			return bytesPerSample(r)
		}
		f := r.Server.Disk.AfterFlush
		if merged {
			f = r.Server.Disk.AfterMerge
		}
		if f == nil {
			return "", false
		}
		return fmt.Sprintf("%.3f B (%d segments, %s samples)", f.BytesPerSample, f.Segments, report.Count(f.Samples)), true
	}
}

func queryLatency(r *report.Report) (string, bool) {
	if r.Query == nil {
		return "", false
	}
	l := r.Query.Latency
	s := fmt.Sprintf("%.2f / %.2f ms (%s queries)", l.P50Ms, l.P99Ms, report.Count(l.Count))
	if n := r.Query.Errors.Total(); n > 0 {
		s += fmt.Sprintf(" (%d failed)", n)
	}
	return s, true
}

// writeTable reads the JSON reports at paths and writes a Markdown table
// of their figures against TARGETS.md, one row per figure, in the order of
// paths. A report of a preset without a target row is left out.
func writeTable(w io.Writer, paths []string) error {
	fmt.Fprintln(w, "| preset | what | target | measured |")
	fmt.Fprintln(w, "|---|---|---|---|")
	for _, p := range paths {
		raw, err := os.ReadFile(p)
		if err != nil {
			return fmt.Errorf("read report: %w", err)
		}
		var r report.Report
		if err := json.Unmarshal(raw, &r); err != nil {
			return fmt.Errorf("read report %s: %w", p, err)
		}
		for _, row := range presetTargets[r.Preset] {
			fig, ok := row.figure(&r)
			if !ok {
				fig = "not in the report"
			}
			fmt.Fprintf(w, "| `%s` | %s | %s | %s |\n", r.Preset, row.what, row.target, fig)
		}
	}
	return nil
}
