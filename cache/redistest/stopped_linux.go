package redistest

import (
	"bytes"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// waitIfStopped returns, after sig was sent to process pid, once the
// process is stopped if sig is SIGSTOP: its state in /proc is T.
func waitIfStopped(t testing.TB, pid int, sig syscall.Signal) {
	t.Helper()
	if sig != syscall.SIGSTOP {
		return
	}
	stat := "/proc/" + strconv.Itoa(pid) + "/stat"
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		b, err := os.ReadFile(stat)
		if err != nil {
			t.Fatal(err)
		}
		// "pid (comm) state ...": the state follows the last ')'.
		if i := bytes.LastIndexByte(b, ')'); i >= 0 && i+2 < len(b) && b[i+2] == 'T' {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server not stopped 10 s after SIGSTOP: %s", b)
		}
	}
}
