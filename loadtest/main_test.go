package main

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strata-tsdb/strata/loadtest/internal/report"
	"github.com/strata-tsdb/strata/loadtest/internal/testserver"
	"github.com/strata-tsdb/strata/loadtest/internal/wire"
)

func TestMain(m *testing.M) { testserver.Main(m) }

func mustParse(t *testing.T, cmd string, args ...string) *config {
	t.Helper()
	cfg, err := parse(cmd, args, io.Discard, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestPresets(t *testing.T) {
	cfg := mustParse(t, "ingest", "--preset", "targets-rw", "--writers", "2")
	in := cfg.opts.Ingest
	if in.Gen.Hosts != 200 || len(in.Gen.Families) != 1 || in.Backfill != 12*time.Hour || in.BatchSamples != 10_000 || in.Protocol != wire.RemoteWrite {
		t.Fatalf("preset not applied: %+v", in)
	}
	if in.Writers != 2 {
		t.Fatalf("explicit --writers lost to the preset: %d", in.Writers)
	}
	if cfg.opts.Preset != "targets-rw" || cfg.opts.Settings["backfill"] != "12h0m0s" {
		t.Fatalf("settings %v", cfg.opts.Settings)
	}
	q := mustParse(t, "query", "--preset", "targets-query-warm").opts.Query
	if q.Mix.Mix != "targets" || q.Distinct != 50 || !q.Warmup || q.End.IsZero() || time.Since(q.End) < 5*time.Minute {
		t.Fatalf("query preset %+v", q)
	}
	// Every preset parses for its command.
	for _, p := range presets {
		mustParse(t, p.command, "--preset", p.name)
	}
}

func TestParseErrors(t *testing.T) {
	for _, args := range [][]string{
		{"ingest", "--preset", "targets-query-cold"},
		{"ingest", "--preset", "nope"},
		{"ingest", "--flavour", "prometheus", "--protocol", "lp", "--backfill", "1h"},
		{"ingest", "--url", "http://192.0.2.1:8430", "--backfill", "1h"},
		{"ingest"}, // no bound
		{"query"},  // no bound
		{"mixed", "--queries", "10", "--backfill", "1h"},
		{"query", "--duration", "1s", "--end", "yesterday"},
		{"query", "--duration", "1s", "--families", "mem", "--templates", "cpu-host"},
		{"bench"},
		{"ingest", "--backfill", "1h", "extra"},
	} {
		if _, err := parse(args[0], args[1:], io.Discard, false, 0); err == nil {
			t.Errorf("%q accepted", args)
		}
	}
}

func TestParseEnd(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	for in, want := range map[string]time.Time{
		"":                     {},
		"now":                  now,
		"now-90m":              now.Add(-90 * time.Minute),
		"1700000123.5":         time.UnixMilli(1_700_000_123_500),
		"2025-01-02T03:04:05Z": time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC),
	} {
		got, err := parseEnd(in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("parseEnd(%q) = %v, %v", in, got, err)
		}
	}
}

func TestUsage(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run(nil, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "Commands:") {
		t.Fatalf("no args: %d %q", code, errOut.String())
	}
	out.Reset()
	if code := run([]string{"presets"}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "targets-newseries (ingest)") {
		t.Fatalf("presets: %d %q", code, out.String())
	}
	errOut.Reset()
	if code := run([]string{"query", "--help"}, &out, &errOut); code != 0 || !strings.Contains(errOut.String(), "--nocache") {
		t.Fatalf("help: %d %q", code, errOut.String())
	}
}

// TestCommandEndToEnd runs the command as `go run ./loadtest` would, against
// a real Strata, and reads its JSON report.
func TestCommandEndToEnd(t *testing.T) {
	srv := testserver.Start(t)
	dir := t.TempDir()
	runCmd := func(args ...string) *report.Report {
		t.Helper()
		path := filepath.Join(dir, args[0]+".json")
		var out, errOut bytes.Buffer
		args = append(args, "--url", srv.URL, "--target-data-dir", srv.DataDir, "--hosts", "3", "--progress", "lines", "--progress-interval", "100ms", "--json", path)
		if code := run(args, &out, &errOut); code != 0 {
			t.Fatalf("%q: exit %d\n%s", args, code, errOut.String())
		}
		if !strings.Contains(out.String(), " against "+srv.URL) || !strings.Contains(errOut.String(), "done") {
			t.Fatalf("%q: report %q, progress %q", args, out.String(), errOut.String())
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var rep report.Report
		if err := json.Unmarshal(b, &rep); err != nil {
			t.Fatal(err)
		}
		return &rep
	}
	in := runCmd("ingest", "--backfill", "1h", "--protocol", "lp", "--batch", "2000").Ingest
	if want := int64(3 * 33 * 360); in.SamplesSent != want || in.SamplesAcked != want || in.Errors.Total() != 0 {
		t.Fatalf("ingest: sent %d acked %d errors %v", in.SamplesSent, in.SamplesAcked, in.Errors)
	}
	rep := runCmd("query", "--queries", "20", "--concurrency", "2", "--windows", "1h")
	if q := rep.Query; q.RequestsOK != 20 || q.EmptyResults != 0 {
		t.Fatalf("query: %+v", q)
	}
	if rep.Server.After.DiskBytes == nil || *rep.Server.After.DiskBytes == 0 {
		t.Fatalf("data dir not measured: %+v", rep.Server.After)
	}
	rep = runCmd("mixed", "--duration", "1s", "--rate", "5000", "--qps", "20", "--windows", "1h")
	if rep.Ingest.SamplesAcked == 0 || rep.Ingest.SamplesAcked != rep.Ingest.SamplesSent || rep.Query.RequestsOK == 0 || rep.Query.Errors.Total() != 0 {
		t.Fatalf("mixed: ingest %+v query %+v", rep.Ingest, rep.Query)
	}
}

// TestTable: the table command sets each preset's figures against its
// target, and every TARGETS preset has its rows.
func TestTable(t *testing.T) {
	dir := t.TempDir()
	rss, bps := 812.4, 0.371
	reports := []report.Report{
		{Command: "ingest", Preset: "targets-rw-prom", Ingest: &report.Ingest{SamplesPerSecond: 1234567.4}},
		{Command: "ingest", Preset: "targets-newseries", Ingest: &report.Ingest{SamplesPerSecond: 500000}, Server: &report.Server{RSSPerSeriesBytes: &rss}},
		{Command: "ingest", Preset: "targets-disk", Server: &report.Server{BytesPerSample: &bps}},
		{Command: "query", Preset: "targets-query-cold", Query: &report.Query{Latency: report.Latency{Count: 1500, P50Ms: 1.234, P99Ms: 12.5}}},
	}
	var paths []string
	for _, r := range reports {
		p := filepath.Join(dir, r.Preset+".json")
		raw, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, raw, 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	var out, errOut bytes.Buffer
	if code := run(append([]string{"table"}, paths...), &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	for _, want := range []string{
		"| `targets-rw-prom` | ingest, remote write, 2,000 series × 1 sample a request, 4 writers, fsync on, bodies encoded ahead | ≥ 1,500,000 samples/s | 1,234,567 samples/s |",
		"| 500,000 samples/s |", "| 812 B |", "| 0.37 B |", "| 1.23 / 12.50 ms (1,500 queries) |",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
	for _, p := range presets {
		if _, ok := presetTargets[p.name]; !ok {
			t.Errorf("preset %s has no row in the table", p.name)
		}
	}
}

// TestTableMedianOfRuns: reports of the same preset are runs of it. The
// row shows the median run by the figure the target judges (the highest
// rate is best, the lowest p99 is best; an even count shows the worse
// middle run) and lists every run in the order given.
func TestTableMedianOfRuns(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, r report.Report) string {
		p := filepath.Join(dir, name+".json")
		raw, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, raw, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	rate := func(name string, v float64) string {
		return write(name, report.Report{Command: "ingest", Preset: "targets-rw-prom", Ingest: &report.Ingest{SamplesPerSecond: v}})
	}
	lat := func(name string, p50, p99 float64) string {
		return write(name, report.Report{Command: "query", Preset: "targets-query-warm", Query: &report.Query{Latency: report.Latency{Count: 100, P50Ms: p50, P99Ms: p99}}})
	}
	paths := []string{
		rate("r1", 1_400_000), lat("w1", 0.28, 0.84),
		rate("r2", 2_190_000), lat("w2", 0.38, 2.70),
		rate("r3", 1_720_000), lat("w3", 0.25, 1.10),
	}
	table := func(paths ...string) string {
		var out, errOut bytes.Buffer
		if code := run(append([]string{"table"}, paths...), &out, &errOut); code != 0 {
			t.Fatalf("exit %d: %s", code, errOut.String())
		}
		return out.String()
	}
	got := table(paths...)
	for _, want := range []string{
		"| 1,720,000 samples/s; median of 3 runs (1.40 M, 2.19 M, 1.72 M) |",
		"| 0.25 / 1.10 ms (100 queries); median of 3 runs (0.28 / 0.84, 0.38 / 2.70, 0.25 / 1.10) |",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("table lacks %q:\n%s", want, got)
		}
	}
	if n := strings.Count(got, "`targets-rw-prom`"); n != 1 {
		t.Errorf("targets-rw-prom has %d rows, want 1:\n%s", n, got)
	}
	// Two runs: the worse of the two is shown, in either direction.
	got = table(paths[0], paths[2], paths[1], paths[3])
	for _, want := range []string{
		"| 1,400,000 samples/s; median of 2 runs (1.40 M, 2.19 M) |",
		"| 0.38 / 2.70 ms (100 queries); median of 2 runs (0.28 / 0.84, 0.38 / 2.70) |",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("table lacks %q:\n%s", want, got)
		}
	}
	// A run that counted its slow queries (bench.sh's warm run) says how
	// many.
	slow := write("w4", report.Report{Command: "query", Preset: "targets-query-warm", Query: &report.Query{
		Latency: report.Latency{Count: 21_366, P50Ms: 0.28, P99Ms: 0.84}, SlowOverMs: 1, SlowCount: 137}})
	if got, want := table(slow), "| 0.28 / 0.84 ms (21,366 queries, 137 over 1 ms) |"; !strings.Contains(got, want) {
		t.Errorf("table lacks %q:\n%s", want, got)
	}
}
