//go:build !unix

package buffer

import "time"

func processCPU() (time.Duration, bool) { return 0, false }
