package main

import (
	"io"
	"log/slog"
	"math"
	"os"
	"runtime/debug"
	"testing"
)

// TestRuntimePolicy: runtime.gogc and runtime.memory_limit set the
// collector, the GOGC and GOMEMLIMIT environment variables win over them
// (the runtime applied those already), and without a configured limit a
// container's memory limit gives one, 90 % of it.
func TestRuntimePolicy(t *testing.T) {
	noCgroup := func() (uint64, bool) { return 0, false }
	cgroup := func() (uint64, bool) { return 1 << 30, true }
	f := func(args []string, env map[string]string, cg func() (uint64, bool), wantPercent int, wantLimit int64) {
		t.Helper()
		fs := newFlagSet(io.Discard)
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		v, err := loadConfig(fs, func(string) (string, bool) { return "", false })
		if err != nil {
			t.Fatal(err)
		}
		p := readRuntimePolicy(v, func(k string) (string, bool) { s, ok := env[k]; return s, ok }, cg)
		if p.gcPercent != wantPercent || p.memoryLimit != wantLimit {
			t.Errorf("%v, env %v: gc percent %d, memory limit %d; want %d, %d", args, env, p.gcPercent, p.memoryLimit, wantPercent, wantLimit)
		}
	}
	f(nil, nil, noCgroup, 100, 0)
	f([]string{"--runtime.gogc=40"}, nil, noCgroup, 40, 0)
	f([]string{"--runtime.gogc=40"}, map[string]string{"GOGC": "70"}, noCgroup, -1, 0)
	f(nil, nil, cgroup, 100, 1<<30*9/10)
	f([]string{"--runtime.memory-limit=512MiB"}, nil, cgroup, 100, 512<<20)
	f([]string{"--runtime.memory-limit=512MiB"}, map[string]string{"GOMEMLIMIT": "1GiB"}, cgroup, 100, 0)
	f(nil, map[string]string{"GOMEMLIMIT": "1GiB"}, cgroup, 100, 0)

	// Applied, it sets the process' collector.
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(math.MaxInt64))
	runtimePolicy{gcPercent: 37, memoryLimit: 3 << 30}.apply(slog.New(slog.DiscardHandler))
	if got := debug.SetGCPercent(37); got != 37 {
		t.Errorf("GC percent %d after applying 37", got)
	}
	if got := debug.SetMemoryLimit(-1); got != 3<<30 {
		t.Errorf("memory limit %d after applying 3 GiB", got)
	}
}

// TestRuntimeInfoGOGC: runtimeinfo reports the GC percentage in force, the
// configured one when the environment sets none.
func TestRuntimeInfoGOGC(t *testing.T) {
	t.Setenv("GOGC", "") // unset for the server: t.Setenv restores it
	if err := os.Unsetenv("GOGC"); err != nil {
		t.Fatal(err)
	}
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	s := startServer(t, t.TempDir(), "--runtime.gogc=85")
	var info struct {
		GOGC string `json:"GOGC"`
	}
	s.get("/api/v1/status/runtimeinfo", nil, &info)
	if info.GOGC != "85" {
		t.Fatalf("runtimeinfo GOGC %q, want 85", info.GOGC)
	}
	if got := debug.SetGCPercent(85); got != 85 {
		t.Fatalf("the server runs at GC percent %d, want 85", got)
	}
}
