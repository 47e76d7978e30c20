//go:build !linux

package main

// totalMemory is unknown outside Linux: the cache then defaults to 256 MiB
// (set cache.max_bytes).
func totalMemory() (uint64, bool) { return 0, false }

// cgroupMemoryLimit is unknown outside Linux: no automatic memory limit.
func cgroupMemoryLimit() (uint64, bool) { return 0, false }
