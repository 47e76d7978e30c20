package main

import (
	"os"
	"strconv"
	"strings"
	"syscall"
)

// totalMemory returns the machine's memory in bytes as the kernel reports
// it (in a container, the host's, not the container's limit).
func totalMemory() (uint64, bool) {
	var si syscall.Sysinfo_t
	if err := syscall.Sysinfo(&si); err != nil {
		return 0, false
	}
	return uint64(si.Totalram) * uint64(si.Unit), true
}

// cgroupMemoryLimit returns the memory limit of the cgroup the process
// runs in, as a container sees it at /sys/fs/cgroup (cgroup v2's
// memory.max, else v1's memory.limit_in_bytes); false when there is none.
func cgroupMemoryLimit() (uint64, bool) {
	for _, f := range []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
		// "max", or v1's page-rounded MaxInt64: no limit.
		if err != nil || n >= 1<<60 {
			return 0, false
		}
		return n, true
	}
	return 0, false
}
