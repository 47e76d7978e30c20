package main

import (
	"log/slog"
	"math"
	"os"
	"runtime/debug"
	"strconv"

	"github.com/spf13/viper"
)

// runtimePolicy is how the Go runtime's garbage collector is set: the
// heap's growth over the live heap before a collection (GOGC) and a soft
// limit on the runtime's memory (GOMEMLIMIT).
//
// Most of Strata's heap is the head: label sets, series and chunks that
// live until a flush or longer. At GOGC=100 the heap may grow to twice
// that before a collection, and RSS follows: at a million active series it
// was 1.4-1.6 × the live heap. A lower GOGC trades GC CPU for memory
// (measured in docs/benchmarks.md: at 50, 8-13 % less RSS for 28-46 % more
// CPU per ingested sample), so the default stays Go's. The memory limit
// makes the collector work harder only as the process nears a budget: by
// default 90 % of a container's memory limit, as Prometheus 3's
// auto-gomemlimit, so a head that fits is collected into it instead of
// being killed at the GC's peak.
type runtimePolicy struct {
	gcPercent   int   // runtime.gogc; -1 when GOGC in the environment decides
	memoryLimit int64 // bytes; 0: none (or GOMEMLIMIT decides)
	limitFrom   string
}

// memoryLimitShare is the share of a cgroup's memory limit taken as the
// soft limit when runtime.memory_limit is 0: the rest is for what the Go
// runtime does not count (the kernel's page cache of mmapped segments is
// charged to the cgroup too, but is reclaimable).
const memoryLimitShare = 0.9

// readRuntimePolicy reads the policy; lookupEnv is the process'
// environment, which the Go runtime read at start (GOGC and GOMEMLIMIT
// set there win over the configuration: the runtime applied them
// already). cgroupLimit gives the container's memory limit.
func readRuntimePolicy(v *viper.Viper, lookupEnv func(string) (string, bool), cgroupLimit func() (uint64, bool)) runtimePolicy {
	p := runtimePolicy{gcPercent: v.GetInt("runtime.gogc"), memoryLimit: v.GetInt64("runtime.memory_limit"), limitFrom: "runtime.memory_limit"}
	if _, ok := lookupEnv("GOGC"); ok {
		p.gcPercent = -1
	}
	switch _, env := lookupEnv("GOMEMLIMIT"); {
	case env:
		p.memoryLimit, p.limitFrom = 0, "GOMEMLIMIT"
	case p.memoryLimit == 0:
		if n, ok := cgroupLimit(); ok {
			p.memoryLimit, p.limitFrom = int64(float64(n)*memoryLimitShare), "cgroup memory limit × 0.9"
		}
	}
	return p
}

// gogc returns the GC percentage in force once the policy is applied, as
// GOGC spells it (for runtimeinfo).
func (p runtimePolicy) gogc() string {
	if p.gcPercent < 0 {
		return os.Getenv("GOGC")
	}
	return strconv.Itoa(p.gcPercent)
}

// apply sets the policy on the runtime, for the whole process.
func (p runtimePolicy) apply(logger *slog.Logger) {
	if p.gcPercent >= 0 {
		debug.SetGCPercent(p.gcPercent)
	}
	if p.memoryLimit > 0 {
		debug.SetMemoryLimit(p.memoryLimit)
	}
	attrs := []any{"gogc", p.gogc()}
	if limit := debug.SetMemoryLimit(-1); limit != math.MaxInt64 { // -1 reads it
		attrs = append(attrs, "memory_limit_bytes", limit, "memory_limit_from", p.limitFrom)
	}
	logger.Info("garbage collector", attrs...)
}
