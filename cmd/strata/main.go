// Command strata runs the Strata metrics store: one process that accepts
// pushed metrics, keeps them durably and answers PromQL over HTTP.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "healthcheck" {
		os.Exit(healthcheck(os.Args[2:], os.Stdout, os.Stderr, osEnviron))
	}
	if len(os.Args) > 1 && os.Args[1] == "wal" {
		os.Exit(walRepair(os.Args[2:], os.Stdout, os.Stderr, osEnviron))
	}
	ctx, stop := shutdownSignals()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr, osEnviron, nil)
	stop()
	if errors.Is(err, errHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "strata:", err)
		os.Exit(1)
	}
}

// signalCause is the cause of the context shutdownSignals cancels: the
// server logs it, in the configured log format.
type signalCause struct{ sig os.Signal }

func (c signalCause) Error() string { return "received " + c.sig.String() }

// shutdownSignals returns a context cancelled by the first SIGINT or
// SIGTERM (with signalCause), which starts a graceful shutdown. A second signal exits at once
// with status 1: every acknowledged write is in the write-ahead log
// already, so only the flush of the head is skipped, and the next start
// replays it.
func shutdownSignals() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(context.Background())
	sigc := make(chan os.Signal, 2)
	signal.Notify(sigc, syscall.SIGINT, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case sig := <-sigc:
			cancel(signalCause{sig})
		case <-done:
			return
		}
		select {
		case sig := <-sigc:
			fmt.Fprintf(os.Stderr, "strata: received %s again, exiting at once; the write-ahead log keeps every acknowledged write\n", sig)
			os.Exit(1)
		case <-done:
		}
	}()
	return ctx, func() {
		signal.Stop(sigc)
		close(done)
		cancel(nil)
	}
}
