//go:build !unix

package query

import "time"

func processCPU() (time.Duration, bool) { return 0, false }
