//go:build unix

package query

import (
	"syscall"
	"time"
)

// processCPU returns the CPU time (user and system) the process has used,
// so that a benchmark can tell its own cost from the waits of a loaded
// machine; ok is false where it is not known.
func processCPU() (d time.Duration, ok bool) {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
