// Command loadtest is the load generator and benchmark harness of Strata.
// It generates realistic devops metrics, pushes them through Prometheus
// remote write or Influx line protocol, runs a dashboard-like mix of
// PromQL range queries, or both at once, against Strata, Prometheus or any
// server with the same API, and reports throughput, errors, latency
// percentiles and the server's memory, series and disk figures.
//
//	go run ./loadtest ingest --preset targets-rw --url http://127.0.0.1:8430
//	go run ./loadtest query --duration 30s --concurrency 4 --nocache
//	go run ./loadtest mixed --duration 1m --rate 50000 --qps 20
//	go run ./loadtest presets
//
// This file holds the command line only; the work is done by the packages
// under internal/. See README.md for the flags, presets and a reference run.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/term"

	"github.com/strata-tsdb/strata/loadtest/internal/runner"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `Usage: go run ./loadtest <command> [flags]

Commands:
  ingest    push generated series (remote write or line protocol)
  query     run a mix of PromQL range queries
  mixed     both at once, for --duration
  presets   list the presets (--preset NAME) with their flags
  table     print a Markdown table of JSON reports (--json) against TARGETS.md

Run "go run ./loadtest <command> --help" for the flags of a command.
`

// run is main without the exit, for tests.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, usage)
		return 2
	}
	if args[0] == "presets" {
		writePresets(stdout)
		return 0
	}
	if args[0] == "table" {
		if err := writeTable(stdout, args[1:]); err != nil {
			fmt.Fprintf(stderr, "loadtest: %v\n", err)
			return 1
		}
		return 0
	}
	stderrTTY := false
	width := 0
	if f, ok := stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		stderrTTY = true
		width, _, _ = term.GetSize(int(f.Fd()))
	}
	cfg, err := parse(args[0], args[1:], stderr, stderrTTY, width)
	if errors.Is(err, errHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "loadtest: %v\n", err)
		return 2
	}
	defer cfg.opts.Target.Close()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // a second interrupt kills the process
	}()
	rep, err := runner.Run(ctx, cfg.opts)
	if err != nil {
		fmt.Fprintf(stderr, "loadtest: %v\n", err)
		return 1
	}
	text := stdout
	if cfg.jsonPath == "-" {
		text = stderr
	}
	if err := rep.WriteText(text); err != nil {
		fmt.Fprintf(stderr, "loadtest: write report: %v\n", err)
		return 1
	}
	if cfg.jsonPath != "" {
		if err := writeJSON(cfg.jsonPath, stdout, rep.WriteJSON); err != nil {
			fmt.Fprintf(stderr, "loadtest: %v\n", err)
			return 1
		}
	}
	return 0
}

// writeJSON writes the report to path, or to stdout for "-".
func writeJSON(path string, stdout io.Writer, write func(io.Writer) error) (err error) {
	if path == "-" {
		return write(stdout)
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("write JSON report: %w", err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("write JSON report: %w", cerr)
		}
	}()
	if err := write(f); err != nil {
		return fmt.Errorf("write JSON report %s: %w", path, err)
	}
	return nil
}
