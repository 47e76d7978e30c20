// Package tmpfstest mounts small tmpfs file systems for tests that need a
// disk that fills up (the WAL's and the server's full-disk tests). It is
// used by tests only.
package tmpfstest

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Mount mounts a tmpfs of size bytes on a temporary directory for the
// test and unmounts it at cleanup. It needs root, as CI has; without it the
// test fails rather than skips. The mount point's name holds the test process's id, so that a
// later run can unmount what a test process killed before its cleanup (a
// test binary stopped by its -timeout, as a mutation run does to a mutant
// that hangs) left mounted: see sweep.
func Mount(t testing.TB, size int64) string {
	t.Helper()
	sweep(t)
	dir := filepath.Join(t.TempDir(), fmt.Sprintf("%s%d", tmpfsPrefix, os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d", size), "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs (needs root, as CI runs): %v\n%s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v\n%s", dir, err, out)
		}
	})
	return dir
}

const tmpfsPrefix = "strata-tmpfs-pid"

// sweep unmounts the tmpfs mounts that Mount made for test
// processes that no longer run, and removes their temporary directories.
// A mount whose process id has been reused since (pid_max may be as low as
// 32768) stays until a later sweep.
func sweep(t testing.TB) {
	t.Helper()
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var stale []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// "36 35 98:0 / /mnt/point rw,noatime shared:1 - tmpfs tmpfs rw"
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mnt := fields[4]
		pid, err := strconv.Atoi(strings.TrimPrefix(filepath.Base(mnt), tmpfsPrefix))
		if err != nil || !strings.HasPrefix(filepath.Base(mnt), tmpfsPrefix) {
			continue
		}
		// /proc/<pid> exists while the process runs (this file is
		// Linux's mountinfo; os.Stat keeps the package building elsewhere).
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); errors.Is(err, fs.ErrNotExist) {
			stale = append(stale, mnt)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	for _, mnt := range stale {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Logf("unmount a tmpfs left by an earlier test process: %v\n%s", err, out)
			continue
		}
		// t.TempDir's layout: <os.TempDir()>/<TestName><random>/<nnn>/<mount point>.
		if root := filepath.Dir(filepath.Dir(mnt)); filepath.Dir(root) == filepath.Clean(os.TempDir()) {
			_ = os.RemoveAll(root)
		}
		t.Logf("unmounted %s, left by a test process that no longer runs", mnt)
	}
}
