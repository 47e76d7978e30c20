package testproc

import (
	"os/exec"
	"syscall"
)

// setDeathSignal has the kernel kill the child if this process dies
// without cleaning up.
func setDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
