package main

import "syscall"

// totalMemory returns the machine's memory in bytes as the kernel reports
// it (in a container, the host's, not the container's limit).
func totalMemory() (uint64, bool) {
	var si syscall.Sysinfo_t
	if err := syscall.Sysinfo(&si); err != nil {
		return 0, false
	}
	return uint64(si.Totalram) * uint64(si.Unit), true
}
