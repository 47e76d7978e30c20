package main

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/strata-tsdb/strata/loadtest/internal/report"
)

// targetRow is one figure of a preset's report set against its target in
// ../shared/TARGETS.md. When a preset ran more than once, the row shows
// the run whose key is the median (the key is the figure the target
// judges: a rate, a p99, bytes) and lists every run's key beside it.
type targetRow struct {
	what, target string
	figure       func(r *report.Report) (string, bool)
	key          func(r *report.Report) (float64, string, bool)
	higherBetter bool // the key is a rate, not a latency or a size
}

// presetTargets are the rows of the benchmark table, by preset.
var presetTargets = map[string][]targetRow{
	"targets-rw-prom": {{"ingest, remote write, 2,000 series × 1 sample a request, 4 writers, fsync on, bodies encoded ahead", "≥ 1,500,000 samples/s", ingestRate, ingestKey, true}},
	"targets-rw":      {{"ingest, remote write, 12 h of 200 hosts × 10 gauges backfilled", "≥ 1,200,000 samples/s", ingestRate, ingestKey, true}},
	"targets-lp":      {{"ingest, line protocol, 1,000 lines × 10 fields a request", "≥ 1,600,000 samples/s", ingestRate, ingestKey, true}},
	"targets-newseries": {
		{"ingest, every sample a new series (200,000 series × 5)", "≥ 450,000 samples/s", ingestRate, ingestKey, true},
		{"memory per active series (RSS growth / series)", "≤ 700 B", rssPerSeries, rssKey, false},
	},
	"targets-disk": {
		{"disk per sample after flush (2 h segments), index included", "–", diskAfter(false), diskKey(false), false},
		{"disk per sample after merge (day segment), index included", "≤ 0.6 B (next ≤ 0.40)", diskAfter(true), diskKey(true), false},
	},
	"targets-histograms": {{"native histogram ingest, schema 3 (a histogram is a sample)", "≥ 100,000 histograms/s", ingestRate, ingestKey, true}},
	"targets-query-cold": {{"cold range query (cache bypassed), p50 / p99", "p99 ≤ 15 ms", queryLatency, p99Key, false}},
	"targets-query-warm": {{"warm range query (cache hit), p50 / p99", "p50 ≤ 0.3 ms, p99 ≤ 1 ms", queryLatency, p99Key, false}},
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

func ingestKey(r *report.Report) (float64, string, bool) {
	if r.Ingest == nil {
		return 0, "", false
	}
	return r.Ingest.SamplesPerSecond, fmt.Sprintf("%.2f M", r.Ingest.SamplesPerSecond/1e6), true
}

func rssKey(r *report.Report) (float64, string, bool) {
	if r.Server == nil || r.Server.RSSPerSeriesBytes == nil {
		return 0, "", false
	}
	return *r.Server.RSSPerSeriesBytes, fmt.Sprintf("%.0f B", *r.Server.RSSPerSeriesBytes), true
}

func diskKey(merged bool) func(r *report.Report) (float64, string, bool) {
	return func(r *report.Report) (float64, string, bool) {
		if r.Server == nil || r.Server.Disk == nil {
			if merged || r.Server == nil || r.Server.BytesPerSample == nil {
				return 0, "", false
			}
			return *r.Server.BytesPerSample, fmt.Sprintf("%.3f B", *r.Server.BytesPerSample), true
		}
		f := r.Server.Disk.AfterFlush
		if merged {
			f = r.Server.Disk.AfterMerge
		}
		if f == nil {
			return 0, "", false
		}
		return f.BytesPerSample, fmt.Sprintf("%.3f B", f.BytesPerSample), true
	}
}

func p99Key(r *report.Report) (float64, string, bool) {
	if r.Query == nil {
		return 0, "", false
	}
	l := r.Query.Latency
	return l.P99Ms, fmt.Sprintf("%.2f / %.2f", l.P50Ms, l.P99Ms), true
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
	s := fmt.Sprintf("%.2f / %.2f ms (%s queries", l.P50Ms, l.P99Ms, report.Count(l.Count))
	if q := r.Query; q.SlowOverMs > 0 {
		s += fmt.Sprintf(", %s over %g ms", report.Count(q.SlowCount), q.SlowOverMs)
	}
	s += ")"
	if n := r.Query.Errors.Total(); n > 0 {
		s += fmt.Sprintf(" (%d failed)", n)
	}
	return s, true
}

// writeTable reads the JSON reports at paths and writes a Markdown table
// of their figures against TARGETS.md, one row per figure, presets in the
// order they first appear in paths. Reports of the same preset are runs of
// it: the row shows the median run (by the row's key; the worse of the
// two middle runs of an even count) and every run's key in the order
// given. A report of a
// preset without a target row is left out.
func writeTable(w io.Writer, paths []string) error {
	var order []string
	runs := map[string][]*report.Report{}
	for _, p := range paths {
		raw, err := os.ReadFile(p)
		if err != nil {
			return fmt.Errorf("read report: %w", err)
		}
		r := new(report.Report)
		if err := json.Unmarshal(raw, r); err != nil {
			return fmt.Errorf("read report %s: %w", p, err)
		}
		if _, ok := runs[r.Preset]; !ok {
			order = append(order, r.Preset)
		}
		runs[r.Preset] = append(runs[r.Preset], r)
	}
	fmt.Fprintln(w, "| preset | what | target | measured |")
	fmt.Fprintln(w, "|---|---|---|---|")
	for _, preset := range order {
		for _, row := range presetTargets[preset] {
			fmt.Fprintf(w, "| `%s` | %s | %s | %s |\n", preset, row.what, row.target, medianFigure(row, runs[preset]))
		}
	}
	return nil
}

// medianFigure is the row's figure from the median run of rs, followed,
// when there is more than one run, by each run's key.
func medianFigure(row targetRow, rs []*report.Report) string {
	if len(rs) == 1 {
		fig, ok := row.figure(rs[0])
		if !ok {
			return "not in the report"
		}
		return fig
	}
	type run struct {
		r     *report.Report
		key   float64
		label string
	}
	var keyed []run
	var labels []string
	for _, r := range rs {
		k, label, ok := row.key(r)
		if !ok {
			label = "–"
		} else {
			keyed = append(keyed, run{r, k, label})
		}
		labels = append(labels, label)
	}
	if len(keyed) == 0 {
		return "not in the reports"
	}
	// Sorted best first: index n/2 is the median of an odd count and the
	// worse middle of an even one.
	sorted := slices.Clone(keyed)
	slices.SortStableFunc(sorted, func(a, b run) int {
		c := cmp.Compare(a.key, b.key)
		if row.higherBetter {
			c = -c
		}
		return c
	})
	fig, _ := row.figure(sorted[len(sorted)/2].r)
	return fmt.Sprintf("%s; median of %d runs (%s)", fig, len(rs), strings.Join(labels, ", "))
}
