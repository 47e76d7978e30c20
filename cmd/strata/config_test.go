package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/strata-tsdb/strata/query"
)

func noEnv(string) (string, bool) { return "", false }

func envOf(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// TestConfigRefusesNonsense: a value that does not parse stops the start,
// whichever source gave it, with an error naming the key, the source and
// the form expected; nothing is opened first.
func TestConfigRefusesNonsense(t *testing.T) {
	dir := t.TempDir()
	yaml := func(body string) string {
		p := filepath.Join(dir, strings.NewReplacer(" ", "_", ":", "_", "{", "", "}", "", "\n", "").Replace(body)+".yaml")
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cases := []struct {
		name string
		args []string
		env  map[string]string
		want []string
	}{
		{"env duration", nil, map[string]string{"STRATA_QUERY_TIMEOUT": "fast"}, []string{`query.timeout = "fast"`, "environment STRATA_QUERY_TIMEOUT", "duration with a unit"}},
		{"env int", nil, map[string]string{"STRATA_LIMITS_MAX_SERIES": "lots"}, []string{"limits.max_series", "environment STRATA_LIMITS_MAX_SERIES", "whole number"}},
		{"file duration", []string{"--config", yaml("query: {timeout: soon}\n")}, nil, []string{`query.timeout = "soon"`, "config file", "duration with a unit"}},
		{"file bare number for a duration", []string{"--config", yaml("cache: {ttl: 30}\n")}, nil, []string{`cache.ttl = "30"`, "duration with a unit"}},
		{"flag size", []string{"--cache.max-bytes", "big"}, nil, []string{"cache.max_bytes", "flag --cache.max-bytes", "size in bytes"}},
		{"flag negative duration", []string{"--retention.raw", "-1d"}, nil, []string{"retention.raw", "0 or more"}},
		{"flag zero where zero means nothing", []string{"--query.timeout", "0"}, nil, []string{"query.timeout", "more than 0"}},
		{"flag bool", []string{"--cache.enabled=maybe"}, nil, []string{"cache.enabled", "true or false"}},
		{"choice", []string{"--log.format", "xml"}, nil, []string{"log.format", "text, json"}},
		{"choice from env", nil, map[string]string{"STRATA_WAL_SYNC": "never"}, []string{"wal.sync", "always, interval"}},
		{"otlp strategy", []string{"--otlp.translation-strategy", "Dots"}, nil, []string{"otlp.translation_strategy", "UnderscoreEscapingWithSuffixes, UnderscoreEscapingWithoutSuffixes, NoUTF8EscapingWithSuffixes, NoTranslation"}},
		{"otlp promote and promote all", []string{"--config", yaml("otlp: {promote_all_resource_attributes: true, promote_resource_attributes: [host.name]}\n")}, nil, []string{"promote_all_resource_attributes and promote_resource_attributes cannot both be set"}},
		{"otlp ignore without promote all", nil, map[string]string{"STRATA_OTLP_IGNORE_RESOURCE_ATTRIBUTES": "a,b"}, []string{"ignore_resource_attributes needs promote_all_resource_attributes"}},
		{"otlp attribute twice", []string{"--config", yaml("otlp: {promote_resource_attributes: [a, b, a]}\n")}, nil, []string{`resource attribute "a" listed twice`}},
		{"name validation", []string{"--ingest.name-validation", "ascii"}, nil, []string{"ingest.name_validation", "utf8, legacy"}},
		{"legacy names with a utf8 otlp strategy", []string{"--ingest.name-validation", "legacy", "--otlp.translation-strategy", "NoTranslation"}, nil, []string{"otlp.translation_strategy NoTranslation keeps names that ingest.name_validation legacy refuses"}},
		{"two errors at once", []string{"--query.timeout", "x"}, map[string]string{"STRATA_CACHE_TTL": "y"}, []string{"query.timeout", "cache.ttl"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			data := filepath.Join(t.TempDir(), "data")
			args := append([]string{"--listen-addr", "127.0.0.1:0", "--data-dir", data}, c.args...)
			err := run(context.Background(), args, io.Discard, io.Discard, envOf(c.env), nil)
			if err == nil {
				t.Fatal("the server started")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if _, statErr := os.Stat(data); !os.IsNotExist(statErr) {
				t.Errorf("the data dir was created before the configuration was checked")
			}
		})
	}
}

// TestConfigPrometheusUnits: durations in Prometheus' units and sizes with
// units mean the same from every source, and the server runs with them.
func TestConfigPrometheusUnits(t *testing.T) {
	file := filepath.Join(t.TempDir(), "strata.yaml")
	if err := os.WriteFile(file, []byte("retention: {raw: 30d, 5m: 1y}\ncache: {max_bytes: 64MiB}\nlimits: {max_body_bytes: 1048576}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fs := newFlagSet(io.Discard)
	if err := fs.Parse([]string{"--config", file, "--retention.1h=2y", "--query.timeout=1m30s"}); err != nil {
		t.Fatal(err)
	}
	v, err := loadConfig(fs, envOf(map[string]string{"STRATA_CACHE_TTL": "2w", "STRATA_WAL_SEGMENT_SIZE": "1GB"}))
	if err != nil {
		t.Fatal(err)
	}
	day := 24 * time.Hour
	for key, want := range map[string]time.Duration{
		"retention.raw": 30 * day, "retention.5m": 365 * day, "retention.1h": 2 * 365 * day,
		"query.timeout": 90 * time.Second, "cache.ttl": 14 * day,
	} {
		if got := v.GetDuration(key); got != want {
			t.Errorf("%s = %v, want %v", key, got, want)
		}
	}
	for key, want := range map[string]int64{"cache.max_bytes": 64 << 20, "limits.max_body_bytes": 1 << 20, "wal.segment_size": 1 << 30} {
		if got := v.GetInt64(key); got != want {
			t.Errorf("%s = %d, want %d", key, got, want)
		}
	}

	// The server starts with them and shows them as they were typed.
	s := startServer(t, "", "--retention.raw=30d", "--retention.5m=1y", "--cache.max-bytes=64MiB")
	var cfg struct {
		YAML string `json:"yaml"`
	}
	s.get("/api/v1/status/config", nil, &cfg)
	for _, w := range []string{`retention.raw: "30d"`, `retention.5m: "1y"`, `cache.max_bytes: "64MiB"`, `query.timeout: "2m"`} {
		if !strings.Contains(cfg.YAML, w) {
			t.Errorf("status/config lacks %q:\n%s", w, cfg.YAML)
		}
	}
}

// TestConfigDefaultsParse: every default, rendered as --help shows it,
// parses back to itself, so what the help shows can be typed.
func TestConfigDefaultsParse(t *testing.T) {
	for _, o := range options {
		text := formatOption(o.def)
		got, err := parseOption(o, text)
		if err != nil {
			t.Errorf("%s: default %q does not parse: %v", o.key, text, err)
			continue
		}
		want := o.def
		if b, ok := want.(byteSize); ok {
			want = int64(b)
		}
		if got != want {
			t.Errorf("%s: default %q parses to %v, want %v", o.key, text, got, want)
		}
	}
}

// TestHelpGroupsOptions: --help groups options by section and shows
// defaults in the units a user types.
func TestHelpGroupsOptions(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"--help"}, io.Discard, &out, noEnv, nil); err != errHelp {
		t.Fatalf("run --help: %v", err)
	}
	help := out.String()
	for _, w := range []string{"\nRetention:\n", "\nCache:\n", "\nLimits:\n", "--retention.raw duration", "(default 15d)", "(default 32MiB)", "(default 2y)", "--cache.max-bytes size"} {
		if !strings.Contains(help, w) {
			t.Errorf("--help lacks %q", w)
		}
	}
	// Sections follow the key's prefix: no retention flag outside Retention.
	sec := help[strings.Index(help, "\nRetention:\n"):]
	if next := strings.Index(sec[1:], "\n\n"); next > 0 {
		sec = sec[:next+1]
	}
	if strings.Count(sec, "--retention.") != 5 {
		t.Errorf("the Retention section does not hold the 5 retention flags:\n%s", sec)
	}
}

// TestJSONLogEveryLine: with log.format=json every line the server prints,
// on stdout and stderr, banner and shutdown included, is a JSON object.
func TestJSONLogEveryLine(t *testing.T) {
	var stdout, stderr syncBuffer
	ctx, cancel := context.WithCancelCause(context.Background())
	done := make(chan error, 1)
	started := make(chan string, 1)
	go func() {
		done <- run(ctx, []string{"--listen-addr", "127.0.0.1:0", "--data-dir", t.TempDir(), "--log.format", "json"},
			&stdout, &stderr, noEnv, func(addr string) { started <- addr })
	}()
	select {
	case <-started:
	case err := <-done:
		t.Fatalf("server did not start: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("server did not start within 30s")
	}
	cancel(signalCause{syscall.SIGTERM})
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("server exited with %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("server did not stop within 30s")
	}
	lines := 0
	var msgs []string
	for _, out := range []string{stdout.String(), stderr.String()} {
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			var rec struct {
				Msg string `json:"msg"`
			}
			if err := json.Unmarshal([]byte(line), &rec); err != nil {
				t.Errorf("not a JSON line: %q", line)
				continue
			}
			lines++
			msgs = append(msgs, rec.Msg)
		}
	}
	all := strings.Join(msgs, "\n")
	for _, w := range []string{"Strata is listening on http://127.0.0.1:", "received terminated, shutting down gracefully"} {
		if !strings.Contains(all, w) {
			t.Errorf("no line says %q; lines:\n%s", w, all)
		}
	}
	if lines < 3 {
		t.Errorf("only %d lines printed", lines)
	}
}

// TestConfigQueryParallelism maps query.max_parallel and
// query.max_parallel_total (flag, environment) into the frontend's
// options, zero meaning the frontend's default, and
// query.max_select_bytes into the queryable's budget unit.
func TestConfigQueryParallelism(t *testing.T) {
	fs := newFlagSet(io.Discard)
	if err := fs.Parse([]string{"--query.max-parallel=3", "--query.max-select-bytes=64MiB"}); err != nil {
		t.Fatal(err)
	}
	v, err := loadConfig(fs, envOf(map[string]string{"STRATA_QUERY_MAX_PARALLEL_TOTAL": "5"}))
	if err != nil {
		t.Fatal(err)
	}
	o := frontendOptions(v)
	if o.MaxParallel != 3 || o.MaxParallelTotal != 5 {
		t.Fatalf("frontend parallelism %d, total %d; want 3, 5", o.MaxParallel, o.MaxParallelTotal)
	}
	if got := v.GetInt64("query.max_select_bytes"); got != 64<<20 {
		t.Fatalf("query.max_select_bytes = %d, want 64 MiB", got)
	}
	fs = newFlagSet(io.Discard)
	v, err = loadConfig(fs, envOf(nil))
	if err != nil {
		t.Fatal(err)
	}
	if o := frontendOptions(v); o.MaxParallel != 0 || o.MaxParallelTotal != 0 || o.Validate() != nil {
		t.Fatalf("defaults: %+v, %v", o, o.Validate())
	}
	if o := (query.FrontendOptions{MaxParallel: -1}); o.Validate() == nil {
		t.Fatal("a negative query.max_parallel is accepted")
	}
}
