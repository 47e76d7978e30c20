//go:build !linux

package redistest

import (
	"syscall"
	"testing"
)

// waitIfStopped does nothing where there is no /proc to read a process'
// state from.
func waitIfStopped(testing.TB, int, syscall.Signal) {}
