package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"

	"github.com/spf13/pflag"

	"github.com/strata-tsdb/strata/buffer"
	"github.com/strata-tsdb/strata/buffer/wal"
)

// walRepair implements `strata wal repair`: with the server stopped, it
// checks every write-ahead log segment of the configured data dir, cuts a
// damaged one at the damage (keeping a copy in wal/quarantine) and a torn
// tail at the last good record, and reports what it did. It returns the
// exit status: 0 when the log is sound now, 1 when it could not check it.
func walRepair(args []string, stdout, stderr io.Writer, environ func(string) (string, bool)) int {
	if len(args) == 0 || args[0] != "repair" {
		fmt.Fprintln(stderr, "Usage: strata wal repair [--data-dir DIR | --config FILE]")
		return 2
	}
	fs := newFlagSet(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: strata wal repair [flags]\n\nWith the server stopped, checks the write-ahead log of the data dir, cuts a\ndamaged segment at the damage (a copy goes to <data-dir>/wal/quarantine)\nand a torn tail at the last good record. Exits 0 when the log is sound.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		return 2
	}
	v, err := loadConfig(fs, environ)
	if err != nil {
		fmt.Fprintln(stderr, "strata wal repair:", err)
		return 1
	}
	dataDir := v.GetString("data_dir")
	lock, err := buffer.LockDir(dataDir)
	if err != nil {
		fmt.Fprintln(stderr, "strata wal repair:", err)
		return 1
	}
	defer lock.Release()
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	dir := filepath.Join(dataDir, "wal")
	rep, err := wal.ReplayRepair(logger, dir, 0, nil, nil)
	if err != nil {
		fmt.Fprintln(stderr, "strata wal repair:", err)
		return 1
	}
	if len(rep.Corruptions) == 0 {
		fmt.Fprintf(stdout, "%s: no damage found (a torn tail, if any, was cut)\n", dir)
		return 0
	}
	fmt.Fprintf(stdout, "%s: %d damaged or missing segment(s), %d damaged range(s), %d bytes removed (the good records around them kept)\n",
		dir, len(rep.Corruptions), rep.DamagedRanges, rep.DiscardedBytes)
	for _, ce := range rep.Corruptions {
		fmt.Fprintf(stdout, "  %v\n", ce)
	}
	for _, q := range rep.Quarantined {
		fmt.Fprintf(stdout, "  copy kept at %s\n", q)
	}
	return 0
}
