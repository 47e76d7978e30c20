//go:build !linux

package testproc

import "os/exec"

// setDeathSignal does nothing where the kernel has no parent-death signal:
// the child is stopped by the normal cleanup only.
func setDeathSignal(*exec.Cmd) {}
