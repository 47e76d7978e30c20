package main

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestDataDirLock starts the binary on a data dir, then a second process on
// the same dir: the second must refuse to start and name the first's PID.
// After the first is killed with SIGKILL the kernel drops its lock, and a
// new process starts on the dir.
func TestDataDirLock(t *testing.T) {
	bin := strataBinary(t)
	dir := t.TempDir()
	first := startProcess(t, bin, dir)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	second := exec.CommandContext(ctx, bin, "--listen-addr", "127.0.0.1:0", "--data-dir", dir, "--log.level", "warn")
	out, err := second.CombinedOutput()
	if err == nil {
		t.Fatalf("a second process started on a locked data dir; output:\n%s", out)
	}
	if strings.Contains(string(out), "listening on") {
		t.Fatalf("the second process listened before refusing:\n%s", out)
	}
	wantPID := fmt.Sprintf("locked by pid %d", first.cmd.Process.Pid)
	if !strings.Contains(string(out), wantPID) {
		t.Fatalf("the refusal does not name the holder (%q):\n%s", wantPID, out)
	}

	first.kill(t)
	third := startProcess(t, bin, dir)
	third.kill(t)
}
